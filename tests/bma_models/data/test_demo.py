"""Demo market: determinism, protocol shape, realism checks and the planted signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.data import calendar
from bma_models.data.demo import (
    REGIMES,
    SECTORS,
    DemoSource,
    demo_market,
    demo_regimes,
    planted_score,
)
from bma_models.data.protocol import (
    BAR_COLUMNS,
    DataSource,
    MarketData,
    normalize_bars,
    to_panel,
)
from bma_models.errors import DataError
from tests.bma_models.data._ic import forward_log_return, rank_ic


def test_same_seed_gives_identical_frames_and_other_seed_differs():
    first = demo_market(n_tickers=60, n_sessions=120, seed=11)
    again = demo_market(n_tickers=60, n_sessions=120, seed=11)
    other = demo_market(n_tickers=60, n_sessions=120, seed=12)
    pd.testing.assert_frame_equal(first.bars, again.bars)
    pd.testing.assert_frame_equal(first.reference, again.reference)
    assert not np.allclose(first.bars["close"].iloc[:100], other.bars["close"].iloc[:100])


def test_bars_are_already_in_normalize_bars_form(small_demo):
    bars = small_demo.bars
    assert list(bars.columns) == list(BAR_COLUMNS)
    pd.testing.assert_frame_equal(normalize_bars(bars), bars)
    assert bars["date"].dtype == "datetime64[ns]"
    assert small_demo.source == "demo" and small_demo.is_demo
    assert "DEMO" in small_demo.label
    assert any("planted signal" in note for note in small_demo.notes)


def test_dates_are_the_last_nyse_sessions_up_to_end():
    market = demo_market(n_tickers=5, n_sessions=40, seed=1, end="2024-07-06")  # a Saturday
    expected = calendar.sessions("2024-01-01", "2024-07-06")[-40:]
    pd.testing.assert_index_equal(market.dates, pd.DatetimeIndex(list(expected)), check_names=False)
    assert market.dates[-1] == pd.Timestamp("2024-07-05")
    assert pd.Timestamp("2024-07-04") not in market.dates  # Independence Day


def test_prices_are_ohlc_consistent_with_vwap_inside_the_range(small_demo):
    b = small_demo.bars
    assert (b["low"] <= b[["open", "close"]].min(axis=1)).all()
    assert (b[["open", "close"]].max(axis=1) <= b["high"]).all()
    assert ((b["vwap"] >= b["low"]) & (b["vwap"] <= b["high"])).all()
    assert (b["low"] > 0).all() and (b["volume"] > 0).all()


def test_reference_has_eleven_sectors_and_caps_consistent_with_last_close(full_demo):
    ref = full_demo.reference
    assert set(ref["sector"]) == set(SECTORS) and len(SECTORS) == 11
    last_close = to_panel(full_demo.bars, "close").ffill().iloc[-1]
    implied = ref.set_index("ticker")["shares_outstanding"] * last_close
    np.testing.assert_allclose(ref.set_index("ticker")["market_cap"], implied, rtol=1e-12)
    caps = ref["market_cap"]
    assert caps.min() > 5e7 and caps.max() < 2e13 and caps.max() / caps.min() > 100


def test_returns_have_fat_tails_and_regimes_change_volatility(full_demo):
    close = to_panel(full_demo.bars, "close")
    returns = np.log(close).diff()
    idiosyncratic = returns.sub(returns.median(axis=1), axis=0).stack()
    standardized = (idiosyncratic - idiosyncratic.mean()) / idiosyncratic.std()
    assert (standardized**4).mean() > 4.0  # normal: 3
    regimes = demo_regimes(full_demo)
    assert set(regimes) == set(REGIMES)
    market = returns.mean(axis=1)
    vol = market.groupby(regimes).std()
    assert vol["high_vol"] > 1.5 * vol["normal"]
    assert vol["bear"] > vol["bull"]


def test_volume_rises_with_absolute_return(full_demo):
    close = to_panel(full_demo.bars, "close")
    volume = to_panel(full_demo.bars, "volume")
    abs_return = np.log(close).diff().abs()
    relative_volume = np.log(volume) - np.log(volume).rolling(20, min_periods=5).mean()
    assert rank_ic(abs_return.iloc[25:], relative_volume.iloc[25:]) > 0.1


def test_some_tickers_list_late_delist_or_miss_days(full_demo):
    rows = full_demo.bars.groupby("ticker").size()
    n_sessions = len(full_demo.dates)
    assert (rows == n_sessions).mean() > 0.9
    assert (rows < n_sessions).sum() >= 15
    first = full_demo.bars.groupby("ticker")["date"].min()
    last = full_demo.bars.groupby("ticker")["date"].max()
    assert (first > full_demo.dates[0]).any() and (last < full_demo.dates[-1]).any()


def test_planted_score_has_population_ic_in_band_and_shuffled_is_zero(full_demo):
    score = planted_score(full_demo)
    forward = forward_log_return(to_panel(full_demo.bars, "close"))
    assert score.shape == forward.shape
    ic = rank_ic(score.iloc[:-5], forward.iloc[:-5])
    assert 0.03 <= ic <= 0.05
    rng = np.random.default_rng(0)
    shuffled = rng.permuted(score.iloc[:-5].to_numpy(), axis=1)  # a new order every date
    assert abs(rank_ic(shuffled, forward.iloc[:-5])) < 0.01


def _lagged_flow_features(market: MarketData, lag: int = 4) -> list[pd.DataFrame]:
    c, h, low, v = (to_panel(market.bars, k) for k in ("close", "high", "low", "vwap"))
    close_location = ((2 * c - h - low) / (h - low)).rolling(10).mean()
    vwap_distance = (c / v - 1).rolling(10).mean()
    momentum = np.log(c).diff(20)
    return [f.shift(lag).rank(axis=1, pct=True) - 0.5 for f in (close_location, vwap_distance,
                                                                momentum)]


def _fit_and_score(features, label, train, test) -> float:
    x_train = np.stack([f.iloc[train].to_numpy().ravel() for f in features], axis=1)
    y_train = label.iloc[train].to_numpy().ravel()
    ok = np.isfinite(x_train).all(axis=1) & np.isfinite(y_train)
    coef, *_ = np.linalg.lstsq(x_train[ok], y_train[ok], rcond=None)
    prediction = sum(w * f.iloc[test] for w, f in zip(coef, features))
    return rank_ic(prediction, label.iloc[test])


def test_signal_is_recoverable_from_lagged_ohlcv_and_not_from_shuffled_labels(full_demo):
    features = _lagged_flow_features(full_demo)
    forward = forward_log_return(to_panel(full_demo.bars, "close"))
    label = forward.rank(axis=1, pct=True) - 0.5
    n = len(label)
    train, test = slice(40, int(0.6 * n)), slice(int(0.6 * n) + 10, n - 5)  # purged gap
    assert 0.02 <= _fit_and_score(features, label, train, test) <= 0.06
    shuffled = pd.DataFrame(np.random.default_rng(1).permuted(label.to_numpy(), axis=1),
                            index=label.index, columns=label.columns)
    assert abs(_fit_and_score(features, shuffled, train, test)) < 0.01


def test_demo_source_implements_the_protocol_and_filters_dates():
    source = DemoSource(n_tickers=60, n_sessions=100, seed=5, end="2025-06-30")
    assert isinstance(source, DataSource) and source.name == "demo"
    everything = source.load(None, None, None)
    part = source.load(None, "2025-05-01", "2025-05-31")
    assert part.is_demo and part.dates.min() >= pd.Timestamp("2025-05-01")
    assert part.dates.max() <= pd.Timestamp("2025-05-31")
    expected = everything.bars[everything.bars["date"].between("2025-05-01", "2025-05-31")]
    pd.testing.assert_frame_equal(part.bars, expected.reset_index(drop=True))
    with pytest.raises(DataError, match="no sessions"):
        source.load(None, "2030-01-01", None)


def test_demo_source_subsets_default_tickers_and_names_other_universes():
    source = DemoSource(n_tickers=60, n_sessions=50, seed=5)
    subset = source.load(["dm0002", "DM0001"], None, None)
    assert subset.tickers == ["DM0001", "DM0002"]
    assert subset.reference["ticker"].tolist() == ["DM0001", "DM0002"]
    full = source.load(None, None, None)
    expected = full.bars[full.bars["ticker"].isin(["DM0001", "DM0002"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(subset.bars, expected)
    named = source.load(["aapl", "BRK-B", "MSFT"], None, None)
    assert named.tickers == ["AAPL", "BRK.B", "MSFT"] and named.is_demo
    assert named.reference["ticker"].tolist() == ["AAPL", "BRK.B", "MSFT"]


def test_planted_score_aligns_with_a_filtered_market():
    source = DemoSource(n_tickers=60, n_sessions=80, seed=9)
    full = planted_score(source.load(None, None, None))
    part_market = source.load(["DM0003", "DM0007"], "2025-11-01", None)
    part = planted_score(part_market)
    assert list(part.columns) == ["DM0003", "DM0007"]
    pd.testing.assert_frame_equal(part, full.loc[part.index, part.columns])
    assert part.notna().to_numpy().sum() == len(part_market.bars)


def test_planted_score_rejects_non_demo_data(small_demo):
    real = MarketData(bars=small_demo.bars, reference=small_demo.reference, source="csv")
    with pytest.raises(DataError, match="demo market"):
        planted_score(real)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_tickers": 0}, "n_tickers"),
        ({"n_sessions": 0}, "n_sessions"),
        ({"n_sessions": 100_000}, "only"),
        ({"tickers": ["AAPL", "FOO BAR"]}, "not a valid ticker"),
    ],
)
def test_invalid_demo_parameters_raise_data_error(kwargs, message):
    with pytest.raises(DataError, match=message):
        demo_market(**kwargs)
