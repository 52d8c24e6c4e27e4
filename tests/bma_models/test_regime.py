"""Regime detection (no look-ahead, documented rules) and regime-weighted fusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.errors import DataError, SettingsError
from bma_models.regime import (
    DEFAULT_REGIME_WEIGHTS,
    REGIMES,
    RegimeFusion,
    detect_regimes,
    market_index,
)


def _index_returns(n=400, seed=7):
    rng = np.random.default_rng(seed)
    vol = np.where(np.arange(n) % 120 < 40, 0.02, 0.008)
    drift = np.where(np.arange(n) % 90 < 45, 0.001, -0.001)
    return pd.Series(drift + rng.normal(0, 1, n) * vol,
                     index=pd.bdate_range("2022-01-03", periods=n))


@pytest.mark.parametrize("threshold_window", [None, 100])
def test_changing_the_future_never_changes_past_states(threshold_window):
    returns = _index_returns()
    base = detect_regimes(returns, threshold_window=threshold_window)
    cut = 250
    perturbed = returns.copy()
    perturbed.iloc[cut + 1:] = perturbed.iloc[cut + 1:] * 5 + 0.01
    changed = detect_regimes(perturbed, threshold_window=threshold_window)
    pd.testing.assert_frame_equal(base.iloc[: cut + 1], changed.iloc[: cut + 1])
    assert not base.iloc[cut + 1:].equals(changed.iloc[cut + 1:])


def test_thresholds_are_quantiles_of_the_data_up_to_each_date():
    returns = _index_returns()
    frame = detect_regimes(returns, min_history=63)
    # vol exists from row 20 on, so 63 observations are first reached at row 82
    assert np.isnan(frame["vol_lo"].iloc[81]) and np.isfinite(frame["vol_lo"].iloc[82])
    for t in (82, 200, 399):
        vol_so_far = frame["vol"].iloc[: t + 1].dropna().to_numpy()
        trend_so_far = frame["trend"].iloc[: t + 1].dropna().to_numpy()
        assert frame["vol_lo"].iloc[t] == pytest.approx(np.quantile(vol_so_far, 1 / 3))
        assert frame["vol_hi"].iloc[t] == pytest.approx(np.quantile(vol_so_far, 2 / 3))
        assert frame["trend_hi"].iloc[t] == pytest.approx(np.quantile(trend_so_far, 2 / 3))
    rolling = detect_regimes(returns, threshold_window=100)
    window = rolling["vol"].iloc[300 - 99: 301].to_numpy()
    assert rolling["vol_hi"].iloc[300] == pytest.approx(np.quantile(window, 2 / 3))


def test_states_follow_the_documented_rule_order_and_cover_all_regimes():
    frame = detect_regimes(_index_returns(n=600))
    expected = []
    for row in frame.itertuples():
        if row.vol > row.vol_hi:
            expected.append("High-vol")
        elif row.trend > row.trend_hi:
            expected.append("Bull")
        elif row.trend < row.trend_lo:
            expected.append("Bear")
        elif row.vol < row.vol_lo:
            expected.append("Low-vol")
        else:
            expected.append("Normal")
    assert frame["state"].tolist() == expected
    assert set(frame["state"]) == set(REGIMES)
    warmup = frame["vol_hi"].isna()
    assert warmup.iloc[:63].all() and (frame.loc[warmup, "state"] == "Normal").all()
    assert list(frame.columns) == ["vol", "trend", "vol_lo", "vol_hi", "trend_lo", "trend_hi",
                                   "state"]


def _bars(closes, tickers):
    dates = pd.bdate_range("2024-01-01", periods=len(closes))
    frame = pd.DataFrame(closes, index=dates, columns=tickers).stack().rename("close")
    bars = frame.reset_index()
    bars.columns = ["date", "ticker", "close"]
    return bars.assign(open=bars["close"], high=bars["close"], low=bars["close"],
                       vwap=bars["close"], volume=1.0)


def test_market_index_is_cap_weighted_on_previous_close_else_equal_weighted():
    bars = _bars([[10.0, 20.0], [11.0, 20.0], [11.0, 22.0]], ["A", "B"])
    equal = market_index(bars)
    assert equal.tolist() == pytest.approx([0.05, 0.05])
    reference = pd.DataFrame({"ticker": ["A", "B"], "sector": ["X", "Y"],
                              "market_cap": [np.nan, np.nan], "shares_outstanding": [3.0, 1.0]})
    capped = market_index(bars, reference)
    # day 2: caps on day 1 are A 30, B 20 -> 0.6 * 10 %; day 3: A 33, B 20 -> 20/53 * 10 %
    assert capped.tolist() == pytest.approx([0.06, 0.1 * 20 / 53])


def _panel():
    dates = pd.to_datetime(["2024-01-02", "2024-01-03"])
    idx = pd.MultiIndex.from_product([dates, ["A", "B", "C", "D"]], names=["date", "ticker"])
    pred = pd.Series([0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4], index=idx, name="prediction")
    factors = pd.DataFrame({
        "mom_60": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0],
        "rev_5": [4.0, 3.0, 2.0, 1.0, 4.0, 3.0, 2.0, 1.0],
    }, index=idx)
    return pred, factors


def test_fused_score_is_weighted_sum_of_ml_rank_and_regime_composite():
    pred, factors = _panel()
    states = pd.Series(["Bull", "Bear"], index=pred.index.levels[0])
    fusion = RegimeFusion(w_ml=0.7, factor_categories={"mom_60": "momentum",
                                                       "rev_5": "reversion"})
    fused = fusion.fuse(pred, factors, states)
    ranks = np.array([1.0, 0.75, 0.5, 0.25])
    bull = DEFAULT_REGIME_WEIGHTS["Bull"]
    composite = ((bull["momentum"] * ranks[::-1] + bull["reversion"] * ranks)
                 / (bull["momentum"] + bull["reversion"]))
    np.testing.assert_allclose(fused.iloc[:4].to_numpy(), 0.7 * ranks + 0.3 * composite)
    assert fused.name == "fused_score"
    # Bear tilts to reversion, Bull to momentum: D ranks higher under Bull's composite
    bull_day, bear_day = fused.iloc[:4], fused.iloc[4:]
    assert bull_day.iloc[3] > 0.7 * 0.25 + 0.3 * 0.5
    assert bear_day.iloc[0] > 0.7 * 0.25 + 0.3 * 0.5


def test_w_ml_one_returns_ml_rank_and_sign_flip_reverses_factor():
    pred, factors = _panel()
    states = pd.Series(["Normal", "Normal"], index=pred.index.levels[0])
    mapping = {"mom_60": "momentum", "rev_5": "momentum"}
    only_ml = RegimeFusion(w_ml=1.0, factor_categories=mapping).fuse(pred, factors, states)
    np.testing.assert_allclose(only_ml.to_numpy(),
                               pred.groupby(level=0).rank(pct=True).to_numpy())
    # mom_60 and rev_5 are exact opposites: with rev_5 flipped they agree
    flipped = RegimeFusion(w_ml=0.0, factor_categories=mapping, factor_signs={"rev_5": -1})
    scores = flipped.category_scores(factors)
    np.testing.assert_allclose(scores["momentum"].iloc[:4], [0.25, 0.5, 0.75, 1.0])


def test_fusion_rejects_unmapped_factors_bad_weights_and_unknown_states():
    pred, factors = _panel()
    states = pd.Series(["Bull", "Bull"], index=pred.index.levels[0])
    with pytest.raises(SettingsError, match="rev_5"):
        RegimeFusion(factor_categories={"mom_60": "momentum"}).fuse(pred, factors, states)
    mapping = {"mom_60": "momentum", "rev_5": "reversion"}
    with pytest.raises(SettingsError, match="missing"):
        RegimeFusion(regime_weights={"Bull": {"momentum": 1.0}},
                     factor_categories=mapping).fuse(pred, factors, states)
    with pytest.raises(DataError, match="Sideways"):
        RegimeFusion(factor_categories=mapping).fuse(
            pred, factors, pd.Series(["Sideways", "Bull"], index=states.index))
    with pytest.raises(SettingsError, match="w_ml"):
        RegimeFusion(w_ml=1.5, factor_categories=mapping).fuse(pred, factors, states)


def test_missing_regime_dates_use_normal_and_nan_predictions_stay_nan():
    pred, factors = _panel()
    pred.iloc[2] = np.nan
    mapping = {"mom_60": "momentum", "rev_5": "reversion"}
    fusion = RegimeFusion(factor_categories=mapping)
    no_states = fusion.fuse(pred, factors, pd.Series(dtype=object))
    normal = fusion.fuse(pred, factors,
                         pd.Series(["Normal", "Normal"], index=pred.index.levels[0]))
    pd.testing.assert_series_equal(no_states, normal)
    assert np.isnan(no_states.iloc[2])


def test_market_index_implies_shares_from_cap_and_gives_unknown_caps_the_median():
    bars = _bars([[10.0, 20.0, 5.0], [11.0, 20.0, 5.0], [11.0, 22.0, 5.5]], ["A", "B", "C"])
    reference = pd.DataFrame({"ticker": ["A", "B", "C"], "sector": [None, None, None],
                              "market_cap": [33.0, np.nan, np.nan],
                              "shares_outstanding": [np.nan, 1.0, np.nan]})
    index = market_index(bars, reference)
    # A: 3 implied shares; C gets the median cap of A and B on each T-1
    assert index.tolist() == pytest.approx([3.0 / 75.0, (2.0 + 2.65) / 79.5])


def test_block_ranks_equal_the_groupby_ranks_with_ties_nans_and_unsorted_input():
    from bma_models.regime import _percentile_ranks_by_date

    rng = np.random.default_rng(3)
    idx = pd.MultiIndex.from_product([pd.date_range("2024-01-01", periods=30), range(40)],
                                     names=["date", "ticker"])
    values = rng.integers(0, 6, size=(len(idx), 3)).astype(float)  # many ties
    values[rng.random(values.shape) < 0.1] = np.nan
    frame = pd.DataFrame(values, index=idx, columns=["a", "b", "c"])
    expected = frame.groupby(level=0).rank(pct=True)
    pd.testing.assert_frame_equal(_percentile_ranks_by_date(frame), expected)
    shuffled = frame.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(_percentile_ranks_by_date(shuffled),
                                  shuffled.groupby(level=0).rank(pct=True))


def test_percentile_ranks_equal_the_pandas_groupby_with_ties_and_nan():
    from bma_models.regime import _percentile_ranks_by_date

    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2024-01-01", periods=9)
    index = pd.MultiIndex.from_product([dates, [f"T{i}" for i in range(13)]],
                                       names=["date", "ticker"])[rng.permutation(117)[:100]]
    frame = pd.DataFrame(rng.integers(0, 5, (100, 3)).astype(float), index=index,
                         columns=["a", "b", "c"])
    frame[frame > 3] = np.nan
    expected = frame.groupby(level=0).rank(pct=True)
    pd.testing.assert_frame_equal(_percentile_ranks_by_date(frame), expected, rtol=1e-12)
    pd.testing.assert_series_equal(_percentile_ranks_by_date(frame["a"]), expected["a"],
                                   rtol=1e-12)
