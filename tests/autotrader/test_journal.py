"""The journal: write-before-transmit, unique refs, fill de-duplication, reconcile, counters."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from autotrader.domain import (
    Fill,
    JournalError,
    OrderRequest,
    OrderStatus,
    OrderStatusEvent,
    OrderType,
    Side,
)
from autotrader.journal import Journal

DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.timezone.utc)


def _request(journal: Journal, symbol: str = "AAA", qty: int = 10) -> OrderRequest:
    ref = journal.next_order_ref(DAY, "20260301-run", symbol)
    return OrderRequest(ref, symbol, Side.BUY, qty, OrderType.LIMIT, limit_price=50.0)


def test_order_refs_are_traceable_and_never_reused(journal):
    first = _request(journal)
    assert first.order_ref == "bma-20260302-20260301run-AAA-001"
    journal.record_intent(first, NOW, DAY, "20260301-run")
    assert _request(journal).order_ref.endswith("-AAA-002")
    assert _request(journal, "BBB").order_ref.endswith("-BBB-001")
    with pytest.raises(JournalError):
        journal.record_intent(first, NOW, DAY, "20260301-run")


def test_intent_is_pending_until_transmitted(journal):
    request = _request(journal)
    journal.record_intent(request, NOW, DAY, "run")
    assert [r.order_ref for r in journal.untransmitted()] == [request.order_ref]
    assert journal.order(request.order_ref).status == OrderStatus.PENDING_SUBMIT
    journal.mark_transmitted(request.order_ref, "7", NOW)
    assert journal.untransmitted() == []
    assert journal.order(request.order_ref).broker_order_id == "7"


def test_status_and_fill_events_are_appended_and_fills_deduplicated(journal):
    request = _request(journal)
    journal.record_intent(request, NOW, DAY, "run")
    journal.mark_transmitted(request.order_ref, "1", NOW)
    journal.apply_status(OrderStatusEvent(request.order_ref, "Submitted"), NOW)
    fill = Fill("e1", request.order_ref, "AAA", Side.BUY, 4, 50.0, 1.0, NOW)
    assert journal.apply_fill(fill) is True
    assert journal.apply_fill(fill) is False  # replayed execution
    order = journal.order(request.order_ref)
    assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, 4)
    events = [e for e, _s, _d in journal.events(request.order_ref)]
    assert events == ["INTENT", "TRANSMITTED", "Submitted", "FILL"]


def test_an_overfill_from_the_broker_raises_a_journal_error(journal):
    request = _request(journal, qty=5)
    journal.record_intent(request, NOW, DAY, "run")
    journal.apply_fill(Fill("e1", request.order_ref, "AAA", Side.BUY, 5, 50.0))
    with pytest.raises(JournalError):
        journal.apply_fill(Fill("e2", request.order_ref, "AAA", Side.BUY, 1, 50.0))


def test_an_impossible_status_is_recorded_not_raised(journal):
    request = _request(journal, qty=5)
    journal.record_intent(request, NOW, DAY, "run")
    journal.apply_fill(Fill("e1", request.order_ref, "AAA", Side.BUY, 5, 50.0))
    order = journal.apply_status(OrderStatusEvent(request.order_ref, "Rejected"), NOW)
    assert order.status == OrderStatus.FILLED
    assert journal.events(request.order_ref)[-1][0] == "INVALID:Rejected"


def test_daily_counter_and_values_survive_a_reopen(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as journal:
        journal.record_intent(_request(journal), NOW, DAY, "run")
        journal.record_intent(_request(journal), NOW, DAY, "run", count_as_order=False)
        journal.set_value("trading_state", "HALTED")
    with Journal(path) as journal:
        assert journal.daily_orders(DAY) == 1
        assert journal.daily_orders(DAY + dt.timedelta(days=1)) == 0
        assert journal.get_value("trading_state") == "HALTED"


def test_journal_file_is_in_wal_mode(tmp_path):
    with Journal(tmp_path / "j.db"):
        mode = sqlite3.connect(tmp_path / "j.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_reconcile_resumes_unsent_adopts_sent_and_closes_lost(journal, broker, clock):
    requests = []
    for symbol in ("AAA", "AAA", "BBB"):
        requests.append(_request(journal, symbol))
        journal.record_intent(requests[-1], NOW, DAY, "run")
    unsent, sent, lost = requests
    broker.place(sent)  # crash after place, before mark_transmitted
    journal.mark_transmitted(lost.order_ref, "99", NOW)  # the broker never heard of it
    clock.advance(60)
    broker.match()  # `sent` (a 50.0 limit at price 50.0) fills while we were down
    report = journal.reconcile(broker, NOW)
    assert [r.order_ref for r in report.to_transmit] == [unsent.order_ref]
    assert report.adopted == [sent.order_ref]
    assert report.lost == [lost.order_ref]
    assert report.fills_added == 1
    assert journal.order(sent.order_ref).status == OrderStatus.FILLED
    assert journal.order(lost.order_ref).status == OrderStatus.CANCELLED
    again = journal.reconcile(broker, NOW)
    assert again.fills_added == 0 and again.adopted == []


def test_reconcile_reports_foreign_orders(journal, broker):
    broker.place(OrderRequest("manual-1", "AAA", Side.BUY, 1, OrderType.MARKET))
    assert journal.reconcile(broker, NOW).unknown_at_broker == ["manual-1"]
