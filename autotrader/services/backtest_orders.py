"""The trader's order sizing as the backtest's order rule (``bma_models.backtest.OrderRule``).

The backtest must trade the way the live trader would: the same lot rounding,
position cap, cash reserve and minimum order value. Those rules live in the
trader's pure engine (:func:`autotrader.engine.rebalance.rebalance_intents` and
the risk chain's :func:`autotrader.engine.risk.check_min_order_value`), so this
adapter calls them instead of re-implementing them; the research core cannot
import the trader, so the composition root (``bma run --backtest``, ``bma
backtest``) hands this object to :class:`bma_models.backtest.Backtest`.

What the live trader does that a daily replay does not: the market-hours,
order-count, daily-loss, stopped-out and correlation checks depend on the
trading day and live quotes; they are not applied here (docs/backtest.md,
"What is not simulated").
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from autotrader.config import Settings
from autotrader.domain.records import Position, Side
from autotrader.engine.limits import RiskLimits, SizingSettings
from autotrader.engine.rebalance import Recommendation, rebalance_intents
from autotrader.engine.risk import PortfolioSnapshot, RiskContext, check_min_order_value
from autotrader.services.session import trader_settings

__all__ = ["TraderOrderRule", "trader_order_rule"]

#: The risk context's clock: the minimum-order-value check does not read it.
_UNUSED_CLOCK = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class TraderOrderRule:
    """Target weights -> signed share orders, by the trader's sizing and minimum order value.

    Parameters
    ----------
    sizing : SizingSettings
        Lot rounding (``notional_round_lots``), position cap and cash reserve.
    limits : RiskLimits
        ``min_order_value_usd`` (a full exit is exempt, as in the trader).
    """

    def __init__(self, sizing: SizingSettings, limits: RiskLimits) -> None:
        self.sizing = sizing
        self.limits = limits

    def __repr__(self) -> str:
        return f"TraderOrderRule(sizing={self.sizing!r}, min_order_value_usd=" \
               f"{self.limits.min_order_value_usd})"

    def __call__(self, weights: pd.Series, equity: float, prices: pd.Series,
                 held: pd.Series) -> pd.Series:
        """Signed share orders per ticker (positive = buy); see ``bma_models.backtest.OrderRule``.

        Examples
        --------
        >>> rule = TraderOrderRule(SizingSettings(max_position_pct_of_equity=0.5,
        ...                                       cash_reserve_pct=0.0),
        ...                        RiskLimits(min_order_value_usd=100.0))
        >>> rule(pd.Series({"AAA": 0.5}), 10_000.0, pd.Series({"AAA": 10.0, "OLD": 20.0}),
        ...      pd.Series({"OLD": 3})).to_dict()
        {'OLD': -3, 'AAA': 500}
        """
        price = {t: float(p) for t, p in prices.items() if p > 0 and math.isfinite(p)}
        positive = weights[weights > 0].sort_values(ascending=False, kind="stable")
        recs = [Recommendation(rank=i + 1, ticker=str(t), sector="", score=0.0,
                               expected_return=0.0, weight=float(w),
                               last_close=price.get(t, math.nan), adv=math.nan)
                for i, (t, w) in enumerate(positive.items())]
        positions = {str(t): Position(str(t), int(q), price.get(t, 0.0))
                     for t, q in held.items() if q}
        intents = rebalance_intents(recs, positions, equity, price, self.sizing)
        ctx = RiskContext(now=_UNUSED_CLOCK, limits=self.limits,
                          portfolio=PortfolioSnapshot(equity=equity, cash=equity))
        orders = {i.symbol: i.quantity * (1 if i.side is Side.BUY else -1)
                  for i in intents if check_min_order_value(i, ctx) is None}
        return pd.Series(orders, dtype="int64")


def trader_order_rule(settings: Settings) -> TraderOrderRule:
    """Return the order rule of the configured trader (the same mapping the trader itself uses)."""
    trader = trader_settings(settings)
    return TraderOrderRule(trader.sizing, trader.risk)
