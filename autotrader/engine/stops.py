"""Dynamic stops: an ATR trailing stop whose distance decays with holding time (pure).

The stop trails the highest price seen since entry at ``k(t) * ATR`` below it,
with ``k(t) = max(min_atr_multiplier, atr_multiplier * (1 - decay_per_day *
days_held))``: a fresh position gets room to breathe, an old one that has not
moved gets a tighter leash. It never sits more than ``max_loss_pct`` below the
entry. With ``trailing`` False the anchor stays at the entry price. The stop
only ever rises.

Replacing a stop must never leave two live exit orders, so
:func:`plan_stop_update` returns a ``MODIFY`` of the live order when the
broker supports modification, otherwise a ``CANCEL`` and, only once the cancel
is confirmed (no live stop left), a ``PLACE``. While a cancel is pending it
returns ``WAIT``.
"""

from __future__ import annotations

from typing import NamedTuple

from autotrader.domain.orders import Order, OrderStatus
from autotrader.engine.limits import StopSettings
from autotrader.engine.ticks import round_to_tick, tick_size


def trailing_stop_price(entry_price: float, high_water: float, atr: float, days_held: float,
                        settings: StopSettings) -> float:
    """Stop level for a long position, rounded down to the tick.

    Examples
    --------
    >>> trailing_stop_price(100.0, 100.0, 2.0, 0, StopSettings())   # 3 ATR below
    94.0
    >>> trailing_stop_price(100.0, 100.0, 2.0, 10, StopSettings())  # decayed to the 1.5 floor
    97.0
    >>> trailing_stop_price(100.0, 100.0, 5.0, 0, StopSettings())   # max_loss_pct caps it
    92.0
    """
    anchor = high_water if settings.trailing else entry_price
    decay = max(0.0, 1.0 - settings.decay_per_day * max(days_held, 0.0))
    multiple = max(settings.min_atr_multiplier, settings.atr_multiplier * decay)
    stop = max(anchor - multiple * atr, entry_price * (1.0 - settings.max_loss_pct))
    return round_to_tick(max(stop, tick_size(anchor)), "down")


class StopAction(NamedTuple):
    """What to do with a position's protective stop: NONE, PLACE, MODIFY, CANCEL or WAIT."""

    kind: str
    stop_price: float | None = None
    quantity: int = 0
    order_ref: str | None = None


def plan_stop_update(new_stop: float, position_qty: int, live_stop: Order | None,
                     can_modify: bool) -> StopAction:
    """Decide how to bring the live stop to ``new_stop`` for ``position_qty`` shares.

    Examples
    --------
    >>> plan_stop_update(95.0, 10, None, can_modify=True).kind
    'PLACE'
    """
    if live_stop is not None and live_stop.is_done:
        live_stop = None
    if position_qty <= 0:
        if live_stop is None or live_stop.status == OrderStatus.PENDING_CANCEL:
            return StopAction("NONE")
        return StopAction("CANCEL", order_ref=live_stop.order_ref)
    if live_stop is None:
        return StopAction("PLACE", new_stop, position_qty)
    if live_stop.status == OrderStatus.PENDING_CANCEL:
        return StopAction("WAIT", order_ref=live_stop.order_ref)
    current = live_stop.stop_price or 0.0
    raise_stop = new_stop > current + tick_size(new_stop) / 2
    resize = live_stop.remaining != position_qty
    if not (raise_stop or resize):
        return StopAction("NONE", current, live_stop.remaining, live_stop.order_ref)
    target = max(new_stop, current)
    if can_modify:
        return StopAction("MODIFY", target, position_qty, live_stop.order_ref)
    return StopAction("CANCEL", order_ref=live_stop.order_ref)
