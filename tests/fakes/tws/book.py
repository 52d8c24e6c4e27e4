"""The gateway's order book: a pure state machine that returns the events to report.

Nothing here touches a socket. Every mutating method returns a list of events
(:mod:`.events`) in the order real TWS would send the matching messages; the gateway turns
them into frames for the owning client.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timezone

from ._wire import parse_bool, parse_float, parse_int
from .errors import ScriptError
from .events import ErrorEvent, Event, OrderEvent, StatusEvent
from .fills import auto_fill_events
from .model import (
    ContractSpec,
    Execution,
    FillPolicy,
    OrderRecord,
    OrderStatus,
    Position,
    Quote,
    RejectRule,
)

logger = logging.getLogger(__name__)

def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(timezone.utc)


class OrderBook:
    """Orders, executions, positions and cash shared by every client connection.

    Parameters
    ----------
    accounts : list of str
        Managed accounts; the first is the default for orders with an empty account.
    cash : float
        Starting cash per account (USD).
    fill_policy : FillPolicy
        Which orders fill automatically (market on arrival, marketable limits, stops).
    commission_per_share, min_commission : float
        IBKR-fixed-like commission: ``max(min_commission, shares * commission_per_share)``.
    clock : callable
        Returns the current aware datetime (injected so tests can pin execution times).
    """

    def __init__(
        self,
        accounts: list[str],
        cash: float = 100_000.0,
        fill_policy: FillPolicy | None = None,
        commission_per_share: float = 0.005,
        min_commission: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.accounts = list(accounts)
        self.cash = {account: float(cash) for account in accounts}
        self.fill_policy = fill_policy or FillPolicy()
        self.commission_per_share = commission_per_share
        self.min_commission = min_commission
        self.clock = clock
        self.contracts: list[ContractSpec] = []
        self.quotes: dict[int, Quote] = {}
        self.orders: dict[tuple[int, int], OrderRecord] = {}
        self.executions: list[Execution] = []
        self.positions: dict[tuple[str, int], Position] = {}
        self.max_order_id: dict[int, int] = {}
        self.reject_rules: list[RejectRule] = []
        self._next_perm_id = 1_000_001
        self._exec_seq = 0
        # Real execIds are unique per account across TWS restarts; a per-instance random
        # prefix keeps a new gateway on a reused state directory from repeating them.
        self._exec_prefix = f"{secrets.randbits(32):08x}"

    # ----------------------------------------------------------------- contracts
    def add_contract(self, spec: ContractSpec) -> None:
        """Add (or replace, by conId) a listing and give it an empty quote."""
        self.contracts = [c for c in self.contracts if c.con_id != spec.con_id] + [spec]
        self.quotes.setdefault(spec.con_id, Quote())

    def match_contracts(
        self, symbol: str, con_id: int = 0, exchange: str = "", primary_exchange: str = ""
    ) -> list[ContractSpec]:
        """Listings a contract request resolves to: none (200), one, or several (ambiguous)."""
        if con_id:
            return [c for c in self.contracts if c.con_id == con_id]
        found = [c for c in self.contracts if c.symbol == symbol.upper()]
        if primary_exchange:
            return [c for c in found if c.primary_exchange == primary_exchange]
        if exchange and exchange != "SMART":
            return [c for c in found if c.primary_exchange == exchange]
        return [c for c in found if c.smart_qualifies]

    def contract_for(self, symbol: str) -> ContractSpec:
        """The single listing of ``symbol``; ScriptError if unknown or ambiguous."""
        matches = [c for c in self.contracts if c.symbol == symbol.upper()]
        if len(matches) != 1:
            raise ScriptError(f"symbol {symbol!r} matches {len(matches)} contracts; use con_id")
        return matches[0]

    # -------------------------------------------------------------------- quotes
    def set_quote(self, con_id: int, **fields: float | None) -> list[Event]:
        """Update quote fields of ``con_id``; returns the fills this triggers."""
        quote = self.quotes.setdefault(con_id, Quote())
        for name, value in fields.items():
            if not hasattr(quote, name):
                raise ScriptError(f"unknown quote field {name!r}")
            setattr(quote, name, value)
        return self.check_triggers(con_id)

    # -------------------------------------------------------------------- orders
    def next_order_id(self, client_id: int) -> int:
        """The nextValidId for ``client_id``: above every id it used before."""
        return self.max_order_id.get(client_id, 0) + 1

    def place(self, client_id: int, values: dict[str, str]) -> list[Event]:
        """Handle a decoded placeOrder: new order, modify, or an error event."""
        order_id = parse_int(values["orderId"])
        existing = self.orders.get((client_id, order_id))
        if existing is not None:
            return self._modify(existing, values)
        if order_id <= self.max_order_id.get(client_id, 0):
            return [ErrorEvent(client_id, order_id, 103, f"Duplicate order id: {order_id}")]
        self.max_order_id[client_id] = order_id
        try:
            order = self._new_order(client_id, order_id, values)
        except _OrderRejected as e:
            return [ErrorEvent(client_id, order_id, e.code, e.message)]
        if self.reject_rules:
            return self._reject_new(order, self.reject_rules.pop(0))
        self.orders[(client_id, order_id)] = order
        logger.info("new order %r", order)
        if not order.transmit:
            return []
        return self._transmit(order)

    def _new_order(self, client_id: int, order_id: int, values: dict[str, str]) -> OrderRecord:
        matches = self.match_contracts(
            values["symbol"], parse_int(values["conId"]), values["exchange"],
            values["primaryExchange"],
        )  # fmt: skip
        if len(matches) != 1:
            raise _OrderRejected(200, "No security definition has been found for the request")
        spec = matches[0]
        order = OrderRecord(
            client_id=client_id,
            order_id=order_id,
            perm_id=self._take_perm_id(),
            contract=spec,
            exchange=values["exchange"] or "SMART",
            action=values["action"],
            total_qty=parse_float(values["totalQuantity"], 0.0) or 0.0,
            order_type=values["orderType"],
            lmt_price=parse_float(values["lmtPrice"]),
            aux_price=parse_float(values["auxPrice"]),
            tif=values["tif"] or "DAY",
            account=values["account"] or self.accounts[0],
            order_ref=values["orderRef"],
            oca_group=values["ocaGroup"],
            oca_type=parse_int(values["ocaType"]),
            parent_id=parse_int(values["parentId"]),
            transmit=parse_bool(values["transmit"]),
            outside_rth=parse_bool(values["outsideRth"]),
        )
        self._validate(order)
        return order

    def _validate(self, order: OrderRecord) -> None:
        if order.action not in ("BUY", "SELL", "SSHORT"):
            raise _OrderRejected(201, f"Order rejected - reason: invalid action {order.action!r}")
        if order.total_qty <= 0:
            raise _OrderRejected(434, "The order size cannot be zero.")
        if order.account not in self.cash:
            raise _OrderRejected(201, f"Order rejected - reason: unknown account {order.account}")
        for price in (order.lmt_price, order.aux_price):
            if price is not None and not _on_tick(price, order.contract.min_tick):
                raise _OrderRejected(
                    110, "The price does not conform to the minimum price variation "
                    f"for this contract ({order.contract.min_tick})."
                )  # fmt: skip
        if order.order_type in ("LMT", "STP LMT", "LOC") and order.lmt_price is None:
            raise _OrderRejected(201, "Order rejected - reason: limit price missing")

    def _reject_new(self, order: OrderRecord, rule: RejectRule) -> list[Event]:
        order.apply("reject_inactive" if rule.status == OrderStatus.INACTIVE else "reject")
        self.orders[(order.client_id, order.order_id)] = order
        logger.info("rejected new order %r with %d", order, rule.code)
        return [
            ErrorEvent(order.client_id, order.order_id, rule.code, rule.message),
            StatusEvent(order.snapshot()),
        ]

    def _transmit(self, order: OrderRecord) -> list[Event]:
        if order.parent_id:
            parent = self.orders.get((order.client_id, order.parent_id))
            if parent is None:
                return self.reject(order, 201, "Order rejected - reason: parent order not found")
            if parent.is_done and parent.status != OrderStatus.FILLED:
                return self.reject(order, 201, "Order rejected - reason: parent order is done")
            if parent.status == OrderStatus.HELD:
                return self._transmit_family(parent)
            order.apply("transmit" if parent.status == OrderStatus.FILLED else "transmit_child")
            return [OrderEvent(order.snapshot()), *self.check_triggers(order.contract.con_id)]
        order.apply("transmit")
        return [OrderEvent(order.snapshot()), *self._transmit_held_children(order)]

    def _transmit_family(self, parent: OrderRecord) -> list[Event]:
        parent.apply("transmit")
        events: list[Event] = [OrderEvent(parent.snapshot())]
        events += self._transmit_held_children(parent, check=False)
        return events + self.check_triggers(parent.contract.con_id)

    def _transmit_held_children(self, parent: OrderRecord, check: bool = True) -> list[Event]:
        events: list[Event] = []
        for child in self.children(parent):
            if child.status == OrderStatus.HELD:
                child.apply("transmit_child")
                events.append(OrderEvent(child.snapshot()))
        return events + (self.check_triggers(parent.contract.con_id) if check else [])

    def _modify(self, order: OrderRecord, values: dict[str, str]) -> list[Event]:
        key = (order.client_id, order.order_id)
        if order.status == OrderStatus.FILLED:
            return [ErrorEvent(*key, 104, "Can't modify a filled order.")]
        if order.is_done:
            return [ErrorEvent(*key, 135, f"Can't find order with id = {order.order_id}")]
        if values["action"] != order.action or values["symbol"] != order.contract.symbol:
            return [ErrorEvent(*key, 105, "Order being modified does not match original order.")]
        old = order.snapshot()
        order.total_qty = parse_float(values["totalQuantity"], order.total_qty) or order.total_qty
        order.order_type = values["orderType"]
        order.lmt_price = parse_float(values["lmtPrice"])
        order.aux_price = parse_float(values["auxPrice"])
        order.tif = values["tif"] or order.tif
        order.order_ref = values["orderRef"]
        order.outside_rth = parse_bool(values["outsideRth"])
        try:
            self._validate(order)
        except _OrderRejected as e:
            self.orders[key] = old
            return [ErrorEvent(*key, e.code, e.message)]
        order.apply("modify")
        logger.info("modified order %r", order)
        if order.status == OrderStatus.HELD:
            order.transmit = parse_bool(values["transmit"])
            return self._transmit(order) if order.transmit else []
        return [OrderEvent(order.snapshot()), *self.check_triggers(order.contract.con_id)]

    def cancel(self, client_id: int, order_id: int) -> list[Event]:
        """Client cancel: 10147 if unknown, 161 if done, else Cancelled (+ children)."""
        order = self.orders.get((client_id, order_id))
        if order is None:
            msg = f"OrderId {order_id} that needs to be cancelled is not found."
            return [ErrorEvent(client_id, order_id, 10147, msg)]
        if order.is_done:
            msg = "Cancel attempted when order is not in a cancellable state."
            return [ErrorEvent(client_id, order_id, 161, msg)]
        return self._cancel_with_children(order, "Order Canceled - reason:")

    def global_cancel(self) -> list[Event]:
        """reqGlobalCancel: cancel every working or held order of every client."""
        events: list[Event] = []
        for order in sorted(self.orders.values(), key=lambda o: o.order_id):
            if not order.is_done:
                events += self._cancel_one(order, "Order Canceled - reason:Global cancel")
        return events

    def _cancel_with_children(self, order: OrderRecord, reason: str) -> list[Event]:
        events = self._cancel_one(order, reason)
        for child in self.children(order):
            if not child.is_done:
                events += self._cancel_one(child, reason)
        return events

    def _cancel_one(self, order: OrderRecord, reason: str) -> list[Event]:
        was_held = order.status == OrderStatus.HELD
        order.apply("cancel")
        order.completed_time = self.time_text()
        logger.info("cancelled order %r", order)
        if was_held:
            return []
        return [
            StatusEvent(order.snapshot()),
            ErrorEvent(order.client_id, order.order_id, 202, reason),
        ]

    def reject(
        self, order: OrderRecord, code: int, message: str, inactive: bool = False
    ) -> list[Event]:
        """Reject a working or held order: error ``code``, then orderStatus Cancelled/Inactive.

        Raises
        ------
        ScriptError
            The order is already done (the transition table has no such move).
        """
        order.apply("reject_inactive" if inactive else "reject")
        logger.info("rejected order %r with %d", order, code)
        events: list[Event] = [
            ErrorEvent(order.client_id, order.order_id, code, message),
            StatusEvent(order.snapshot()),
        ]
        for child in self.children(order):
            if not child.is_done:
                events += self._cancel_one(child, "Order Canceled - reason:parent rejected")
        return events

    def drop_held(self, client_id: int) -> None:
        """On disconnect TWS forgets held (transmit=0) orders of that client."""
        for key, order in list(self.orders.items()):
            if order.client_id == client_id and order.status == OrderStatus.HELD:
                logger.info("dropping held order %r on disconnect", order)
                del self.orders[key]

    def children(self, parent: OrderRecord) -> list[OrderRecord]:
        """Bracket children of ``parent`` (same client, ``parentId``), by orderId."""
        return sorted(
            (o for o in self.orders.values()
             if o.client_id == parent.client_id and o.parent_id == parent.order_id),
            key=lambda o: o.order_id,
        )  # fmt: skip

    def awaiting_parent(self, order: OrderRecord) -> bool:
        """True for a bracket child whose parent has not filled yet."""
        if not order.parent_id:
            return False
        parent = self.orders.get((order.client_id, order.parent_id))
        return parent is not None and parent.status != OrderStatus.FILLED

    def find(self, order_id: int, client_id: int | None = None) -> OrderRecord:
        """The order with ``order_id`` (of ``client_id`` if given); ScriptError if not unique."""
        found = [
            o for (cid, oid), o in self.orders.items()
            if oid == order_id and (client_id is None or cid == client_id)
        ]  # fmt: skip
        if len(found) != 1:
            raise ScriptError(f"order id {order_id} matches {len(found)} orders; pass client_id")
        return found[0]

    # ---------------------------------------------------------------- accounting
    def time_text(self) -> str:
        """Execution time as TWS writes it: ``YYYYMMDD HH:MM:SS UTC``."""
        return self.clock().astimezone(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")

    def _take_perm_id(self) -> int:
        self._next_perm_id += 1
        return self._next_perm_id

    def next_exec_id(self) -> str:
        """A unique execId shaped like real ones (``0000f4ce.0000002a.01.01``).

        The first part is random per book, so two gateway instances (a restarted
        fake) never hand out the same id, as real TWS never does.
        """
        self._exec_seq += 1
        return f"{self._exec_prefix}.{self._exec_seq:08x}.01.01"

    def commission(self, shares: float) -> float:
        """Commission of one fill of ``shares`` shares."""
        return round(max(self.min_commission, shares * self.commission_per_share), 4)

    def position(self, account: str, spec: ContractSpec) -> Position:
        """The (possibly new, flat) position of ``spec`` in ``account``."""
        key = (account, spec.con_id)
        if key not in self.positions:
            self.positions[key] = Position(spec, account)
        return self.positions[key]

    def account_values(self, account: str) -> list[tuple[str, str, str]]:
        """Account values (key, value, currency) derived from cash and marked positions."""
        book = self
        cash = book.cash[account]
        gross = sum(
            abs(p.quantity) * book.quotes[p.contract.con_id].mark(p.avg_cost)
            for p in book.positions.values() if p.account == account
        )  # fmt: skip
        net = sum(
            p.quantity * book.quotes[p.contract.con_id].mark(p.avg_cost)
            for p in book.positions.values() if p.account == account
        ) + cash  # fmt: skip
        money = {
            "NetLiquidation": net, "TotalCashValue": cash, "GrossPositionValue": gross,
            "AvailableFunds": net, "ExcessLiquidity": net, "BuyingPower": 4 * net,
            "EquityWithLoanValue": net, "InitMarginReq": 0.0, "MaintMarginReq": 0.0,
        }  # fmt: skip
        rows = [("AccountCode", account, ""), ("AccountType", "INDIVIDUAL", ""),
                ("Currency", "USD", "USD")]  # fmt: skip
        rows += [(key, f"{value:.2f}", "USD") for key, value in money.items()]
        rows += [("CashBalance", f"{cash:.2f}", "BASE"), ("CashBalance", f"{cash:.2f}", "USD")]
        return rows

    def check_triggers(self, con_id: int) -> list[Event]:
        """Fill every working order of ``con_id`` the fill policy says is executable now."""
        return auto_fill_events(self, con_id)


class _OrderRejected(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _on_tick(price: float, tick: float) -> bool:
    if tick <= 0:
        return True
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6
