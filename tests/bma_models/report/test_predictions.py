"""``predictions_oos.parquet`` / ``.csv``: what is written, and the one reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bma_models.errors import DataError
from bma_models.pipeline import stored_precision
from bma_models.report.predictions import (
    CSV_FILE,
    PARQUET_FILE,
    read_predictions,
    write_predictions,
)


def _oos(n_dates: int = 4, n_tickers: int = 6) -> pd.DataFrame:
    """A pipeline-shaped OOS frame: fold, two scores, label (not last), float64."""
    rng = np.random.default_rng(42)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2025-01-02", periods=n_dates), [f"T{k}" for k in range(n_tickers)]],
        names=["date", "ticker"])
    n = len(index)
    return pd.DataFrame({"fold": np.repeat([0, 1], n // 2), "ridge": rng.normal(size=n),
                         "label": rng.normal(scale=0.02, size=n), "fused": rng.uniform(size=n)},
                        index=index)


def test_stored_precision_rounds_scores_and_label_to_float32_and_keeps_fold():
    stored = stored_precision(_oos())
    assert stored["fold"].dtype == np.int64
    assert (stored[["ridge", "label", "fused"]].dtypes == np.float32).all()


def test_parquet_holds_the_frame_label_last_with_split_zstd_floats(tmp_path):
    oos = stored_precision(_oos())
    assert write_predictions(oos, tmp_path) == [tmp_path / PARQUET_FILE]
    assert not (tmp_path / CSV_FILE).exists()
    frame, name = read_predictions(tmp_path)
    assert name == PARQUET_FILE
    assert list(frame.columns) == ["fold", "ridge", "fused", "label"]
    pd.testing.assert_frame_equal(frame, oos[["fold", "ridge", "fused", "label"]],
                                  check_exact=True, check_index_type=False)
    meta = pq.ParquetFile(tmp_path / PARQUET_FILE).metadata
    columns = {meta.schema.column(i).name: meta.row_group(0).column(i)
               for i in range(meta.num_columns)}
    for name in ("ridge", "fused", "label"):
        assert columns[name].physical_type == "FLOAT"
        assert "BYTE_STREAM_SPLIT" in columns[name].encodings
        assert columns[name].compression == "ZSTD"
    assert "RLE_DICTIONARY" in columns["ticker"].encodings


def test_csv_on_request_equals_the_parquet_content(tmp_path):
    oos = stored_precision(_oos())
    paths = write_predictions(oos, tmp_path, csv=True)
    assert paths == [tmp_path / PARQUET_FILE, tmp_path / CSV_FILE]
    parquet = pd.read_parquet(paths[0])
    csv = pd.read_csv(paths[1], parse_dates=["date"])
    floats = ["ridge", "fused", "label"]
    pd.testing.assert_frame_equal(csv, parquet.astype(dict.fromkeys(floats, np.float64)),
                                  check_exact=True, check_dtype=False)
    assert (csv[floats].astype(np.float32) == parquet[floats]).all().all()
    assert paths[1].read_text().splitlines()[1].startswith("2025-01-02,T0,0,")


def test_an_older_run_with_only_the_csv_is_read_from_it(tmp_path):
    oos = _oos()  # float64, like runs written before the Parquet file
    oos.reset_index().assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp_path / CSV_FILE, index=False, float_format="%.17g")
    frame, name = read_predictions(tmp_path)
    assert name == CSV_FILE
    pd.testing.assert_frame_equal(frame, oos, check_exact=True, check_index_type=False)


def test_missing_or_broken_predictions_are_data_errors_naming_the_run(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}: no {PARQUET_FILE}"):
        read_predictions(tmp_path)
    (tmp_path / PARQUET_FILE).write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read the OOS predictions"):
        read_predictions(tmp_path)
