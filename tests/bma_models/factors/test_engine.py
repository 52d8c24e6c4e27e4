"""Factor values: hand-computed cases, the pandas reference, halts, chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.factors import compare, pandas_factors
from bma_models.errors import DataError, SettingsError
from bma_models.factors import FACTORS, compute_factors


def _one_ticker(close, **columns):
    n = len(close)
    data = {"date": pd.bdate_range("2024-01-01", periods=n), "ticker": "AAA",
            "open": close, "high": close, "low": close, "close": close,
            "volume": 1000.0, "vwap": close}
    data.update(columns)
    return pd.DataFrame(data)


def test_momentum_and_ma_ratio_hand_computed():
    bars = _one_ticker(np.arange(1.0, 13.0))
    out = compute_factors(bars, specs=["mom_5", "ma_ratio_5", "mom_20_skip5", "reversal_1"])
    last = out.iloc[-1]
    assert last["mom_5"] == pytest.approx(12 / 7 - 1)
    assert last["ma_ratio_5"] == pytest.approx(12 / 10 - 1)  # mean(8..12) = 10
    assert last["reversal_1"] == pytest.approx(-(12 / 11 - 1))
    assert np.isnan(last["mom_20_skip5"])  # 12 sessions < 20: still warming up
    assert out["mom_5"].isna().sum() == 5


def test_rsi_and_band_position_hand_computed():
    close = np.array([10, 11, 10, 12, 11, 13, 12, 14, 13, 15, 14, 16, 15, 17, 16.0])
    bars = _one_ticker(close, high=close + 1, low=close - 1)
    out = compute_factors(bars, specs=["rsi_14", "hl_pos_20"])
    changes = np.diff(close)
    gains, losses = changes[changes > 0].sum(), -changes[changes < 0].sum()
    assert out["rsi_14"].iloc[-1] == pytest.approx(100 * gains / (gains + losses))
    assert out["rsi_14"].iloc[:-1].isna().all()
    assert out["hl_pos_20"].isna().all()


def test_bar_shape_factors_hand_computed():
    bars = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-03"]),
        "ticker": ["AAA", "AAA", "BBB"], "open": [10.0, 10.5, 5.0],
        "high": [11.0, 12.0, 5.0], "low": [9.0, 10.0, 5.0], "close": [10.0, 11.0, 5.0],
        "volume": [100.0, 200.0, 0.0], "vwap": [10.0, 10.0, 5.0],
    })
    out = compute_factors(bars, specs=["overnight_gap", "intraday_range", "clv",
                                       "vwap_distance"])
    aaa = out.loc[(pd.Timestamp("2024-01-03"), "AAA")]
    assert aaa["overnight_gap"] == pytest.approx(0.05)
    assert aaa["intraday_range"] == pytest.approx(2 / 11)
    assert aaa["clv"] == pytest.approx((1 - 1) / 2)
    assert aaa["vwap_distance"] == pytest.approx(0.1)
    assert out.loc[(pd.Timestamp("2024-01-03"), "BBB"), "clv"] == 0.0  # flat bar: neutral


def test_liquidity_factors_use_shares_and_dollar_volume():
    close = np.linspace(10, 12, 25)
    bars = _one_ticker(close, volume=np.full(25, 1000.0))
    ref = pd.DataFrame({"ticker": ["AAA"], "shares_outstanding": [1e5]})
    out = compute_factors(bars, ref, specs=["turnover_20", "adv_20", "amihud_20"])
    assert out["turnover_20"].iloc[-1] == pytest.approx(0.01)
    assert out["adv_20"].iloc[-1] == pytest.approx(np.log1p(np.mean(close[-20:] * 1000)))
    r = close[-20:] / close[-21:-1] - 1
    assert out["amihud_20"].iloc[-1] == pytest.approx(np.mean(r / (close[-20:] * 1000)) * 1e6)
    assert compute_factors(bars, None, specs=["turnover_20"])["turnover_20"].isna().all()


def test_engine_matches_pandas_reference_with_halts(market_with_halts):
    bars, reference = market_with_halts
    ours = compute_factors(bars, reference)
    figures = compare(ours, pandas_factors(bars, reference))
    assert figures["equal"], figures
    assert figures["values_compared"] > 0.5 * ours.size


def test_a_halt_blanks_every_window_that_contains_it():
    bars = _one_ticker(np.linspace(10, 20, 40))
    halted = bars.drop(index=30)  # no bar on session 30
    other = _one_ticker(np.linspace(5, 6, 40)).assign(ticker="BBB")
    out = compute_factors(pd.concat([halted, other]), specs=["ma_ratio_5", "mom_5"])
    aaa = out.xs("AAA", level="ticker")
    dates = bars["date"]
    assert dates[30] not in aaa.index
    assert aaa.loc[dates[31:35], "ma_ratio_5"].isna().all()  # windows 27..35 hold session 30
    assert aaa.loc[dates[35:], "ma_ratio_5"].notna().all()
    assert aaa.loc[dates[35], "mom_5"] != aaa.loc[dates[35], "mom_5"]  # reads session 30
    assert aaa.loc[dates[36], "mom_5"] == pytest.approx(bars["close"][36] / bars["close"][31] - 1)


def test_output_index_is_the_bars_rows_sorted(market_with_halts):
    bars, reference = market_with_halts
    shuffled = bars.sample(frac=1.0, random_state=0)
    out = compute_factors(shuffled, reference)
    expected = pd.MultiIndex.from_frame(bars[["date", "ticker"]]).sort_values()
    assert out.index.equals(expected)
    assert list(out.columns) == list(FACTORS)
    assert (out.dtypes == np.float64).all()


@pytest.mark.parametrize(("n_jobs", "chunk_cells"), [(1, 1), (2, 50), (2, 10**9)])
def test_chunking_and_threads_do_not_change_values(market_with_halts, n_jobs, chunk_cells):
    bars, reference = market_with_halts
    expected = compute_factors(bars, reference)
    out = compute_factors(bars, reference, n_jobs=n_jobs, chunk_cells=chunk_cells)
    pd.testing.assert_frame_equal(out, expected, check_exact=True)


def test_no_factor_reads_a_raw_price_level(market):
    # stationary by construction: scaling every price and volume leaves
    # price-free factors unchanged (ADV only shifts by a constant log)
    bars, reference = market
    scaled = bars.assign(**{c: bars[c] * 7.0 for c in ("open", "high", "low", "close",
                                                         "vwap")})
    a, b = compute_factors(bars, reference), compute_factors(scaled, reference)
    scale_free = [c for c in a.columns if not c.startswith(("adv_", "amihud_"))]
    pd.testing.assert_frame_equal(a[scale_free], b[scale_free], rtol=1e-9)
    np.testing.assert_allclose((b["adv_20"] - a["adv_20"]).dropna(), np.log(7.0), rtol=1e-6)


def test_duplicate_bars_and_bad_selection_are_rejected(market):
    bars, _ = market
    with pytest.raises(DataError, match="duplicated"):
        compute_factors(pd.concat([bars, bars.iloc[:1]]))
    with pytest.raises(DataError, match="missing columns"):
        compute_factors(bars.drop(columns="vwap"))
    with pytest.raises(SettingsError, match="unknown factor"):
        compute_factors(bars, specs=["mom_7"])
    with pytest.raises(SettingsError, match="duplicated"):
        compute_factors(bars, specs=["mom_5", "mom_5"])
