"""Performance statistics of a backtest and of its equal-weight benchmark.

Conventions (docs/backtest.md, "Metrics"): daily simple returns of the equity
curve; 252 sessions a year; no risk-free rate (Sharpe and Sortino are of the
raw returns); drawdowns are negative fractions; turnover and cost drag are
per session sums of traded value (buys plus sells) and costs over the previous
session's equity, annualised by ``252 / sessions``. A holding period runs from
one rebalance's fills to the next's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ANNUAL_SESSIONS", "backtest_metrics", "drawdown", "performance", "rolling_sharpe"]

ANNUAL_SESSIONS = 252


def performance(equity: pd.Series, period_ends: pd.DatetimeIndex | None = None
                ) -> dict[str, float | None]:
    """Return, risk and drawdown statistics of an equity curve.

    Parameters
    ----------
    equity : Series
        Daily equity (first value = the starting capital).
    period_ends : DatetimeIndex, optional
        Dates where holding periods end (for ``hit_rate``: the share of periods
        with a positive return); None: every session.

    Examples
    --------
    >>> eq = pd.Series([100.0, 110.0, 99.0, 121.0],
    ...                index=pd.bdate_range("2024-01-01", periods=4))
    >>> stats = performance(eq)
    >>> round(stats["max_drawdown"], 4), round(stats["hit_rate"], 4)
    (-0.1, 0.6667)
    """
    returns = equity.pct_change().iloc[1:]
    n = len(returns)
    if n == 0:
        return dict.fromkeys(("annual_return", "annual_vol", "sharpe", "sortino",
                              "max_drawdown", "calmar", "hit_rate", "total_return"))
    total = equity.iloc[-1] / equity.iloc[0]
    annual_return = total ** (ANNUAL_SESSIONS / n) - 1.0 if total > 0 else -1.0
    std = returns.std(ddof=1) if n > 1 else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns.to_numpy(), 0.0) ** 2)))
    mdd = float(drawdown(equity).min())
    return {
        "annual_return": _num(annual_return),
        "annual_vol": _num(std * math.sqrt(ANNUAL_SESSIONS)),
        "sharpe": _ratio(returns.mean(), std),
        "sortino": _ratio(returns.mean(), downside),
        "max_drawdown": _num(mdd),
        "calmar": _num(annual_return / abs(mdd)) if mdd < 0 else None,
        "hit_rate": _hit_rate(equity, period_ends),
        "total_return": _num(total - 1.0),
    }


def drawdown(equity: pd.Series) -> pd.Series:
    """``equity / running peak - 1`` (0 at a new high, negative below it)."""
    return equity / equity.cummax() - 1.0


def rolling_sharpe(equity: pd.Series, window: int = ANNUAL_SESSIONS) -> pd.Series:
    """Annualised Sharpe ratio of the trailing ``window`` daily returns (NaN before)."""
    returns = equity.pct_change()
    roll = returns.rolling(window, min_periods=window)
    return roll.mean() / roll.std() * math.sqrt(ANNUAL_SESSIONS)


def backtest_metrics(result) -> dict[str, Any]:
    """Return the ``backtest`` block of ``metrics.json`` from a :class:`BacktestResult`.

    Strategy statistics (:func:`performance` plus turnover, cost drag and the
    rebalance counts), ``benchmark`` (the same statistics of the equal-weight
    universe, no costs), ``tracking_error`` and ``information_ratio`` of the
    daily excess return over the benchmark.
    """
    daily = result.daily
    equity, bench = daily["equity"], daily["benchmark_equity"]
    n = max(len(daily) - 1, 1)
    fills = pd.DatetimeIndex(result.trades["date"].unique()) if len(result.trades) else None
    period_ends = None if fills is None else fills[1:].append(daily.index[-1:])
    stats = performance(equity, period_ends)
    excess = (equity.pct_change() - bench.pct_change()).iloc[1:]
    te = excess.std(ddof=1) * math.sqrt(ANNUAL_SESSIONS) if len(excess) > 1 else math.nan
    orders = result.rebalances["n_orders"]
    failed = result.rebalances["error"].astype(bool)
    costs = daily[["commission", "spread_cost", "impact_cost"]].sum()
    return {
        **stats,
        "turnover_annual": _num(daily["turnover"].iloc[1:].sum() * ANNUAL_SESSIONS / n),
        "cost_drag_annual": _num((daily["costs"] / daily["equity"].shift(1)).iloc[1:].sum()
                                 * ANNUAL_SESSIONS / n),
        "n_rebalances": int((~failed).sum()),
        "n_rebalances_failed": int(failed.sum()),
        "benchmark": performance(bench, period_ends),
        "tracking_error": _num(te),
        "information_ratio": _ratio(excess.mean(), excess.std(ddof=1)),
        "initial_capital": _num(result.initial_capital),
        "final_equity": _num(equity.iloc[-1]),
        "total_costs": _num(costs.sum()),
        "costs_usd": {"commission": _num(costs["commission"]),
                      "spread": _num(costs["spread_cost"]),
                      "impact": _num(costs["impact_cost"])},
        "n_sessions": int(len(daily)),
        "n_trades": int(len(result.trades)),
        "orders_per_rebalance_max": int(orders.max()) if len(orders) else 0,
        "orders_per_rebalance_median": _num(orders[~failed].median()) if (~failed).any()
        else None,
        "refused_per_rebalance_median": _num(result.rebalances.loc[~failed, "n_refused"]
                                             .median()) if (~failed).any() else None,
        "mean_holdings": _num(daily["holdings_count"].iloc[1:].mean()),
        "mean_gross_exposure": _num(daily["gross_exposure"].iloc[1:].mean()),
        "min_cash": _num(daily["cash"].min()),
        "start": str(daily.index[0].date()), "end": str(daily.index[-1].date()),
    }


def _ratio(mean: float, std: float) -> float | None:
    if not (std > 0) or not math.isfinite(std):
        return None
    return _num(mean / std * math.sqrt(ANNUAL_SESSIONS))


def _hit_rate(equity: pd.Series, period_ends: pd.DatetimeIndex | None) -> float | None:
    ends = equity if period_ends is None else equity.reindex(
        equity.index[equity.index.isin(period_ends)])
    if period_ends is not None:
        ends = pd.concat([equity.iloc[:1], ends])
    returns = ends.pct_change().iloc[1:]
    return _num((returns > 0).mean()) if len(returns) else None


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
