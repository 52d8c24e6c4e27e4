"""The pre-trade risk chain: small pure checks, each returning ``None`` or a ``Denial``.

Why a chain of tiny functions (nautilus_trader's risk engine pattern): each rule
can be tested on its own with a hand-built context, the first denial names the
rule that fired, and the runner counts denials by check name for its health
metrics. Nothing here reads a clock, a file or the broker: the runner builds a
:class:`RiskContext` (with ``now`` and ``market_open`` already computed) and
calls :func:`check_order`.

Exits are treated differently from entries: an order that reduces a long
position passes the REDUCING kill switch, the price band, the signal threshold
and the exposure limits, because blocking an exit never reduces risk.

The tradability rules (price band, signal threshold, minimum order value,
position and sector limits, cash reserve) are the functions of
:mod:`bma_models.rules`, the same functions research's portfolio obeys; the
checks here only pick the numbers out of the book.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from enum import Enum
from zoneinfo import ZoneInfo

from autotrader.domain.records import OrderIntent, Side
from autotrader.engine.correlation import ReturnHistory
from autotrader.engine.limits import RiskLimits
from bma_models import rules
from bma_models.rules import Denial

__all__ = ["RISK_CHECKS", "Denial", "PortfolioSnapshot", "RiskContext", "TradingState",
           "check_order"]


class TradingState(str, Enum):
    """The kill switch the GUI can flip: trade, only reduce, or stop all orders."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True)
class PortfolioSnapshot:
    """Book values the checks need, in USD. ``pending_buy_value`` covers working buys."""

    equity: float
    cash: float
    position_values: Mapping[str, float] = field(default_factory=dict)
    sector_values: Mapping[str, float] = field(default_factory=dict)
    pending_buy_value: float = 0.0
    day_start_equity: float = float("nan")
    invested_value: float | None = None

    @property
    def gross_exposure(self) -> float:
        """Position values plus working buys; ``invested_value`` caches the first sum."""
        invested = self.invested_value
        if invested is None:
            invested = sum(self.position_values.values())
        return invested + self.pending_buy_value

    def with_order(self, intent: OrderIntent) -> PortfolioSnapshot:
        """Return the snapshot after ``intent`` is approved.

        A buy adds exposure and spends cash at once; a sell lowers exposure but
        frees no cash until it fills (conservative: unfilled sells fund nothing).
        """
        value = intent.notional * intent.side.sign
        positions = dict(self.position_values)
        positions[intent.symbol] = max(positions.get(intent.symbol, 0.0) + value, 0.0)
        sectors = dict(self.sector_values)
        sectors[intent.sector] = max(sectors.get(intent.sector, 0.0) + value, 0.0)
        return replace(self, position_values=positions, sector_values=sectors,
                       cash=self.cash - max(value, 0.0), invested_value=None)


@dataclass(frozen=True)
class RiskContext:
    """Everything the risk chain may look at, computed by the caller at ``now``.

    ``market_open`` is None when the calendar could not be consulted: the
    market-hours check then denies (fail closed). ``open_order_keys`` holds
    ``(symbol, side)`` of working orders (the duplicate-intent guard);
    ``stopped_out`` the symbols whose protective stop filled today;
    ``returns`` the run's trailing daily returns (None: the correlation check
    cannot run, which the runner records as a fallback); ``run_age_sessions``
    the NYSE sessions completed since the traded run's last bar (None: unknown,
    which fails closed when ``limits.max_run_age_sessions`` is set).
    """

    now: dt.datetime
    limits: RiskLimits
    portfolio: PortfolioSnapshot
    trading_state: TradingState = TradingState.ACTIVE
    market_open: bool | None = None
    daily_orders: int = 0
    cycle_orders: int = 0
    open_order_keys: AbstractSet[tuple[str, str]] = frozenset()
    stopped_out: AbstractSet[str] = frozenset()
    returns: ReturnHistory | None = None
    run_age_sessions: int | None = 0


def _is_entry(intent: OrderIntent) -> bool:
    return not intent.reduces_position


def check_trading_state(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if ctx.trading_state is TradingState.HALTED:
        return Denial("trading_state", "trading is HALTED (kill switch)")
    if ctx.trading_state is TradingState.REDUCING and _is_entry(intent):
        return Denial("trading_state", "trading is REDUCING: only position-reducing orders")
    return None


def check_market_hours(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if ctx.market_open is None:
        return Denial("market_hours", "market calendar unavailable (fail closed)")
    if not ctx.market_open:
        return Denial("market_hours", "NYSE is closed")
    if ctx.now.tzinfo is None:
        return Denial("market_hours", "clock is not timezone-aware (fail closed)")
    lim = ctx.limits
    local = ctx.now.astimezone(ZoneInfo(lim.timezone)).time()
    if not lim.trading_start <= local < lim.trading_end:
        return Denial("market_hours", f"{local:%H:%M} {lim.timezone} is outside the trading "
                                      f"window {lim.trading_start:%H:%M}-{lim.trading_end:%H:%M}")
    return None


def check_run_age(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    # a plan made from old bars opens nothing; its exits still go (blocking one adds no safety)
    limit = ctx.limits.max_run_age_sessions
    if limit is None or not _is_entry(intent):
        return None
    age = ctx.run_age_sessions
    if age is None:
        return Denial("run_age", "the run's last data session is unknown (fail closed): "
                                 "no new buys until research runs again")
    if age > limit:
        return Denial("run_age", f"the run's data are {age} sessions old (limit {limit}): "
                                 "no new buys until research runs again")
    return None


def check_price_band(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if not _is_entry(intent):
        return None
    return rules.price_band(intent.reference_price, ctx.limits.min_price, ctx.limits.max_price)


def check_min_order_value(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if intent.closes_position:
        return None  # a full exit may be small; leaving a remnant would be worse
    return rules.min_order_value(intent.notional, ctx.limits.min_order_value_usd)


def check_max_single_position(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if not _is_entry(intent):
        return None
    pf = ctx.portfolio
    after = pf.position_values.get(intent.symbol, 0.0) + intent.notional
    return rules.position_limit(intent.symbol, after, pf.equity,
                                ctx.limits.max_single_position_pct)


def check_max_portfolio_exposure(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if not _is_entry(intent):
        return None
    pf = ctx.portfolio
    after = pf.gross_exposure + intent.notional
    cap = ctx.limits.max_portfolio_exposure * pf.equity
    if after > cap + 1e-9:
        return Denial("max_portfolio_exposure", f"gross exposure would be {after:.0f} USD "
                                                f"> {cap:.0f}")
    return None


def check_cash_reserve(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if intent.side is not Side.BUY:
        return None
    pf = ctx.portfolio
    left = pf.cash - pf.pending_buy_value - intent.notional
    return rules.cash_reserve(left, pf.equity, ctx.limits.cash_reserve_pct)


def check_sector_exposure(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if not _is_entry(intent):
        return None
    pf = ctx.portfolio
    after = pf.sector_values.get(intent.sector, 0.0) + intent.notional
    return rules.sector_limit(intent.sector, after, pf.equity,
                              ctx.limits.sector_exposure_limit)


def check_max_correlation(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    # a *new* name only: adding to a holding does not add a correlated name to the book
    if not _is_entry(intent) or ctx.returns is None:
        return None
    values = ctx.portfolio.position_values
    if values.get(intent.symbol, 0.0) > 0.0:
        return None
    held = (symbol for symbol, value in values.items() if value > 0.0)
    closest = ctx.returns.most_correlated(intent.symbol, held)
    if closest is not None and closest[1] > ctx.limits.max_correlation:
        return Denial("max_correlation", f"{intent.symbol} return correlation {closest[1]:.2f} "
                                         f"with held {closest[0]} > "
                                         f"{ctx.limits.max_correlation}")
    return None


def check_daily_order_limit(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if ctx.daily_orders >= ctx.limits.daily_order_limit:
        return Denial("daily_order_limit", f"{ctx.daily_orders} orders today "
                                           f"(limit {ctx.limits.daily_order_limit})")
    return None


def check_per_cycle_limit(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if ctx.cycle_orders >= ctx.limits.per_cycle_order_limit:
        return Denial("per_cycle_order_limit", f"{ctx.cycle_orders} orders this cycle "
                                               f"(limit {ctx.limits.per_cycle_order_limit})")
    return None


def check_signal_threshold(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if not _is_entry(intent):
        return None
    return rules.signal_threshold(intent.confidence, ctx.limits.acceptance_threshold)


def check_stopped_out(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if _is_entry(intent) and intent.symbol in ctx.stopped_out:
        return Denial("stopped_out", f"{intent.symbol} was stopped out today: no re-entry "
                                     "until the next session")
    return None


def check_daily_loss(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    start = ctx.portfolio.day_start_equity
    if not _is_entry(intent) or not start > 0:
        return None
    loss = (start - ctx.portfolio.equity) / start
    if loss >= ctx.limits.max_daily_loss_pct:
        return Denial("daily_loss", f"down {loss:.2%} today (limit "
                                    f"{ctx.limits.max_daily_loss_pct:.2%}): no new buys")
    return None


def check_duplicate_intent(intent: OrderIntent, ctx: RiskContext) -> Denial | None:
    if (intent.symbol, intent.side.value) in ctx.open_order_keys:
        return Denial("duplicate_intent", f"a {intent.side.value} order for {intent.symbol} "
                                          "is already working")
    return None


RiskCheck = Callable[[OrderIntent, RiskContext], "Denial | None"]

RISK_CHECKS: tuple[RiskCheck, ...] = (
    check_trading_state,
    check_market_hours,
    check_run_age,
    check_duplicate_intent,
    check_daily_order_limit,
    check_per_cycle_limit,
    check_daily_loss,
    check_stopped_out,
    check_signal_threshold,
    check_price_band,
    check_min_order_value,
    check_max_single_position,
    check_sector_exposure,
    check_max_correlation,
    check_max_portfolio_exposure,
    check_cash_reserve,
)


def check_order(intent: OrderIntent, ctx: RiskContext,
                checks: tuple[RiskCheck, ...] = RISK_CHECKS) -> Denial | None:
    """Run the chain in order and return the first denial, or None when the intent passes.

    Examples
    --------
    >>> import datetime as dt
    >>> from autotrader.domain.records import OrderIntent, Side
    >>> ctx = RiskContext(dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.timezone.utc),
    ...                   RiskLimits(), PortfolioSnapshot(equity=1e5, cash=1e5),
    ...                   trading_state=TradingState.HALTED, market_open=True)
    >>> check_order(OrderIntent("AAA", Side.BUY, 10, 50.0), ctx).check
    'trading_state'
    """
    for check in checks:
        denial = check(intent, ctx)
        if denial is not None:
            return denial
    return None
