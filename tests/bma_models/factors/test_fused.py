"""The fused numba kernel against the numpy library functions it replaces."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from bma_models.factors import (
    DEFAULT_FACTOR_SET,
    FACTORS,
    FactorSpec,
    compute_factors,
    factor_specs_from_config,
    library,
)
from bma_models.panel import build_panel
from tests.bma_models._market import random_walk_bars

ODD_WINDOWS = {
    "ma_ratio": {"windows": [1, 2, 7, 130]},
    "volatility": {"windows": [2, 3, 13]},
    "rsi": {"windows": [1, 5]},
    "high_low_position": {"windows": [1, 2, 3, 17]},
    "momentum": {"windows": [1, 3, 119, 120, 200]},
    "momentum_skip": {"windows": [3, 30], "skip": 2},
    "reversal": {"windows": [2]},
    "volume_trend": {"windows": [9], "short": 4},
    "average_dollar_volume": {"windows": [1, 6]},
    "amihud": {"windows": [3]},
    "atr_ratio": {"windows": [1, 5]},
    "turnover": {"windows": [4]},
}


def _awkward_market():
    # halts, a long halt, a flat stretch, zero volume and a late listing
    bars, reference = random_walk_bars(n_tickers=8, n_sessions=120, seed=3, missing=0.05)
    dates = np.sort(bars["date"].unique())
    t1 = (bars["ticker"] == "T01") & bars["date"].isin(dates[30:95])
    bars = bars[~t1].copy()
    flat = (bars["ticker"] == "T02") & bars["date"].isin(dates[50:80])
    bars.loc[flat, ["open", "high", "low", "close", "vwap"]] = 25.0
    bars.loc[(bars["ticker"] == "T03") & bars["date"].isin(dates[::7]), "volume"] = 0.0
    bars = bars[~((bars["ticker"] == "T04") & bars["date"].isin(dates[:40]))]
    return bars.reset_index(drop=True), reference


def _library_values(bars, reference, specs):
    # the definition: each library function on the whole panel, at the bar cells
    panel = build_panel(bars, reference)
    columns = {spec.name: spec.compute(panel)[panel.has_bar] for spec in specs}
    return pd.DataFrame(columns)


@pytest.mark.parametrize("windows", [{}, ODD_WINDOWS], ids=["defaults", "odd_windows"])
def test_fused_kernel_equals_the_library_functions(windows):
    bars, reference = _awkward_market()
    # the packaged factor set with some families' windows replaced
    families = {**DEFAULT_FACTOR_SET.to_config()["factors"], **windows}
    specs = list(factor_specs_from_config({"factors": families}).values())
    ours = compute_factors(bars, reference, specs)
    expected = _library_values(bars, reference, specs)
    assert list(ours.columns) == list(expected.columns)
    a, b = ours.to_numpy(), expected.to_numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    scale = np.maximum(1.0, np.abs(np.nan_to_num(b)))
    assert np.nanmax(np.abs(a - b) / scale) < 1e-11
    assert np.isfinite(a).mean() > 0.3


def test_a_spec_outside_the_registry_runs_on_the_numpy_tiles(market_with_halts, caplog):
    bars, reference = market_with_halts

    def doubled_momentum(panel, window):
        return 2.0 * library.momentum(panel, window)

    spec = FactorSpec("double_mom_3", doubled_momentum, {"window": 3}, lookback=4)
    with caplog.at_level(logging.DEBUG, logger="bma_models.factors.engine"):
        out = compute_factors(bars, reference, [spec, "mom_5"])
    assert "numpy tiles" in caplog.text
    expected = _library_values(bars, reference, [spec, FACTORS["mom_5"]])
    np.testing.assert_array_equal(out.to_numpy(), expected.to_numpy())


def test_values_after_a_halt_longer_than_every_window_forget_the_past():
    # running sums restart at exactly zero once their window holds no bar
    bars, reference = random_walk_bars(n_tickers=3, n_sessions=260, seed=5)
    dates = np.sort(bars["date"].unique())
    halted = bars["date"].isin(dates[100:170]) & (bars["ticker"] == "T00")
    bars = bars[~halted]
    spike = (bars["ticker"] == "T00") & (bars["date"] == dates[20])
    bars.loc[spike, "volume"] = 1e15  # a huge value long before the halt
    after = bars[bars["date"] >= dates[170]]
    full = compute_factors(bars, reference).xs("T00", level="ticker")
    fresh = compute_factors(after, reference).xs("T00", level="ticker")
    late = dates[170 + 61 :]
    pd.testing.assert_frame_equal(full.loc[late], fresh.loc[late], check_exact=True)


def test_compensated_sums_keep_small_windows_exact_after_a_huge_value():
    # plain Kahan keeps a residue of ~ulp(1e17) = 16 here: 3e-6 relative on a 20-day sum
    close = np.full(300, 10.0)
    volume = np.full(300, 1000.0) + np.arange(300) % 3
    volume[5] = 1e17  # a bad print (the demo market has one), long out of the window
    n = len(close)
    bars = pd.DataFrame({"date": pd.bdate_range("2024-01-01", periods=n), "ticker": "AAA",
                         "open": close, "high": close, "low": close, "close": close,
                         "volume": volume, "vwap": close})
    out = compute_factors(bars, specs=["volume_trend_20", "adv_20"]).iloc[-1]
    expected = volume[-5:].mean() / volume[-20:].mean() - 1
    assert out["volume_trend_20"] == pytest.approx(expected, rel=1e-13, abs=1e-15)
    assert out["adv_20"] == pytest.approx(np.log1p(np.mean(close[-20:] * volume[-20:])),
                                          rel=1e-14)
