"""``predictions_oos.parquet`` (and the optional ``predictions_oos.csv``): write and read.

The OOS predictions are one row per scored ``(date, ticker)``: ``date``,
``ticker``, ``fold``, one column per first-layer model, ``stack``, ``fused``
and, last, ``label`` (the realised T+1..T+horizon return). Every score and the
label are float32 (:data:`bma_models.pipeline.OOS_FLOAT`): the pipeline rounds
them before it evaluates, so the file reproduces every OOS metric exactly.

Why these Parquet options: random float mantissas do not compress, but with
``BYTE_STREAM_SPLIT`` the sign/exponent bytes of all values sit together and
zstd squeezes them; ``date``, ``ticker`` and ``fold`` repeat and are dictionary
encoded. On the default demo run (410k rows) the file is ~12 MB where the
float64 CSV was 76 MB (docs/outputs.md has the measurements and the command).

The CSV, written only on request (``bma run --csv-predictions``,
``research.report.csv_predictions``), holds the same rows; its numbers are the
stored float32 values printed as float64 (shortest round-trip repr), so any
float64 reader gets exactly the values the metrics were computed from, and a
float32 reader gets the Parquet values bit for bit.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.csv as pyarrow_csv
import pyarrow.parquet as pq

from bma_models.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["CSV_FILE", "PARQUET_FILE", "read_predictions", "write_predictions"]

PARQUET_FILE = "predictions_oos.parquet"
CSV_FILE = "predictions_oos.csv"
#: zstd level of the Parquet file: level 9 is ~2 % smaller than level 1 (Arrow's default)
#: for ~15 % more write time (0.32 s for 410k rows); level 19 saves another 5 % but takes
#: ~20x as long (python -m benchmarks.outputs)
ZSTD_LEVEL = 9
_KEYS = ("date", "ticker", "fold")


def write_predictions(oos: pd.DataFrame, directory: str | Path, *, csv: bool = False
                      ) -> list[Path]:
    """Write the OOS predictions into ``directory``; returns the paths written.

    Parameters
    ----------
    oos : DataFrame on a ``(date, ticker)`` index
        :attr:`bma_models.pipeline.ResearchResult.predictions_oos`: ``fold``,
        the score columns and ``label``; scores and label as stored (float32).
    directory : str or Path
        The run's (staging) directory.
    csv : bool, default=False
        Also write :data:`CSV_FILE` with the same content.

    Returns
    -------
    list of Path
        :data:`PARQUET_FILE`, then :data:`CSV_FILE` when ``csv``.
    """
    directory = Path(directory)
    # the label goes last, after the scores, so the file alone backtests any source
    frame = oos[[c for c in oos.columns if c != "label"] + ["label"]].reset_index()
    floats = [c for c in frame.columns if c not in _KEYS]
    table = pyarrow.Table.from_pandas(frame, preserve_index=False)
    paths = [directory / PARQUET_FILE]
    pq.write_table(table, paths[0], compression="zstd", compression_level=ZSTD_LEVEL,
                   use_dictionary=list(_KEYS), use_byte_stream_split=floats)
    if csv:
        paths.append(directory / CSV_FILE)
        _write_csv(frame, floats, paths[1])
    return paths


def _write_csv(frame: pd.DataFrame, floats: list[str], path: Path) -> None:
    text = frame.astype(dict.fromkeys(floats, np.float64))
    text["date"] = text["date"].dt.strftime("%Y-%m-%d")
    # Arrow's writer prints the shortest round-trip repr like pandas, ~30x faster on 400k rows
    pyarrow_csv.write_csv(pyarrow.Table.from_pandas(text, preserve_index=False), path,
                          pyarrow_csv.WriteOptions(quoting_style="none"))


def read_predictions(run_dir: str | Path) -> tuple[pd.DataFrame, str]:
    """Read the OOS predictions of a run, indexed by ``(date, ticker)``, and the file read.

    Reads :data:`PARQUET_FILE`. A run written before the Parquet file existed
    has only :data:`CSV_FILE`: that one is read instead (logged); the returned
    file name says which one was used.

    Raises
    ------
    bma_models.errors.DataError
        The run directory has neither file, or the file cannot be read.
    """
    run_dir = Path(run_dir)
    parquet, csv = run_dir / PARQUET_FILE, run_dir / CSV_FILE
    try:
        if parquet.is_file():
            frame, name = pd.read_parquet(parquet), PARQUET_FILE
        elif csv.is_file():
            logger.info("%s: no %s (a run written before it existed): reading %s",
                        run_dir.name, PARQUET_FILE, CSV_FILE)
            frame, name = pd.read_csv(csv, parse_dates=["date"]), CSV_FILE
        else:
            raise DataError(f"{run_dir}: no {PARQUET_FILE} (nor an older run's {CSV_FILE})")
        return frame.set_index(["date", "ticker"]), name
    except (OSError, KeyError, ValueError, pyarrow.ArrowException) as e:
        raise DataError(f"{run_dir}: cannot read the OOS predictions: {e!r}") from e
