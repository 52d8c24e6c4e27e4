"""The whole ``bma run`` on the demo market and on a real panel: wall, CPU and memory per stage.

``python -m benchmarks.pipeline [--tickers 500] [--sessions 1260] [--seed 42] [--jobs 2]
[--no-baseline] [--before REF] [--real-dir DIR] [--real-end-date D] [--no-real]`` prints
one JSON line.

*ours* is the default configuration (the packaged defaults' research section)
run with ``jobs`` parallel joblib workers (default 2): demo data -> every
pipeline stage -> the report (Parquet, CSV, JSON, Excel, charts) into a
temporary directory. Two baselines, both measured in the same run because the
machine is shared and noisy:

* ``baseline`` (skip with ``--no-baseline``): the identical run with ``jobs=1``
  (no parallel folds; each model may use all cores itself), i.e. what
  parallelising the walk-forward buys. ``equal`` says both runs produced the
  same recommendations (same tickers in the same order, weights within 1e-6)
  and OOS stack/fused scores within 1e-6 (tree libraries sum histograms in
  thread order, so bit-identity across thread counts is not promised).
* ``before`` (``--before REF``, e.g. ``--before main``): the same run (same
  ``jobs``) with the code of the git revision ``REF``, exported with ``git
  archive`` into a temporary folder and run in a child process, right after
  *ours*. ``before.speedup`` = its wall time / ours; ``before.equal_detail``
  compares every column of the two runs' ``predictions_oos.parquet``
  (``identical``: all bit-identical; ``max_abs_diff`` per column), their
  recommendations and their ``metrics.json`` OOS figures. This is the honest
  "did the change make it faster without changing a result" figure. With
  ``--no-baseline`` it is also the headline ``baseline_s`` / ``speedup`` /
  ``equal`` of the JSON line.

``real`` (skipped cleanly when the folder is absent): the same default run
on the real US panel of ``--real-dir`` (default ``../shared/data/real``,
internal evaluation only; the load stage reads and validates its ``.csv.gz``
and applies the adjusted close), timings and memory per stage (its signal
figures are ``benchmarks.real_signal``'s job), with its own ``before`` when
``--before`` is given.

Per stage: ``wall_s``; ``cpu_s``, CPU time of this process; ``workers_cpu_s``,
CPU time of its child processes (the loky workers that fit the first layer in
parallel), read from ``/proc`` by the sampler thread every 20 ms, so a worker
that ends mid-stage loses at most its last 20 ms; ``peak_mb``, the peak
resident set of this process plus its children while the stage ran. Before the
first timed run, a tiny demo run's factors are computed once (numba loads or
compiles its cached kernel), so no run is charged for that one-off cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BARS_FILE = "us_large_caps_2000-2009.csv.gz"
SECTORS_FILE = "sectors_2021-10-06.csv"


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


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` in clock ticks (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


class MemorySampler:
    """Peak RSS of this process tree and CPU of its children, overall and per :meth:`lap`."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = self.lap_peak = 0
        self._child_ticks: dict[int, int] = {}  # latest CPU ticks seen per child pid
        self._lap_ticks = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        pid = os.getpid()
        children = _descendants(pid)
        total = _rss_bytes(pid) + sum(_rss_bytes(c) for c in children)
        with self._lock:
            for child in children:
                ticks = _cpu_ticks(child)
                if ticks is not None:
                    self._child_ticks[child] = max(ticks, self._child_ticks.get(child, 0))
            self.peak, self.lap_peak = max(self.peak, total), max(self.lap_peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._lap_ticks = sum(self._child_ticks.values())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def lap(self) -> tuple[float, float]:
        """(peak MB, children's CPU seconds) since the previous lap; starts a new lap."""
        self._sample()
        with self._lock:
            ticks = sum(self._child_ticks.values())
            peak, self.lap_peak = self.lap_peak, 0
            cpu, self._lap_ticks = (ticks - self._lap_ticks) / _TICK, ticks
        return round(peak / 2**20, 1), round(cpu, 2)


def warm_up() -> None:
    """Load (or compile) the numba factor kernel once, outside every timed run."""
    from bma_models.data.demo import demo_market
    from bma_models.factors import compute_factors

    market = demo_market(n_tickers=20, n_sessions=300, seed=1, end="2025-06-30")
    compute_factors(market.bars, market.reference)


def add_lap(stages: dict[str, dict], name: str, wall_s: float, cpu_s: float,
            workers_cpu_s: float, peak_mb: float) -> None:
    """Add one progress lap to its stage in ``stages`` (``"train:tasks"`` counts as ``train``).

    The pipeline reports every training task as well as every stage; a stage's
    figures are the sums of its laps (and the largest peak), not its last lap.

    Examples
    --------
    >>> stages = {}
    >>> for name, wall in (("features", 3.0), ("train:tasks", 5.0), ("train:tasks", 4.0),
    ...                    ("train", 1.0)):
    ...     add_lap(stages, name, wall, 0.5, 2.0, 100.0)
    >>> stages["train"]
    {'wall_s': 10.0, 'cpu_s': 1.5, 'workers_cpu_s': 6.0, 'peak_mb': 100.0}
    """
    stage = stages.setdefault(name.split(":", 1)[0], {
        "wall_s": 0.0, "cpu_s": 0.0, "workers_cpu_s": 0.0, "peak_mb": 0.0})
    stage["wall_s"] = round(stage["wall_s"] + wall_s, 2)
    stage["cpu_s"] = round(stage["cpu_s"] + cpu_s, 2)
    stage["workers_cpu_s"] = round(stage["workers_cpu_s"] + workers_cpu_s, 2)
    stage["peak_mb"] = max(stage["peak_mb"], peak_mb)


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
            peak_mb, workers_cpu = memory.lap()
            add_lap(stages, name, now - clock["wall"], cpu - clock["cpu"], workers_cpu, peak_mb)
            clock.update(wall=now, cpu=cpu)

        started = time.perf_counter()
        market = load()
        lap("load")
        run_dir = run_and_report(market, settings, out, argv=["benchmark"],
                                 progress=lambda stage, done, total: lap(stage))
        lap("report")
        total = time.perf_counter() - started
    cpu = {"cpu_s": round(sum(s["cpu_s"] for s in stages.values()), 2),
           "workers_cpu_s": round(sum(s["workers_cpu_s"] for s in stages.values()), 2)}
    return {"total_s": round(total, 2), **cpu, "peak_mb": round(memory.peak / 2**20, 1),
            "stages": stages, "run_dir": run_dir, "rows": int(len(market.bars)),
            "tickers": int(market.bars["ticker"].nunique())}


def real_loader(data_dir: Path, end_date: str | None):
    """``load()`` of the real US panel in ``data_dir``, or None when its files are absent."""
    bars_file, sectors_file = data_dir / BARS_FILE, data_dir / SECTORS_FILE
    if not (bars_file.is_file() and sectors_file.is_file()):
        return None

    def load():
        from bma_models.data.csv_source import CsvSource

        return CsvSource(bars_file, sectors_file).load(None, None, end_date)
    return load


def _summary(run: dict) -> dict:
    return {k: run[k] for k in ("total_s", "cpu_s", "workers_cpu_s", "peak_mb", "stages")}


def same_outputs(a: Path, b: Path, tol: float = 1e-6) -> tuple[bool, dict]:
    """Same recommendations and OOS stack/fused scores within ``tol`` (the jobs=1 check)."""
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


def identical_outputs(ours: Path, before: Path) -> tuple[bool, dict]:
    """Compare every stored result of two runs: bit-identity and the largest differences.

    ``identical`` is True when ``predictions_oos.parquet`` has the same rows,
    the same columns and bit-identical values in every column (NaN equal to
    NaN), the recommendations CSV is identical and every OOS figure of
    ``metrics.json`` (``oos``, ``baselines``, ``canaries``, ``stack_weights``)
    is equal.
    """
    import pandas as pd

    frames = [pd.read_parquet(p / "predictions_oos.parquet") for p in (ours, before)]
    keys = ["date", "ticker"]
    same_rows = len(frames[0]) == len(frames[1]) and \
        frames[0][keys].reset_index(drop=True).equals(frames[1][keys].reset_index(drop=True))
    columns = [c for c in frames[0].columns if c in frames[1].columns and c not in keys]
    diffs, bits = {}, True
    for c in columns:
        a, b = frames[0][c].to_numpy(), frames[1][c].to_numpy()
        if a.dtype.kind in "fi" and b.dtype.kind in "fi" and len(a) == len(b):
            both_nan = np.isnan(a.astype(float)) & np.isnan(b.astype(float))
            diffs[c] = float(np.nanmax(np.abs(a.astype(float) - b.astype(float)), initial=0.0))
            bits &= bool(np.all((a == b) | both_nan))
        else:
            bits &= bool(len(a) == len(b) and np.all(a == b))
    recs = [pd.read_csv(p / "recommendations.csv").drop(columns=["source"], errors="ignore")
            for p in (ours, before)]
    metrics = [json.loads((p / "metrics.json").read_text()) for p in (ours, before)]
    same_metrics = {k: metrics[0].get(k) == metrics[1].get(k)
                    for k in ("oos", "baselines", "canaries", "stack_weights")}
    detail = {"same_rows": bool(same_rows),
              "same_columns": list(frames[0].columns) == list(frames[1].columns),
              "predictions_bit_identical": bits, "max_abs_diff": diffs,
              "same_recommendations": recs[0].equals(recs[1]), "same_metrics": same_metrics}
    identical = (bits and detail["same_rows"] and detail["same_columns"]
                 and detail["same_recommendations"] and all(same_metrics.values()))
    return identical, detail


def export_revision(ref: str, into: Path) -> tuple[Path, str]:
    """``git archive`` of ``ref`` into ``into/<sha>``; returns (folder, full sha)."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    folder = into / sha[:12]
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", sha], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder, sha


def run_before(source: Path, job: dict) -> dict:
    """Run :func:`run_once` on the code in ``source`` in a child process (see ``--child``)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    # run_path, not "python FILE": the script's folder would shadow top-level imports
    code = ("import runpy; "
            f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, "--child", json.dumps(job)],
                          cwd=source, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the 'before' run failed (exit {done.returncode}):\n"
                           f"{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(job: dict) -> int:
    """Entry of the ``before`` child: the timing harness of this file, the code of its cwd."""
    logging.basicConfig(level=logging.WARNING)
    warm_up()
    load = None
    if job["kind"] == "real":
        load = real_loader(Path(job["real_dir"]), job["end_date"])
    run = run_once(job["tickers"], job["sessions"], job["seed"], job["jobs"],
                   Path(job["out"]), load=load)
    print(json.dumps({**_summary(run), "run_dir": str(run["run_dir"])}))
    return 0


def _compare_before(ours: dict, job: dict, source: Path | None, sha: str | None) -> dict:
    if source is None:
        return {}
    before = run_before(source, job)
    identical, detail = identical_outputs(ours["run_dir"], Path(before["run_dir"]))
    return {"before": {"ref": sha, **{k: v for k, v in before.items() if k != "run_dir"},
                       "speedup": round(before["total_s"] / ours["total_s"], 2),
                       "cpu_ratio": round((before["cpu_s"] + before["workers_cpu_s"])
                                          / (ours["cpu_s"] + ours["workers_cpu_s"]), 2),
                       "equal": identical, "equal_detail": detail}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=1260)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true", help="skip the jobs=1 run")
    parser.add_argument("--before", default=None, metavar="REF",
                        help="also run the code of git revision REF (e.g. main) as a baseline")
    parser.add_argument("--real-dir", default=str(REPO.parent / "shared" / "data" / "real"),
                        help="real US panel folder (default ../shared/data/real)")
    parser.add_argument("--real-end-date", default=None, help="last session of the real run")
    parser.add_argument("--no-real", action="store_true", help="skip the real-panel run")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child is not None:
        return _child(json.loads(ns.child))
    logging.basicConfig(level=logging.WARNING)
    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        source, sha = (None, None) if ns.before is None else \
            export_revision(ns.before, Path(tmp) / "before-src")
        job = {"kind": "demo", "tickers": ns.tickers, "sessions": ns.sessions,
               "seed": ns.seed, "jobs": ns.jobs, "out": str(Path(tmp) / "before-demo")}
        ours = run_once(ns.tickers, ns.sessions, ns.seed, ns.jobs, Path(tmp) / "ours")
        report = {"name": f"pipeline_demo_{ns.tickers}x{ns.sessions}",
                  "ours_s": ours["total_s"], "baseline_s": None, "speedup": None,
                  "equal": None, "peak_mb": ours["peak_mb"], "jobs": ns.jobs,
                  "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                  "cpu_s": ours["cpu_s"], "workers_cpu_s": ours["workers_cpu_s"],
                  "stages": ours["stages"]}
        report.update(_compare_before(ours, job, source, sha))
        if ns.no_baseline and "before" in report:
            # no jobs=1 run: the code of REF is the baseline of the headline figures
            before = report["before"]
            report.update(baseline=f"same run with the code of {ns.before} ({sha[:12]})",
                          baseline_s=before["total_s"], speedup=before["speedup"],
                          equal=before["equal"])
        if not ns.no_baseline:
            base = run_once(ns.tickers, ns.sessions, ns.seed, 1, Path(tmp) / "baseline")
            equal, detail = same_outputs(ours["run_dir"], base["run_dir"])
            report.update(baseline="same run with jobs=1", baseline_s=base["total_s"],
                          speedup=round(base["total_s"] / ours["total_s"], 2), equal=equal,
                          equal_detail=detail, baseline_stages=base["stages"],
                          baseline_cpu_s=base["cpu_s"],
                          baseline_workers_cpu_s=base["workers_cpu_s"],
                          baseline_peak_mb=base["peak_mb"])
        metrics = json.loads((ours["run_dir"] / "metrics.json").read_text())
        report["oos_rank_ic"] = {k: round(v["rank_ic"], 4) for k, v in metrics["oos"].items()}
        if not ns.no_real:
            report["real"] = real_panel(ns, Path(tmp), source, sha)
        report["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))
    return 0


def real_panel(ns: argparse.Namespace, tmp: Path, source: Path | None,
               sha: str | None) -> dict:
    """The default run on the real US panel (timings only, and ``before``), or why not."""
    load = real_loader(Path(ns.real_dir), ns.real_end_date)
    if load is None:
        return {"skipped": f"real data not found in {ns.real_dir}; pass --real-dir"}
    run = run_once(0, 0, 0, ns.jobs, tmp / "real", load=load)
    out = {**_summary(run), "rows": run["rows"], "tickers": run["tickers"],
           "end_date": ns.real_end_date}
    job = {"kind": "real", "tickers": 0, "sessions": 0, "seed": 0, "jobs": ns.jobs,
           "out": str(tmp / "before-real"), "real_dir": str(ns.real_dir),
           "end_date": ns.real_end_date}
    out.update(_compare_before(run, job, source, sha))
    return out


if __name__ == "__main__":
    sys.exit(main())
