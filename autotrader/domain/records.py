"""Plain, frozen records exchanged between the engine, the journal and the brokers.

Why frozen dataclasses: a record that crossed a thread or process boundary (an IB
event, a journal row) must not be edited in place by whoever holds it; a changed
order is a new record (``dataclasses.replace``), which makes state changes
explicit and easy to log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum


class Side(str, Enum):
    """Order side. Long-only trading: a SELL reduces or closes a long position."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL (the sign of the position change)."""
        return 1 if self is Side.BUY else -1


class OrderType(str, Enum):
    """Order types the planner may emit and the brokers accept.

    ``BRACKET`` exists only at the planning level: it is placed as a parent
    (``LIMIT``) plus a take-profit ``LIMIT`` and a protective ``STOP`` child in one
    OCA group.
    """

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    BRACKET = "BRACKET"


@dataclass(frozen=True)
class Quote:
    """Latest market prices of one symbol. ``bid``/``ask`` may be NaN when unknown."""

    symbol: str
    last: float
    prev_close: float
    bid: float = float("nan")
    ask: float = float("nan")
    time: dt.datetime | None = None

    @property
    def reference_price(self) -> float:
        """``last`` when positive, else the previous close (the planner's anchor)."""
        return self.last if self.last > 0 else self.prev_close


@dataclass(frozen=True)
class Account:
    """Account summary: net liquidation value and settled cash, in USD."""

    equity: float
    cash: float


@dataclass(frozen=True)
class Position:
    """A long position (``quantity`` > 0) with its average cost."""

    symbol: str
    quantity: int
    avg_cost: float


@dataclass(frozen=True)
class OrderIntent:
    """What the rebalance wants: buy or sell ``quantity`` shares of ``symbol``.

    ``score`` is the recommendation's signal score; ``confidence`` its
    percentile within the run (1 = top rank), used by the acceptance threshold
    and the planner's limit-price aggression; ``reduces_position`` is True for a
    sell of a held long, so the risk chain lets exits through when entries are
    blocked (REDUCING state, price band, signal threshold).
    """

    symbol: str
    side: Side
    quantity: int
    reference_price: float
    sector: str = "Unknown"
    score: float = 0.0
    expected_return: float = 0.0
    confidence: float = 0.5
    reduces_position: bool = False
    closes_position: bool = False
    reason: str = "rebalance"

    @property
    def notional(self) -> float:
        """Order value at the reference price (``quantity * reference_price``)."""
        return self.quantity * self.reference_price


@dataclass(frozen=True)
class OrderRequest:
    """One order as transmitted to a broker, identified by our ``order_ref``.

    ``parent_ref`` links a bracket child to its parent (the child stays inactive
    until the parent fills); children sharing an ``oca_group`` cancel each other.
    """

    order_ref: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: float | None = None
    stop_price: float | None = None
    parent_ref: str | None = None
    oca_group: str | None = None
    tif: str = "DAY"


@dataclass(frozen=True)
class SessionIdentity:
    """Where orders go: broker kind, account, paper or live, and the API client id.

    ``client_id`` is None for brokers without client ids (the paper broker).
    Journaled with every order so that a restart can tell whether an order it
    finds untransmitted was meant for the session it now runs.
    """

    broker: str
    account: str
    live: bool
    client_id: int | None = None

    def describe(self) -> str:
        """One line for logs: ``ib DU123 paper client 7``."""
        client = "" if self.client_id is None else f" client {self.client_id}"
        return f"{self.broker} {self.account or '-'} {'LIVE' if self.live else 'paper'}{client}"


@dataclass(frozen=True)
class RunIdentity:
    """The recommendations run an order came from (``demo``: built from demo data)."""

    run_id: str
    demo: bool = False


@dataclass(frozen=True)
class OrderOrigin:
    """The run and the session that created a journaled order.

    ``session`` is None for an order journaled before sessions were recorded
    (a migrated journal); such an order is never resumed onto a live account.
    """

    run: RunIdentity
    session: SessionIdentity | None


@dataclass(frozen=True)
class Fill:
    """One execution. ``exec_id`` is unique per broker and de-duplicates replays."""

    exec_id: str
    order_ref: str
    symbol: str
    side: Side
    quantity: int
    price: float
    commission: float = 0.0
    time: dt.datetime | None = None


@dataclass(frozen=True)
class OrderStatusEvent:
    """A broker status report for one order (``status`` is an ``OrderStatus`` value)."""

    order_ref: str
    status: str
    broker_order_id: str = ""
    message: str = ""
    time: dt.datetime | None = None
