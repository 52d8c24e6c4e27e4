"""Executions: scripted and automatic fills, positions, cash, bracket and OCA effects.

Why separate from the book: the fill path is where the emulation is subtle (bracket children
activate only after a *full* parent fill; a full fill of one OCA member cancels the others,
a partial fill reduces them), so it is kept in one place with its own tests.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import ScriptError
from .events import ErrorEvent, Event, FillEvent, OrderEvent, PositionEvent, StatusEvent
from .model import Execution, OrderRecord, OrderStatus

if TYPE_CHECKING:
    from .book import OrderBook

logger = logging.getLogger(__name__)

_MAX_CASCADE = 100


def fill_order(book: OrderBook, order: OrderRecord, qty: float, price: float) -> list[Event]:
    """Execute ``qty`` of ``order`` at ``price`` and return every resulting event.

    Raises
    ------
    ScriptError
        The order is not working, is a bracket child whose parent has not filled, or
        ``qty`` is not in ``(0, remaining]``.
    """
    if not order.is_live:
        raise ScriptError(f"order {order.order_id} is {order.status}, not working")
    if book.awaiting_parent(order):
        raise ScriptError(f"order {order.order_id} waits for parent {order.parent_id} to fill")
    if not 0 < qty <= order.remaining + 1e-9:
        raise ScriptError(f"fill qty {qty} outside (0, {order.remaining}] for {order.order_id}")
    execution = _record_execution(book, order, qty, price)
    order.apply("fill" if order.remaining <= 1e-9 else "partial_fill")
    if order.is_done:
        order.completed_time = execution.time
    logger.info("filled %s @ %s of order %r", qty, price, order)
    position = book.position(order.account, order.contract)
    events: list[Event] = [FillEvent(execution, order.snapshot()), PositionEvent(position)]
    return events + _after_fill(book, order, qty)


def _record_execution(book: OrderBook, order: OrderRecord, qty: float, price: float):
    sign = 1.0 if order.action == "BUY" else -1.0
    commission = book.commission(qty)
    realized = _apply_to_position(book, order, sign * qty, price)
    book.cash[order.account] -= sign * qty * price + commission
    cum = order.filled + qty
    order.avg_fill_price = (order.avg_fill_price * order.filled + price * qty) / cum
    order.filled = cum
    order.last_fill_price = price
    execution = Execution(
        exec_id=book.next_exec_id(),
        client_id=order.client_id,
        order_id=order.order_id,
        perm_id=order.perm_id,
        contract=order.contract,
        exchange=order.contract.primary_exchange,
        side="BOT" if sign > 0 else "SLD",
        shares=qty,
        price=price,
        cum_qty=cum,
        avg_price=order.avg_fill_price,
        order_ref=order.order_ref,
        time=book.time_text(),
        account=order.account,
        commission=commission,
        realized_pnl=None if realized is None else realized - commission,
    )
    book.executions.append(execution)
    return execution


def _apply_to_position(book: OrderBook, order: OrderRecord, signed_qty: float, price: float):
    position = book.position(order.account, order.contract)
    old = position.quantity
    new = old + signed_qty
    realized = None
    if old == 0 or (old > 0) == (signed_qty > 0):
        position.avg_cost = (position.avg_cost * abs(old) + price * abs(signed_qty)) / abs(new)
    else:
        closed = min(abs(old), abs(signed_qty))
        realized = (price - position.avg_cost) * closed * (1 if old > 0 else -1)
        position.realized_pnl += realized
        if abs(signed_qty) > abs(old):
            position.avg_cost = price
        elif abs(new) < 1e-12:
            position.avg_cost = 0.0
    position.quantity = 0.0 if abs(new) < 1e-12 else new
    return realized


def _after_fill(book: OrderBook, order: OrderRecord, qty: float) -> list[Event]:
    events: list[Event] = []
    for sibling in oca_siblings(book, order):
        if order.is_done or order.oca_type == 1:
            events += _cancel_sibling(book, sibling)
        else:
            events += _reduce_sibling(book, sibling, qty)
    if order.status == OrderStatus.FILLED:
        events += _activate_children(book, order)
    return events


def oca_siblings(book: OrderBook, order: OrderRecord) -> list[OrderRecord]:
    """Working orders linked to ``order``: same OCA group, or same bracket parent."""

    def linked(other: OrderRecord) -> bool:
        if other is order or other.is_done or other.client_id != order.client_id:
            return False
        same_group = bool(order.oca_group) and other.oca_group == order.oca_group
        same_parent = bool(order.parent_id) and other.parent_id == order.parent_id
        return same_group or same_parent

    return sorted((o for o in book.orders.values() if linked(o)), key=lambda o: o.order_id)


def _cancel_sibling(book: OrderBook, sibling: OrderRecord) -> list[Event]:
    sibling.apply("cancel")
    sibling.completed_time = book.time_text()
    logger.info("OCA cancel of %r", sibling)
    reason = "Order Canceled - reason:OCA group member filled"
    return [
        StatusEvent(sibling.snapshot()),
        ErrorEvent(sibling.client_id, sibling.order_id, 202, reason),
    ]


def _reduce_sibling(book: OrderBook, sibling: OrderRecord, qty: float) -> list[Event]:
    sibling.total_qty = max(sibling.total_qty - qty, sibling.filled)
    if sibling.remaining <= 1e-9:
        return _cancel_sibling(book, sibling)
    logger.info("OCA reduce of %r by %s", sibling, qty)
    return [OrderEvent(sibling.snapshot())]


def _activate_children(book: OrderBook, parent: OrderRecord) -> list[Event]:
    events: list[Event] = []
    for child in book.children(parent):
        if child.status == OrderStatus.PRE_SUBMITTED:
            child.apply("activate")
            logger.info("activated child %r", child)
            events.append(StatusEvent(child.snapshot()))
    return events


def executable_price(book: OrderBook, order: OrderRecord) -> float | None:
    """The price at which the fill policy fills ``order`` now, or None if it rests."""
    policy = book.fill_policy
    quote = book.quotes.get(order.contract.con_id)
    if quote is None or not order.is_live or book.awaiting_parent(order):
        return None
    buying = order.action == "BUY"
    touch = quote.buy_price() if buying else quote.sell_price()
    if order.order_type == "MKT" and policy.market:
        return quote.last if quote.last is not None else touch
    if order.order_type == "LMT" and policy.marketable_limits and touch is not None:
        crosses = touch <= order.lmt_price if buying else touch >= order.lmt_price
        return touch if crosses else None
    if order.order_type == "STP" and policy.stops and quote.last is not None:
        triggered = quote.last >= order.aux_price if buying else quote.last <= order.aux_price
        return quote.last if triggered else None
    return None


def auto_fill_events(book: OrderBook, con_id: int) -> list[Event]:
    """Fill, in orderId order, every working order of ``con_id`` that is executable now.

    Why a loop: a fill can activate bracket children that are themselves executable, or
    cancel siblings, so candidates are re-evaluated until nothing more fills.
    """
    events: list[Event] = []
    for _ in range(_MAX_CASCADE):
        candidates = sorted(
            (o for o in book.orders.values() if o.contract.con_id == con_id and o.is_live),
            key=lambda o: (o.client_id, o.order_id),
        )
        for order in candidates:
            price = executable_price(book, order)
            if price is not None:
                events += fill_order(book, order, order.remaining, price)
                break
        else:
            return events
    raise ScriptError(f"auto-fill of contract {con_id} did not settle")
