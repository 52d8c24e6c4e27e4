"""The Trading tab's tables as plain rows: positions with prices and P&L, orders, fills, gaps.

Pure (no tkinter), so every figure a trader reads is unit-tested:

* market value = quantity x last price (the previous close when there is no
  last, the average cost when there is neither: then the price column says so);
* unrealised P&L = quantity x (price - average cost);
* daily P&L = quantity x (price - previous close): the move since yesterday's
  close of the shares held now (a position bought today counts from the close
  too, as the broker's daily P&L does before its first night);
* weight = market value / equity; planned weight from the plan-versus-book
  status of the last cycle (:mod:`autotrader.services.plan_view`, the
  document ``autotrader status`` prints); ``-`` when there is none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autotrader.domain.orders import Order
from autotrader.domain.records import Account, Fill, Position, Quote
from autotrader.services.market_session import NEW_YORK
from autotrader.services.plan_view import PlanView

__all__ = ["POSITION_COLUMNS", "BookFigures", "book_figures", "money", "order_rows",
           "pct", "position_rows", "signed"]

POSITION_COLUMNS = ("symbol", "qty", "avg_cost", "last", "market_value", "unrealised",
                    "day_pnl", "weight", "planned")
ORDER_COLUMNS = ("order_ref", "symbol", "side", "qty", "type", "limit", "stop", "status",
                 "filled")


@dataclass(frozen=True)
class BookFigures:
    """Account totals for the tiles above the tables (NaN when unknown)."""

    equity: float
    cash: float
    invested: float
    unrealised: float
    day_pnl: float
    positions: int
    open_orders: int


def money(value: float | None, digits: int = 2) -> str:
    """``12,345.67`` (``-`` when unknown).

    Examples
    --------
    >>> money(12345.678), money(float("nan")), money(None)
    ('12,345.68', '-', '-')
    """
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def signed(value: float | None) -> str:
    """``+1,234.50`` / ``-12.00`` (``-`` when unknown)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value if abs(value) >= 0.005 else 0.0:+,.2f}"


def pct(value: float | None, digits: int = 2) -> str:
    """``3.10%`` of a fraction (``-`` when unknown)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}%}"


def _price(position: Position, quote: Quote | None) -> tuple[float, float]:
    # (price, previous close): last, else previous close, else the average cost
    if quote is None:
        return position.avg_cost, math.nan
    return (quote.reference_price if quote.reference_price > 0 else position.avg_cost,
            quote.prev_close if quote.prev_close > 0 else math.nan)


def position_rows(positions: Sequence[Position], quotes: Mapping[str, Quote],
                  account: Account | None, plan: PlanView | None) -> list[tuple]:
    """One row per held name (biggest first), then per planned name not held (by weight).

    Examples
    --------
    >>> rows = position_rows([Position("AAA", 10, 90.0)],
    ...                      {"AAA": Quote("AAA", last=100.0, prev_close=95.0)},
    ...                      Account(equity=2000.0, cash=1000.0), None)
    >>> rows[0]
    ('AAA', 10, '90.00', '100.00', '1,000.00', '+100.00', '+50.00', '50.00%', '-')
    """
    equity = account.equity if account is not None and account.equity > 0 else math.nan
    known = plan is not None and bool(plan.run_id)  # a status to read the plan from
    planned = dict(plan.planned) if known and plan is not None else {}
    rows = []
    for position in positions:
        price, prev = _price(position, quotes.get(position.symbol))
        value = position.quantity * price
        rows.append(((0, -value), (
            position.symbol, position.quantity, money(position.avg_cost), money(price),
            money(value), signed(position.quantity * (price - position.avg_cost)),
            signed(position.quantity * (price - prev)), pct(value / equity),
            pct(planned[position.symbol]) if position.symbol in planned else
            ("0.00%" if known else "-"))))
    held = {p.symbol for p in positions}
    for symbol, weight in planned.items():  # planned names not held yet
        if symbol not in held:
            rows.append(((1, -weight), (symbol, 0, "-", "-", "0.00", "-", "-", "0.00%",
                                        pct(weight))))
    rows.sort(key=lambda item: (item[0], item[1][0]))  # held by value, then planned by weight
    return [row for _, row in rows]


def book_figures(positions: Sequence[Position], quotes: Mapping[str, Quote],
                 account: Account | None, open_orders: int) -> BookFigures:
    """Equity, cash, invested fraction and the P&L totals of the book."""
    unrealised = day = invested = 0.0
    for position in positions:
        price, prev = _price(position, quotes.get(position.symbol))
        invested += position.quantity * price
        unrealised += position.quantity * (price - position.avg_cost)
        day += position.quantity * (price - prev) if math.isfinite(prev) else 0.0
    equity = account.equity if account is not None else math.nan
    cash = account.cash if account is not None else math.nan
    return BookFigures(equity, cash, invested / equity if equity and equity > 0 else math.nan,
                       unrealised, day, len(positions), open_orders)


def order_rows(orders: Sequence[Order]) -> list[tuple]:
    """Working orders in :data:`ORDER_COLUMNS` order (prices formatted, "-" when none)."""
    return [(o.order_ref, o.symbol, o.side.value, o.quantity, o.order_type.value,
             money(o.limit_price) if o.limit_price else "-",
             money(o.stop_price) if o.stop_price else "-", o.status, o.filled_qty)
            for o in orders]


def fill_rows(fills: Sequence[Fill]) -> list[tuple]:
    """Recent fills, newest first, timed on the exchange clock (New York).

    Examples
    --------
    >>> import datetime as dt
    >>> from autotrader.domain.records import Side
    >>> at = dt.datetime(2025, 7, 1, 14, 15, tzinfo=dt.timezone.utc)
    >>> fill_rows([Fill("e1", "r1", "AAA", Side.BUY, 10, 12.5, time=at)])[0][:3]
    ('07-01 10:15', 'AAA', 'BUY')
    """
    return [(f.time.astimezone(NEW_YORK).strftime("%m-%d %H:%M") if f.time else "",
             f.symbol, f.side.value, f.quantity, money(f.price), f.order_ref)
            for f in reversed(fills)]
