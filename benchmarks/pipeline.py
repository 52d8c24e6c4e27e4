"""The whole ``bma run`` on the demo market: wall time and peak memory per stage.

``python -m benchmarks.pipeline [--tickers 500] [--sessions 1260] [--seed 42] [--jobs 2]
[--no-baseline] [--real-dir DIR] [--real-end-date D] [--no-real]`` prints one JSON line.

``real``: the same default run, ``jobs`` workers, on the real US panel of
``--real-dir`` (default ``../shared/data/real``, internal evaluation only; the
load stage reads and validates its ``.csv.gz`` and applies the adjusted close),
timings and memory per stage only (its signal figures are
``benchmarks.real_signal``'s job); ``{"skipped": reason}`` when the folder is
absent.

*ours* is the default configuration (``config/default.yaml``'s research
section) run with ``jobs`` parallel joblib workers (default 2): demo data ->
every pipeline stage -> the report (Parquet, CSV, JSON, Excel, charts) into a
temporary directory. The *baseline*, measured in the same process right
after, is the identical run with ``jobs=1`` (no parallel folds; each model
may use all cores itself), i.e. what parallelising the walk-forward buys.
``equal`` says both runs produced the same recommendations (same tickers in
the same order, weights within 1e-6) and OOS stack/fused scores within 1e-6
(tree libraries sum histograms in thread order, so bit-identity across
thread counts is not promised).

Memory: a sampler thread reads the resident set size (``/proc``) of this
process plus its descendants (the loky workers) every 20 ms; ``peak_mb`` is
the largest sum seen, and each stage reports the peak seen while it ran.
``cpu_s`` per stage is CPU time of this process only (workers excluded), so
``wall_s`` much larger than ``cpu_s`` in ``train`` means the time is in workers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                children = [int(c) for c in task.read_text().split()]
            except OSError:  # the task ended while we read it
                continue
            found += children
            stack += children
    return found


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class MemorySampler:
    """Peak RSS of this process tree, overall and since the last :meth:`lap`."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = self.lap_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.is_set():
            total = _rss_bytes(pid) + sum(_rss_bytes(c) for c in _descendants(pid))
            self.peak, self.lap_peak = max(self.peak, total), max(self.lap_peak, total)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def lap(self) -> float:
        """Peak MB since the previous lap; starts a new lap."""
        peak, self.lap_peak = self.lap_peak, 0
        return round(peak / 2**20, 1)


def run_once(n_tickers: int, n_sessions: int, seed: int, jobs: int, out: Path,
             load=None) -> dict:
    """One full run (demo, or ``load()``'s market); per-stage timings/memory and the run dir."""
    from autotrader.config import ConfigStore
    from bma_models.data.demo import demo_market
    from bma_models.report.run import run_and_report
    from bma_models.settings import ResearchSettings

    research = ConfigStore(Path("config")).get().research.to_dict()
    research["jobs"] = jobs
    if load is None:
        research["data"].update({"source": "demo", "demo_tickers": n_tickers,
                                 "demo_sessions": n_sessions, "demo_seed": seed})

        def load():
            return demo_market(n_tickers=n_tickers, n_sessions=n_sessions, seed=seed,
                               end="2025-06-30")
    settings = ResearchSettings.from_mapping(research)
    stages: dict[str, dict] = {}
    with MemorySampler() as memory:
        clock = {"wall": time.perf_counter(), "cpu": time.process_time()}

        def lap(name: str) -> None:
            now, cpu = time.perf_counter(), time.process_time()
            stages[name] = {"wall_s": round(now - clock["wall"], 2),
                            "cpu_s": round(cpu - clock["cpu"], 2), "peak_mb": memory.lap()}
            clock.update(wall=now, cpu=cpu)

        started = time.perf_counter()
        market = load()
        lap("load")
        run_dir = run_and_report(market, settings, out, argv=["benchmark"],
                                 progress=lambda stage, done, total: lap(stage))
        lap("report")
        total = time.perf_counter() - started
    return {"total_s": round(total, 2), "peak_mb": round(memory.peak / 2**20, 1),
            "stages": stages, "run_dir": run_dir, "rows": int(len(market.bars)),
            "tickers": int(market.bars["ticker"].nunique())}


def real_panel(data_dir: Path, end_date: str | None, jobs: int, out: Path) -> dict:
    """The default run on the real US panel of ``data_dir`` (timings only), or why not."""
    bars_file = data_dir / "us_large_caps_2000-2009.csv.gz"
    sectors_file = data_dir / "sectors_2021-10-06.csv"
    if not (bars_file.is_file() and sectors_file.is_file()):
        return {"skipped": f"real data not found in {data_dir}; pass --real-dir"}
    from bma_models.data.csv_source import CsvSource

    def load():
        return CsvSource(bars_file, sectors_file).load(None, None, end_date)

    run = run_once(0, 0, 0, jobs, out, load=load)
    return {"total_s": run["total_s"], "peak_mb": run["peak_mb"], "rows": run["rows"],
            "tickers": run["tickers"], "end_date": end_date, "stages": run["stages"]}


def _same_outputs(a: Path, b: Path, tol: float = 1e-6) -> tuple[bool, dict]:
    import pandas as pd

    from bma_models.report.predictions import read_predictions

    recs_a, recs_b = (pd.read_csv(p / "recommendations.csv") for p in (a, b))
    oos_a, oos_b = (read_predictions(p)[0] for p in (a, b))
    same_tickers = recs_a["ticker"].tolist() == recs_b["ticker"].tolist()
    weight_diff = float(np.abs(recs_a["weight"] - recs_b["weight"]).max())
    score_diff = max(float(np.abs(oos_a[c] - oos_b[c]).max()) for c in ("stack", "fused"))
    detail = {"same_tickers": same_tickers, "max_weight_diff": weight_diff,
              "max_oos_score_diff": score_diff}
    return same_tickers and weight_diff <= tol and score_diff <= tol, detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=1260)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true", help="skip the jobs=1 run")
    parser.add_argument("--real-dir", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                  / "data" / "real"),
                        help="real US panel folder (default ../shared/data/real)")
    parser.add_argument("--real-end-date", default=None, help="last session of the real run")
    parser.add_argument("--no-real", action="store_true", help="skip the real-panel run")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_once(ns.tickers, ns.sessions, ns.seed, ns.jobs, Path(tmp) / "ours")
        report = {"name": f"pipeline_demo_{ns.tickers}x{ns.sessions}",
                  "ours_s": ours["total_s"], "baseline_s": None, "speedup": None,
                  "equal": None, "peak_mb": ours["peak_mb"], "jobs": ns.jobs,
                  "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                  "stages": ours["stages"]}
        if not ns.no_baseline:
            base = run_once(ns.tickers, ns.sessions, ns.seed, 1, Path(tmp) / "baseline")
            equal, detail = _same_outputs(ours["run_dir"], base["run_dir"])
            report.update(baseline="same run with jobs=1", baseline_s=base["total_s"],
                          speedup=round(base["total_s"] / ours["total_s"], 2), equal=equal,
                          equal_detail=detail, baseline_stages=base["stages"],
                          baseline_peak_mb=base["peak_mb"])
        metrics = json.loads((ours["run_dir"] / "metrics.json").read_text())
        report["oos_rank_ic"] = {k: round(v["rank_ic"], 4) for k, v in metrics["oos"].items()}
        if not ns.no_real:
            report["real"] = real_panel(Path(ns.real_dir), ns.real_end_date, ns.jobs,
                                        Path(tmp) / "real")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
