"""Forward returns, relevance buckets, lags, the alignment checker and build_dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.dataset import build_dataset
from bma_models.errors import DataError, LeakageError, SettingsError
from bma_models.factors import compute_factors
from bma_models.labels import (
    check_alignment,
    forward_returns,
    lag_features,
    relevance_labels,
)


def _grid(bars):
    return pd.DatetimeIndex(np.sort(bars["date"].unique()))


def test_forward_return_uses_the_close_horizon_sessions_ahead(market_with_halts):
    bars, _ = market_with_halts
    label = forward_returns(bars, horizon=5)
    close = bars.pivot(index="date", columns="ticker", values="close")
    expected = (close.shift(-5) / close - 1).stack().rename("label")
    expected = expected.reindex(label.index)
    pd.testing.assert_series_equal(label, expected, check_names=False, check_index_type=False)
    assert label.name == "label"
    assert label.loc[_grid(bars)[-5:]].isna().all()


def test_next_open_label_buys_at_the_next_sessions_open(market_with_halts):
    bars, _ = market_with_halts
    label = forward_returns(bars, horizon=5, entry="next_open")
    close = bars.pivot(index="date", columns="ticker", values="close")
    opens = bars.pivot(index="date", columns="ticker", values="open")
    expected = (close.shift(-5) / opens.shift(-1) - 1).stack().reindex(label.index)
    np.testing.assert_allclose(label, expected, rtol=1e-12, equal_nan=True)
    assert label.notna().sum() > 0.8 * len(label)
    with pytest.raises(SettingsError, match="entry"):
        forward_returns(bars, horizon=5, entry="vwap")


def test_a_close_label_with_unlagged_features_is_refused(market):
    bars, reference = market
    with pytest.raises(SettingsError, match="lagged >= 1"):
        build_dataset(bars, reference, specs=["mom_5"], base_lag=0, safety_gap=0)


def test_forward_return_is_nan_when_the_future_bar_is_missing():
    bars = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-02",
                                "2024-01-04"]),
        "ticker": ["A", "A", "A", "B", "B"], "open": 1.0, "high": 1.0, "low": 1.0,
        "close": [10.0, 11.0, 12.0, 5.0, 6.0], "volume": 1.0, "vwap": 1.0,
    })
    label = forward_returns(bars, horizon=1)
    assert label.loc[(pd.Timestamp("2024-01-02"), "A")] == pytest.approx(0.1)
    assert np.isnan(label.loc[(pd.Timestamp("2024-01-02"), "B")])  # B has no bar on the 3rd


def test_relevance_buckets_per_date_with_ties():
    idx = pd.MultiIndex.from_product([pd.bdate_range("2024-01-01", periods=2), list("ABCDE")],
                                     names=["date", "ticker"])
    label = pd.Series([0.5, 0.1, -0.2, 0.3, np.nan, 1.0, 1.0, 1.0, 2.0, -1.0], index=idx)
    rel = relevance_labels(label, n_buckets=4)
    assert rel.dtype == np.int64 and rel.name == "relevance"
    assert rel.loc[pd.Timestamp("2024-01-01")].tolist() == [3, 1, 0, 2]
    # ties: zero-based average rank 2 of 5 -> floor(2 * 4 / 5) = 1 for all three
    assert rel.loc[pd.Timestamp("2024-01-02")].tolist() == [1, 1, 1, 3, 0]
    assert len(rel) == 9


def test_lag_shifts_on_the_market_grid_and_records_the_source_date(market_with_halts):
    bars, reference = market_with_halts
    raw = compute_factors(bars, reference, specs=["mom_5", "clv"])
    grid = _grid(bars)
    lagged = lag_features(raw, 3, grid)
    assert lagged.features.index.equals(raw.index)
    row = raw.index[len(raw) // 2]
    source = grid[grid.get_loc(row[0]) - 3]
    assert lagged.asof.loc[row] == source or (source, row[1]) not in raw.index
    if (source, row[1]) in raw.index:
        pd.testing.assert_series_equal(lagged.features.loc[row], raw.loc[(source, row[1])],
                                       check_names=False)
    missing_source = lagged.asof.isna()
    assert lagged.features[missing_source].isna().all().all()
    assert missing_source.sum() > 0  # halts and the first 3 sessions have no source


def test_lag_zero_is_the_identity(market):
    bars, reference = market
    raw = compute_factors(bars, reference, specs=["mom_5"])
    lagged = lag_features(raw, 0)
    pd.testing.assert_frame_equal(lagged.features, raw)
    assert (lagged.asof.to_numpy() == raw.index.get_level_values(0).to_numpy()).all()
    with pytest.raises(SettingsError, match="lag"):
        lag_features(raw, -1)


def test_checker_passes_a_correctly_lagged_frame(market):
    bars, reference = market
    raw = compute_factors(bars, reference, specs=["mom_5", "vol_5"])
    lagged = lag_features(raw, 4)
    check_alignment(lagged.features, forward_returns(bars, 5), 4, 5, _grid(bars),
                    feature_asof=lagged.asof, raw_features=raw)


def test_checker_names_ticker_and_dates_of_an_unlagged_frame(market):
    bars, reference = market
    raw = compute_factors(bars, reference, specs=["mom_5"])
    honest = lag_features(raw, 0)  # truthful provenance, but no lag at all
    with pytest.raises(LeakageError, match=r"lag=4.*T00 on 2023-\d\d-\d\d: feature as of "
                                           r"2023-\d\d-\d\d, label window 2023"):
        check_alignment(honest.features, forward_returns(bars, 5), 4, 5, _grid(bars),
                        feature_asof=honest.asof)


def test_checker_catches_a_lag_applied_to_the_bookkeeping_only(market):
    bars, reference = market
    raw = compute_factors(bars, reference, specs=["mom_5"])
    forged = lag_features(raw, 4).asof  # claims a 4-session lag ...
    with pytest.raises(LeakageError, match="differ from the raw features"):
        check_alignment(raw, forward_returns(bars, 5), 4, 5, _grid(bars),  # ... values unlagged
                        feature_asof=forged, raw_features=raw)


def test_checker_catches_one_leaky_row_and_values_without_provenance(market):
    bars, reference = market
    raw = compute_factors(bars, reference, specs=["mom_5"])
    lagged = lag_features(raw, 2)
    asof = lagged.asof.copy()
    row = raw.index[-1]
    asof.loc[row] = row[0] - pd.Timedelta(days=1)  # one row claims yesterday's data
    with pytest.raises(LeakageError, match=rf"1 rows.*{row[1]} on {row[0].date()}"):
        check_alignment(lagged.features, forward_returns(bars, 5), 2, 5, _grid(bars),
                        feature_asof=asof)
    no_asof = lagged.asof.copy()
    no_asof.iloc[-1] = pd.NaT
    with pytest.raises(LeakageError, match="without a source date"):
        check_alignment(lagged.features, forward_returns(bars, 5), 2, 5, _grid(bars),
                        feature_asof=no_asof)


def test_checker_rejects_a_label_whose_window_is_not_in_the_data(market):
    bars, reference = market
    raw = compute_factors(bars, reference, specs=["mom_5"])
    lagged = lag_features(raw, 1)
    label = forward_returns(bars, 5).fillna(0.0)  # invented labels for the last sessions
    with pytest.raises(LeakageError, match="labels are known although"):
        check_alignment(lagged.features, label, 1, 5, _grid(bars), feature_asof=lagged.asof)


@pytest.mark.parametrize(("base_lag", "safety_gap", "entry"),
                         [(1, 3, "close"), (0, 0, "next_open"), (2, 0, "close")])
def test_build_dataset_splits_training_and_inference_rows(market, base_lag, safety_gap, entry):
    bars, reference = market
    X, y, relevance, meta = build_dataset(bars, reference, horizon=5, base_lag=base_lag,
                                          safety_gap=safety_gap, entry=entry)
    pd.testing.assert_series_equal(y, forward_returns(bars, 5, entry).reindex(y.index))
    grid = _grid(bars)
    assert meta.lag == base_lag + safety_gap and meta.horizon == 5
    assert X.index.equals(y.index) and X.index.equals(relevance.index)
    assert not X.isna().any().any() and y.notna().all()
    assert X.index.get_level_values("date").max() == grid[-6]
    assert meta.prediction_date == grid[-1]
    assert (meta.X_infer.index.get_level_values("date") == grid[-1]).all()
    assert len(meta.X_infer) == bars["ticker"].nunique()
    assert set(meta.unlabelled.index.get_level_values("date")) == set(grid[-5:])
    assert relevance.between(0, 4).all()
    sessions_back = grid.get_indexer(X.index.get_level_values("date")) - grid.get_indexer(
        meta.feature_asof)
    assert (sessions_back == meta.lag).all()
    assert meta.dropped_rows > 0  # 60-session warm-up


def test_build_dataset_default_lag_is_four_sessions(market):
    bars, reference = market
    *_, meta = build_dataset(bars, reference, specs=["mom_5"])
    assert meta.lag == 4
    with pytest.raises(SettingsError, match="safety_gap"):
        build_dataset(bars, reference, specs=["mom_5"], safety_gap=-1)
    with pytest.raises(DataError, match="empty"):
        build_dataset(bars.iloc[:0], reference)
