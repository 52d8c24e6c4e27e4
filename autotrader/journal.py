"""The trading journal: an append-mostly SQLite (WAL) record of intents, order events and fills.

The exactly-once rule
---------------------
Every order gets a unique, traceable ``order_ref``
(``bma-<yyyymmdd>-<run>-<symbol>-<seq>``) and is written here **before** it is
transmitted (:meth:`Journal.record_intent`), then marked transmitted with the
broker's id (:meth:`Journal.mark_transmitted`). A crash can therefore leave
an order in one of two states, and :meth:`Journal.reconcile` resolves both from
what the broker knows by ``order_ref``:

* written, never reached the broker -> returned in ``to_transmit`` (safe to send:
  the broker has never seen that ref);
* reached the broker but the process died before it was marked -> adopted
  (marked transmitted, status and fills copied); it is never sent again.

Sessions
--------
Every order records the session that created it (broker, account, paper/live
mode, API client id) and its run (id, DEMO or not), so that a restart resumes
an untransmitted order only into the session it was meant for
(:func:`autotrader.engine.resumption.resume_refusal`). The journal also keeps
the last session it traded with (:meth:`Journal.record_session`). A journal
written before sessions were recorded is migrated on open (schema 1 -> 2); its
orders have no session and are never resumed onto a live account.

Status changes go through the order state machine
(:class:`autotrader.domain.orders.Order`), fills are unique by ``exec_id`` (a
replayed execution is ignored), and the daily order counter lives in the same
file so limits survive restarts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, overload

from autotrader.domain.errors import InvalidTransition, JournalError, OverfillError
from autotrader.domain.orders import Order, OrderStatus
from autotrader.domain.records import (
    Fill,
    OrderOrigin,
    OrderRequest,
    OrderStatusEvent,
    OrderType,
    RunIdentity,
    SessionIdentity,
    Side,
)

logger = logging.getLogger(__name__)

#: Version 2 added the session columns of ``intents`` (broker .. demo).
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    order_ref      TEXT PRIMARY KEY,
    created_at     TEXT NOT NULL,
    day            TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    symbol         TEXT NOT NULL,
    side           TEXT NOT NULL,
    qty            INTEGER NOT NULL,
    "limit"        REAL,
    stop           REAL,
    type           TEXT NOT NULL,
    parent_ref     TEXT,
    oca_group      TEXT,
    state          TEXT NOT NULL,
    transmitted_at TEXT,
    broker_order_id TEXT NOT NULL DEFAULT '',
    filled_qty     INTEGER NOT NULL DEFAULT 0,
    avg_price      REAL NOT NULL DEFAULT 0,
    broker         TEXT,
    account        TEXT,
    live           INTEGER,
    client_id      INTEGER,
    demo           INTEGER
);
CREATE INDEX IF NOT EXISTS intents_state ON intents(state);
CREATE TABLE IF NOT EXISTS order_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_ref TEXT NOT NULL,
    at        TEXT NOT NULL,
    event     TEXT NOT NULL,
    state     TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS fills (
    exec_id    TEXT PRIMARY KEY,
    order_ref  TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    side       TEXT NOT NULL,
    qty        INTEGER NOT NULL,
    price      REAL NOT NULL,
    commission REAL NOT NULL,
    time       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    day          TEXT PRIMARY KEY,
    daily_orders INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS equity_marks (
    at     TEXT NOT NULL,
    equity REAL NOT NULL,
    cash   REAL NOT NULL
);
"""

_COLUMNS = ('order_ref, symbol, side, qty, type, "limit", stop, state, filled_qty, avg_price, '
            'broker_order_id, parent_ref, oca_group')
_DONE = tuple(OrderStatus.DONE)
# added by schema 2; NULL in rows written before (no recorded session)
_SESSION_COLUMNS = (("broker", "TEXT"), ("account", "TEXT"), ("live", "INTEGER"),
                    ("client_id", "INTEGER"), ("demo", "INTEGER"))
_SESSION_KEY = "session"


def _to_order(row: tuple) -> Order:
    ref, symbol, side, qty, kind, limit, stop, state, filled, avg, broker_id, parent, oca = row
    return Order(order_ref=ref, symbol=symbol, side=Side(side), quantity=qty,
                 order_type=OrderType(kind), limit_price=limit, stop_price=stop, status=state,
                 filled_qty=filled, avg_fill_price=avg, broker_order_id=broker_id,
                 parent_ref=parent, oca_group=oca)


def _utc_text(moment: dt.datetime) -> str:
    # one offset for every stored fill time, so text comparison is time comparison
    if moment.tzinfo is None:
        raise JournalError(f"naive timestamp {moment} cannot be journaled")
    return moment.astimezone(dt.timezone.utc).isoformat()


def _slug(text: str, limit: int = 16) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)[:limit] or "run"


class BrokerBook(Protocol):
    """What :meth:`Journal.reconcile` reads of a broker (an ``autotrader.broker`` Broker)."""

    def orders(self) -> list[Order]:
        """Return the broker's orders of this session (working and done)."""

    def executions(self) -> list[Fill]:
        """Return the broker's executions of this session."""


@dataclasses.dataclass
class ReconcileReport:
    """What :meth:`Journal.reconcile` found and did."""

    to_transmit: list[OrderRequest] = dataclasses.field(default_factory=list)
    adopted: list[str] = dataclasses.field(default_factory=list)
    lost: list[str] = dataclasses.field(default_factory=list)
    unknown_at_broker: list[str] = dataclasses.field(default_factory=list)
    fills_added: int = 0
    status_updates: int = 0


class Journal:
    """SQLite journal of one trading account.

    Parameters
    ----------
    path : the journal file (created with its parent directory if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def open(self) -> Journal:
        """Open the SQLite file (WAL, synchronous FULL), create or migrate the schema.

        Returns
        -------
        Journal
            ``self``, so ``journal = Journal(path).open()`` works.

        Raises
        ------
        JournalError
            If the file cannot be opened or its schema created.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
            self._migrate(conn)
        except sqlite3.Error as e:
            raise JournalError(f"journal {self.path} cannot be opened: {e}") from e
        self._conn = conn
        return self

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        present = {row[1] for row in conn.execute("PRAGMA table_info(intents)")}
        with conn:
            for name, kind in _SESSION_COLUMNS:
                if name not in present:
                    conn.execute(f"ALTER TABLE intents ADD COLUMN {name} {kind}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        legacy = conn.execute("SELECT COUNT(*) FROM intents WHERE broker IS NULL").fetchone()[0]
        if legacy:
            logger.warning("journal %s migrated to schema %d: %d order(s) have no recorded "
                           "session; an untransmitted one is never resumed onto a live "
                           "account", self.path, SCHEMA_VERSION, legacy)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Journal:
        return self.open() if self._conn is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError("journal is not open")
        return self._conn

    # -- order refs and intents --------------------------------------------------------------
    def next_order_ref(self, day: dt.date, run_id: str, symbol: str, prefix: str = "bma") -> str:
        """Return a new unique ref ``<prefix>-<yyyymmdd>-<run>-<symbol>-<seq>``.

        ``seq`` counts the refs already journaled with the same stem (bracket
        children included), so it only grows and a ref is never reused.
        """
        stem = f"{prefix}-{day:%Y%m%d}-{_slug(run_id)}-{symbol}-"
        count = self._db.execute("SELECT COUNT(*) FROM intents WHERE order_ref LIKE ? || '%'",
                                 (stem,)).fetchone()[0]
        return f"{stem}{count + 1:03d}"

    def record_intent(self, request: OrderRequest, now: dt.datetime, day: dt.date,
                      run_id: str, count_as_order: bool = True, *,
                      session: SessionIdentity | None = None, demo: bool = False) -> None:
        """Write one order before it is transmitted (see :meth:`record_unit`)."""
        self.record_unit((request,), now, day, OrderOrigin(RunIdentity(run_id, demo), session),
                         count_as_order)

    def record_unit(self, requests: Iterable[OrderRequest], now: dt.datetime, day: dt.date,
                    origin: OrderOrigin, count_as_order: bool = True) -> None:
        """Write the orders of one unit before they are transmitted (state PendingSubmit).

        One transaction: a bracket is journaled whole or not at all, so a crash
        never leaves a parent without its exits. ``origin`` (run and session) is
        recorded with every order; ``count_as_order`` bumps the day's order
        counter once for the unit.

        Raises :class:`JournalError` if a ref exists already: a ref is used once.
        """
        session = origin.session
        columns = (None, None, None, None) if session is None else \
            (session.broker, session.account, int(session.live), session.client_id)
        with self._db:  # rolled back whole if any insert fails
            for request in requests:
                self._insert_intent(request, now, day, origin.run, columns)
            if count_as_order:
                self._db.execute(
                    "INSERT INTO counters (day, daily_orders) VALUES (?, 1) ON CONFLICT(day) "
                    "DO UPDATE SET daily_orders = daily_orders + 1", (day.isoformat(),))

    def _insert_intent(self, request: OrderRequest, now: dt.datetime, day: dt.date,
                       run: RunIdentity, session_columns: tuple) -> None:
        try:
            self._db.execute(
                'INSERT INTO intents (order_ref, created_at, day, run_id, symbol, side, qty, '
                '"limit", stop, type, parent_ref, oca_group, state, broker, account, live, '
                "client_id, demo) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.order_ref, now.isoformat(), day.isoformat(), run.run_id,
                 request.symbol, request.side.value, request.quantity, request.limit_price,
                 request.stop_price, request.order_type.value, request.parent_ref,
                 request.oca_group, OrderStatus.PENDING_SUBMIT, *session_columns,
                 int(run.demo)))
        except sqlite3.IntegrityError as e:
            raise JournalError(f"order ref {request.order_ref} is already journaled") from e
        self._event(request.order_ref, now, "INTENT", OrderStatus.PENDING_SUBMIT,
                    f"{request.side.value} {request.quantity} {request.symbol} "
                    f"{request.order_type.value}")

    def mark_transmitted(self, order_ref: str, broker_order_id: str, now: dt.datetime) -> None:
        """Record that the broker accepted the order for transmission under ``broker_order_id``."""
        with self._db:
            self._db.execute(
                "UPDATE intents SET transmitted_at = COALESCE(transmitted_at, ?), "
                "broker_order_id = ? WHERE order_ref = ?",
                (now.isoformat(), broker_order_id, order_ref))
            self._event(order_ref, now, "TRANSMITTED", self._state(order_ref),
                        f"broker id {broker_order_id}")

    def record_modification(self, order_ref: str, now: dt.datetime, quantity: int | None,
                            stop_price: float | None = None,
                            limit_price: float | None = None) -> None:
        """Record an in-place modification of a working order (same ref, new terms)."""
        with self._db:
            self._db.execute(
                'UPDATE intents SET qty = COALESCE(?, qty), stop = COALESCE(?, stop), '
                '"limit" = COALESCE(?, "limit") WHERE order_ref = ?',
                (quantity, stop_price, limit_price, order_ref))
            self._event(order_ref, now, "MODIFIED", self._state(order_ref),
                        f"qty={quantity} stop={stop_price} limit={limit_price}")

    def mark_cancelled(self, order_ref: str, now: dt.datetime, reason: str) -> None:
        """Close an order on our side (e.g. an untransmitted intent that will not be sent)."""
        self._transition(order_ref, now, "Cancelled", reason)

    def mark_failed(self, order_ref: str, now: dt.datetime, reason: str) -> None:
        """Mark an order Rejected because the broker refused the call outright (never retried)."""
        self._transition(order_ref, now, "Rejected", reason)

    # -- broker events -----------------------------------------------------------------------
    def apply_status(self, event: OrderStatusEvent, now: dt.datetime) -> Order | None:
        """Apply a broker status report; unknown refs are logged and ignored (returns None)."""
        return self._transition(event.order_ref, now, event.status, event.message)

    def apply_fill(self, fill: Fill) -> bool:
        """Append an execution and update its order; False when ``exec_id`` was seen already."""
        order = self.order(fill.order_ref)
        if order is None:
            logger.warning("fill %s for unknown order ref %s ignored", fill.exec_id,
                           fill.order_ref)
            return False
        if self._db.execute("SELECT 1 FROM fills WHERE exec_id = ?",
                            (fill.exec_id,)).fetchone():
            return False
        try:
            updated = order.apply_fill(fill)
        except (OverfillError, InvalidTransition) as e:
            raise JournalError(f"fill {fill.exec_id} rejected by the order state machine: "
                               f"{e}") from e
        at = _utc_text(fill.time or dt.datetime.now(dt.timezone.utc))
        with self._db:
            self._db.execute("INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (fill.exec_id, fill.order_ref, fill.symbol, fill.side.value,
                              fill.quantity, fill.price, fill.commission, at))
            self._db.execute(
                "UPDATE intents SET filled_qty = ?, avg_price = ?, state = ? WHERE order_ref = ?",
                (updated.filled_qty, updated.avg_fill_price, updated.status, fill.order_ref))
            self._db.execute("INSERT INTO order_events (order_ref, at, event, state, detail) "
                             "VALUES (?, ?, 'FILL', ?, ?)",
                             (fill.order_ref, at, updated.status,
                              f"{fill.quantity} @ {fill.price} ({fill.exec_id})"))
        return True

    def _transition(self, order_ref: str, now: dt.datetime, broker_status: str,
                    detail: str) -> Order | None:
        order = self.order(order_ref)
        if order is None:
            logger.warning("status %s for unknown order ref %s ignored", broker_status, order_ref)
            return None
        try:
            updated = order.apply_broker_status(broker_status)
        except InvalidTransition as e:
            # Recorded, not raised: a broker report we cannot apply must not stop the loop,
            # but it is kept in the journal for the operator.
            logger.error("order %s: %s", order_ref, e)
            with self._db:
                self._event(order_ref, now, f"INVALID:{broker_status}", order.status, str(e))
            return order
        with self._db:
            self._db.execute("UPDATE intents SET state = ? WHERE order_ref = ?",
                             (updated.status, order_ref))
            self._event(order_ref, now, broker_status, updated.status, detail)
        return updated

    def _event(self, order_ref: str, now: dt.datetime, event: str, state: str,
               detail: str) -> None:
        self._db.execute("INSERT INTO order_events (order_ref, at, event, state, detail) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (order_ref, now.isoformat(), event, state, detail))

    def _state(self, order_ref: str) -> str:
        row = self._db.execute("SELECT state FROM intents WHERE order_ref = ?",
                               (order_ref,)).fetchone()
        if row is None:
            raise JournalError(f"order ref {order_ref} is not journaled")
        return row[0]

    # -- queries -----------------------------------------------------------------------------
    def order(self, order_ref: str) -> Order | None:
        """Return the journaled order ``order_ref``, or None if it is not journaled."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM intents WHERE order_ref = ?",
                               (order_ref,)).fetchone()
        return _to_order(row) if row else None

    def orders(self, active_only: bool = False) -> list[Order]:
        """Return the journaled orders, oldest first; ``active_only`` drops finished ones."""
        sql = f"SELECT {_COLUMNS} FROM intents"
        if active_only:
            sql += f" WHERE state NOT IN ({','.join('?' * len(_DONE))})"
        rows = self._db.execute(sql + " ORDER BY created_at, order_ref",
                                _DONE if active_only else ())
        return [_to_order(r) for r in rows]

    def untransmitted(self) -> list[OrderRequest]:
        """Journaled orders never handed to the broker (oldest first, parents before children)."""
        rows = self._db.execute(
            'SELECT order_ref, symbol, side, qty, type, "limit", stop, parent_ref, oca_group '
            "FROM intents WHERE transmitted_at IS NULL AND state = ? "
            "ORDER BY created_at, parent_ref IS NOT NULL, order_ref",
            (OrderStatus.PENDING_SUBMIT,))
        return [OrderRequest(r, s, Side(sd), q, OrderType(t), lim, stp, p, oca)
                for r, s, sd, q, t, lim, stp, p, oca in rows]

    def intent_day(self, order_ref: str) -> dt.date:
        """Return the trading day an order was journaled for.

        Raises
        ------
        JournalError
            If ``order_ref`` is not journaled.
        """
        row = self._db.execute("SELECT day FROM intents WHERE order_ref = ?",
                               (order_ref,)).fetchone()
        if row is None:
            raise JournalError(f"order ref {order_ref} is not journaled")
        return dt.date.fromisoformat(row[0])

    def origin(self, order_ref: str) -> OrderOrigin:
        """Return the run and session recorded with an order (session None: not recorded).

        Raises
        ------
        JournalError
            If ``order_ref`` is not journaled.
        """
        row = self._db.execute(
            "SELECT run_id, demo, broker, account, live, client_id FROM intents "
            "WHERE order_ref = ?", (order_ref,)).fetchone()
        if row is None:
            raise JournalError(f"order ref {order_ref} is not journaled")
        run_id, demo, broker, account, live, client_id = row
        session = None if broker is None else \
            SessionIdentity(broker, account or "", bool(live), client_id)
        return OrderOrigin(RunIdentity(run_id, bool(demo)), session)

    def recorded_session(self) -> SessionIdentity | None:
        """Return the session this journal last traded with (None before the first start).

        Raises
        ------
        JournalError
            If the stored value is not a session record.
        """
        text = self.get_value(_SESSION_KEY)
        if text is None:
            return None
        try:
            data = json.loads(text)
            return SessionIdentity(data["broker"], data["account"], bool(data["live"]),
                                   data["client_id"])
        except (ValueError, KeyError, TypeError) as e:
            raise JournalError(f"journal {self.path}: key {_SESSION_KEY!r} is not a session "
                               f"record: {text!r}") from e

    def record_session(self, session: SessionIdentity) -> SessionIdentity | None:
        """Remember ``session`` as the one this journal trades with; returns the previous one.

        A change of broker, account, mode or client id is logged at WARNING with
        both values (the runner decides before this call whether the change is safe).
        """
        previous = self.recorded_session()
        if previous is not None and previous != session:
            logger.warning("journal %s now trades with %s (was %s)", self.path,
                           session.describe(), previous.describe())
        self.set_value(_SESSION_KEY, json.dumps(dataclasses.asdict(session), sort_keys=True))
        return previous

    def fills(self, order_ref: str | None = None) -> list[Fill]:
        """Return the journaled executions (of ``order_ref``, else all), oldest first."""
        sql = "SELECT exec_id, order_ref, symbol, side, qty, price, commission, time FROM fills"
        rows = self._db.execute(sql + (" WHERE order_ref = ?" if order_ref else "")
                                + " ORDER BY time, exec_id", (order_ref,) if order_ref else ())
        return [Fill(e, r, s, Side(sd), q, p, c, dt.datetime.fromisoformat(t))
                for e, r, s, sd, q, p, c, t in rows]

    def last_order_times(self) -> dict[str, dt.datetime]:
        """Symbol -> creation time of its latest journaled order (for the planner's throttle)."""
        rows = self._db.execute("SELECT symbol, MAX(created_at) FROM intents GROUP BY symbol")
        return {s: dt.datetime.fromisoformat(t) for s, t in rows}

    def stopped_out_symbols(self, since: dt.datetime) -> set[str]:
        """Symbols with a fill of a protective STOP order at or after ``since``."""
        rows = self._db.execute(
            "SELECT DISTINCT f.symbol FROM fills f JOIN intents i ON i.order_ref = f.order_ref "
            "WHERE i.type = 'STOP' AND f.time >= ?", (_utc_text(since),))
        return {r[0] for r in rows}

    def daily_orders(self, day: dt.date) -> int:
        """Return the orders counted for ``day``: units journaled with ``count_as_order``."""
        row = self._db.execute("SELECT daily_orders FROM counters WHERE day = ?",
                               (day.isoformat(),)).fetchone()
        return row[0] if row else 0

    @overload
    def get_value(self, key: str) -> str | None: ...

    @overload
    def get_value(self, key: str, default: str) -> str: ...

    def get_value(self, key: str, default: str | None = None) -> str | None:
        """Return the stored value of ``key``, or ``default`` when it is not set."""
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_value(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def delete_value(self, key: str) -> None:
        """Remove ``key`` (no error when it is not set)."""
        with self._db:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def note(self, order_ref: str, now: dt.datetime, event: str, detail: str) -> None:
        """Append an audit row to the order's events without changing its state.

        The trader's own requests (a cancel from the blotter) are noted here
        *before* they are sent to the broker, as orders are journaled before
        they are transmitted.
        """
        with self._db:
            self._event(order_ref, now, event, self._state(order_ref), detail)

    def record_equity(self, now: dt.datetime, equity: float, cash: float) -> None:
        """Append one mark of the account's equity and cash (the GUI's equity curve)."""
        with self._db:
            self._db.execute("INSERT INTO equity_marks VALUES (?, ?, ?)",
                             (_utc_text(now), float(equity), float(cash)))

    def equity_marks(self, limit: int = 2000) -> list[tuple[dt.datetime, float]]:
        """Return the last ``limit`` ``(time, equity)`` marks, oldest first."""
        rows = self._db.execute("SELECT at, equity FROM equity_marks ORDER BY at DESC, rowid "
                                "DESC LIMIT ?", (int(limit),)).fetchall()
        return [(dt.datetime.fromisoformat(at), equity) for at, equity in reversed(rows)]

    def events(self, order_ref: str) -> list[tuple[str, str, str]]:
        """``(event, state, detail)`` rows of one order, oldest first."""
        rows = self._db.execute("SELECT event, state, detail FROM order_events "
                                "WHERE order_ref = ? ORDER BY id", (order_ref,))
        return list(rows)

    # -- reconciliation ----------------------------------------------------------------------
    def reconcile(self, broker: BrokerBook, now: dt.datetime) -> ReconcileReport:
        """Align the journal with the broker by ``order_ref`` (see the module docstring).

        ``broker`` is an :class:`autotrader.broker.base.Broker` (typed by the
        :class:`BrokerBook` protocol so the journal does not import the broker package).
        """
        report = ReconcileReport()
        broker_orders = {o.order_ref: o for o in broker.orders()}
        executions: Iterable[Fill] = broker.executions()
        known = set(broker_orders) | {f.order_ref for f in executions}
        journaled = {o.order_ref: o for o in self.orders()}
        pending = {r.order_ref for r in self.untransmitted()}
        for ref, order in journaled.items():
            if ref in known and ref in pending:
                self.mark_transmitted(ref, broker_orders[ref].broker_order_id
                                      if ref in broker_orders else "", now)
                report.adopted.append(ref)
            elif ref not in known and not order.is_done and ref not in pending:
                self._transition(ref, now, "Cancelled", "unknown to the broker at reconcile")
                report.lost.append(ref)
        report.fills_added = sum(self.apply_fill(f) for f in executions
                                 if f.order_ref in journaled)
        for ref, remote in broker_orders.items():
            if ref not in journaled:
                report.unknown_at_broker.append(ref)
                continue
            local = self.order(ref)
            if local is not None and local.status != remote.status and not local.is_done:
                self._transition(ref, now, remote.status, "reconciled from broker")
                report.status_updates += 1
        report.to_transmit = [r for r in self.untransmitted() if r.order_ref not in known]
        logger.info("journal reconciled: %d to transmit, %d adopted, %d lost, %d foreign, "
                    "%d fills added, %d status updates", len(report.to_transmit),
                    len(report.adopted), len(report.lost), len(report.unknown_at_broker),
                    report.fills_added, report.status_updates)
        return report
