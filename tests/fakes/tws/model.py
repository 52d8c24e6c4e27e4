"""State records of the fake gateway: contracts, quotes, orders, executions, positions.

Order status follows an explicit transition table (``OrderStatus.TRANSITIONS``); an
illegal transition raises :class:`~tests.fakes.tws.errors.ScriptError` instead of leaving
the book in a state real TWS could never reach.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import ScriptError

DEFAULT_VALID_EXCHANGES = "SMART,NASDAQ,NYSE,ARCA,AMEX,BATS,IEX,ISLAND,EDGEA,CHX,PSX"
DEFAULT_ORDER_TYPES = "LMT,MKT,STP,STP LMT,TRAIL,MOC,LOC,MIT,LIT,REL"


@dataclass(frozen=True)
class ContractSpec:
    """One stock listing the fake knows.

    Parameters
    ----------
    symbol, con_id, primary_exchange
        Identity of the listing (``primary_exchange`` is e.g. ``NASDAQ``, ``NYSE``, ``ARCA``).
    min_tick : float
        Limit/stop prices must be a multiple of it, else the order is rejected with 110.
    smart_qualifies : bool
        False models a symbol that SMART qualification cannot resolve on its own: a plain
        ``Stock(symbol, "SMART", "USD")`` gets error 200 and only a ``primaryExchange``
        hint qualifies it. Two specs sharing a symbol with ``smart_qualifies=True`` make a
        SMART request *ambiguous* (two contractDetails rows).
    """

    symbol: str
    con_id: int
    primary_exchange: str
    min_tick: float = 0.01
    currency: str = "USD"
    long_name: str = ""
    smart_qualifies: bool = True
    trading_class: str = "NMS"


def default_contracts() -> list[ContractSpec]:
    """A small US-equity universe: plain listings, one ambiguous and one hint-only symbol."""
    return [
        ContractSpec("AAPL", 265598, "NASDAQ", long_name="APPLE INC"),
        ContractSpec("MSFT", 272093, "NASDAQ", long_name="MICROSOFT CORP"),
        ContractSpec("IBM", 8314, "NYSE", long_name="INTL BUSINESS MACHINES CORP"),
        ContractSpec("SPY", 756733, "ARCA", long_name="SPDR S&P 500 ETF TRUST"),
        ContractSpec("XOM", 13977, "NYSE", long_name="EXXON MOBIL CORP"),
        # Listed twice: SMART alone is ambiguous; a primaryExchange hint resolves it.
        ContractSpec("DUAL", 900001, "NYSE", long_name="DUAL LISTED CORP"),
        ContractSpec("DUAL", 900002, "ARCA", long_name="DUAL LISTED CORP ETF"),
        # Only qualifies with a primaryExchange hint (SMART alone -> error 200).
        ContractSpec("HINT", 900003, "AMEX", long_name="HINT ONLY INC", smart_qualifies=False),
    ]


DEFAULT_PRICES = {
    "AAPL": 190.0, "MSFT": 410.0, "IBM": 170.0, "SPY": 500.0, "XOM": 110.0, "HINT": 20.0,
}  # fmt: skip


@dataclass
class Quote:
    """Last/bid/ask (with sizes) of one symbol; ``None`` means not available."""

    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    bid_size: float = 100.0
    ask_size: float = 100.0
    last_size: float = 100.0
    volume: float = 0.0
    close: float | None = None

    def mark(self, fallback: float) -> float:
        """The price positions are valued at: last, else close, else ``fallback``."""
        for value in (self.last, self.close):
            if value is not None:
                return value
        return fallback

    def buy_price(self) -> float | None:
        """Price a buy executes at: ask, else last."""
        return self.ask if self.ask is not None else self.last

    def sell_price(self) -> float | None:
        """Price a sell executes at: bid, else last."""
        return self.bid if self.bid is not None else self.last


class OrderStatus:
    """Order statuses and the (state, event) -> state transition table.

    ``HELD`` is internal: a ``transmit=0`` order that TWS keeps locally and never reports.
    """

    HELD = "Held"
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    INACTIVE = "Inactive"

    DONE = frozenset({FILLED, CANCELLED, INACTIVE})
    ACTIVE = frozenset({PRE_SUBMITTED, SUBMITTED})

    TRANSITIONS: dict[tuple[str, str], str] = {
        (HELD, "modify"): HELD,
        (HELD, "transmit"): SUBMITTED,
        (HELD, "transmit_child"): PRE_SUBMITTED,
        (HELD, "cancel"): CANCELLED,
        (HELD, "reject"): CANCELLED,
        (HELD, "reject_inactive"): INACTIVE,
        (PRE_SUBMITTED, "activate"): SUBMITTED,
        (PRE_SUBMITTED, "modify"): PRE_SUBMITTED,
        (PRE_SUBMITTED, "partial_fill"): SUBMITTED,
        (PRE_SUBMITTED, "fill"): FILLED,
        (PRE_SUBMITTED, "cancel"): CANCELLED,
        (PRE_SUBMITTED, "reject"): CANCELLED,
        (PRE_SUBMITTED, "reject_inactive"): INACTIVE,
        (SUBMITTED, "modify"): SUBMITTED,
        (SUBMITTED, "partial_fill"): SUBMITTED,
        (SUBMITTED, "fill"): FILLED,
        (SUBMITTED, "cancel"): CANCELLED,
        (SUBMITTED, "reject"): CANCELLED,
        (SUBMITTED, "reject_inactive"): INACTIVE,
    }

    @classmethod
    def next(cls, state: str, event: str) -> str:
        """The state after ``event``; raises ScriptError for an illegal transition."""
        try:
            return cls.TRANSITIONS[(state, event)]
        except KeyError as e:
            raise ScriptError(f"illegal order transition: {event!r} in state {state!r}") from e


@dataclass
class OrderRecord:
    """One order as the gateway tracks it (keyed by ``(client_id, order_id)``)."""

    client_id: int
    order_id: int
    perm_id: int
    contract: ContractSpec
    exchange: str
    action: str
    total_qty: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str = ""
    oca_group: str = ""
    oca_type: int = 0
    parent_id: int = 0
    transmit: bool = True
    outside_rth: bool = False
    status: str = OrderStatus.HELD
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    completed_time: str = ""

    @property
    def remaining(self) -> float:
        """Quantity still to fill."""
        return max(self.total_qty - self.filled, 0.0)

    @property
    def is_done(self) -> bool:
        """Filled, Cancelled or Inactive."""
        return self.status in OrderStatus.DONE

    @property
    def is_live(self) -> bool:
        """PreSubmitted or Submitted (reported to the client, still working)."""
        return self.status in OrderStatus.ACTIVE

    def apply(self, event: str) -> str:
        """Move to the next status per the transition table; returns the new status."""
        self.status = OrderStatus.next(self.status, event)
        return self.status

    def snapshot(self) -> OrderRecord:
        """An independent copy for callers outside the gateway thread."""
        return dataclasses.replace(self)


@dataclass(frozen=True)
class Execution:
    """One fill (an ``execDetails`` row) plus its commission report."""

    exec_id: str
    client_id: int
    order_id: int
    perm_id: int
    contract: ContractSpec
    exchange: str
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    time: str
    account: str
    commission: float
    realized_pnl: float | None = None


@dataclass
class Position:
    """Signed quantity and average cost of one contract in one account."""

    contract: ContractSpec
    account: str
    quantity: float = 0.0
    avg_cost: float = 0.0
    realized_pnl: float = 0.0


@dataclass(frozen=True)
class FillPolicy:
    """When the gateway fills working orders without a scripted ``fill()`` call.

    Parameters
    ----------
    market : bool
        MKT orders fill in full at last (else at the touch) on arrival.
    marketable_limits : bool
        LMT orders fill in full when the touch crosses the limit (on arrival or on a tick).
    stops : bool
        STP orders fill at last once last trades through the stop price (on a tick).
    """

    market: bool = True
    marketable_limits: bool = True
    stops: bool = True


@dataclass
class RejectRule:
    """A pending scripted rejection of the next placed order."""

    code: int = 201
    message: str = "Order rejected - reason: scripted rejection"
    status: str = OrderStatus.CANCELLED
