"""One decision cycle, pure: recommendations + book -> intents -> risk -> plans.

:func:`decide` is the whole "think" half of a trading cycle with no I/O; the
runner (:mod:`autotrader.services.trading`) does the "act" half (journal,
broker). Keeping it a single pure function makes the 500-name benchmark and
the whole-cycle tests independent of any broker.

Approved intents update the portfolio snapshot and the order counters as the
loop goes, so the tenth buy of a cycle is checked against the exposure the
first nine will add.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from autotrader.domain.records import Account, OrderIntent, OrderType, Position, Quote, Side
from autotrader.engine.correlation import ReturnHistory
from autotrader.engine.limits import PlannerSettings, RiskLimits, SizingSettings
from autotrader.engine.planner import MarketStats, OrderPlan, plan_order
from autotrader.engine.rebalance import Recommendation, rebalance_intents
from autotrader.engine.risk import (
    Denial,
    PortfolioSnapshot,
    RiskContext,
    TradingState,
    check_order,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BookState:
    """The account as the runner sees it at the start of a cycle.

    ``in_flight`` is symbol -> signed remaining quantity of working entry
    orders; ``open_order_keys`` their ``(symbol, side)``; ``exit_order_symbols``
    the symbols with a live protective stop or take-profit; ``stopped_out``
    the symbols whose stop filled today (no same-day re-entry).
    """

    account: Account
    positions: Mapping[str, Position]
    in_flight: Mapping[str, int] = field(default_factory=dict)
    open_order_keys: frozenset[tuple[str, str]] = frozenset()
    exit_order_symbols: frozenset[str] = frozenset()
    pending_buy_value: float = 0.0
    daily_orders: int = 0
    day_start_equity: float = float("nan")
    stopped_out: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    """The outcome for one intent: a plan to submit, or the denial that stopped it."""

    intent: OrderIntent
    plan: OrderPlan | None = None
    denial: Denial | None = None


@dataclass(frozen=True)
class CycleInputs:
    """Market inputs of a cycle: prices, per-symbol stats and fallbacks already applied."""

    quotes: Mapping[str, Quote]
    stats: Mapping[str, MarketStats]


def market_inputs(recommendations: Sequence[Recommendation], quotes: Mapping[str, Quote],
                  held: Sequence[str], default_atr_pct: float,
                  fallbacks: dict[str, int]) -> CycleInputs:
    """Fill price gaps from the run's ``last_close`` and ATR gaps from ``default_atr_pct``.

    Every gap filled is counted in ``fallbacks`` (key = what was substituted),
    so the health metrics show how much of a cycle ran on substitutes.
    """
    merged = dict(quotes)
    stats: dict[str, MarketStats] = {}
    for rec in recommendations:
        if rec.ticker not in merged and rec.last_close > 0:
            merged[rec.ticker] = Quote(rec.ticker, last=0.0, prev_close=rec.last_close)
            fallbacks["price_from_last_close"] = fallbacks.get("price_from_last_close", 0) + 1
        atr = rec.atr
        if not atr > 0:
            price = merged[rec.ticker].reference_price if rec.ticker in merged else rec.last_close
            atr = price * default_atr_pct
            fallbacks["atr_from_default_pct"] = fallbacks.get("atr_from_default_pct", 0) + 1
        stats[rec.ticker] = MarketStats(rec.ticker, adv_usd=rec.adv, atr=atr)
    for symbol in held:
        if symbol not in stats and symbol in merged:
            price = merged[symbol].reference_price
            stats[symbol] = MarketStats(symbol, adv_usd=math.nan, atr=price * default_atr_pct)
    return CycleInputs(merged, stats)


def _snapshot(book: BookState, prices: Mapping[str, float],
              sector_of: Mapping[str, str]) -> PortfolioSnapshot:
    values: dict[str, float] = {}
    sectors: dict[str, float] = {}
    for symbol, position in book.positions.items():
        value = position.quantity * prices.get(symbol, position.avg_cost)
        values[symbol] = value
        sector = sector_of.get(symbol, "Unknown")
        sectors[sector] = sectors.get(sector, 0.0) + value
    return PortfolioSnapshot(equity=book.account.equity, cash=book.account.cash,
                             position_values=values, sector_values=sectors,
                             pending_buy_value=book.pending_buy_value,
                             day_start_equity=book.day_start_equity)


def decide(
    recommendations: Sequence[Recommendation],
    book: BookState,
    inputs: CycleInputs,
    *,
    now: dt.datetime,
    market_open: bool | None,
    limits: RiskLimits,
    sizing: SizingSettings,
    planner: PlannerSettings,
    trading_state: TradingState = TradingState.ACTIVE,
    last_order_at: Mapping[str, dt.datetime] | None = None,
    returns: ReturnHistory | None = None,
    run_age_sessions: int | None = 0,
) -> list[Decision]:
    """Rebalance, run the risk chain and plan every intent of one cycle (sells first).

    ``run_age_sessions`` is the age of the run's data in NYSE sessions (None:
    unknown); the risk chain's ``run_age`` check compares it with
    ``limits.max_run_age_sessions``.

    A sell of a symbol that still has live exit orders is denied with check
    ``exit_orders_working``: the runner cancels those first, so the book never
    holds two live exit orders for one position.
    """
    prices = {s: q.reference_price for s, q in inputs.quotes.items()}
    sector_of = {r.ticker: r.sector for r in recommendations}
    intents = rebalance_intents(recommendations, book.positions, book.account.equity, prices,
                                sizing, book.in_flight)
    start = _snapshot(book, prices, sector_of)
    # The loop owns these copies and updates them in place as orders are approved (no
    # per-intent dict copies: the 500-name cycle stays within its time budget).
    values, sectors = dict(start.position_values), dict(start.sector_values)
    invested, cash = sum(values.values()), start.cash
    portfolio = replace(start, position_values=values, sector_values=sectors,
                        invested_value=invested)
    keys = set(book.open_order_keys)
    daily, cycle = book.daily_orders, 0
    decisions: list[Decision] = []
    for intent in intents:
        ctx = RiskContext(now, limits, portfolio, trading_state, market_open, daily, cycle,
                          keys, book.stopped_out, returns, run_age_sessions)
        denial = check_order(intent, ctx)
        if (denial is None and intent.side is Side.SELL
                and intent.symbol in book.exit_order_symbols):
            denial = Denial("exit_orders_working",
                            f"{intent.symbol} has live exit orders; cancelling them first")
        outcome: OrderPlan | None = None
        if denial is None:
            planned = plan_order(intent, inputs.quotes[intent.symbol],
                                 inputs.stats[intent.symbol], planner,
                                 equity=book.account.equity, now=now,
                                 last_order_at=last_order_at)
            if isinstance(planned, Denial):
                denial = planned
            elif (planned.order_type is OrderType.BRACKET
                    and intent.symbol in book.exit_order_symbols):
                # the position already has a stop: add to it as a plain limit order and let
                # the stop manager resize that stop, rather than creating a second one
                outcome = replace(planned, order_type=OrderType.LIMIT, take_profit_price=None,
                                  stop_price=None)
            else:
                outcome = planned
        if outcome is None:  # denied by a check or by the planner
            decisions.append(Decision(intent, denial=denial))
            continue
        decisions.append(Decision(intent, plan=outcome))
        daily, cycle = daily + 1, cycle + 1
        keys.add((intent.symbol, intent.side.value))
        value = outcome.quantity * intent.reference_price * intent.side.sign
        old = values.get(intent.symbol, 0.0)
        values[intent.symbol] = max(old + value, 0.0)
        invested += values[intent.symbol] - old
        sectors[intent.sector] = max(sectors.get(intent.sector, 0.0) + value, 0.0)
        cash -= max(value, 0.0)
        portfolio = replace(portfolio, cash=cash, invested_value=invested)
    return decisions


def decide_exit(
    symbol: str,
    book: BookState,
    inputs: CycleInputs,
    *,
    now: dt.datetime,
    market_open: bool | None,
    limits: RiskLimits,
    planner: PlannerSettings,
    trading_state: TradingState = TradingState.ACTIVE,
    last_order_at: Mapping[str, dt.datetime] | None = None,
    reason: str = "flatten",
) -> Decision:
    """Sell the whole position in ``symbol``: the trader's "flatten", through the same checks.

    The intent closes the position (net of working sells) and goes through the
    risk chain and the planner like a rebalance exit: the kill switch (HALTED
    refuses it, REDUCING lets it through), market hours, the order limits, a
    working order on the same side, live exit orders (cancel them first) and
    the planner's pricing. ``inputs`` must hold a quote and stats for ``symbol``.

    Raises
    ------
    KeyError
        ``symbol`` is not held, or has no quote in ``inputs``.
    """
    position = book.positions[symbol]
    quote = inputs.quotes[symbol]
    quantity = position.quantity + min(0, book.in_flight.get(symbol, 0))
    intent = OrderIntent(symbol, Side.SELL, max(quantity, 0), quote.reference_price,
                         reduces_position=True, closes_position=True, reason=reason)
    prices = {s: q.reference_price for s, q in inputs.quotes.items()}
    ctx = RiskContext(now, limits, _snapshot(book, prices, {}), trading_state, market_open,
                      book.daily_orders, 0, book.open_order_keys, book.stopped_out, None)
    denial = check_order(intent, ctx)
    if denial is None and intent.quantity <= 0:
        denial = Denial("nothing_to_sell", f"{symbol}: every share already has a working sell")
    if denial is None and symbol in book.exit_order_symbols:
        denial = Denial("exit_orders_working",
                        f"{symbol} has live exit orders; cancelling them first")
    if denial is not None:
        return Decision(intent, denial=denial)
    outcome = plan_order(intent, quote, inputs.stats[symbol], planner,
                         equity=book.account.equity, now=now, last_order_at=last_order_at)
    if isinstance(outcome, Denial):
        return Decision(intent, denial=outcome)
    return Decision(intent, plan=outcome)
