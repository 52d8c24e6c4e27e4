"""Interactive Brokers adapter: :class:`IBBroker`, the only importer of the IB client library.

Library choice
--------------
``ib_async`` (the maintained fork, the project's dependency) is imported when
present, else ``ib_insync`` 0.9.86 (same API). :data:`LIBRARY` names the one in
use. Never install both in one venv: they share an ``eventkit`` package. Their
differences are absorbed here and in the private ``_ib_*`` helpers (contract
details instead of ``qualifyContracts``; ib_async's ``ValidationError`` status
and its cancel-on-202 handling).

The One Rule (from ib_insync): the synchronous API runs the client's asyncio
loop *in the calling thread*. An ``IBBroker`` therefore belongs to one thread
(the trader's); it keeps no library object across calls that a reconnect could
invalidate (Trade and Ticker objects die with their socket), and always looks
orders up again by ``orderRef``.

Event flow
----------
Domain events are produced by a *sweep* in :meth:`IBBroker.poll_events`: every
execution not yet reported becomes a :class:`Fill` (once its commission report
arrived, or after a grace period), and every order whose status changed becomes
an :class:`OrderStatusEvent`. The library's error event adds rejections (201,
110, 103, 200, ...) with their IB message. A sweep sees the freshly synced book
after a reconnect, so nothing that happened while the socket was down is lost,
and the journal de-duplicates replays by ``exec_id``.

Exactly-once
------------
:meth:`IBBroker.place` never sends an ``orderRef`` the broker already knows
(open, completed or executed this session): it returns the existing order's id
instead. After every reconnect the ``on_reconnect`` hook runs (the trader
session passes the journal's reconcile) before any further call proceeds.

Gaps and sessions
-----------------
The first connect goes through the same bounded backoff as every reconnect
(:class:`ReconnectPolicy`), including a socket drop during the start-up sync and
error 326 (client id in use). After a connectivity notice 1101/1102 (the socket
stayed open but TWS lost IB) executions of the session day, completed orders and
open orders are requested again, because fills that happened in the gap are not
always pushed; the ``on_reconnect`` hook then journals them before any new
order. Orders are bound to the client id that placed them: open orders of other
API clients are visible only through :meth:`IBBroker.foreign_working_orders`,
never treated as this session's own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from autotrader.broker import _ib_translate as tr
from autotrader.broker._ib_contracts import ContractBook
from autotrader.broker._ib_market import MarketData, PrevClose
from autotrader.broker._ib_session import (
    MAX_MESSAGES_PER_SECOND,
    HistoricalPacer,
    ReconnectPolicy,
    is_live_session,
)
from autotrader.broker.base import Broker, BrokerEvent
from autotrader.domain.errors import BrokerError
from autotrader.domain.orders import Order, OrderStatus
from autotrader.domain.records import (
    Account,
    Fill,
    OrderRequest,
    OrderStatusEvent,
    Position,
    Quote,
    SessionIdentity,
    Side,
)

try:
    import ib_async as _lib

    LIBRARY = "ib_async"
except ImportError:  # pragma: no cover - exercised in the separate ib_insync venv
    import ib_insync as _lib  # type: ignore[no-redef]  # the same API, the other package

    LIBRARY = "ib_insync"

LIBRARY_VERSION: str = getattr(_lib, "__version__", "unknown")

logger = logging.getLogger(__name__)

_UNACKED = frozenset({"PendingSubmit", "ApiPending"})
_NEW_YORK = ZoneInfo("America/New_York")
# what a blocking request raises when the socket dies or the request times out
_REQUEST_FAILURES = (ConnectionError, TimeoutError, OSError)


class ContractInfo(NamedTuple):
    """A qualified stock: IB conId, listing exchange, minimum tick and the attempts made."""

    symbol: str
    con_id: int
    primary_exchange: str
    min_tick: float
    attempts: tuple[str, ...]


_Part = TypeVar("_Part")


def _connected(part: _Part | None, what: str) -> _Part:
    """``part`` of the session, set by :meth:`IBBroker.connect`; before that a BrokerError."""
    if part is None:
        raise BrokerError(f"IB session not connected: no {what} yet")
    return part


def _release_failed_attempt(error: BaseException | None) -> None:
    # A failed library connect leaves its task (exception never retrieved) in a reference
    # cycle through the tracebacks of the error chain. Dropping the tracebacks frees it
    # here, by reference counting, instead of in a later garbage collection at a random
    # point (on CPython 3.11 a finalizer that runs inside ast.parse makes it raise
    # SystemError). No gc.collect(): in the GUI this runs on a worker thread, and a
    # collection there would finalize Tk objects off the Tk thread.
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def _ensure_thread_loop() -> None:
    # the sync API needs an event loop bound to this thread (the GUI runs the trader in
    # a worker thread, which has none by default)
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


class IBBroker(Broker):
    """A :class:`~autotrader.broker.base.Broker` on TWS / IB Gateway through ib_async or ib_insync.

    Parameters
    ----------
    host, port, client_id : TWS/Gateway endpoint; the same ``client_id`` is used on
        every reconnect (open orders are bound to it).
    account : account to trade; empty = the first managed account.
    connect_timeout_s : connect + startup-sync timeout.
    request_timeout_s : ``IB.RequestTimeout`` for blocking requests.
    live_armed : allow orders on a live session (``trading.live_armed``, a runtime
        override only). Without it :meth:`place` refuses on live ports (7496,
        4001) and on non-paper accounts.
    use_delayed : ask for delayed data when live data is not permitted.
    prev_close : ``symbol -> float | None``, last-resort price (Polygon previous close).
    on_reconnect : called with the broker after every successful reconnect and after
        every resync that follows a 1101/1102 notice, before the call that triggered
        it continues (the trader session reconciles the journal here).
    reconnect : backoff policy (:class:`ReconnectPolicy`) of the first connect and of
        every reconnect.
    ack_timeout_s : how long :meth:`place` waits for the order acknowledgement.
    fill_grace_s : a fill without commission report is reported after this long.
    sleep, rng : the backoff's sleep and jitter source (injectable for tests).

    Examples
    --------
    >>> broker = IBBroker("127.0.0.1", 7497, client_id=7)
    >>> broker.is_live, broker.live_armed
    (False, False)
    """

    supports_modify = True

    def __init__(self, host: str = "127.0.0.1", port: int = 7497, client_id: int = 1, *,
                 account: str = "", connect_timeout_s: float = 10.0,
                 request_timeout_s: float = 10.0, live_armed: bool = False,
                 use_delayed: bool = True, prev_close: PrevClose | None = None,
                 on_reconnect: Callable[[IBBroker], object] | None = None,
                 reconnect: ReconnectPolicy | None = None, ack_timeout_s: float = 2.0,
                 fill_grace_s: float = 2.0, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        super().__init__()
        self.host, self.port, self.client_id = host, port, client_id
        self.account_id = account
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.live_armed = live_armed
        self.use_delayed = use_delayed
        self.prev_close = prev_close
        self.on_reconnect = on_reconnect
        self.reconnect_policy = reconnect or ReconnectPolicy()
        self.ack_timeout_s = ack_timeout_s
        self.fill_grace_s = fill_grace_s
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.is_live = is_live_session(port, [])
        self.reconnects = 0
        self.errors: deque[tuple[int, int, str]] = deque(maxlen=500)
        self._ib: Any = None
        self._contracts: ContractBook | None = None
        self._market: MarketData | None = None
        self._pacer: HistoricalPacer | None = None
        self._lost = False
        self._resync = False
        self._client_id_in_use = False
        self._completed: dict[int, str] = {}
        self._reported: dict[str, str] = {}
        self._fills_reported: set[str] = set()
        self._fills_seen: dict[str, float] = {}
        self._order_errors: dict[int, tuple[int, str]] = {}
        self._open_orders_seen: dict[int, int] = {}

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> IBBroker:
        """Build from a :class:`autotrader.config.Settings` (``connection`` + ``trading``)."""
        conn = settings.connection
        kwargs.setdefault("reconnect", ReconnectPolicy(
            base_delay_s=conn.reconnect_base_delay_s, max_delay_s=conn.reconnect_max_delay_s,
            max_attempts=conn.connect_attempts))
        return cls(conn.host, conn.port, conn.client_id, account=conn.account_id,
                   connect_timeout_s=conn.connect_timeout_s,
                   live_armed=settings.trading.live_armed,
                   use_delayed=conn.use_delayed_if_no_realtime, **kwargs)

    def __repr__(self) -> str:
        return (f"IBBroker({self.host}:{self.port} client {self.client_id}, {LIBRARY}, "
                f"{'LIVE' if self.is_live else 'paper'})")

    # -- session -----------------------------------------------------------------------------
    def connect(self) -> None:
        """Connect and run the library's startup sync (positions, orders, executions).

        A failed attempt (refused, timed out, socket dropped during the sync,
        client id in use) is retried under the reconnect policy; after the last
        attempt :class:`BrokerError` names the endpoint, the attempts and the cause.
        """
        if self._ib is not None and self._ib.isConnected():
            return
        _ensure_thread_loop()
        ib = _lib.IB()
        ib.RequestTimeout = self.request_timeout_s
        ib.client.MaxRequests = MAX_MESSAGES_PER_SECOND
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        ib.openOrderEvent += self._on_open_order
        self._ib = ib
        self._contracts = ContractBook(_lib, ib.reqContractDetails)
        self._market = MarketData(ib.reqTickers, ib.reqMarketDataType, self.use_delayed,
                                  self.prev_close)
        self._pacer = HistoricalPacer(sleep=ib.sleep)
        try:
            self._open_with_retry("connect")
        except BrokerError:
            self._ib = None
            raise

    def _open_with_retry(self, purpose: str) -> int:
        last: BrokerError | None = None
        for attempt, delay in enumerate(self.reconnect_policy.delays(self.rng), start=1):
            if delay > 0:
                self.sleep(delay)
            if self._ib.isConnected():
                self._ib.disconnect()
            if attempt > 1 or purpose != "connect":
                logger.warning("%r %s attempt %d", self, purpose, attempt)
            try:
                self._open()
            except BrokerError as e:
                logger.warning("%r %s attempt %d failed: %s", self, purpose, attempt, e)
                last = e
                _release_failed_attempt(e)
                continue
            return attempt
        raise BrokerError(f"{purpose} to TWS/Gateway at {self.host}:{self.port} (client id "
                          f"{self.client_id}) failed after {self.reconnect_policy.max_attempts} "
                          f"attempts: {last}") from last

    def _open(self) -> None:
        self._client_id_in_use = False
        try:
            self._ib.connect(self.host, self.port, clientId=self.client_id,
                             timeout=self.connect_timeout_s, account=self.account_id)
        except _REQUEST_FAILURES as e:
            if self._client_id_in_use:
                raise BrokerError(
                    f"client id {self.client_id} is already in use at {self.host}:{self.port} "
                    "(IB 326): another API session holds it (a second trader, the GUI, or a "
                    "session TWS has not released yet); stop that session or set "
                    "connection.client_id to a free id") from e
            raise BrokerError(f"cannot connect to TWS/Gateway at {self.host}:{self.port} "
                              f"(client id {self.client_id}): {e!r}") from e
        self._lost = False
        self._resync = False
        self._completed.clear()  # the startup sync rebuilt every trade
        accounts = list(self._ib.managedAccounts())
        if not self.account_id and accounts:
            self.account_id = accounts[0]
        self.is_live = is_live_session(self.port, accounts)
        logger.info("%r connected: accounts %s, %d open orders, %d executions", self,
                    accounts, len(self._ib.openTrades()), len(self._ib.fills()))

    def disconnect(self) -> None:
        """Detach the disconnect handler and close the TWS session (idempotent).

        An intended disconnect is therefore never taken for a lost connection.
        """
        if self._ib is not None:
            ib, self._ib = self._ib, None
            ib.disconnectedEvent -= self._on_disconnected
            ib.disconnect()
            logger.info("%r disconnected", self)

    @property
    def connected(self) -> bool:
        """True while the socket to TWS/Gateway is up."""
        return self._ib is not None and self._ib.isConnected() and not self._lost

    def session(self) -> SessionIdentity:
        """``ib``, the traded account, paper/live and this client id (after :meth:`connect`)."""
        return SessionIdentity("ib", self.account_id, self.is_live, self.client_id)

    def wait(self, seconds: float) -> None:
        """Sleep while running the client's event loop (use instead of ``time.sleep``).

        A connection lost meanwhile is re-established here (and the journal
        reconciled through ``on_reconnect``) rather than at the next call; a
        reconnect that fails after every attempt is logged and retried on the
        next call.
        """
        if self._ib is None:
            self.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._pump(min(left, 1.0))
            if self._lost or self._resync:
                try:
                    self._ensure()
                except BrokerError as e:
                    logger.error("%r: %s", self, e)
                    self.sleep(min(max(deadline - time.monotonic(), 0.0), 1.0))

    def _ensure(self) -> Any:
        if self._ib is None:
            raise BrokerError("IB broker is not connected")
        self._pump()
        if self._lost or not self._ib.isConnected():
            self._reconnect()
        elif self._resync:
            self._resync_book()
        return self._ib

    def _pump(self, seconds: float = 0.0) -> None:
        try:
            self._ib.sleep(seconds)
        except ConnectionError as e:
            logger.warning("connection error while waiting: %s", e)
            self._lost = True

    def _reconnect(self) -> None:
        attempt = self._open_with_retry("reconnect")
        self.reconnects += 1
        self._forget_working()
        _connected(self._market, "market data").resubscribe()
        logger.warning("%r reconnected (attempt %d); reconciling before any new order",
                       self, attempt)
        if self.on_reconnect is not None:
            self.on_reconnect(self)

    def _resync_book(self) -> None:
        # 1101/1102: the socket stayed up, but fills of the gap may never be pushed
        self._resync = False
        logger.warning("%r: IB connectivity restored; requesting the day's executions, "
                       "completed and open orders before any new order", self)
        _connected(self._market, "market data").resubscribe()
        since = dt.datetime.now(_NEW_YORK).replace(hour=0, minute=0, second=0, microsecond=0)
        executions = _lib.ExecutionFilter(acctCode=self.account_id, time=since.astimezone(
            dt.timezone.utc).strftime("%Y%m%d-%H:%M:%S"))
        try:
            fills = self._ib.reqExecutions(executions)
            completed = self._ib.reqCompletedOrders(False)
            self._ib.reqOpenOrders()
        except _REQUEST_FAILURES as e:
            logger.warning("%r: resync failed (%r); reconnecting", self, e)
            self._lost = True
            self._reconnect()
            return
        self._completed.update({t.order.permId: t.orderStatus.status for t in completed
                                if t.order.permId})
        self._forget_working()
        logger.warning("%r resynced: %d executions today, %d completed orders", self,
                       len(fills), len(completed))
        if self.on_reconnect is not None:
            self.on_reconnect(self)

    def _forget_working(self) -> None:
        # re-report every working order from the fresh book; terminal reports stand (a
        # Rejected must not be followed by the library's local Cancelled)
        self._reported = {k: v for k, v in self._reported.items() if v in OrderStatus.DONE}

    def _on_disconnected(self) -> None:
        logger.warning("%r: socket closed; will reconnect on the next call", self)
        self._lost = True

    def _on_open_order(self, trade: Any) -> None:
        oid = trade.order.orderId
        self._open_orders_seen[oid] = self._open_orders_seen.get(oid, 0) + 1

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        rule = tr.rule_for(code)
        self.errors.append((code, req_id, message))
        if rule.kind == "info":
            return
        if not rule.kind.startswith("order_"):
            logger.warning("IB %d (%s) req %d: %s", code, rule.kind, req_id, message)
        if rule.kind == "market_data" and contract is not None and self._market is not None:
            self._market.note_error(contract.symbol, code)
        elif rule.kind == "connectivity_lost":
            self._lost = True
        elif rule.kind in ("data_lost", "connectivity_restored"):
            self._resync = True
        elif rule.kind == "client_id":
            self._client_id_in_use = True
        elif rule.kind.startswith("order_"):
            self._order_error(req_id, code, message, rule)

    def _order_error(self, order_id: int, code: int, message: str, rule: tr.ErrorRule) -> None:
        trade = self._trade_by_id(order_id)
        if trade is None:
            logger.debug("IB %d req %d (not an order): %s", code, order_id, message)
            return
        logger.warning("IB %d (%s) on %s: %s", code, rule.kind, trade.order.orderRef, message)
        self._order_errors[order_id] = (code, message)
        ref = trade.order.orderRef
        # ib_async has already marked a refused new order Cancelled and a refused modify
        # ValidationError; ib_insync leaves both as they were
        acknowledged = trade.orderStatus.status in ("Submitted", "PreSubmitted",
                                                    "ValidationError") \
            or self._reported.get(ref) not in (None, OrderStatus.PENDING_SUBMIT)
        if rule.status is None or (code in (110, 200) and acknowledged):
            return  # a failed modify/cancel leaves the order working; the caller is told
        if self._reported.get(ref) in OrderStatus.DONE:
            return
        self._reported[ref] = rule.status
        self._emit(OrderStatusEvent(ref, rule.status, str(order_id), f"IB {code}: {message}",
                                    dt.datetime.now(dt.timezone.utc)))

    # -- queries -----------------------------------------------------------------------------
    def account(self) -> Account:
        """Return equity (``NetLiquidation``) and cash (``TotalCashValue``), USD else BASE.

        Raises
        ------
        BrokerError
            If the session is not connected or either value is missing or not a number.
        """
        ib = self._ensure()
        values = {(v.tag, v.currency): v.value for v in ib.accountValues(self.account_id)}
        try:
            equity = float(values.get(("NetLiquidation", "USD"))
                           or values[("NetLiquidation", "BASE")])
            cash = float(values.get(("TotalCashValue", "USD"))
                         or values[("TotalCashValue", "BASE")])
        except (KeyError, TypeError, ValueError) as e:
            raise BrokerError(f"account values of {self.account_id} are incomplete: {e}") from e
        return Account(equity=equity, cash=cash)

    def positions(self) -> dict[str, Position]:
        """Return the long stock positions of the account by symbol, sorted by symbol."""
        ib = self._ensure()
        out: dict[str, Position] = {}
        for p in ib.positions(self.account_id):
            if p.contract.secType == "STK" and p.position > 0:
                out[p.contract.symbol] = Position(p.contract.symbol, int(p.position),
                                                  float(p.avgCost))
        return dict(sorted(out.items()))

    def orders(self) -> list[Order]:
        """Return every order of the session, working and completed (see :class:`Broker`)."""
        self._ensure()
        return self._orders()

    def executions(self) -> list[Fill]:
        """Return every execution of the session, each with its ``order_ref``."""
        self._ensure()
        return self._executions()

    def foreign_working_orders(self) -> dict[str, int]:
        """``order_ref -> client id`` of working orders of other API clients (reqAllOpenOrders).

        TWS reports these once and does not keep them in sync, and only their
        own client may cancel or modify them: they are never part of
        :meth:`orders` (this session's book).
        """
        ib = self._ensure()
        try:
            trades = ib.reqAllOpenOrders()
        except _REQUEST_FAILURES as e:
            raise BrokerError(f"open orders of all clients not available: {e!r}") from e
        return {t.order.orderRef: t.order.clientId for t in trades
                if t.order.orderRef and t.order.clientId not in (0, self.client_id)
                and not t.isDone()}

    def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Snapshot quotes: live, else delayed, else the previous close (see ``_ib_market``)."""
        self._ensure()
        book = _connected(self._contracts, "contract book")
        contracts: dict[str, Any] = {}
        for symbol in symbols:
            try:
                contracts[symbol] = book.resolve(symbol).contract
            except BrokerError as e:
                logger.warning("no quote for %s: %s", symbol, e)
        return _connected(self._market, "market data").snapshot(contracts)

    def qualify(self, symbol: str, primary_exchange: str | None = None) -> ContractInfo:
        """Qualify (and cache) ``symbol`` as a SMART-routed USD stock; see ``_ib_contracts``."""
        self._ensure()
        resolved = _connected(self._contracts, "contract book").resolve(symbol, primary_exchange)
        contract = resolved.contract
        return ContractInfo(symbol, int(contract.conId), contract.primaryExchange,
                            resolved.min_tick, resolved.attempts)

    @property
    def data_modes(self) -> dict[str, str]:
        """Which source priced each symbol last (``live``, ``delayed``, ``prev_close``)."""
        return dict(self._market.modes) if self._market is not None else {}

    def history(self, symbol: str, duration: str = "30 D", bar_size: str = "1 day",
                what: str = "TRADES") -> list[tuple[str, float, float, float, float, float]]:
        """Historical bars ``(date, open, high, low, close, volume)``, paced per IB's limits."""
        ib = self._ensure()
        contract = _connected(self._contracts, "contract book").resolve(symbol).contract
        key = f"{symbol}|{duration}|{bar_size}|{what}"
        _connected(self._pacer, "history pacer").acquire(symbol, key)
        bars = ib.reqHistoricalData(contract, endDateTime="", durationStr=duration,
                                    barSizeSetting=bar_size, whatToShow=what, useRTH=True)
        return [(str(b.date), b.open, b.high, b.low, b.close, b.volume) for b in bars or []]

    # -- order entry -------------------------------------------------------------------------
    def place(self, request: OrderRequest) -> str:
        """Transmit one order; returns the IB orderId as text.

        A bracket child (``parent_ref`` set) is attached to its working or filled
        parent with ``parentId`` and its OCA group. An ``order_ref`` the broker
        already knows is never sent again: its existing id is returned.
        """
        self._ensure()
        self._check_armed(request.order_ref)
        existing = self._known(request.order_ref)
        if existing is not None:
            return existing
        parent_id = 0
        if request.parent_ref is not None:
            parent = self._trade_by_ref(request.parent_ref)
            if parent is None or parent.orderStatus.status in ("Cancelled", "ApiCancelled",
                                                               "Inactive"):
                raise BrokerError(f"{request.order_ref}: parent {request.parent_ref} is not "
                                  "working at the broker")
            parent_id = parent.order.orderId
        trade = self._send(request, parent_id=parent_id, transmit=True)
        self._await_ack(trade)
        return str(trade.order.orderId)

    def place_bracket(self, parent: OrderRequest, take_profit: OrderRequest,
                      stop_loss: OrderRequest) -> list[str]:
        """Transmit a bracket atomically: parent and take-profit held, the stop transmits all.

        The children share an OCA group (``ocaType`` 1) so a fill of one cancels
        the other. If the connection drops before the stop is sent, TWS drops
        the held parent and take-profit: nothing is live and the refs stay
        unknown to the broker.
        """
        self._ensure()
        self._check_armed(parent.order_ref)
        refs = [parent.order_ref, take_profit.order_ref, stop_loss.order_ref]
        known = [self._known(ref) for ref in refs]
        if all(k is not None for k in known):
            return [str(k) for k in known]
        if any(k is not None for k in known):
            raise BrokerError(f"bracket {parent.order_ref} is partly at the broker: "
                              f"{dict(zip(refs, known))}")
        first = self._send(parent, parent_id=0, transmit=False)
        pid = first.order.orderId
        second = self._send(take_profit, parent_id=pid, transmit=False)
        last = self._send(stop_loss, parent_id=pid, transmit=True)
        self._await_ack(last)
        return [str(t.order.orderId) for t in (first, second, last)]

    def cancel(self, order_ref: str) -> None:
        """Request cancellation of ``order_ref``; a finished order is left alone (logged).

        Raises
        ------
        BrokerError
            If the broker does not know ``order_ref``.
        """
        ib = self._ensure()
        trade = self._trade_by_ref(order_ref)
        if trade is None:
            raise BrokerError(f"cannot cancel {order_ref}: unknown to the broker")
        if trade.isDone():
            logger.info("cancel of %s ignored: already %s", order_ref, trade.orderStatus.status)
            return
        ib.cancelOrder(trade.order)
        logger.info("cancel sent for %s (order %d)", order_ref, trade.order.orderId)

    def modify(self, order_ref: str, *, quantity: int | None = None,
               limit_price: float | None = None, stop_price: float | None = None) -> None:
        """Change a working order in place (same orderId), e.g. a stop replacement.

        One order is changed, never a cancel plus a new order, so a position
        never has two live exits. Raises :class:`BrokerError` when IB refuses
        the change (104, 105, 110, ...) within the acknowledgement timeout.
        """
        ib = self._ensure()
        self._check_armed(order_ref)
        trade = self._trade_by_ref(order_ref)
        if trade is None or trade.isDone():
            raise BrokerError(f"cannot modify {order_ref}: not a working order")
        order, side = trade.order, Side(trade.order.action)
        tick = _connected(self._contracts, "contract book").resolve(trade.contract.symbol).min_tick
        if quantity is not None:
            if quantity < trade.orderStatus.filled:
                raise BrokerError(f"cannot modify {order_ref} below its filled quantity")
            order.totalQuantity = quantity
        if limit_price is not None:
            order.lmtPrice = tr.round_price(limit_price, tick, side, "limit")
        if stop_price is not None:
            order.auxPrice = tr.round_price(stop_price, tick, side, "stop")
        order.transmit = True
        self._order_errors.pop(order.orderId, None)
        seen = self._open_orders_seen.get(order.orderId, 0)
        ib.placeOrder(trade.contract, order)
        # acknowledged by an openOrder echo, refused by an error: wait for either
        self._wait(lambda: order.orderId in self._order_errors
                   or self._open_orders_seen.get(order.orderId, 0) > seen, self.ack_timeout_s)
        if order.orderId in self._order_errors:
            code, text = self._order_errors[order.orderId]
            raise BrokerError(f"modify of {order_ref} refused: IB {code} {text}")
        logger.info("modified %s: qty=%s limit=%s stop=%s", order_ref, quantity,
                    order.lmtPrice if limit_price else None,
                    order.auxPrice if stop_price else None)

    def _check_armed(self, ref: str) -> None:
        if self.is_live and not self.live_armed:
            raise BrokerError(f"{ref}: refusing to trade on a LIVE session ({self.host}:"
                              f"{self.port}, account {self.account_id}) without "
                              "trading.live_armed (autotrader run --arm-live)")

    def _known(self, order_ref: str) -> str | None:
        trade = self._trade_by_ref(order_ref)
        if trade is not None:
            logger.warning("%s is already at the broker as order %d: not sent again",
                           order_ref, trade.order.orderId)
            return str(trade.order.orderId)
        if any(f.order_ref == order_ref for f in self._executions()):
            logger.warning("%s already has executions at the broker: not sent again", order_ref)
            return ""
        return None

    def _send(self, request: OrderRequest, *, parent_id: int, transmit: bool) -> Any:
        resolved = _connected(self._contracts, "contract book").resolve(request.symbol)
        order = tr.build_order(_lib, request, resolved.min_tick, parent_id=parent_id,
                               transmit=transmit, account=self.account_id)
        try:
            trade = self._ib.placeOrder(resolved.contract, order)
        except ConnectionError as e:
            self._lost = True
            raise BrokerError(f"{request.order_ref} not sent: {e}") from e
        logger.info("placed %s as order %d (%s %s %s, transmit=%s, parent=%d)",
                    request.order_ref, order.orderId, request.side.value, request.quantity,
                    request.symbol, transmit, parent_id)
        return trade

    def _await_ack(self, trade: Any) -> None:
        self._wait(lambda: trade.orderStatus.status not in _UNACKED or trade.isDone(),
                   self.ack_timeout_s)

    def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and not self._lost and time.monotonic() < deadline:
            self._pump(0.02)

    # -- translation and the event sweep -----------------------------------------------------
    def _trades(self) -> list[Any]:
        # this client's orders plus completed orders (clientId 0: the completed-order
        # message carries none); open orders of other clients are not ours to manage
        return [t for t in self._ib.trades() if t.order.clientId in (0, self.client_id)]

    def _trade_by_ref(self, order_ref: str) -> Any:
        matches = [t for t in self._trades() if t.order.orderRef == order_ref]
        return max(matches, key=lambda t: (not t.isDone(), t.order.orderId)) if matches else None

    def _trade_by_id(self, order_id: int) -> Any:
        for trade in self._ib.trades():
            if trade.order.orderId == order_id and trade.order.clientId in (0, self.client_id):
                return trade
        return None

    def _executions(self) -> list[Fill]:
        return tr.book_executions(self._trades(), self._ib.fills())

    def _orders(self) -> list[Order]:
        return tr.book_orders(self._trades(), self._ib.fills(), self._reported,
                              self._completed)

    def poll_events(self) -> list[BrokerEvent]:
        """Sweep executions and order statuses into events, then drain the queue."""
        self._ensure()
        self._sweep()
        return super().poll_events()

    def _sweep(self) -> None:
        now = time.monotonic()
        for fill in self._executions():
            if fill.exec_id in self._fills_reported:
                continue
            seen = self._fills_seen.setdefault(fill.exec_id, now)
            if fill.commission > 0 or now - seen >= self.fill_grace_s:
                self._fills_reported.add(fill.exec_id)
                self._emit(fill)
        stamp = dt.datetime.now(dt.timezone.utc)
        for order in self._orders():
            previous = self._reported.get(order.order_ref)
            if previous in OrderStatus.DONE or order.status == previous \
                    or order.status == OrderStatus.PENDING_SUBMIT:
                continue
            self._reported[order.order_ref] = order.status
            self._emit(OrderStatusEvent(order.order_ref, order.status, order.broker_order_id,
                                        "", stamp))
