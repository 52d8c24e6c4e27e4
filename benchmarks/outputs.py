"""The OOS predictions file: float32 Parquet (ours) against the float64 CSV it replaced.

``python -m benchmarks.outputs [--tickers 500] [--sessions 1260] [--seed 42] [--jobs 2]``
prints one JSON line.

One pipeline run on the demo market (the packaged default configuration's research
section) with the storage rounding switched off
(:func:`bma_models.pipeline.stored_precision` patched to the identity), so the
full-precision OOS frame of this very run is at hand. Then, in the same process:

* *baseline*: the writer before ``predictions_oos.parquet``: every column as
  float64 text in ``predictions_oos.csv`` (Arrow's CSV writer, shortest
  round-trip repr); its time and size;
* *ours*: :func:`~bma_models.pipeline.stored_precision` (float32) and
  :func:`~bma_models.report.predictions.write_predictions`; its time and size;
* ``metric_diff``: for each metric, the largest absolute difference over the
  models between :func:`~bma_models.evaluation.evaluate` on the float64 frame
  (what a run reported before) and on the stored float32 frame (what a run
  reports now); ``ties_added``: scores (and labels) of one date that were
  distinct in float64 and equal in float32;
* ``equal``: the Parquet file read back is the stored frame bit for bit, and
  the metrics recomputed from it equal those of the stored frame exactly;
* ``alternatives``: sizes of the other layouts considered (docs/outputs.md), and
  of the CSV that ``--csv-predictions`` adds (the stored float32 values as text).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from benchmarks.pipeline import MemorySampler

logger = logging.getLogger(__name__)

_METRICS = ("ic_mean", "rank_ic_mean", "icir", "rank_icir", "hit_rate", "long_short_mean",
            "top_turnover_mean")


def full_precision_oos(n_tickers: int, n_sessions: int, seed: int, jobs: int) -> pd.DataFrame:
    """The OOS frame of one default-config demo run, before the storage rounding."""
    from autotrader.config import ConfigStore
    from bma_models.data.demo import demo_market
    from bma_models.pipeline import ResearchPipeline
    from bma_models.settings import ResearchSettings

    research = ConfigStore(Path("config")).get().research.to_dict()
    research["jobs"] = jobs
    research["data"].update({"source": "demo", "demo_tickers": n_tickers,
                             "demo_sessions": n_sessions, "demo_seed": seed})
    market = demo_market(n_tickers=n_tickers, n_sessions=n_sessions, seed=seed,
                         end="2025-06-30")
    with mock.patch("bma_models.pipeline.stored_precision", lambda oos: oos):
        result = ResearchPipeline(ResearchSettings.from_mapping(research)).run(market)
    return result.predictions_oos


def _previous_csv_writer(oos: pd.DataFrame, path: Path) -> None:
    import pyarrow
    import pyarrow.csv as pyarrow_csv

    frame = oos[[c for c in oos.columns if c != "label"] + ["label"]].reset_index()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    pyarrow_csv.write_csv(pyarrow.Table.from_pandas(frame, preserve_index=False), path,
                          pyarrow_csv.WriteOptions(quoting_style="none"))


def _timed(write, *args) -> float:
    started = time.perf_counter()
    write(*args)
    return time.perf_counter() - started


def _metric_diff(before: dict, after: dict) -> dict[str, float]:
    return {m: max(abs(float(after[k][m]) - float(before[k][m])) for k in before)
            for m in _METRICS}


def _ties_added(full: pd.DataFrame, stored: pd.DataFrame) -> int:
    dates = full.index.get_level_values(0)
    columns = [c for c in full.columns if c != "fold"]
    return int(sum(full[c].groupby(dates).nunique().sum()
                   - stored[c].groupby(dates).nunique().sum() for c in columns))


def _alternatives(full: pd.DataFrame, stored: pd.DataFrame, directory: Path) -> dict:
    """Bytes (and write seconds) of the layouts considered, with the same writer."""
    from bma_models.report import predictions

    scores = [c for c in full.columns if c not in ("fold", "label")]
    layouts = {"parquet_float64": (full, predictions.ZSTD_LEVEL),
               "parquet_float32_scores_float64_label": (
                   full.astype(dict.fromkeys(scores, np.float32)), predictions.ZSTD_LEVEL),
               "parquet_float32_zstd1": (stored, 1), "parquet_float32_zstd19": (stored, 19)}
    sizes = {}
    for name, (frame, level) in layouts.items():
        (directory / name).mkdir()
        with mock.patch.object(predictions, "ZSTD_LEVEL", level):
            seconds = _timed(predictions.write_predictions, frame, directory / name)
        sizes[name] = {"bytes": (directory / name / predictions.PARQUET_FILE).stat().st_size,
                       "write_s": round(seconds, 3)}
    (directory / "with_csv").mkdir()
    predictions.write_predictions(stored, directory / "with_csv", csv=True)
    sizes["csv_predictions_flag"] = {
        "bytes": (directory / "with_csv" / predictions.CSV_FILE).stat().st_size}
    return sizes


def measure(full: pd.DataFrame, directory: Path) -> dict:
    """Write ``full`` both ways and compare sizes, times and metrics (see the module doc)."""
    from bma_models.evaluation import evaluate
    from bma_models.pipeline import stored_precision
    from bma_models.report.predictions import PARQUET_FILE, read_predictions, write_predictions

    csv_path = directory / "predictions_oos.csv"
    baseline_s = _timed(_previous_csv_writer, full, csv_path)
    stored = stored_precision(full)
    (directory / "ours").mkdir()
    ours_s = _timed(write_predictions, stored, directory / "ours")
    read_back, _ = read_predictions(directory / "ours")
    columns = ["fold", *[c for c in stored.columns if c not in ("fold", "label")], "label"]
    same_file = read_back.equals(stored[columns]) and bool(
        (read_back.dtypes == stored[columns].dtypes).all())
    before = evaluate(full.drop(columns=["label"]), full["label"])
    after = evaluate(stored.drop(columns=["label"]), stored["label"])
    from_file = evaluate(read_back.drop(columns=["label"]), read_back["label"])
    same_metrics = all(from_file[k][m] == after[k][m] for k in after for m in _METRICS)
    csv_bytes = csv_path.stat().st_size
    parquet_bytes = (directory / "ours" / PARQUET_FILE).stat().st_size
    return {"ours_s": round(ours_s, 3), "baseline_s": round(baseline_s, 3),
            "speedup": round(baseline_s / ours_s, 2), "equal": same_file and same_metrics,
            "rows": len(full), "csv_bytes": csv_bytes, "parquet_bytes": parquet_bytes,
            "size_ratio": round(csv_bytes / parquet_bytes, 2),
            "metric_diff": _metric_diff(before, after), "ties_added": _ties_added(full, stored),
            "rank_ic": {k: {"float64": before[k]["rank_ic_mean"],
                            "float32": after[k]["rank_ic_mean"]} for k in after},
            "alternatives": _alternatives(full, stored, directory)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=1260)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=2)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with MemorySampler() as memory, tempfile.TemporaryDirectory() as tmp:
        full = full_precision_oos(ns.tickers, ns.sessions, ns.seed, ns.jobs)
        report = {"name": f"outputs_demo_{ns.tickers}x{ns.sessions}",
                  **measure(full, Path(tmp))}
    report["peak_mb"] = round(memory.peak / 2**20, 1)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
