"""The research pipeline on one machine vs a 2-worker Dask LocalCluster, by universe size.

``python -m benchmarks.scale [--tickers 500,2000,5000] [--sessions 1260] [--workers 2]
[--baseline-jobs 1] [--seed 42]`` prints one JSON line.

For each universe size the demo market (``--sessions`` sessions, 1260 = 5 years)
is generated once and ``ResearchPipeline.run`` (every stage, no report files)
runs twice in this process:

* *baseline* -- single process: ``research.jobs = --baseline-jobs`` (default 1,
  so joblib runs in-process and each model may use every core through its
  own threads);
* *ours* -- the same settings on a ``LocalCluster`` of ``--workers``
  single-threaded worker processes (``research.dask.scheduler: local``):
  factors by ticker blocks, CV folds x models through joblib's Dask backend,
  native Dask final fits where the training rows exceed
  ``research.dask.native_fit_min_rows`` (default 5,000,000: not reached here).
  The cluster's start-up is measured separately (``cluster_start_s``) and not
  included in ``ours_s``.

Figures per size: wall time of both runs and per pipeline stage; peak
resident memory per process (a sampler thread reads ``/proc`` every 50 ms:
the driver, the largest worker, and the sum over the process tree); the
fraction of time in the driver vs the workers (``worker_compute_s`` is the
sum of task compute time from the scheduler's task stream, ``driver_cpu_s``
the driver's CPU time during the run); and ``equal`` (same recommended
tickers in the same order, weights and OOS stack/fused scores within 1e-6).
The top-level ``ours_s``/``baseline_s``/``speedup``/``peak_mb`` are those of
the largest size; ``growth_exponent`` is the log-log slope of wall time
against tickers (1.0 = linear).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.pipeline import _descendants, _rss_bytes

logger = logging.getLogger(__name__)


class ProcessMemory:
    """Peak RSS of every process of this tree, by pid (sampled every ``interval_s``)."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peaks: dict[int, int] = {}
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        root = os.getpid()
        while not self._stop.is_set():
            sizes = {pid: _rss_bytes(pid) for pid in [root, *_descendants(root)]}
            for pid, size in sizes.items():
                self.peaks[pid] = max(self.peaks.get(pid, 0), size)
            self.tree_peak = max(self.tree_peak, sum(sizes.values()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ProcessMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def mb(self, pid: int) -> float:
        return round(self.peaks.get(pid, 0) / 2**20, 1)


def _settings(n_tickers: int, n_sessions: int, seed: int, jobs: int, scheduler: str | None,
              workers: int):
    from autotrader.config import ConfigStore
    from bma_models.settings import ResearchSettings

    research = ConfigStore(Path("config")).get().research.to_dict()
    research["jobs"] = jobs
    research["data"].update({"source": "demo", "demo_tickers": n_tickers,
                             "demo_sessions": n_sessions, "demo_seed": seed})
    research["dask"].update({"scheduler": scheduler, "workers": workers,
                             "threads_per_worker": 1})
    return ResearchSettings.from_mapping(research)


def _run_single(market, settings) -> dict:
    from bma_models.pipeline import ResearchPipeline

    with ProcessMemory() as memory:
        started, cpu = time.perf_counter(), time.process_time()
        result = ResearchPipeline(settings).run(market)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    workers = [memory.mb(pid) for pid in memory.peaks if pid != os.getpid()]
    return {"wall_s": round(wall, 2), "driver_cpu_s": round(cpu, 2),
            "driver_peak_mb": memory.mb(os.getpid()),
            "worker_peak_mb": max(workers, default=0.0),
            "tree_peak_mb": round(memory.tree_peak / 2**20, 1),
            "stages_s": result.timings_s, "result": result}


def _run_dask(market, settings) -> dict:
    from distributed import get_task_stream

    from bma_models.cluster import open_session
    from bma_models.pipeline import ResearchPipeline

    started = time.perf_counter()
    session = open_session(settings.dask)
    start_s = time.perf_counter() - started
    try:
        worker_pids = list(session.worker_pids().values())
        with ProcessMemory() as memory, get_task_stream(session.client) as stream:
            started, cpu = time.perf_counter(), time.process_time()
            result = ResearchPipeline(settings, cluster=session).run(market)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        session.close()
    compute = sum(part["stop"] - part["start"] for task in stream.data
                  for part in task.get("startstops", ()) if part.get("action") == "compute")
    return {"wall_s": round(wall, 2), "cluster_start_s": round(start_s, 2),
            "driver_cpu_s": round(cpu, 2), "worker_compute_s": round(compute, 2),
            "worker_fraction": round(compute / (compute + cpu), 3) if compute + cpu else None,
            "tasks": len(stream.data),
            "driver_peak_mb": memory.mb(os.getpid()),
            "worker_peak_mb": max((memory.mb(pid) for pid in worker_pids), default=0.0),
            "tree_peak_mb": round(memory.tree_peak / 2**20, 1),
            "stages_s": result.timings_s, "result": result}


def _same(a, b, tol: float = 1e-6) -> tuple[bool, dict]:
    recs_a, recs_b = a.recommendations, b.recommendations
    same_tickers = recs_a["ticker"].tolist() == recs_b["ticker"].tolist()
    weight_diff = float(np.abs(recs_a["weight"].to_numpy() - recs_b["weight"].to_numpy()).max())
    oos_b = b.predictions_oos.reindex(a.predictions_oos.index)
    score_diff = max(float(np.abs(a.predictions_oos[c] - oos_b[c]).max())
                     for c in ("stack", "fused"))
    detail = {"same_tickers": same_tickers, "max_weight_diff": weight_diff,
              "max_oos_score_diff": score_diff}
    return same_tickers and weight_diff <= tol and score_diff <= tol, detail


def measure(n_tickers: int, ns: argparse.Namespace) -> dict:
    """Baseline and Dask runs on one demo universe; returns the figures (no frames)."""
    from bma_models.data.demo import demo_market

    market = demo_market(n_tickers=n_tickers, n_sessions=ns.sessions, seed=ns.seed,
                         end="2025-06-30")
    base = _run_single(market, _settings(n_tickers, ns.sessions, ns.seed, ns.baseline_jobs,
                                         None, ns.workers))
    ours = _run_dask(market, _settings(n_tickers, ns.sessions, ns.seed, ns.workers, "local",
                                       ns.workers))
    equal, detail = _same(ours.pop("result"), base.pop("result"))
    logger.info("%d tickers: baseline %.1fs, dask %.1fs", n_tickers, base["wall_s"],
                ours["wall_s"])
    return {"tickers": n_tickers, "sessions": ns.sessions, "baseline": base, "dask": ours,
            "speedup": round(base["wall_s"] / ours["wall_s"], 3), "equal": equal,
            "equal_detail": detail, "load_avg_1m": round(os.getloadavg()[0], 2)}


def _growth(sizes: list[dict], mode: str) -> float | None:
    if len(sizes) < 2:
        return None
    x = [math.log(s["tickers"]) for s in sizes]
    y = [math.log(s[mode]["wall_s"]) for s in sizes]
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", default="500,2000,5000",
                        help="comma-separated universe sizes (default 500,2000,5000)")
    parser.add_argument("--sessions", type=int, default=1260)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = [measure(int(n), ns) for n in ns.tickers.split(",") if n.strip()]
    last = sizes[-1]
    report = {
        "name": f"scale_demo_{ns.tickers.replace(',', '-')}x{ns.sessions}",
        "ours_s": last["dask"]["wall_s"], "baseline_s": last["baseline"]["wall_s"],
        "speedup": last["speedup"], "equal": all(s["equal"] for s in sizes),
        "peak_mb": last["dask"]["tree_peak_mb"],
        "baseline": f"one process, research.jobs={ns.baseline_jobs}",
        "ours": f"LocalCluster({ns.workers} workers x 1 thread)",
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "growth_exponent": {"baseline": _growth(sizes, "baseline"),
                            "dask": _growth(sizes, "dask")},
        "sizes": sizes,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
