"""``FakeGateway``: a TWS / IB Gateway on loopback speaking the real socket protocol (v176).

The gateway runs an asyncio server in its own thread with its own event loop. Every
scripting method (``fill``, ``set_price``, ``disconnect_clients``, ...) is thread-safe: it
runs the change on the gateway loop and waits for it, so when it returns the frames have
been queued on the sockets. State that must survive reconnects (orders, executions,
positions, cash) lives in one :class:`~.book.OrderBook`; each connection only holds its
subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from . import frames
from .book import OrderBook, utc_now
from .codec import SERVER_VERSION, Message
from .errors import ScriptError
from .events import ErrorEvent, Event, FillEvent, OrderEvent, PositionEvent, StatusEvent
from .fills import fill_order
from .model import (
    DEFAULT_PRICES,
    ContractSpec,
    Execution,
    FillPolicy,
    OrderRecord,
    OrderStatus,
    Position,
    RejectRule,
    default_contracts,
)
from .session import ClientSession

logger = logging.getLogger(__name__)
T = TypeVar("T")
_CALL_TIMEOUT_S = 10.0


class ClientRequest(NamedTuple):
    """One decoded client message, as recorded in the gateway's request log."""

    client_id: int | None
    name: str
    msg_id: int
    values: dict[str, str]
    fields: tuple[str, ...]


class FakeGateway:
    """A fake TWS for tests and local demos; real ib_async / ib_insync clients connect to it.

    Parameters
    ----------
    host, port : str, int
        Where to listen; ``port=0`` picks a free ephemeral port (read ``.port`` after start).
    server_version : int
        Announced in the handshake. Only 176 is implemented (the version ib_insync 0.9.86
        always negotiates, so the fake reproduces the production wire format).
    accounts : iterable of str
        Managed accounts (the first is the default order account).
    contracts : iterable of ContractSpec, optional
        The security master; defaults to :func:`~.model.default_contracts`.
    cash : float
        Starting USD cash per account.
    fill_policy : FillPolicy, optional
        Automatic fills (market on arrival, marketable limits, stops on ticks).
    live_permission : bool
        False: every symbol lacks live market data permission (see ``no_permission_code``).
    no_permission_code : int
        Error sent for a live reqMktData without permission (354); after
        ``reqMarketDataType(3)`` the same request gets marketDataType 3, warning 10167 and
        delayed ticks (66/67/68...).
    max_messages_per_second : int, optional
        Pacing limit per connection (real TWS: 50). Each message over the limit within a
        sliding second gets error 100; after ``pacing_violations_before_close`` violations
        the socket is closed. None (default) disables pacing.
    clock : callable
        Aware "now" used for execution times and currentTime.
    prices : dict, optional
        Initial last price by symbol (bid/ask one tick around it); defaults to
        :data:`~.model.DEFAULT_PRICES`.

    Examples
    --------
    >>> with FakeGateway() as gateway:          # doctest: +SKIP
    ...     ib = IB(); ib.connect("127.0.0.1", gateway.port, clientId=1)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        server_version: int = SERVER_VERSION,
        accounts: Iterable[str] = ("DU1234567",),
        contracts: Iterable[ContractSpec] | None = None,
        cash: float = 100_000.0,
        fill_policy: FillPolicy | None = None,
        live_permission: bool = True,
        no_permission_code: int = 354,
        max_messages_per_second: int | None = None,
        pacing_violations_before_close: int = 3,
        clock: Callable[[], datetime] = utc_now,
        prices: dict[str, float] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.server_version = server_version
        self.book = OrderBook(list(accounts), cash, fill_policy, clock=clock)
        self._initial_contracts = list(default_contracts() if contracts is None else contracts)
        self._initial_prices = dict(DEFAULT_PRICES if prices is None else prices)
        self.live_permission = live_permission
        self.no_permission_code = no_permission_code
        self.no_permission_text = frames.NO_PERMISSION_TEXT
        self.no_live_symbols: set[str] = set()
        self.max_messages_per_second = max_messages_per_second
        self.pacing_violations_before_close = pacing_violations_before_close
        self.sparse_status = False
        self.internal_errors: list[BaseException] = []
        self.sessions: dict[int, ClientSession] = {}
        self._all_sessions: set[ClientSession] = set()
        self._requests: list[ClientRequest] = []
        self._requests_lock = threading.Lock()
        self._place_order_hook: tuple[int, bool] | None = None
        self._sync_drops: tuple[str, int] | None = None
        self._ib_link_up = True
        self.withheld_frames = 0
        self._connection_log: list[tuple[float, int, str]] = []
        self._refuse_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeGateway:
        """Start the server thread; returns once the port is bound."""
        if self.server_version != SERVER_VERSION:
            raise ScriptError(f"only server version {SERVER_VERSION} is implemented")
        for spec in self._initial_contracts:
            self.book.add_contract(spec)
        for symbol, last in self._initial_prices.items():
            spec = self.book.contract_for(symbol)
            tick = spec.min_tick
            self.book.set_quote(spec.con_id, last=last, close=last,
                                bid=round(last - tick, 6), ask=round(last + tick, 6))  # fmt: skip
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready, failure), name="fake-tws", daemon=True
        )
        self._thread.start()
        if not ready.wait(_CALL_TIMEOUT_S):
            raise ScriptError("fake gateway did not start in time")
        if failure:
            raise ScriptError(f"fake gateway failed to start: {failure[0]}") from failure[0]
        logger.info("fake TWS listening on %s:%s", self.host, self.port)
        return self

    def _thread_main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._on_connect, self.host, self.port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as e:
            failure.append(e)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Close every connection and the listening socket; join the thread."""
        if self._loop is None or self._thread is None:
            return
        self.call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CALL_TIMEOUT_S)
        self._loop = None
        self._thread = None

    def _shutdown(self) -> None:
        for session in list(self._all_sessions):
            session.close()
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the gateway loop and return its result (thread-safe)."""
        if self._loop is None:
            raise ScriptError("fake gateway is not running")
        if threading.get_ident() == getattr(self._thread, "ident", None):
            return fn(*args)

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(_CALL_TIMEOUT_S)

    # ---------------------------------------------------------------- connections
    async def _on_connect(self, reader, writer) -> None:
        if time.monotonic() < self._refuse_until:
            logger.info("refusing a connection (scripted outage)")
            writer.close()
            return
        session = ClientSession(self, reader, writer)
        self._all_sessions.add(session)
        await session.run()

    def register(self, session: ClientSession, client_id: int) -> bool:
        """Bind ``client_id`` to ``session``; False if another live session holds it."""
        holder = self.sessions.get(client_id)
        if holder is not None and not holder.closed:
            logger.warning("duplicate clientId %s refused", client_id)
            return False
        self.sessions[client_id] = session
        self._connection_log.append((time.monotonic(), client_id, "connected"))
        return True

    def session_closed(self, session: ClientSession) -> None:
        """Forget a closed connection; drop its held orders."""
        self._all_sessions.discard(session)
        cid = session.client_id
        if cid is not None and self.sessions.get(cid) is session:
            del self.sessions[cid]
            self.book.drop_held(cid)
            self._connection_log.append((time.monotonic(), cid, "closed"))
            logger.info("client %s disconnected", cid)

    def log_request(self, session: ClientSession, message: Message, fields: list[str]) -> None:
        """Append one decoded client message to the request log (thread-safe)."""
        client_id = session.client_id
        if message.name == "startApi":
            client_id = int(message.values.get("clientId") or 0)
        entry = ClientRequest(client_id, message.name, message.msg_id, dict(message.values),
                              tuple(fields))  # fmt: skip
        with self._requests_lock:
            self._requests.append(entry)

    def place_order_action(self) -> str:
        """What to do with the next placeOrder: ``process``/``process_then_drop``/``drop``."""
        if self._place_order_hook is None:
            return "process"
        remaining, process = self._place_order_hook
        if remaining > 1:
            self._place_order_hook = (remaining - 1, process)
            return "process"
        self._place_order_hook = None
        return "process_then_drop" if process else "drop"

    def take_sync_drop(self, request: str) -> bool:
        """True when a connection sending its first ``request`` must be dropped (see
        :meth:`drop_during_sync`); counts the drop."""
        if self._sync_drops is None or self._sync_drops[0] != request:
            return False
        name, left = self._sync_drops
        self._sync_drops = (name, left - 1) if left > 1 else None
        return True

    def has_live_permission(self, symbol: str) -> bool:
        """Whether live market data may be served for ``symbol``."""
        return self.live_permission and symbol.upper() not in self.no_live_symbols

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, events: list[Event]) -> None:
        """Send the frames for ``events`` to the clients that should see them."""
        for event in events:
            if isinstance(event, OrderEvent):
                self._to_client(event.order.client_id, frames.open_order(event.order),
                                *self._status_frames(event.order))  # fmt: skip
            elif isinstance(event, StatusEvent):
                self._to_client(event.order.client_id, *self._status_frames(event.order))
            elif isinstance(event, FillEvent):
                self._send_fill(event)
            elif isinstance(event, ErrorEvent):
                self._to_client(event.client_id, frames.error(event.req_id, event.code,
                                                              event.message))  # fmt: skip
            elif isinstance(event, PositionEvent):
                self._send_position(event.position)

    def _status_frames(self, order: OrderRecord) -> list[list[str]]:
        # Sparse mode: IB does not guarantee orderStatus for every change (section 6.2).
        return [] if self.sparse_status else [frames.order_status(order)]

    def _to_client(self, client_id: int, *frame_list: list[str]) -> None:
        if not self._ib_link_up:
            self.withheld_frames += len(frame_list)
            logger.info("IB link down: %d frame(s) for client %s withheld", len(frame_list),
                        client_id)
            return
        session = self.sessions.get(client_id)
        if session is None:
            logger.info("client %s not connected; %d frame(s) not delivered",
                        client_id, len(frame_list))  # fmt: skip
            return
        for fields in frame_list:
            session.send(fields)

    def _send_fill(self, event: FillEvent) -> None:
        order = event.order
        out = [frames.exec_details(-1, event.execution), *self._status_frames(order)]
        if order.status == OrderStatus.FILLED:
            out.append(frames.open_order(order))
        out.append(frames.commission_report(event.execution))
        self._to_client(order.client_id, *out)

    def _send_position(self, position: Position) -> None:
        if not self._ib_link_up:
            self.withheld_frames += 1
            return
        for session in list(self.sessions.values()):
            if session.subs.positions:
                session.send(frames.position(position))
            if session.subs.account_updates == position.account:
                session.send_account_update(position.account)

    # ------------------------------------------------------------ scripting API
    def set_price(self, symbol: str, last: float | None = None, bid: float | None = None,
                  ask: float | None = None, **sizes: float) -> None:  # fmt: skip
        """Update a quote, stream ticks to subscribers, then run automatic fills."""
        fields: dict[str, float | None] = dict(sizes)
        for name, value in (("last", last), ("bid", bid), ("ask", ask)):
            if value is not None:
                fields[name] = value

        def apply() -> None:
            spec = self.book.contract_for(symbol)
            quote = self.book.quotes[spec.con_id]
            if quote.close is None and fields.get("last") is not None:
                fields.setdefault("close", fields["last"])
            events = self.book.set_quote(spec.con_id, **fields)
            for session in list(self.sessions.values()):
                session.push_ticks(spec.con_id)
            self.dispatch(events)

        self.call(apply)

    def set_live_permission(self, allowed: bool, symbol: str | None = None) -> None:
        """Grant/revoke live market data globally or for one symbol (delayed-data tests)."""

        def apply() -> None:
            if symbol is None:
                self.live_permission = allowed
            elif allowed:
                self.no_live_symbols.discard(symbol.upper())
            else:
                self.no_live_symbols.add(symbol.upper())

        self.call(apply)

    def set_position(self, symbol: str, quantity: float, avg_cost: float,
                     account: str | None = None) -> None:  # fmt: skip
        """Seed a position (and report it to subscribed clients)."""

        def apply() -> None:
            spec = self.book.contract_for(symbol)
            position = self.book.position(account or self.book.accounts[0], spec)
            position.quantity = float(quantity)
            position.avg_cost = float(avg_cost)
            self.dispatch([PositionEvent(position)])

        self.call(apply)

    def add_contract(self, spec: ContractSpec) -> None:
        """Add (or replace, by conId) a listing in the security master."""
        self.call(self.book.add_contract, spec)

    def set_fill_policy(self, policy: FillPolicy) -> None:
        """Replace the automatic fill policy (e.g. ``FillPolicy(market=False)``)."""

        def apply() -> None:
            self.book.fill_policy = policy

        self.call(apply)

    def set_sparse_status(self, sparse: bool = True) -> None:
        """Stop (or resume) sending orderStatus messages; execDetails still arrive.

        Why: IB documents that orderStatus is not guaranteed for every change, so a client
        must treat execDetails as the source of truth for fills; this mode tests that.
        """

        def apply() -> None:
            self.sparse_status = sparse

        self.call(apply)

    def fill(self, order_id: int, qty: float | None = None, price: float | None = None,
             client_id: int | None = None) -> Execution:  # fmt: skip
        """Fill ``qty`` (default: all remaining) of a working order at ``price``.

        ``price`` defaults to the limit price for LMT orders, else the side's touch/last.
        A ``qty`` below the remaining quantity is a partial fill.

        Raises
        ------
        ScriptError
            Unknown/ambiguous order id, order not working, or no price available.
        """

        def apply() -> Execution:
            order = self.book.find(order_id, client_id)
            fill_price = price if price is not None else self._default_fill_price(order)
            events = fill_order(self.book, order, order.remaining if qty is None else qty,
                                fill_price)  # fmt: skip
            self.dispatch(events)
            return next(e.execution for e in events if isinstance(e, FillEvent))

        return self.call(apply)

    def _default_fill_price(self, order: OrderRecord) -> float:
        if order.lmt_price is not None and order.order_type == "LMT":
            return order.lmt_price
        quote = self.book.quotes[order.contract.con_id]
        price = quote.buy_price() if order.action == "BUY" else quote.sell_price()
        if price is None:
            raise ScriptError(f"no price for {order.contract.symbol}; pass price=")
        return price

    def reject(self, order_id: int, code: int = 201,
               message: str = "Order rejected - reason: scripted rejection",
               inactive: bool = False, client_id: int | None = None) -> None:  # fmt: skip
        """Reject a working order: error ``code`` then orderStatus Cancelled (or Inactive)."""

        def apply() -> None:
            order = self.book.find(order_id, client_id)
            self.dispatch(self.book.reject(order, code, message, inactive))

        self.call(apply)

    def reject_next_order(self, code: int = 201,
                          message: str = "Order rejected - reason: scripted rejection",
                          inactive: bool = False) -> None:  # fmt: skip
        """Reject the next *new* order that arrives, instead of accepting it."""
        status = OrderStatus.INACTIVE if inactive else OrderStatus.CANCELLED
        self.call(self.book.reject_rules.append, RejectRule(code, message, status))

    def cancel(self, order_id: int, client_id: int | None = None) -> None:
        """Cancel a working order from the TWS side (as if cancelled in the TWS window)."""

        def apply() -> None:
            order = self.book.find(order_id, client_id)
            self.dispatch(self.book.cancel(order.client_id, order.order_id))

        self.call(apply)

    def send_notice(self, code: int, message: str | None = None) -> None:
        """Send a connectivity notice (1100/1101/1102/2103...) with reqId -1 to every client."""

        def apply() -> None:
            for session in list(self.sessions.values()):
                session.send(frames.error(-1, code, message))

        self.call(apply)

    def lose_ib_connectivity(self) -> None:
        """TWS loses its link to IB: 1100 to every client, and nothing is pushed until
        :meth:`restore_ib_connectivity`.

        The sockets stay open. Scripted fills, cancels and rejects still change the
        book (the market did not stop), but no execDetails, orderStatus, openOrder,
        commissionReport or position message reaches a client; answers to requests
        (reqExecutions, reqOpenOrders, reqCompletedOrders, ...) show the book as it is.
        """

        def apply() -> None:
            self._ib_link_up = False
            for session in list(self.sessions.values()):
                session.send(frames.error(-1, 1100))

        self.call(apply)

    def restore_ib_connectivity(self, code: int = 1102) -> None:
        """The link is back: send ``code`` (1101 data lost, 1102 data kept) to every client.

        What was withheld during the gap is not replayed: the worst case a client must
        survive is that the gap's executions are never pushed, so it has to ask for
        them (reqExecutions, reqCompletedOrders).
        """
        if code not in (1101, 1102):
            raise ScriptError("restore with 1101 or 1102")

        def apply() -> None:
            self._ib_link_up = True
            for session in list(self.sessions.values()):
                session.send(frames.error(-1, code))

        self.call(apply)

    def send_frame(self, fields: list[str], client_id: int | None = None) -> None:
        """Send an arbitrary frame to one client (or all) - for negative tests."""

        def apply() -> None:
            for cid, session in list(self.sessions.items()):
                if client_id is None or cid == client_id:
                    session.send([str(f) for f in fields])

        self.call(apply)

    def disconnect_clients(self, refuse_for: float = 0.0) -> None:
        """Close every client socket (forced disconnect); optionally refuse reconnects.

        ``refuse_for`` seconds of outage: new connections are accepted and closed at once,
        the way a restarting gateway looks to a client (connect fails, retry later).
        """

        def apply() -> None:
            self._refuse_until = time.monotonic() + refuse_for
            for session in list(self._all_sessions):
                session.close()

        self.call(apply)

    def drop_connection_on_place_order(self, n: int = 1, process: bool = True) -> None:
        """Close the socket of the client that sends the ``n``-th placeOrder from now.

        ``process=True`` handles that order first (it exists on the gateway, the client
        never hears back); ``process=False`` drops it unprocessed (it never existed).
        """
        if n < 1:
            raise ScriptError("n must be >= 1")

        def apply() -> None:
            self._place_order_hook = (n, process)

        self.call(apply)

    def drop_during_sync(self, connections: int = 1, request: str = "reqExecutions") -> None:
        """Drop each of the next ``connections`` clients during its start-up sync.

        The TCP connect and the API handshake (startApi, managedAccounts, nextValidId)
        succeed; the socket is closed when the connection sends its first ``request``
        (``reqExecutions`` is the last step of the ib_async/ib_insync sync).
        """
        if connections < 1:
            raise ScriptError("connections must be >= 1")

        def apply() -> None:
            self._sync_drops = (request, connections)

        self.call(apply)

    # ----------------------------------------------------------------- queries
    def requests(self, name: str | None = None, client_id: int | None = None):
        """The decoded client messages received so far (optionally filtered)."""
        with self._requests_lock:
            entries = list(self._requests)
        return [
            r for r in entries
            if (name is None or r.name == name) and (client_id is None or r.client_id == client_id)
        ]  # fmt: skip

    def wait_for_requests(self, name: str, count: int = 1, timeout: float = 2.0):
        """Poll the request log until ``count`` messages called ``name`` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests(name)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise ScriptError(f"timed out waiting for {count} {name!r} request(s)")

    def orders(self) -> list[OrderRecord]:
        """Snapshots of every order the gateway knows (all clients)."""
        return self.call(lambda: [o.snapshot() for o in self.book.orders.values()])

    def order(self, order_id: int, client_id: int | None = None) -> OrderRecord:
        """Snapshot of one order (``client_id`` disambiguates equal order ids)."""
        return self.call(lambda: self.book.find(order_id, client_id).snapshot())

    def executions(self) -> list[Execution]:
        """Every execution so far, oldest first (all clients)."""
        return self.call(lambda: list(self.book.executions))

    def positions(self) -> dict[str, float]:
        """Signed quantity by symbol (summed over accounts)."""

        def collect() -> dict[str, float]:
            out: dict[str, float] = {}
            for position in self.book.positions.values():
                symbol = position.contract.symbol
                out[symbol] = out.get(symbol, 0.0) + position.quantity
            return out

        return self.call(collect)

    def connected_client_ids(self) -> list[int]:
        """Client ids with a live, registered connection."""
        return self.call(lambda: sorted(self.sessions))

    def connection_log(self) -> list[tuple[float, int, str]]:
        """``(time.monotonic(), client_id, "connected" | "closed")`` of every API session."""
        return self.call(lambda: list(self._connection_log))
