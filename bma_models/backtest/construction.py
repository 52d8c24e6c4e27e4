"""Portfolio construction on one rebalance date: the ONE call into the product's portfolio.

:func:`target_weights` is the only place where the backtest asks the product
for a portfolio, and it asks exactly what ``bma run`` asks for the live
recommendations: :func:`~bma_models.portfolio.score_expectations` (daily and
horizon expected returns, score percentiles) and
:func:`~bma_models.portfolio.plan_portfolio` with the trader's
:class:`~bma_models.rules.Rulebook` (tradability screens, position cap, sector
limit, the one cash reserve, the minimum order value, bracket entry caps) and
the ``research.portfolio`` settings (risk aversion, turnover penalty and cap,
ADV participation, ``top_n``). It hands over what the live system would have
at the close of the date -- the scores of that date, a risk model fitted on
returns up to it, the :func:`~bma_models.portfolio.market_snapshot` of the bars
up to it, and the simulated book as :class:`~bma_models.portfolio.Holdings`
(shares and cash) -- so the turnover penalty and cap act on the simulated
trades and the capital (ADV cap, minimum order) is the simulated equity.
"""

from __future__ import annotations

import logging

import pandas as pd

from bma_models.portfolio import Holdings, PortfolioPlan, plan_portfolio, score_expectations
from bma_models.rules import Rulebook
from bma_models.settings import PortfolioSettings

logger = logging.getLogger(__name__)

__all__ = ["BOOK_SOURCE", "target_weights"]

#: The ``source`` of the simulated book (``Holdings.source``, in the plan's notes)
BOOK_SOURCE = "backtest book"


def target_weights(scores: pd.Series, risk_model, snapshot: pd.DataFrame,
                   sectors: pd.Series | None, holdings: Holdings, *, rules: Rulebook,
                   settings: PortfolioSettings, horizon: int) -> PortfolioPlan:
    """Return the plan ``bma run`` would make on this date from this book.

    Parameters
    ----------
    scores : Series
        Ticker -> score of the date (higher is better).
    risk_model : FactorRiskModel
        Fitted point-in-time on returns up to the date.
    snapshot : DataFrame
        :func:`~bma_models.portfolio.market_snapshot` of the bars up to the date.
    sectors : Series or None
        Ticker -> sector.
    holdings : Holdings
        The simulated book (shares and cash; its equity is the capital).
    rules : Rulebook
        The trader's rules (``autotrader.config.trading_rules`` of the configuration).
    settings : PortfolioSettings
        ``research.portfolio``.
    horizon : int
        The label horizon (sessions) of the scores: the expected-alpha screen reads the
        expected return over it.

    Returns
    -------
    PortfolioPlan
        ``weights`` are target weights of equity (0 = not held).

    Raises
    ------
    bma_models.errors.InfeasibleError, bma_models.optimizer.OptimizationError,
    bma_models.errors.DataError
        No portfolio meets the rules on this date, or the book cannot be valued
        (the engine records it and keeps the book).
    """
    expect = score_expectations(scores, risk_model, settings.expected_ic, horizon)
    return plan_portfolio(expect.mu, expect.horizon_mu, expect.percentile, risk_model,
                          snapshot, sectors, rules=rules, settings=settings,
                          holdings=holdings)
