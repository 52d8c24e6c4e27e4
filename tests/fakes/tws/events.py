"""Events the order book returns; the gateway turns each into TWS messages.

Events carry *snapshots* of the order, so a later state change within the same call (the
parent fills, then its children activate) does not rewrite an earlier message.
"""

from __future__ import annotations

from typing import NamedTuple

from .model import Execution, OrderRecord, Position


class OrderEvent(NamedTuple):
    """Report ``openOrder`` + ``orderStatus`` of this order snapshot to its owner."""

    order: OrderRecord


class StatusEvent(NamedTuple):
    """Report only ``orderStatus`` (e.g. a bracket child activating)."""

    order: OrderRecord


class FillEvent(NamedTuple):
    """Report an execution: execDetails, orderStatus, openOrder if done, commissionReport."""

    execution: Execution
    order: OrderRecord


class ErrorEvent(NamedTuple):
    """Report ``error`` (4) to ``client_id`` with ``req_id`` (the orderId for order errors)."""

    client_id: int
    req_id: int
    code: int
    message: str


class PositionEvent(NamedTuple):
    """A position changed (sent to position and account-update subscribers)."""

    position: Position


Event = OrderEvent | StatusEvent | FillEvent | ErrorEvent | PositionEvent
