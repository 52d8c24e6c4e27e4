"""Execution planner: screen an approved intent and price it (pure).

Entries (position-increasing buys) are throttled (one order per symbol per
``min_seconds_between_orders``) and screened on liquidity (average dollar
volume), spread, ATR volatility bucket and expected alpha; exits are never
throttled or screened, only priced, because refusing an exit on liquidity grounds leaves the
risk in the book. The limit price sits around the last price (previous close
when there is no last) and moves towards the market with the signal's
confidence: a confident buy may pay up to ``max_limit_offset_bps`` above the
reference, a weak one bids at the reference. Buys round down to the tick and
sells round up, so rounding never makes an order more aggressive than planned.

The liquidity, volatility and expected-alpha screens are the functions of
:mod:`bma_models.rules`: research refuses the same names with the same
function before they ever reach a plan. The spread screen needs a live quote
and is the trader's alone. ``sizing.per_trade_risk_pct`` cuts bracket entries
only (the other order types carry no stop at entry).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

from autotrader.domain.records import OrderIntent, OrderType, Quote, Side
from autotrader.engine.limits import PlannerSettings
from autotrader.engine.risk import Denial
from autotrader.engine.ticks import round_to_tick
from bma_models import rules


@dataclass(frozen=True)
class MarketStats:
    """Per-symbol statistics the screens use (NaN when unknown)."""

    symbol: str
    adv_usd: float
    atr: float
    spread_bps: float = float("nan")


@dataclass(frozen=True)
class OrderPlan:
    """What to send: side, quantity, type, and the prices of a limit or bracket order."""

    intent: OrderIntent
    quantity: int
    order_type: OrderType
    limit_price: float | None = None
    take_profit_price: float | None = None
    stop_price: float | None = None

    @property
    def symbol(self) -> str:
        """The intent's symbol."""
        return self.intent.symbol

    @property
    def side(self) -> Side:
        """The intent's side."""
        return self.intent.side


def volatility_bucket(atr: float, price: float, settings: PlannerSettings) -> str:
    """'low', 'medium' or 'high' from ATR as a fraction of price ('unknown' if NaN)."""
    low, medium = settings.volatility_buckets
    return rules.volatility_bucket(atr, price, low, medium)


def quote_spread_bps(quote: Quote) -> float:
    """Bid-ask spread in basis points of the mid, NaN without a two-sided quote."""
    if not (quote.bid > 0 and quote.ask >= quote.bid):
        return float("nan")
    mid = 0.5 * (quote.bid + quote.ask)
    return (quote.ask - quote.bid) / mid * 1e4


def screen_entry(intent: OrderIntent, quote: Quote, stats: MarketStats,
                 settings: PlannerSettings) -> Denial | None:
    """Liquidity, spread, volatility and alpha screens for an entry; None when it passes."""
    denial = rules.liquidity(stats.adv_usd, settings.min_adv_usd)
    if denial is not None:
        return denial
    spread = quote_spread_bps(quote)
    if math.isnan(spread):
        spread = stats.spread_bps
    if spread > settings.max_spread_bps:
        return Denial("spread", f"spread {spread:.1f} bps above {settings.max_spread_bps}")
    low, medium = settings.volatility_buckets
    return (rules.volatility(stats.atr, quote.reference_price, low, medium,
                             settings.allowed_volatility_buckets)
            or rules.expected_alpha(intent.expected_return, settings.min_expected_alpha_bps))


def limit_price(side: Side, reference: float, confidence: float, max_offset_bps: float) -> float:
    """Move ``reference`` towards the market by ``confidence * max_offset_bps``, tick-rounded.

    ``confidence`` is clipped to [0, 1]; a buy limit rounds down, a sell limit up.

    Examples
    --------
    >>> limit_price(Side.BUY, 100.0, 1.0, 20.0), limit_price(Side.SELL, 100.0, 0.5, 20.0)
    (100.2, 99.9)
    """
    offset = min(max(confidence, 0.0), 1.0) * max_offset_bps / 1e4
    if side is Side.BUY:
        return round_to_tick(reference * (1.0 + offset), "down")
    return round_to_tick(reference * (1.0 - offset), "up")


def _throttled(symbol: str, now: dt.datetime, last_order_at: Mapping[str, dt.datetime],
               settings: PlannerSettings) -> Denial | None:
    last = last_order_at.get(symbol)
    if last is None:
        return None
    age = (now - last).total_seconds()
    if age < settings.min_seconds_between_orders:
        return Denial("throttle", f"last order on {symbol} {age:.0f}s ago "
                                  f"(< {settings.min_seconds_between_orders:.0f}s)")
    return None


def plan_order(
    intent: OrderIntent,
    quote: Quote,
    stats: MarketStats,
    settings: PlannerSettings,
    *,
    equity: float,
    now: dt.datetime,
    last_order_at: Mapping[str, dt.datetime] | None = None,
) -> OrderPlan | Denial:
    """Screen, throttle and price one intent.

    Returns an :class:`OrderPlan` or the :class:`Denial` of the screen that
    refused it. A bracket (entries only) gets a take-profit at
    ``limit + take_profit_atr_multiple * ATR`` and a stop at
    ``limit - stop_atr_multiple * ATR``; its quantity is capped so that hitting
    the stop loses at most ``per_trade_risk_pct`` of equity.
    """
    if not intent.reduces_position:
        denial = (_throttled(intent.symbol, now, last_order_at or {}, settings)
                  or screen_entry(intent, quote, stats, settings))
        if denial is not None:
            return denial
    reference = quote.reference_price
    if not reference > 0:
        return Denial("no_price", f"no positive last or previous close for {intent.symbol}")
    kind = settings.order_type.lower()
    if kind == "market":
        return OrderPlan(intent, intent.quantity, OrderType.MARKET)
    price = limit_price(intent.side, reference, intent.confidence, settings.max_limit_offset_bps)
    if kind == "limit" or intent.side is Side.SELL:
        return OrderPlan(intent, intent.quantity, OrderType.LIMIT, limit_price=price)
    if kind != "bracket":
        raise ValueError(f"order_type must be market, limit or bracket, not {kind!r}")
    return _bracket(intent, price, stats.atr, settings, equity)


def _bracket(intent: OrderIntent, price: float, atr: float, settings: PlannerSettings,
             equity: float) -> OrderPlan | Denial:
    if not atr > 0:
        return Denial("volatility", f"no ATR for {intent.symbol}: cannot place bracket exits")
    stop_distance = settings.stop_atr_multiple * atr
    if stop_distance >= price:
        return Denial("volatility", f"stop distance {stop_distance:.2f} >= price {price:.2f}")
    quantity = intent.quantity
    if settings.per_trade_risk_pct > 0:
        cap = int(settings.per_trade_risk_pct * equity // stop_distance)
        quantity = min(quantity, cap)
    if quantity <= 0:
        return Denial("per_trade_risk", f"stop distance {stop_distance:.2f} leaves no size "
                                        f"within {settings.per_trade_risk_pct:.2%} of equity")
    take_profit = round_to_tick(price + settings.take_profit_atr_multiple * atr, "up")
    stop = round_to_tick(price - stop_distance, "down")
    return OrderPlan(intent, quantity, OrderType.BRACKET, limit_price=price,
                     take_profit_price=take_profit, stop_price=stop)
