"""Fixtures of the backtest tests: a small demo market, score frames and a simple order rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.backtest import Backtest
from bma_models.data.demo import demo_market
from bma_models.data.protocol import to_panel
from bma_models.rules import Rulebook
from bma_models.settings import BacktestSettings, PortfolioSettings

#: First session (row) with scores: enough history before it for the risk model
FIRST_SCORED = 300
PORTFOLIO = PortfolioSettings(top_n=40)
#: The packaged rulebook (screens, 30 % sector limit, 5 % cash reserve, 1000 USD minimum
#: order) with a 5 % position cap: 80 names pass the screens in too few numbers for 3 %
RULES = Rulebook(max_position=0.05)
SETTINGS = BacktestSettings(rebalance_every=5, risk_refit_every=63)


class WholeShares:
    """A plain order rule: floor to whole shares, skip trades under ``min_order_value`` unless
    they close a position (the trader's rule has the same shape; it lives in autotrader)."""

    def __init__(self, min_order_value: float = 1000.0) -> None:
        self.min_order_value = min_order_value

    def __call__(self, weights, equity, prices, held):
        names = weights.index.union(held.index)
        px = prices.reindex(names)
        now = held.reindex(names).fillna(0.0)
        target = np.floor(weights.reindex(names).fillna(0.0) * equity / px)
        target = target.where(px > 0, now)
        delta = target - now
        closes = (target == 0) & (now > 0)
        keep = (delta != 0) & ((delta.abs() * px >= self.min_order_value) | closes)
        return delta[keep].astype("int64")


def scores_frame(panel: pd.DataFrame, first_row: int = FIRST_SCORED) -> pd.DataFrame:
    """A ``predictions_oos``-like frame (``(date, ticker)`` index) of a dates x tickers panel."""
    long = panel.iloc[first_row:].stack().rename("fused").to_frame()
    long.index.names = ["date", "ticker"]
    return long


def random_scores(market, seed: int, first_row: int = FIRST_SCORED) -> pd.DataFrame:
    present = to_panel(market.bars, "close").notna()
    rng = np.random.default_rng(seed)
    values = pd.DataFrame(rng.standard_normal(present.shape), index=present.index,
                          columns=present.columns).where(present)
    return scores_frame(values, first_row)


def foresight_scores(market, horizon: int = 5, first_row: int = FIRST_SCORED) -> pd.DataFrame:
    """The return a position bought at the next open and held ``horizon`` sessions earns."""
    open_, close = to_panel(market.bars, "open"), to_panel(market.bars, "close")
    realised = close.shift(-horizon) / open_.shift(-1) - 1.0
    return scores_frame(realised.where(close.notna()), first_row)


def run(market, scores, settings: BacktestSettings = SETTINGS,
        portfolio: PortfolioSettings = PORTFOLIO, rule=None, rules: Rulebook = RULES):
    return Backtest(settings, portfolio, rules, rule or WholeShares()).run(market, scores)


@pytest.fixture(scope="session")
def bt_market():
    return demo_market(n_tickers=80, n_sessions=560, seed=5)


@pytest.fixture(scope="session")
def bt_scores(bt_market):
    return random_scores(bt_market, seed=1)


@pytest.fixture(scope="session")
def bt_result(bt_market, bt_scores):
    return run(bt_market, bt_scores)
