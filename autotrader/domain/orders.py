"""The order state machine: status constants, events and one transition table.

Why one table: every rule about which broker report is acceptable in which
state lives in :data:`TRANSITIONS`, so it can be read, tested exhaustively and
changed in one place (the pattern of nautilus_trader's ``_ORDER_STATE_TABLE``).
Any pair not in the table raises :class:`InvalidTransition`.

Out-of-order broker reports are legal rows, not exceptions:

* a fill after a cancel request keeps the order in ``PendingCancel`` (or
  completes it to ``Filled``);
* a fill reported after ``Cancelled`` (executed before the cancel took effect)
  is recorded but the order stays ``Cancelled``;
* a stale ``Submitted`` after a later state is ignored;
* duplicate terminal reports are idempotent.

No row leaves a terminal state (``OrderStatus.DONE``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import Enum

from autotrader.domain.errors import InvalidTransition, OverfillError
from autotrader.domain.records import Fill, OrderType, Side

logger = logging.getLogger(__name__)


class OrderStatus:
    """Order status names (IB's spelling) and the DONE / ACTIVE groupings."""

    PENDING_SUBMIT = "PendingSubmit"
    SUBMITTED = "Submitted"
    PARTIALLY_FILLED = "PartiallyFilled"
    PENDING_CANCEL = "PendingCancel"
    INACTIVE = "Inactive"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"

    ALL = frozenset(
        {PENDING_SUBMIT, SUBMITTED, PARTIALLY_FILLED, PENDING_CANCEL, INACTIVE,
         FILLED, CANCELLED, REJECTED}
    )
    DONE = frozenset({FILLED, CANCELLED, REJECTED})
    ACTIVE = frozenset({PENDING_SUBMIT, SUBMITTED, PARTIALLY_FILLED, PENDING_CANCEL, INACTIVE})


class OrderEvent(str, Enum):
    """What can happen to an order (from our side or reported by the broker)."""

    ACCEPT = "ACCEPT"  # broker acknowledged / order working
    REJECT = "REJECT"
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"  # the last fill (or a broker 'Filled' status)
    REQUEST_CANCEL = "REQUEST_CANCEL"
    CANCEL = "CANCEL"  # cancel confirmed
    CANCEL_REJECT = "CANCEL_REJECT"
    DEACTIVATE = "DEACTIVATE"  # bracket child waiting for its parent, or IB 'Inactive'


S = OrderStatus
E = OrderEvent

TRANSITIONS: dict[tuple[str, OrderEvent], str] = {
    (S.PENDING_SUBMIT, E.ACCEPT): S.SUBMITTED,
    (S.PENDING_SUBMIT, E.REJECT): S.REJECTED,
    (S.PENDING_SUBMIT, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PENDING_SUBMIT, E.FILL): S.FILLED,
    (S.PENDING_SUBMIT, E.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.PENDING_SUBMIT, E.CANCEL): S.CANCELLED,
    (S.PENDING_SUBMIT, E.DEACTIVATE): S.INACTIVE,
    (S.SUBMITTED, E.ACCEPT): S.SUBMITTED,
    (S.SUBMITTED, E.REJECT): S.REJECTED,
    (S.SUBMITTED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.SUBMITTED, E.FILL): S.FILLED,
    (S.SUBMITTED, E.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.SUBMITTED, E.CANCEL): S.CANCELLED,
    (S.SUBMITTED, E.DEACTIVATE): S.INACTIVE,
    (S.PARTIALLY_FILLED, E.ACCEPT): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, E.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.CANCEL): S.CANCELLED,
    (S.PENDING_CANCEL, E.ACCEPT): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.PARTIAL_FILL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.FILL): S.FILLED,
    (S.PENDING_CANCEL, E.CANCEL): S.CANCELLED,
    (S.PENDING_CANCEL, E.CANCEL_REJECT): S.SUBMITTED,
    (S.INACTIVE, E.ACCEPT): S.SUBMITTED,
    (S.INACTIVE, E.DEACTIVATE): S.INACTIVE,
    (S.INACTIVE, E.REJECT): S.REJECTED,
    (S.INACTIVE, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.INACTIVE, E.FILL): S.FILLED,
    (S.INACTIVE, E.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.INACTIVE, E.CANCEL): S.CANCELLED,
    (S.FILLED, E.ACCEPT): S.FILLED,
    (S.FILLED, E.PARTIAL_FILL): S.FILLED,
    (S.FILLED, E.FILL): S.FILLED,
    (S.FILLED, E.CANCEL_REJECT): S.FILLED,
    (S.CANCELLED, E.ACCEPT): S.CANCELLED,
    (S.CANCELLED, E.REQUEST_CANCEL): S.CANCELLED,
    (S.CANCELLED, E.CANCEL): S.CANCELLED,
    (S.CANCELLED, E.PARTIAL_FILL): S.CANCELLED,
    (S.CANCELLED, E.FILL): S.CANCELLED,
    (S.REJECTED, E.REJECT): S.REJECTED,
}

# Broker status strings (IB spelling) -> event. 'Filled' as a status carries no
# quantity: quantities only ever come from executions (Fill records).
BROKER_STATUS_EVENTS: dict[str, OrderEvent] = {
    "ApiPending": E.ACCEPT,
    "PendingSubmit": E.ACCEPT,
    "PreSubmitted": E.ACCEPT,
    "PartiallyFilled": E.ACCEPT,  # our own spelling, reported by the paper broker
    "Submitted": E.ACCEPT,
    "PendingCancel": E.REQUEST_CANCEL,
    "ApiCancelled": E.CANCEL,
    "Cancelled": E.CANCEL,
    "Filled": E.FILL,
    "Inactive": E.DEACTIVATE,
    "Rejected": E.REJECT,
}


def next_status(status: str, event: OrderEvent) -> str:
    """Return the status after ``event``; raise :class:`InvalidTransition` if not in the table.

    Examples
    --------
    >>> next_status("Submitted", OrderEvent.REQUEST_CANCEL)
    'PendingCancel'
    >>> next_status("Cancelled", OrderEvent.FILL)  # a late execution: stays cancelled
    'Cancelled'
    """
    try:
        return TRANSITIONS[(status, OrderEvent(event))]
    except KeyError as e:
        raise InvalidTransition(f"order event {OrderEvent(event).value} is not allowed "
                                f"in status {status}") from e


@dataclass(frozen=True)
class Order:
    """An order we track: its request fields, status and fill progress.

    ``apply`` and ``apply_fill`` return a new ``Order``; the record itself never
    changes. ``filled_qty`` can only grow and never exceeds ``quantity``.
    """

    order_ref: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: float | None = None
    stop_price: float | None = None
    status: str = OrderStatus.PENDING_SUBMIT
    filled_qty: int = 0
    avg_fill_price: float = 0.0
    broker_order_id: str = ""
    parent_ref: str | None = None
    oca_group: str | None = None

    @property
    def remaining(self) -> int:
        """Shares not yet filled (``quantity - filled_qty``)."""
        return self.quantity - self.filled_qty

    @property
    def is_done(self) -> bool:
        """True in a terminal status (:attr:`OrderStatus.DONE`: filled, cancelled, rejected)."""
        return self.status in OrderStatus.DONE

    def apply(self, event: OrderEvent) -> Order:
        """Return the order after a status-only event (no quantity)."""
        status = next_status(self.status, event)
        if status == OrderStatus.SUBMITTED and self.filled_qty > 0:
            status = OrderStatus.PARTIALLY_FILLED  # a rejected cancel resumes a partial fill
        if status != self.status:
            logger.debug("order %s: %s --%s--> %s", self.order_ref, self.status,
                         OrderEvent(event).value, status)
        return replace(self, status=status)

    def apply_broker_status(self, broker_status: str) -> Order:
        """Map a broker status string (IB spelling) to an event and apply it."""
        try:
            event = BROKER_STATUS_EVENTS[broker_status]
        except KeyError as e:
            raise InvalidTransition(f"unknown broker status {broker_status!r}") from e
        return self.apply(event)

    def apply_fill(self, fill: Fill) -> Order:
        """Return the order after an execution; raises :class:`OverfillError` past ``quantity``."""
        if fill.quantity <= 0:
            raise OverfillError(f"fill {fill.exec_id} has non-positive quantity {fill.quantity}")
        if fill.quantity > self.remaining:
            raise OverfillError(
                f"fill {fill.exec_id} of {fill.quantity} exceeds the remaining {self.remaining} "
                f"of order {self.order_ref} ({self.filled_qty}/{self.quantity} filled)"
            )
        filled = self.filled_qty + fill.quantity
        event = OrderEvent.FILL if filled == self.quantity else OrderEvent.PARTIAL_FILL
        status = next_status(self.status, event)
        avg = (self.avg_fill_price * self.filled_qty + fill.price * fill.quantity) / filled
        return replace(self, status=status, filled_qty=filled, avg_fill_price=avg)
