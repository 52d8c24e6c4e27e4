"""The broker protocol every adapter implements (paper now, IB later).

Why an abstract base with an event queue instead of callbacks into the runner:
an IB adapter receives order status and executions on its own asyncio thread;
the one thread-safe hand-over point is a queue that the adapter fills
(:meth:`Broker._emit`) and the runner drains (:meth:`Broker.poll_events`) at a
moment of its choosing. The paper broker is synchronous but uses the same
queue, so the runner has one code path for both.

Orders are identified by our ``order_ref`` (IB ``orderRef``) everywhere; the
broker's own id is informational. That is what lets the journal reconcile after
a crash: ``known_order_refs()`` must include every order the broker has seen in
the current session (working and completed), or an intent could be sent twice.
"""

from __future__ import annotations

import abc
import queue
from collections.abc import Iterable
from typing import Union

from autotrader.domain.orders import Order
from autotrader.domain.records import (
    Account,
    Fill,
    OrderRequest,
    OrderStatusEvent,
    Position,
    Quote,
    SessionIdentity,
)

BrokerEvent = Union[OrderStatusEvent, Fill]  # noqa: UP007 (runtime alias)


class Broker(abc.ABC):
    """Abstract broker: account, positions, orders, executions, quotes and order entry.

    Implementations raise :class:`autotrader.domain.errors.BrokerError` for any
    failed call (never return ``None`` on error).
    """

    #: True when orders reach a real market (the runner refuses demo signals then).
    is_live: bool = False
    #: True when :meth:`modify` changes a working order in place.
    supports_modify: bool = True

    def __init__(self) -> None:
        self._events: queue.SimpleQueue[BrokerEvent] = queue.SimpleQueue()

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the session (idempotent)."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Close the session (idempotent)."""

    @abc.abstractmethod
    def session(self) -> SessionIdentity:
        """Broker kind, account, paper/live mode and client id of the connected session."""

    def foreign_working_orders(self) -> dict[str, int]:
        """``order_ref -> client id`` of working orders placed by *other* API clients.

        Orders are bound to the client that placed them (IB): a session with
        another client id can see them but neither cancel nor modify them. The
        default (a broker without client ids) has none.
        """
        return {}

    @abc.abstractmethod
    def account(self) -> Account:
        """Equity and cash in USD."""

    @abc.abstractmethod
    def positions(self) -> dict[str, Position]:
        """Long positions by symbol (no zero-quantity entries)."""

    @abc.abstractmethod
    def orders(self) -> list[Order]:
        """Every order of the session, working and completed, with ``order_ref`` and status."""

    @abc.abstractmethod
    def executions(self) -> list[Fill]:
        """Every execution of the session, each with its ``order_ref``."""

    @abc.abstractmethod
    def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Latest quotes; symbols without data are absent from the result."""

    @abc.abstractmethod
    def place(self, request: OrderRequest) -> str:
        """Transmit one order and return the broker's id for it."""

    def place_bracket(self, parent: OrderRequest, take_profit: OrderRequest,
                      stop_loss: OrderRequest) -> list[str]:
        """Transmit a bracket (parent + OCA take-profit and stop) as one unit.

        Returns the broker ids in the order given. The default places the three
        one after another, which suits an in-process broker whose children stay
        inactive until the parent fills; a broker with held-transmit semantics
        (IB: ``transmit=False`` until the last child) overrides it so the parent
        never goes live without its exits.
        """
        return [self.place(request) for request in (parent, take_profit, stop_loss)]

    @abc.abstractmethod
    def cancel(self, order_ref: str) -> None:
        """Request cancellation; confirmation arrives as a status event."""

    @abc.abstractmethod
    def modify(self, order_ref: str, *, quantity: int | None = None,
               limit_price: float | None = None, stop_price: float | None = None) -> None:
        """Change a working order in place (same ``order_ref``)."""

    def open_orders(self) -> list[Order]:
        """Working orders (not in a DONE state)."""
        return [o for o in self.orders() if not o.is_done]

    def known_order_refs(self) -> set[str]:
        """Every ``order_ref`` the broker knows this session (orders and executions)."""
        return {o.order_ref for o in self.orders()} | {f.order_ref for f in self.executions()}

    def poll_events(self) -> list[BrokerEvent]:
        """Drain the status/fill events queued since the last call, oldest first."""
        events: list[BrokerEvent] = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def _emit(self, event: BrokerEvent) -> None:
        self._events.put(event)
