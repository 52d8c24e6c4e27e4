"""``bma run`` on real US daily data: does the fused score beat the simple baselines?

``python -m benchmarks.real_signal [--data-dir DIR] [--end-date D] [--start-date D]
[--config DIR] [--jobs N] [--keep DIR]`` prints one JSON line.

It runs ``bma run --source csv`` (a child process, exactly as a user would) on
the real development data in ``DIR`` (default ``../shared/data/real`` relative
to the repository root; internal evaluation only, see its README) with the
default configuration (the whole file unless ``--end-date`` cuts it; the development
period of docs/signal.md is ``--end-date 2006-12-31``), then reads the run's
``metrics.json`` and reports, for
the fused score, the stack, its best member and every baseline: mean OOS rank
IC, rank ICIR, Newey-West t, mean top-minus-bottom quintile return over the
label horizon, and the paired Newey-West t of fused minus that row;
``fused_beats_all`` and ``fused_vs_plain_lightgbm_t`` (the issue's bar: >= 2).

When the folder or its files are absent it prints a JSON line with
``skipped`` and the reason and exits 0.

Benchmark keys: ``ours_s`` is the wall time of the whole ``bma run`` (load to
report), ``peak_mb`` the child's peak resident set. There is no speed baseline
here (``baseline_s`` and ``speedup`` are null): the baselines of this benchmark
are the simple scores every run is measured against. ``equal`` is the sanity
check of the measuring instrument: every baseline figure of ``metrics.json``
equals an independent recomputation from the files the run wrote
(``predictions_oos`` + the bars rebuilt with pandas) to 1e-9.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
BARS_FILE = "us_large_caps_2000-2009.csv.gz"
SECTORS_FILE = "sectors_2021-10-06.csv"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_signal",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "real"),
                        help="folder with the real bars and sectors (default ../shared/data/real)")
    parser.add_argument("--start-date", default=None)
    parser.add_argument("--end-date", default="2009-12-31",
                        help="last session (default 2009-12-31, the whole file; the "
                             "development period of docs/signal.md ends 2006-12-31)")
    parser.add_argument("--config", default=str(REPO / "config"))
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--keep", default=None, help="write the run here instead of a temp dir")
    return parser.parse_args(argv)


def _skip(reason: str) -> int:
    print(json.dumps({"name": "real_signal", "skipped": reason}))
    return 0


def run_bma(ns: argparse.Namespace, output: Path) -> tuple[Path, float, float]:
    """Run ``bma run`` in a child process; returns (run dir, wall s, child peak MB)."""
    data_dir = Path(ns.data_dir)
    cmd = [sys.executable, "-m", "autotrader.research", "run", "--source", "csv",
           "--data", str(data_dir / BARS_FILE), "--sectors", str(data_dir / SECTORS_FILE),
           "--config", ns.config, "--output", str(output), "--end-date", ns.end_date,
           "--log-level", "WARNING"]
    if ns.start_date:
        cmd += ["--start-date", ns.start_date]
    if ns.jobs:
        cmd += ["--jobs", str(ns.jobs)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bma run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    return run_dir, wall, peak_mb


def recompute_matches(run_dir: Path, metrics: dict, data_dir: Path) -> bool:
    """Every baseline figure of ``metrics.json`` equals one rebuilt from the run's files."""
    from bma_models.data.csv_source import load_bars_file
    from bma_models.evaluation import newey_west_lags, newey_west_tstat, rank_ic
    from bma_models.report.predictions import read_predictions

    report = metrics["baselines"]
    oos = read_predictions(run_dir)[0].sort_index()
    bars, _ = load_bars_file(data_dir / BARS_FILE)
    bars = bars[bars["date"] <= pd.Timestamp(metrics["run"]["end"])]
    if metrics["run"].get("start"):
        bars = bars[bars["date"] >= pd.Timestamp(metrics["run"]["start"])]
    close = bars.pivot(index="date", columns="ticker", values="close")
    daily = close / close.shift(1) - 1
    lag = metrics["dataset"]["lag"]
    panels = {"reversal_5": -(close / close.shift(5) - 1),
              "momentum_20": close / close.shift(20) - 1,
              "low_vol_60": -daily.rolling(60).std()}
    scores = {"fused": oos["fused"], "stack": oos["stack"],
              "best_member": oos[report["best_member"]],
              "lightgbm_plain": oos["baseline_lightgbm_plain"]}
    for name, panel in panels.items():
        rebuilt = panel.shift(lag).stack().rename_axis(["date", "ticker"]).reindex(oos.index)
        # the run stores (and scores) predictions_oos at its float precision
        scores[name] = rebuilt.astype(oos["fused"].dtype)
    ics = {name: rank_ic(s.dropna(), oos["label"]) for name, s in scores.items()}
    lags = newey_west_lags(len(ics["fused"]), metrics["run"]["horizon"])
    checks = [lags == report["nw_lags"]]
    for name, ic in ics.items():
        row = report["scores"][name]
        checks.append(np.isclose(row["rank_ic"], ic.mean(), rtol=0, atol=1e-9))
        checks.append(np.isclose(row["nw_t"], newey_west_tstat(ic.to_numpy(), lags), rtol=1e-9))
        if name != "fused":
            diff = (ics["fused"] - ic).dropna()
            checks.append(np.isclose(row["vs_reference"]["mean"], diff.mean(), atol=1e-9))
    return bool(all(checks))


def summarise(metrics: dict) -> dict:
    """The benchmark's figures from a run's ``metrics.json``."""
    report = metrics["baselines"]
    rows = {}
    for name, row in report["scores"].items():
        versus = row.get("vs_reference") or {}
        rows[name] = {"rank_ic": row["rank_ic"], "icir": row["rank_icir"], "nw_t": row["nw_t"],
                      "long_short": row["long_short_mean"],
                      "fused_minus_this": versus.get("mean"), "paired_t": versus.get("nw_t")}
    rows["best_member"]["model"] = report["best_member"]
    plain = report["scores"]["lightgbm_plain"]["vs_reference"]
    by_year = {str(y["year"]): {"fused": y["rank_ic"]["fused"],
                                "lightgbm_plain": y["rank_ic"]["lightgbm_plain"],
                                "paired_t": y["vs_reference"]["lightgbm_plain"]["nw_t"]}
               for y in report["by_year"]}
    return {"scores": rows, "fused_beats_all": report["beats_all_baselines"],
            "beaten_by": report["beaten_by"], "fused_vs_plain_lightgbm_t": plain["nw_t"],
            "fused_vs_plain_lightgbm_by_year": by_year,
            "years_fused_beats_plain": report["years_won"]["lightgbm_plain"],
            "nw_lags": report["nw_lags"], "n_dates": report["scores"]["fused"]["n_dates"],
            "canaries": {name: {"rank_ic": c.get("rank_ic"), "passed": c.get("passed")}
                         for name, c in metrics["canaries"].items()}}


def main(argv: list[str] | None = None) -> int:
    ns = _parse(argv)
    data_dir = Path(ns.data_dir)
    missing = [f for f in (BARS_FILE, SECTORS_FILE) if not (data_dir / f).is_file()]
    if missing:
        return _skip(f"real data not found in {data_dir} (missing {missing}); "
                     "pass --data-dir")
    with tempfile.TemporaryDirectory(prefix="real_signal_") as tmp:
        output = Path(ns.keep) if ns.keep else Path(tmp)
        run_dir, wall, peak_mb = run_bma(ns, output)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        equal = recompute_matches(run_dir, metrics, data_dir)
    result = {"name": "real_signal", "ours_s": round(wall, 2), "baseline_s": None,
              "speedup": None, "equal": equal, "peak_mb": round(peak_mb, 1),
              "baseline": "no speed baseline: the baselines are the simple scores of "
                          "metrics.json, scored on the same OOS rows",
              "period": {"start": metrics["run"]["start"], "end": metrics["run"]["end"]},
              "lag": metrics["dataset"]["lag"], "horizon": metrics["run"]["horizon"],
              "n_tickers": metrics["run"]["n_tickers"], **summarise(metrics),
              "timings_s": metrics["timings_s"],
              "load_avg_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
