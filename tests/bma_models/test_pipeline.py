"""Bars -> regimes -> fused score -> risk model -> mu -> target weights, on seeded data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from bma_models.data.protocol import normalize_bars
from bma_models.optimizer import PortfolioOptimizer, expected_returns_from_scores
from bma_models.regime import RegimeFusion, detect_regimes, market_index
from bma_models.risk import FactorRiskModel, average_dollar_volume, risk_inputs_from_bars
from tests.bma_models._assets import simulate_market


def _protocol_bars(sim):
    close = pd.DataFrame(sim["prices"], index=sim["returns"].index,
                         columns=sim["returns"].columns)
    long = close.stack().rename("close").reset_index()
    long.columns = ["date", "ticker", "close"]
    volume = 1e5 + 1e3 * np.arange(len(long)) % 7e4
    bars = long.assign(open=long["close"], high=long["close"] * 1.01,
                       low=long["close"] * 0.99, vwap=long["close"], volume=volume)
    return normalize_bars(bars)


def test_research_outputs_flow_into_a_feasible_portfolio():
    sim = simulate_market(n_assets=60, n_dates=300, n_sectors=6, seed=3)
    bars = _protocol_bars(sim)
    tickers = sim["returns"].columns
    reference = pd.DataFrame({"ticker": tickers, "sector": sim["sectors"].to_numpy(),
                              "market_cap": np.nan, "shares_outstanding": sim["shares"]})
    regimes = detect_regimes(market_index(bars, reference))
    last = regimes.index[-1]
    idx = pd.MultiIndex.from_product([[last], tickers], names=["date", "ticker"])
    rng = np.random.default_rng(0)
    prediction = pd.Series(rng.normal(size=len(idx)), index=idx)
    factors = pd.DataFrame({"mom": rng.normal(size=len(idx)),
                            "rev": rng.normal(size=len(idx))}, index=idx)
    fusion = RegimeFusion(factor_categories={"mom": "momentum", "rev": "reversion"})
    fused = fusion.fuse(prediction, factors, regimes)
    model = clone(FactorRiskModel(lookback=200)).fit(**risk_inputs_from_bars(bars, reference))
    mu = expected_returns_from_scores(fused.xs(last, level="date"), model.total_volatility())
    optimizer = PortfolioOptimizer(max_position=0.05, sector_cap=0.3, top_n=40,
                                   max_turnover=1.0, capital=1e5)
    result = optimizer.optimize(mu, model, sectors=sim["sectors"],
                                adv=average_dollar_volume(bars))
    assert result.fallback is None
    assert result.weights.sum() == pytest.approx(0.97, abs=1e-6)
    assert result.variance == pytest.approx(model.portfolio_variance(result.weights), rel=1e-9)
    # the optimizer favours the names the fused score ranks highly
    top = mu.sort_values(ascending=False).index[:10]
    bottom = mu.sort_values().index[:10]
    assert result.weights.reindex(top).fillna(0).sum() > result.weights.reindex(
        bottom).fillna(0).sum()
