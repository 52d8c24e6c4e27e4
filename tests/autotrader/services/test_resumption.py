"""What a restart resumes: the journal's session columns, their migration, the runner's rule.

The journal (migration of an old ``journal.db``, one-transaction units, the session
record) and the runner on the paper broker (a migrated order resumed on paper only, a
bracket resumed as a bracket, the DEMO refusal at the runner's single exit).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3

import pytest

from autotrader.broker.paper import PaperBroker
from autotrader.domain.errors import JournalError
from autotrader.domain.orders import OrderStatus
from autotrader.domain.records import (
    OrderIntent,
    OrderOrigin,
    OrderRequest,
    OrderType,
    RunIdentity,
    SessionIdentity,
    Side,
)
from autotrader.engine.brackets import order_unit, unit_requests
from autotrader.engine.planner import OrderPlan
from autotrader.engine.resumption import STOP_RUN
from autotrader.journal import SCHEMA_VERSION, Journal
from autotrader.services.cycle_records import CycleReport
from autotrader.services.recommendations import load_recommendations
from autotrader.services.trading import TradingRunner

PAPER_IB = SessionIdentity("ib", "DU1", live=False, client_id=7)
LIVE_IB = SessionIdentity("ib", "U1", live=True, client_id=7)
RUN = RunIdentity("20260301-run")
DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 2, 15, tzinfo=dt.timezone.utc)




def _plan(kind: OrderType) -> OrderPlan:
    intent = OrderIntent("AAA", Side.BUY, 10, 50.0)
    return OrderPlan(intent, 10, kind, limit_price=50.0, take_profit_price=53.0,
                     stop_price=48.0)


# -- the journal ------------------------------------------------------------------------------
OLD_INTENTS = """CREATE TABLE intents (
    order_ref TEXT PRIMARY KEY, created_at TEXT NOT NULL, day TEXT NOT NULL,
    run_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, qty INTEGER NOT NULL,
    "limit" REAL, stop REAL, type TEXT NOT NULL, parent_ref TEXT, oca_group TEXT,
    state TEXT NOT NULL, transmitted_at TEXT, broker_order_id TEXT NOT NULL DEFAULT '',
    filled_qty INTEGER NOT NULL DEFAULT 0, avg_price REAL NOT NULL DEFAULT 0)"""


def _old_journal(path, run_id: str = "20260301-run") -> str:
    """A schema-1 journal (before session records) with one untransmitted order."""
    ref = f"bma-20260302-{run_id.replace('-', '')}-AAA-001"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_INTENTS)
        conn.execute("INSERT INTO intents (order_ref, created_at, day, run_id, symbol, side, "
                     'qty, "limit", type, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                     (ref, "2026-03-02T15:00:00+00:00", "2026-03-02", run_id, "AAA", "BUY",
                      10, 60.0, "LIMIT", "PendingSubmit"))
    return ref


def test_an_old_journal_is_migrated_and_its_orders_have_no_session(tmp_path, caplog):
    path = tmp_path / "journal.db"
    ref = _old_journal(path)
    with caplog.at_level(logging.WARNING), Journal(path) as journal:
        assert journal.origin(ref) == OrderOrigin(RunIdentity("20260301-run"), None)
        assert journal.untransmitted()[0].order_ref == ref
    assert "migrated to schema 2: 1 order(s) have no recorded session" in caplog.text
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Journal(path):  # opening again migrates nothing
        pass


def test_a_unit_is_journaled_whole_or_not_at_all(tmp_path):
    with Journal(tmp_path / "journal.db") as journal:
        bracket = order_unit(_plan(OrderType.BRACKET), "b")
        origin = OrderOrigin(RUN, PAPER_IB)
        journal.record_unit((bracket.take_profit,), NOW,
                            DAY, origin)
        with pytest.raises(JournalError, match="b-tp is already journaled"):
            journal.record_unit(unit_requests(bracket),
                                NOW, DAY, origin)
        assert [o.order_ref for o in journal.orders()] == ["b-tp"]
        assert journal.daily_orders(DAY) == 1
        assert journal.origin("b-tp") == origin


def test_the_journal_records_the_session_it_trades_with(tmp_path, caplog):
    with Journal(tmp_path / "journal.db") as journal:
        assert journal.recorded_session() is None
        assert journal.record_session(PAPER_IB) is None
        moved = SessionIdentity("ib", "DU1", False, 8)
        with caplog.at_level(logging.WARNING):
            assert journal.record_session(moved) == PAPER_IB
        assert journal.recorded_session() == moved
        assert "client 8 (was ib DU1 paper client 7)" in caplog.text


# -- the runner on the paper broker -------------------------------------------------------------
class _LivePaper(PaperBroker):
    """A paper broker that says it reaches a live account (the runner's view of one)."""

    is_live = True


def _runner(broker, journal, run_dir, clock):
    return TradingRunner(broker, journal,
                         lambda: load_recommendations(run_dir, broker_is_live=broker.is_live),
                         clock=clock, market_open=lambda now: True)


@pytest.mark.parametrize("live", [False, True], ids=["paper", "live"])
def test_a_migrated_untransmitted_order_is_resumed_on_paper_only(tmp_path, prices, clock,
                                                                  run_dir, live, caplog):
    path = tmp_path / "journal.db"
    ref = _old_journal(path)
    broker = (_LivePaper if live else PaperBroker)(tmp_path / "paper.db", prices.quote, clock)
    with Journal(path) as journal, caplog.at_level(logging.WARNING):
        _runner(broker, journal, run_dir, clock).start()
        assert (ref in broker.known_order_refs()) is not live
        if live:
            assert journal.order(ref).status == OrderStatus.CANCELLED
            assert "never resumed onto a live account" in journal.events(ref)[-1][2]
        else:
            assert "has no recorded session" in caplog.text
    broker.disconnect()


def test_an_untransmitted_bracket_is_resumed_as_one_bracket(tmp_path, prices, clock, run_dir,
                                                           journal):
    calls: list[list[str]] = []

    class Recording(PaperBroker):
        def place_bracket(self, *requests):
            calls.append([r.order_ref for r in requests])
            return super().place_bracket(*requests)

    broker = Recording(tmp_path / "paper.db", prices.quote, clock)
    broker.connect()
    bracket = order_unit(_plan(OrderType.BRACKET), "bma-20260302-20260301run-AAA-001")
    journal.record_unit(unit_requests(bracket), clock(), DAY,
                        OrderOrigin(RUN, broker.session()))
    _runner(broker, journal, run_dir, clock).start()
    assert calls == [[r.order_ref for r in bracket]]
    assert journal.untransmitted() == []
    broker.disconnect()


def test_a_demo_order_is_refused_at_the_one_exit_to_a_live_broker(tmp_path, prices, clock,
                                                                  run_dir, journal):
    """Defence in depth: even a unit that got past every earlier check never leaves."""
    broker = _LivePaper(tmp_path / "paper.db", prices.quote, clock)
    broker.connect()
    request = OrderRequest("demo-1", "AAA", Side.BUY, 10, OrderType.LIMIT, limit_price=50.0)
    journal.record_intent(request, clock(), DAY, "demo-run", session=broker.session(),
                          demo=True)
    runner = _runner(broker, journal, run_dir, clock)
    report = CycleReport(clock())
    runner._transmit_unit(request, clock(), report)
    assert broker.known_order_refs() == set()
    assert journal.order("demo-1").status == OrderStatus.CANCELLED
    assert report.failures and "DEMO run demo-run" in report.failures[0]
    broker.disconnect()


def test_stops_and_entries_record_their_origin(broker, journal, run_dir, clock):
    runner = _runner(broker, journal, run_dir, clock)
    runner.start()
    runner.run_cycle()
    origins = {o.order_ref: journal.origin(o.order_ref) for o in journal.orders()}
    assert origins and all(o.session == broker.session() for o in origins.values())
    runs = {o.run.run_id for o in origins.values()}
    assert runs <= {"20260301-run", STOP_RUN} and "20260301-run" in runs

