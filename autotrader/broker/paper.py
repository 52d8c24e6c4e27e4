"""The embedded paper broker: an in-process exchange simulator with persisted state.

Behaviour
---------
* Market orders fill at the *next* price the provider gives (the next
  :meth:`PaperBroker.match`), never at the price seen when they were placed,
  adjusted by ``slippage_bps`` against the trader.
* Limit orders fill when the price crosses the limit, at the limit or better.
  Stop orders trigger when the last price trades at or through the stop and
  then fill like a market order.
* Bracket children (``parent_ref`` set) wait ``Inactive`` until the parent is
  completely filled; children sharing an ``oca_group`` cancel each other when
  one fills.
* ``partial_fill_fraction`` in (0, 1) fills at most that fraction of the
  remaining quantity per match (at least one share), to exercise partial fills.
* Commission is ``commission_per_share`` with a ``min_commission`` per fill.
* Long only, cash account: a sell above the free position is rejected.

Every state change is written to SQLite (WAL) in the same transaction that
makes it, so a process killed at any point restarts with the exact book, and
``orders()`` lists every order ever placed (the crash test counts them).
Events (status changes, fills) are queued for :meth:`poll_events`, which first
runs :meth:`match` so a polling runner drives the simulation.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from autotrader.broker.base import Broker, BrokerEvent
from autotrader.domain.errors import BrokerError
from autotrader.domain.orders import Order, OrderStatus
from autotrader.domain.records import (
    Account,
    Fill,
    OrderRequest,
    OrderStatusEvent,
    OrderType,
    Position,
    Quote,
    SessionIdentity,
    Side,
)

logger = logging.getLogger(__name__)

#: The account name of the simulated account in every session identity.
PAPER_ACCOUNT = "PAPER"

PriceProvider = Callable[[str, dt.datetime], "Quote | None"]
Clock = Callable[[], dt.datetime]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    broker_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    order_ref    TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    order_type   TEXT NOT NULL,
    limit_price  REAL,
    stop_price   REAL,
    parent_ref   TEXT,
    oca_group    TEXT,
    status       TEXT NOT NULL,
    filled_qty   INTEGER NOT NULL DEFAULT 0,
    avg_price    REAL NOT NULL DEFAULT 0,
    placed_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_ref ON orders(order_ref);
CREATE TABLE IF NOT EXISTS executions (
    exec_id    TEXT PRIMARY KEY,
    order_ref  TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    side       TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    price      REAL NOT NULL,
    commission REAL NOT NULL,
    time       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    symbol   TEXT PRIMARY KEY,
    quantity INTEGER NOT NULL,
    avg_cost REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cash (id INTEGER PRIMARY KEY CHECK (id = 1), amount REAL NOT NULL);
"""

_ORDER_COLUMNS = ("broker_id, order_ref, symbol, side, quantity, order_type, limit_price, "
                  "stop_price, parent_ref, oca_group, status, filled_qty, avg_price")


def _row_to_order(row: tuple) -> Order:
    (broker_id, ref, symbol, side, qty, kind, limit, stop, parent, oca, status, filled,
     avg) = row
    return Order(order_ref=ref, symbol=symbol, side=Side(side), quantity=qty,
                 order_type=OrderType(kind), limit_price=limit, stop_price=stop, status=status,
                 filled_qty=filled, avg_fill_price=avg, broker_order_id=str(broker_id),
                 parent_ref=parent, oca_group=oca)


class PaperBroker(Broker):
    """In-process paper broker persisted in one SQLite file.

    Parameters
    ----------
    path : SQLite file for the simulated account (created if missing).
    price_provider : ``(symbol, now) -> Quote | None``; the only price source.
    clock : returns the current aware datetime (tests inject a fake clock).
    initial_cash : starting cash of a new account file (ignored when it exists).
    slippage_bps, commission_per_share, min_commission, partial_fill_fraction :
        fill model, see the module docstring.
    """

    is_live = False
    supports_modify = True

    def __init__(self, path: str | Path, price_provider: PriceProvider, clock: Clock,
                 *, initial_cash: float = 100_000.0, slippage_bps: float = 5.0,
                 commission_per_share: float = 0.005, min_commission: float = 1.0,
                 partial_fill_fraction: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.price_provider = price_provider
        self.clock = clock
        self.initial_cash = initial_cash
        self.slippage_bps = slippage_bps
        self.commission_per_share = commission_per_share
        self.min_commission = min_commission
        self.partial_fill_fraction = partial_fill_fraction
        self._conn: sqlite3.Connection | None = None

    # -- session -----------------------------------------------------------------------------
    def connect(self) -> None:
        """Open (creating if needed) the SQLite state file; a new file gets ``initial_cash``.

        Raises
        ------
        BrokerError
            If the file cannot be opened or its schema created.
        """
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            with conn:
                conn.execute("INSERT OR IGNORE INTO cash (id, amount) VALUES (1, ?)",
                             (self.initial_cash,))
        except sqlite3.Error as e:
            raise BrokerError(f"paper broker state {self.path} cannot be opened: {e}") from e
        self._conn = conn
        logger.info("paper broker connected (sim fills, state %s)", self.path)

    def disconnect(self) -> None:
        """Close the SQLite connection (idempotent); the state file keeps the account."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BrokerError("paper broker is not connected")
        return self._conn

    def session(self) -> SessionIdentity:
        """``paper`` broker, account ``PAPER`` (one simulated account per state file)."""
        return SessionIdentity("paper", PAPER_ACCOUNT, live=self.is_live, client_id=None)

    # -- queries -----------------------------------------------------------------------------
    def account(self) -> Account:
        """Return cash and equity, positions valued at their quote (else at average cost)."""
        cash = self._db.execute("SELECT amount FROM cash WHERE id = 1").fetchone()[0]
        positions = self.positions()
        quotes = self.quotes(positions)
        value = sum(p.quantity * (quotes[s].reference_price if s in quotes else p.avg_cost)
                    for s, p in positions.items())
        return Account(equity=cash + value, cash=cash)

    def positions(self) -> dict[str, Position]:
        """Return the positions with a positive quantity by symbol, sorted by symbol."""
        rows = self._db.execute(
            "SELECT symbol, quantity, avg_cost FROM positions WHERE quantity > 0 ORDER BY symbol")
        return {s: Position(s, q, c) for s, q, c in rows}

    def orders(self) -> list[Order]:
        """Return every order of the state file in placement order."""
        rows = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders ORDER BY broker_id")
        return [_row_to_order(r) for r in rows]

    def executions(self) -> list[Fill]:
        """Return every simulated execution in the order it happened."""
        rows = self._db.execute(
            "SELECT exec_id, order_ref, symbol, side, quantity, price, commission, time "
            "FROM executions ORDER BY rowid")
        return [Fill(e, r, s, Side(sd), q, p, c, dt.datetime.fromisoformat(t))
                for e, r, s, sd, q, p, c, t in rows]

    def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Return quotes from ``price_provider`` at the clock's time (only positive prices)."""
        now = self.clock()
        out: dict[str, Quote] = {}
        for symbol in symbols:
            quote = self.price_provider(symbol, now)
            if quote is not None and quote.reference_price > 0:
                out[symbol] = quote
        return out

    # -- order entry -------------------------------------------------------------------------
    def place(self, request: OrderRequest) -> str:
        """Record ``request`` as a working order and return its broker id.

        A child whose parent has not filled waits as ``Inactive``; a sell larger
        than the position not already committed to other sells is recorded as
        ``Rejected``. Fills happen later, in :meth:`match`.

        Raises
        ------
        BrokerError
            If the request is invalid or names an unknown parent.
        """
        self._validate(request)
        status = OrderStatus.SUBMITTED
        if request.parent_ref is not None:
            parent = self._order(request.parent_ref)
            if parent is None:
                raise BrokerError(f"{request.order_ref}: unknown parent {request.parent_ref}")
            if parent.status != OrderStatus.FILLED:
                status = OrderStatus.INACTIVE
        elif request.side is Side.SELL:
            free = self._free_position(request.symbol)
            if request.quantity > free:
                return self._insert(request, OrderStatus.REJECTED,
                                    f"sell {request.quantity} > free position {free}")
        return self._insert(request, status, "")

    def cancel(self, order_ref: str) -> None:
        """Cancel ``order_ref`` and its unfinished children; a finished order is left alone.

        Raises
        ------
        BrokerError
            If ``order_ref`` is unknown.
        """
        order = self._order(order_ref)
        if order is None:
            raise BrokerError(f"cannot cancel unknown order {order_ref}")
        if order.is_done:
            logger.info("paper: cancel of %s ignored, already %s", order_ref, order.status)
            return
        with self._db:
            self._set_status(order_ref, OrderStatus.CANCELLED, "cancelled by request")
            for child in self._children(order_ref):
                if not child.is_done:
                    self._set_status(child.order_ref, OrderStatus.CANCELLED, "parent cancelled")

    def modify(self, order_ref: str, *, quantity: int | None = None,
               limit_price: float | None = None, stop_price: float | None = None) -> None:
        """Change quantity or prices of a working order in place; None keeps a field.

        Raises
        ------
        BrokerError
            If the order is not working or ``quantity`` is below what has filled.
        """
        order = self._order(order_ref)
        if order is None or order.is_done:
            raise BrokerError(f"cannot modify {order_ref}: not a working order")
        if quantity is not None and quantity < order.filled_qty:
            raise BrokerError(f"cannot modify {order_ref} below its filled {order.filled_qty}")
        with self._db:
            self._db.execute(
                "UPDATE orders SET quantity = COALESCE(?, quantity), "
                "limit_price = COALESCE(?, limit_price), stop_price = COALESCE(?, stop_price) "
                "WHERE order_ref = ? AND status NOT IN ('Filled', 'Cancelled', 'Rejected')",
                (quantity, limit_price, stop_price, order_ref))
        logger.info("paper: modified %s qty=%s limit=%s stop=%s", order_ref, quantity,
                    limit_price, stop_price)

    def poll_events(self) -> list[BrokerEvent]:
        """Run :meth:`match` at the clock's time, then drain the queued events."""
        self.match()
        return super().poll_events()

    # -- simulation --------------------------------------------------------------------------
    def match(self) -> int:
        """Fill every working order whose condition the current prices meet; returns fills made."""
        now = self.clock()
        fills = 0
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS}, placed_at FROM orders "
            "WHERE status IN ('Submitted', 'PartiallyFilled') ORDER BY broker_id").fetchall()
        for *columns, placed_at in rows:
            order = _row_to_order(tuple(columns))
            if (order.order_type is OrderType.MARKET
                    and dt.datetime.fromisoformat(placed_at) >= now):
                continue  # a market order fills at the next price, not the one it saw
            quote = self.price_provider(order.symbol, now)
            if quote is None or not quote.reference_price > 0:
                continue
            price = self._fill_price(order, quote)
            if price is None:
                continue
            self._execute(order, price, now)
            fills += 1
        return fills

    def _fill_price(self, order: Order, quote: Quote) -> float | None:
        last = quote.reference_price
        slip = self.slippage_bps / 1e4 * order.side.sign
        if order.order_type is OrderType.MARKET:
            return last * (1.0 + slip)
        if order.order_type is OrderType.LIMIT and order.limit_price is not None:
            if order.side is Side.BUY and last <= order.limit_price:
                return last
            if order.side is Side.SELL and last >= order.limit_price:
                return last
            return None
        if order.order_type is OrderType.STOP and order.stop_price is not None:
            triggered = (last <= order.stop_price if order.side is Side.SELL
                         else last >= order.stop_price)
            return last * (1.0 + slip) if triggered else None
        return None

    def _execute(self, order: Order, price: float, now: dt.datetime) -> None:
        quantity = order.remaining
        if order.side is Side.SELL:
            quantity = min(quantity, self._held(order.symbol))
        if self.partial_fill_fraction is not None and 0 < self.partial_fill_fraction < 1:
            quantity = min(quantity, max(1, math.floor(order.remaining *
                                                       self.partial_fill_fraction)))
        if quantity <= 0:
            with self._db:
                self._set_status(order.order_ref, OrderStatus.CANCELLED, "no position to sell")
            return
        count = self._db.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
        fill = Fill(exec_id=f"paper-{order.broker_order_id}-{count + 1}",
                    order_ref=order.order_ref, symbol=order.symbol, side=order.side,
                    quantity=quantity, price=round(price, 4),
                    commission=max(self.min_commission, self.commission_per_share * quantity),
                    time=now)
        updated = order.apply_fill(fill)
        with self._db:
            self._book_fill(fill, now)
            self._db.execute(
                "UPDATE orders SET filled_qty = ?, avg_price = ?, status = ? WHERE broker_id = ?",
                (updated.filled_qty, updated.avg_fill_price, updated.status,
                 int(order.broker_order_id)))
            if updated.status == OrderStatus.FILLED:
                self._after_complete_fill(updated)
        logger.info("paper fill (sim): %s %s %d %s @ %.4f", order.order_ref, order.side.value,
                    quantity, order.symbol, fill.price)
        self._emit(fill)
        self._emit(OrderStatusEvent(order.order_ref, updated.status, order.broker_order_id,
                                    time=now))

    def _after_complete_fill(self, order: Order) -> None:
        for child in self._children(order.order_ref):
            if child.status == OrderStatus.INACTIVE:
                self._set_status(child.order_ref, OrderStatus.SUBMITTED, "parent filled")
        if order.oca_group:
            rows = self._db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE oca_group = ? AND order_ref != ?",
                (order.oca_group, order.order_ref))
            for sibling in [_row_to_order(r) for r in rows]:
                if not sibling.is_done:
                    self._set_status(sibling.order_ref, OrderStatus.CANCELLED, "OCA sibling filled")

    def _book_fill(self, fill: Fill, now: dt.datetime) -> None:
        db = self._db
        db.execute("INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (fill.exec_id, fill.order_ref, fill.symbol, fill.side.value, fill.quantity,
                    fill.price, fill.commission, now.isoformat()))
        row = db.execute("SELECT quantity, avg_cost FROM positions WHERE symbol = ?",
                         (fill.symbol,)).fetchone()
        held, cost = row if row else (0, 0.0)
        if fill.side is Side.BUY:
            new_qty = held + fill.quantity
            cost = (held * cost + fill.quantity * fill.price) / new_qty
        else:
            new_qty = held - fill.quantity
        db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?, ?)",
                   (fill.symbol, new_qty, cost if new_qty > 0 else 0.0))
        cash_delta = -fill.side.sign * fill.quantity * fill.price - fill.commission
        db.execute("UPDATE cash SET amount = amount + ? WHERE id = 1", (cash_delta,))

    # -- helpers -----------------------------------------------------------------------------
    def _validate(self, request: OrderRequest) -> None:
        if request.quantity <= 0:
            raise BrokerError(f"{request.order_ref}: quantity must be positive")
        if request.order_type is OrderType.LIMIT and not (request.limit_price or 0) > 0:
            raise BrokerError(f"{request.order_ref}: a limit order needs a positive limit")
        if request.order_type is OrderType.STOP and not (request.stop_price or 0) > 0:
            raise BrokerError(f"{request.order_ref}: a stop order needs a positive stop")
        if request.order_type is OrderType.BRACKET:
            raise BrokerError(f"{request.order_ref}: send a bracket as parent + children")

    def _insert(self, request: OrderRequest, status: str, message: str) -> str:
        now = self.clock()
        with self._db:
            cur = self._db.execute(
                "INSERT INTO orders (order_ref, symbol, side, quantity, order_type, limit_price, "
                "stop_price, parent_ref, oca_group, status, placed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.order_ref, request.symbol, request.side.value, request.quantity,
                 request.order_type.value, request.limit_price, request.stop_price,
                 request.parent_ref, request.oca_group, status, now.isoformat()))
        broker_id = str(cur.lastrowid)
        logger.info("paper: placed %s as #%s (%s) %s", request.order_ref, broker_id, status,
                    message)
        self._emit(OrderStatusEvent(request.order_ref, status, broker_id, message, now))
        return broker_id

    def _set_status(self, order_ref: str, status: str, message: str) -> None:
        row = self._db.execute(
            "SELECT broker_id FROM orders WHERE order_ref = ? ORDER BY broker_id DESC LIMIT 1",
            (order_ref,)).fetchone()
        self._db.execute("UPDATE orders SET status = ? WHERE broker_id = ?", (status, row[0]))
        logger.info("paper: %s -> %s (%s)", order_ref, status, message)
        self._emit(OrderStatusEvent(order_ref, status, str(row[0]), message, self.clock()))

    def _order(self, order_ref: str) -> Order | None:
        row = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_ref = ? "
            "ORDER BY broker_id DESC LIMIT 1", (order_ref,)).fetchone()
        return _row_to_order(row) if row else None

    def _children(self, order_ref: str) -> list[Order]:
        rows = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE parent_ref = ?",
                                (order_ref,))
        return [_row_to_order(r) for r in rows]

    def _held(self, symbol: str) -> int:
        row = self._db.execute("SELECT quantity FROM positions WHERE symbol = ?",
                               (symbol,)).fetchone()
        return row[0] if row else 0

    def _free_position(self, symbol: str) -> int:
        working = self._db.execute(
            "SELECT COALESCE(SUM(quantity - filled_qty), 0) FROM orders WHERE symbol = ? "
            "AND side = 'SELL' AND parent_ref IS NULL AND order_type != 'STOP' "
            "AND status NOT IN ('Filled', 'Cancelled', 'Rejected')", (symbol,)).fetchone()[0]
        return self._held(symbol) - working
