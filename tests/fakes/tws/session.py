"""One client connection: handshake, startApi, and the request handlers.

A session runs entirely on the gateway's event loop. It owns the connection's
subscriptions (positions, account updates, market data) while orders, executions and
positions live in the gateway's shared :class:`~.book.OrderBook`, so a reconnecting
client sees the same book.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import frames
from ._layouts import CLIENT, CLIENT_BY_ID
from ._wire import FrameBuffer, encode_frame, parse_bool, parse_int, parse_version_range
from .codec import Message, UnsupportedOrder, decode_client, encode_server, handshake_reply
from .errors import ProtocolError, ScriptError
from .model import OrderStatus

if TYPE_CHECKING:
    from .gateway import FakeGateway

logger = logging.getLogger(__name__)


@dataclass
class MarketDataLine:
    """One streaming reqMktData subscription of a session."""

    req_id: int
    con_id: int
    delayed: bool


@dataclass
class Subscriptions:
    """What a connection asked to keep receiving."""

    positions: bool = False
    account_updates: str | None = None
    account_multi: dict[int, str] = field(default_factory=dict)
    market_data: dict[int, MarketDataLine] = field(default_factory=dict)
    market_data_type: int = 1


class ClientSession:
    """Serve one socket until it closes (see module docstring).

    Each client message ``name`` (see ``_layouts.CLIENT``) is handled by ``on_<name>``,
    which receives the decoded values by field name; a message without a handler is
    logged and ignored, as the protocol spec recommends for a fake.
    """

    def __init__(self, gateway: FakeGateway, reader, writer) -> None:
        self.gateway = gateway
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.subs = Subscriptions()
        self.closed = False
        self.requests_seen: Counter[str] = Counter()
        self._buffer = FrameBuffer()
        self._recent: deque[float] = deque()
        self._pacing_violations = 0

    def __repr__(self) -> str:
        return f"ClientSession(client_id={self.client_id}, closed={self.closed})"

    # ---------------------------------------------------------------- transport
    async def run(self) -> None:
        try:
            await self._serve()
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            logger.info("%r: connection lost: %s", self, e)
        except ProtocolError as e:
            logger.warning("%r: protocol error, closing: %s", self, e)
        except Exception as e:
            # A bug in the fake itself: close this connection, keep serving the others,
            # and record it so the test fixture can fail the test that triggered it.
            logger.exception("%r: internal error in the fake, closing", self)
            self.gateway.internal_errors.append(e)
        finally:
            self.close()
            self.gateway.session_closed(self)

    async def _serve(self) -> None:
        handshake = None
        while handshake is None:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            self._buffer.append(chunk)
            handshake = self._buffer.take_handshake()
        if not self._answer_handshake(handshake):
            return
        pending = self._buffer.feed(b"")
        while not self.closed:
            for fields in pending:
                self.handle(fields)
                if self.closed:
                    return
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            pending = self._buffer.feed(chunk)

    def _answer_handshake(self, text: str) -> bool:
        low, high = parse_version_range(text)
        version = self.gateway.server_version
        if not low <= version <= high:
            logger.warning("client range %s..%s excludes server version %s", low, high, version)
            self.close()
            return False
        stamp = time.strftime("%Y%m%d %H:%M:%S", time.gmtime()) + " Greenwich Mean Time"
        self.send(handshake_reply(version, stamp))
        return True

    def send(self, fields: list[str]) -> None:
        if not self.closed:
            self.writer.write(encode_frame(fields))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    # ----------------------------------------------------------------- dispatch
    def handle(self, fields: list[str]) -> None:
        """Decode one client frame, log it, and run its handler (never raises)."""
        if self._over_pace():
            return
        try:
            message = decode_client(fields)
        except UnsupportedOrder as e:
            self.gateway.log_request(self, Message("placeOrder", 3, {"orderId": fields[1]}), fields)
            self.send(frames.error(_req_id(fields), 321, f"Error validating request: {e}"))
            return
        except ProtocolError as e:
            logger.warning("%r: bad frame %r: %s", self, fields[:3], e)
            self.send(frames.error(_req_id(fields), 321, f"Error validating request: {e}"))
            return
        self.gateway.log_request(self, message, fields)
        if self.client_id is None and message.name != "startApi":
            logger.warning("%r: %s before startApi ignored", self, message.name)
            return
        self.requests_seen[message.name] += 1
        if self.requests_seen[message.name] == 1 and self.gateway.take_sync_drop(message.name):
            logger.info("%r: dropping the connection at its first %s (sync)", self,
                        message.name)
            self.close()
            return
        handler = getattr(self, f"on_{message.name}", None)
        if handler is None:
            logger.info("%r: ignoring %s (id %s)", self, message.name, message.msg_id)
            return
        try:
            handler(message.values)
        except (ProtocolError, ScriptError) as e:
            logger.warning("%r: %s rejected: %s", self, message.name, e)
            self.send(frames.error(_req_id(fields), 321, f"Error validating request: {e}"))

    def _over_pace(self) -> bool:
        # Sliding one-second window; a message over the limit is answered with 100 and
        # dropped, and repeated violations close the socket as real TWS does.
        limit = self.gateway.max_messages_per_second
        if limit is None:
            return False
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 1.0:
            self._recent.popleft()
        self._recent.append(now)
        if len(self._recent) <= limit:
            return False
        self._pacing_violations += 1
        received = len(self._recent)
        text = f"Max rate of messages per second has been exceeded:max={limit} rec={received}"
        self.send(frames.error(-1, 100, text))
        if self._pacing_violations >= self.gateway.pacing_violations_before_close:
            logger.warning("%r: closing after %d pacing violations", self, self._pacing_violations)
            self.close()
        return True

    # ------------------------------------------------------------------ startup
    def on_startApi(self, values: dict[str, str]) -> None:
        client_id = parse_int(values["clientId"])
        if not self.gateway.register(self, client_id):
            self.send(frames.error(-1, 326))
            self.close()
            return
        self.client_id = client_id
        gw = self.gateway
        self.send(encode_server("managedAccounts", accounts=",".join(gw.book.accounts)))
        self.send(encode_server("nextValidId", orderId=gw.book.next_order_id(client_id)))
        for code in (2104, 2106, 2158):
            self.send(frames.error(-1, code))

    def on_reqManagedAccts(self, values: dict[str, str]) -> None:
        self.send(encode_server("managedAccounts", accounts=",".join(self.gateway.book.accounts)))

    def on_reqIds(self, values: dict[str, str]) -> None:
        self.send(encode_server("nextValidId", orderId=self.gateway.book.next_order_id(self.cid)))

    def on_reqCurrentTime(self, values: dict[str, str]) -> None:
        self.send(encode_server("currentTime", time=int(self.gateway.book.clock().timestamp())))

    @property
    def cid(self) -> int:
        return -1 if self.client_id is None else self.client_id

    # ---------------------------------------------------------------- contracts
    def on_reqContractDetails(self, values: dict[str, str]) -> None:
        req_id = parse_int(values["reqId"])
        matches = self.gateway.book.match_contracts(
            values["symbol"], parse_int(values["conId"]), values["exchange"],
            values["primaryExchange"],
        )  # fmt: skip
        if values["secType"] not in ("", "STK") or not matches:
            text = "No security definition has been found for the request"
            self.send(frames.error(req_id, 200, text))
            return
        for spec in matches:
            self.send(frames.contract_details(req_id, spec, values["exchange"]))
        self.send(encode_server("contractDetailsEnd", reqId=req_id))

    # ------------------------------------------------------------------- orders
    def on_placeOrder(self, values: dict[str, str]) -> None:
        action = self.gateway.place_order_action()
        if action == "drop":
            logger.info("%r: dropping connection before placeOrder %s", self, values["orderId"])
            self.close()
            return
        self.gateway.dispatch(self.gateway.book.place(self.cid, values))
        if action == "process_then_drop":
            logger.info("%r: dropping connection after placeOrder %s", self, values["orderId"])
            self.close()

    def on_cancelOrder(self, values: dict[str, str]) -> None:
        self.gateway.dispatch(self.gateway.book.cancel(self.cid, parse_int(values["orderId"])))

    def on_reqGlobalCancel(self, values: dict[str, str]) -> None:
        self.gateway.dispatch(self.gateway.book.global_cancel())

    def on_reqOpenOrders(self, values: dict[str, str]) -> None:
        self._send_open_orders(lambda o: o.client_id == self.cid)

    def on_reqAllOpenOrders(self, values: dict[str, str]) -> None:
        self._send_open_orders(lambda o: True)

    def _send_open_orders(self, wanted) -> None:
        orders = sorted(self.gateway.book.orders.values(), key=lambda o: (o.client_id, o.order_id))
        for order in orders:
            if wanted(order) and order.is_live:
                self.send(frames.open_order(order))
                self.send(frames.order_status(order))
        self.send(encode_server("openOrderEnd"))

    def on_reqCompletedOrders(self, values: dict[str, str]) -> None:
        for order in sorted(self.gateway.book.orders.values(), key=lambda o: o.perm_id):
            if order.is_done and order.status != OrderStatus.HELD:
                self.send(frames.completed_order(order))
        self.send(encode_server("completedOrdersEnd"))

    def on_reqExecutions(self, values: dict[str, str]) -> None:
        req_id = parse_int(values["reqId"])
        for execution in self.gateway.book.executions:
            if _execution_matches(execution, values):
                self.send(frames.exec_details(req_id, execution))
                self.send(frames.commission_report(execution))
        self.send(encode_server("execDetailsEnd", reqId=req_id))

    # ------------------------------------------------------------------ account
    def on_reqPositions(self, values: dict[str, str]) -> None:
        self.subs.positions = True
        for position in self.gateway.book.positions.values():
            if position.quantity:
                self.send(frames.position(position))
        self.send(encode_server("positionEnd"))

    def on_cancelPositions(self, values: dict[str, str]) -> None:
        self.subs.positions = False

    def on_reqAccountUpdates(self, values: dict[str, str]) -> None:
        if not parse_bool(values["subscribe"]):
            self.subs.account_updates = None
            return
        account = values["acctCode"] or self.gateway.book.accounts[0]
        self.subs.account_updates = account
        self.send_account_update(account)
        self.send(encode_server("accountDownloadEnd", account=account))

    def send_account_update(self, account: str) -> None:
        gw = self.gateway
        for key, value, currency in gw.book.account_values(account):
            self.send(encode_server("updateAccountValue", key=key, value=value,
                                    currency=currency, accountName=account))  # fmt: skip
        for position in gw.book.positions.values():
            if position.account == account:
                self.send(frames.portfolio(position, gw.book.quotes[position.contract.con_id]))
        self.send(encode_server("updateAccountTime", time=gw.book.clock().strftime("%H:%M")))

    def on_reqAccountUpdatesMulti(self, values: dict[str, str]) -> None:
        req_id = parse_int(values["reqId"])
        accounts = self._accounts(values["account"])
        for account in accounts:
            for key, value, currency in self.gateway.book.account_values(account):
                self.send(encode_server("accountUpdateMulti", reqId=req_id, account=account,
                                        modelCode=values["modelCode"], key=key, value=value,
                                        currency=currency))  # fmt: skip
        self.subs.account_multi[req_id] = values["account"]
        self.send(encode_server("accountUpdateMultiEnd", reqId=req_id))

    def on_cancelAccountUpdatesMulti(self, values: dict[str, str]) -> None:
        self.subs.account_multi.pop(parse_int(values["reqId"]), None)

    def on_reqAccountSummary(self, values: dict[str, str]) -> None:
        req_id = parse_int(values["reqId"])
        tags = set(values["tags"].split(","))
        for account in self.gateway.book.accounts:
            for key, value, currency in self.gateway.book.account_values(account):
                if key in tags and currency != "BASE":
                    self.send(encode_server("accountSummary", reqId=req_id, account=account,
                                            tag=key, value=value, currency=currency))  # fmt: skip
        self.send(encode_server("accountSummaryEnd", reqId=req_id))

    def _accounts(self, account: str) -> list[str]:
        if account in ("", "All"):
            return list(self.gateway.book.accounts)
        return [a for a in self.gateway.book.accounts if a == account]

    # -------------------------------------------------------------- market data
    def on_reqMarketDataType(self, values: dict[str, str]) -> None:
        self.subs.market_data_type = parse_int(values["marketDataType"], 1)

    def on_reqMktData(self, values: dict[str, str]) -> None:
        req_id = parse_int(values["reqId"])
        gw = self.gateway
        matches = gw.book.match_contracts(
            values["symbol"], parse_int(values["conId"]), values["exchange"],
            values["primaryExchange"],
        )  # fmt: skip
        if len(matches) != 1:
            self.send(frames.error(req_id, 200, "No security definition has been found"))
            return
        spec = matches[0]
        delayed = not gw.has_live_permission(spec.symbol)
        if delayed and self.subs.market_data_type in (1, 2):
            self.send(frames.error(req_id, gw.no_permission_code, gw.no_permission_text))
            return
        snapshot = parse_bool(values["snapshot"]) or parse_bool(values["regulatorySnapshot"])
        self.send(encode_server("tickReqParams", reqId=req_id, minTick=spec.min_tick,
                                bboExchange="9c0001", snapshotPermissions=3))  # fmt: skip
        if delayed:
            self.send(encode_server("marketDataType", reqId=req_id, marketDataType=3))
            self.send(frames.error(req_id, 10167, frames.DELAYED_TEXT))
        for frame in frames.ticks(req_id, gw.book.quotes[spec.con_id], delayed):
            self.send(frame)
        if snapshot:
            self.send(encode_server("tickSnapshotEnd", reqId=req_id))
            return
        self.subs.market_data[req_id] = MarketDataLine(req_id, spec.con_id, delayed)

    def on_cancelMktData(self, values: dict[str, str]) -> None:
        req_id = parse_int(values["reqId"])
        if self.subs.market_data.pop(req_id, None) is None:
            self.send(frames.error(req_id, 300, f"Can't find EId with tickerId:{req_id}"))

    def push_ticks(self, con_id: int) -> None:
        quote = self.gateway.book.quotes[con_id]
        for line in self.subs.market_data.values():
            if line.con_id == con_id:
                for frame in frames.ticks(line.req_id, quote, line.delayed):
                    self.send(frame)

    # --------------------------------------------------------------- historical
    def on_reqHistoricalData(self, values: dict[str, str]) -> None:
        req_id = parse_int(values["reqId"])
        matches = self.gateway.book.match_contracts(
            values["symbol"], parse_int(values["conId"]), values["exchange"],
            values["primaryExchange"],
        )  # fmt: skip
        if len(matches) != 1 or values["secType"] not in ("", "STK"):
            text = "Historical Market Data Service error message:No market data permissions"
            self.send(frames.error(req_id, 162, text))
            return
        quote = self.gateway.book.quotes[matches[0].con_id]
        self.send(frames.historical_bars(req_id, quote, self.gateway.book.clock()))


def _req_id(fields: list[str]) -> int:
    # The request/order id follows the version field, if the message has one.
    try:
        layout = CLIENT[CLIENT_BY_ID[int(fields[0])]]
    except (KeyError, ValueError, IndexError):
        return -1
    index = 1 if layout.version is None else 2
    if len(fields) > index and fields[index].lstrip("-").isdigit():
        return int(fields[index])
    return -1


def _execution_matches(execution, values: dict[str, str]) -> bool:
    client_id = parse_int(values["clientId"])
    checks = (
        (client_id, execution.client_id),
        (values["acctCode"], execution.account),
        (values["symbol"], execution.contract.symbol),
        (values["side"], {"BOT": "BUY", "SLD": "SELL"}[execution.side]),
    )
    if any(wanted and wanted != actual for wanted, actual in checks):
        return False
    since = values["time"]
    return not since or execution.time[:17] >= since.replace("-", " ")[:17]
