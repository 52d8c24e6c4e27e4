"""The strategy backtest: the whole product replayed over a run's out-of-sample span.

:class:`Backtest` (engine), :func:`target_weights` (the one call into the
product's portfolio construction: ``plan_portfolio`` with the trader's
rulebook), :mod:`~bma_models.backtest.costs` (IBKR commission, half spread,
square-root impact) and
:func:`backtest_metrics` (the ``backtest`` block of ``metrics.json``).
docs/backtest.md describes the conventions and the cost sources.
"""

from bma_models.backtest.construction import target_weights
from bma_models.backtest.costs import OrderCosts, order_costs
from bma_models.backtest.engine import (
    DAILY_COLUMNS,
    Backtest,
    BacktestError,
    BacktestResult,
    OrderRule,
    backtest_panels,
    rebalance_rows,
)
from bma_models.backtest.market import FILL_PRICES, MarketPanels
from bma_models.backtest.metrics import backtest_metrics, drawdown, performance, rolling_sharpe

__all__ = [
    "DAILY_COLUMNS",
    "FILL_PRICES",
    "Backtest",
    "BacktestError",
    "BacktestResult",
    "MarketPanels",
    "OrderCosts",
    "OrderRule",
    "backtest_metrics",
    "backtest_panels",
    "drawdown",
    "order_costs",
    "performance",
    "rebalance_rows",
    "rolling_sharpe",
    "target_weights",
]
