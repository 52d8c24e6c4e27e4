"""The order book as a pure state machine (no sockets)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.tws import FillPolicy, OrderBook, OrderStatus, ScriptError, default_contracts
from tests.fakes.tws.events import ErrorEvent, FillEvent, OrderEvent, StatusEvent
from tests.fakes.tws.fills import fill_order

CLIENT = 1
FIXED_NOW = datetime(2025, 1, 2, 14, 30, 5, tzinfo=timezone.utc)


@pytest.fixture
def book() -> OrderBook:
    book = OrderBook(["DU1"], cash=10_000.0, clock=lambda: FIXED_NOW)
    for spec in default_contracts():
        book.add_contract(spec)
    book.set_quote(265598, last=100.0, bid=99.99, ask=100.01)
    return book


def _values(order_id: int, **overrides: str) -> dict[str, str]:
    values = dict(orderId=str(order_id), conId="0", symbol="AAPL", exchange="SMART",
                  primaryExchange="", action="BUY", totalQuantity="10", orderType="LMT",
                  lmtPrice="90.0", auxPrice="", tif="", ocaGroup="", ocaType="0", account="",
                  orderRef=f"ref-{order_id}", transmit="1", parentId="0",
                  outsideRth="0")  # fmt: skip
    values.update(overrides)
    return values


def _kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def test_new_limit_rests_and_reports_open_order(book):
    events = book.place(CLIENT, _values(1))
    assert _kinds(events) == ["OrderEvent"]
    assert events[0].order.status == OrderStatus.SUBMITTED


def test_reused_or_lower_order_id_is_duplicate_103(book):
    book.place(CLIENT, _values(5))
    book.cancel(CLIENT, 5)
    (event,) = book.place(CLIENT, _values(4))
    assert isinstance(event, ErrorEvent) and event.code == 103
    assert book.next_order_id(CLIENT) == 6
    assert book.next_order_id(2) == 1


def test_unknown_symbol_order_gets_200(book):
    (event,) = book.place(CLIENT, _values(1, symbol="ZZZZ"))
    assert (event.code, event.req_id) == (200, 1)
    assert book.orders == {}


def test_full_fill_updates_position_cash_and_execution(book):
    book.place(CLIENT, _values(1, orderType="MKT", lmtPrice=""))
    (execution,) = book.executions
    assert (execution.shares, execution.price) == (10, 100.0)
    assert execution.time == "20250102 14:30:05 UTC"
    assert book.positions[("DU1", 265598)].quantity == 10
    assert book.cash["DU1"] == pytest.approx(10_000.0 - 1000.0 - 1.0)


def test_round_trip_realizes_pnl_net_of_commission(book):
    book.place(CLIENT, _values(1, orderType="MKT", lmtPrice=""))
    book.set_quote(265598, last=110.0, bid=109.99, ask=110.01)
    book.place(CLIENT, _values(2, action="SELL", orderType="MKT", lmtPrice=""))
    position = book.positions[("DU1", 265598)]
    assert (position.quantity, position.realized_pnl) == (0.0, pytest.approx(100.0))
    assert book.executions[-1].realized_pnl == pytest.approx(99.0)


def test_bracket_is_held_until_the_transmitting_child(book):
    assert book.place(CLIENT, _values(10, transmit="0")) == []
    assert book.place(CLIENT, _values(11, action="SELL", lmtPrice="120.0", parentId="10",
                                      transmit="0")) == []  # fmt: skip
    events = book.place(CLIENT, _values(12, action="SELL", orderType="STP", lmtPrice="",
                                        auxPrice="80.0", parentId="10"))  # fmt: skip
    assert [(e.order.order_id, e.order.status) for e in events] == [
        (10, "Submitted"), (11, "PreSubmitted"), (12, "PreSubmitted")]  # fmt: skip
    with pytest.raises(ScriptError, match="waits for parent"):
        fill_order(book, book.orders[(CLIENT, 11)], 10, 120.0)


def test_parent_fill_activates_children_and_child_fill_cancels_sibling(book):
    book.place(CLIENT, _values(10, transmit="0"))
    book.place(CLIENT, _values(11, action="SELL", lmtPrice="120.0", parentId="10", transmit="0"))
    book.place(CLIENT, _values(12, action="SELL", orderType="STP", lmtPrice="", auxPrice="80.0",
                               parentId="10"))  # fmt: skip
    events = fill_order(book, book.orders[(CLIENT, 10)], 10, 90.0)
    assert [(type(e).__name__, getattr(e, "order", None) and e.order.order_id) for e in events
            if not isinstance(e, FillEvent)][-2:] == [("StatusEvent", 11), ("StatusEvent", 12)]
    events = fill_order(book, book.orders[(CLIENT, 11)], 4, 120.0)
    assert book.orders[(CLIENT, 12)].total_qty == 6  # reduced by the partial fill
    events = fill_order(book, book.orders[(CLIENT, 11)], 6, 120.0)
    cancels = [e for e in events if isinstance(e, StatusEvent)]
    assert [(e.order.order_id, e.order.status) for e in cancels] == [(12, "Cancelled")]
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == [202]


def test_oca_type_1_partial_fill_cancels_others(book):
    book.place(CLIENT, _values(1, action="SELL", lmtPrice="120.0", ocaGroup="g", ocaType="1"))
    book.place(CLIENT, _values(2, action="SELL", lmtPrice="121.0", ocaGroup="g", ocaType="1"))
    fill_order(book, book.orders[(CLIENT, 1)], 3, 120.0)
    assert book.orders[(CLIENT, 2)].status == OrderStatus.CANCELLED


def test_cancel_parent_cancels_children(book):
    book.place(CLIENT, _values(10, transmit="0"))
    book.place(CLIENT, _values(11, action="SELL", lmtPrice="120.0", parentId="10"))
    events = book.cancel(CLIENT, 10)
    assert [(e.order.order_id, e.order.status) for e in events if isinstance(e, StatusEvent)] == [
        (10, "Cancelled"), (11, "Cancelled")]  # fmt: skip
    assert [e.code for e in book.cancel(CLIENT, 10)] == [161]
    assert [e.code for e in book.cancel(CLIENT, 99)] == [10147]


def test_modify_changes_price_in_place_and_filled_modify_is_104(book):
    book.place(CLIENT, _values(1))
    (event,) = book.place(CLIENT, _values(1, lmtPrice="95.0"))
    assert isinstance(event, OrderEvent) and event.order.lmt_price == 95.0
    assert len(book.orders) == 1
    book.place(CLIENT, _values(1, lmtPrice="100.05"))  # now marketable: fills
    assert book.orders[(CLIENT, 1)].status == OrderStatus.FILLED
    (error,) = book.place(CLIENT, _values(1, lmtPrice="96.0"))
    assert error.code == 104


def test_off_tick_price_is_110_and_modify_keeps_old_order(book):
    (event,) = book.place(CLIENT, _values(1, lmtPrice="90.001"))
    assert event.code == 110
    book.place(CLIENT, _values(2))
    (event,) = book.place(CLIENT, _values(2, lmtPrice="90.001"))
    assert event.code == 110
    assert book.orders[(CLIENT, 2)].lmt_price == 90.0


def test_stop_triggers_on_tick_only_when_policy_allows(book):
    book.fill_policy = FillPolicy(stops=False)
    book.place(CLIENT, _values(1, action="SELL", orderType="STP", lmtPrice="", auxPrice="95.0"))
    assert book.set_quote(265598, last=94.0) == []
    book.fill_policy = FillPolicy()
    events = book.set_quote(265598, last=93.5)
    assert [e.execution.price for e in events if isinstance(e, FillEvent)] == [93.5]


def test_drop_held_forgets_unsent_orders(book):
    book.place(CLIENT, _values(1, transmit="0"))
    book.place(CLIENT, _values(2))
    book.drop_held(CLIENT)
    assert list(book.orders) == [(CLIENT, 2)]


def test_reject_inactive_is_not_done_for_the_table_but_terminal(book):
    book.place(CLIENT, _values(1))
    events = book.reject(book.orders[(CLIENT, 1)], 201, "no", inactive=True)
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == [201]
    assert book.orders[(CLIENT, 1)].status == OrderStatus.INACTIVE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["transmit", "transmit_child", "activate", "modify",
                                 "partial_fill", "fill", "cancel", "reject", "reject_inactive"]),
                max_size=12))  # fmt: skip
def test_status_never_leaves_a_terminal_state(events):
    state = OrderStatus.HELD
    for event in events:
        if (state, event) not in OrderStatus.TRANSITIONS:
            with pytest.raises(ScriptError):
                OrderStatus.next(state, event)
            continue
        before = state
        state = OrderStatus.next(state, event)
        assert before not in OrderStatus.DONE


def test_child_of_unknown_or_cancelled_parent_is_rejected(book):
    events = book.place(CLIENT, _values(2, parentId="1"))
    assert [(e.code, e.req_id) for e in events if isinstance(e, ErrorEvent)] == [(201, 2)]
    book.place(CLIENT, _values(3))
    book.cancel(CLIENT, 3)
    events = book.place(CLIENT, _values(4, parentId="3"))
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == [201]
    assert book.orders[(CLIENT, 4)].status == OrderStatus.CANCELLED


def test_execution_ids_are_unique_across_gateway_instances():
    """A restarted gateway must not reuse execIds (a journal would drop the fill as seen)."""
    first, second = OrderBook(["DU1"]), OrderBook(["DU1"])
    ids = [first.next_exec_id(), first.next_exec_id(), second.next_exec_id()]
    assert len(set(ids)) == 3
    assert all(len(i.split(".")) == 4 for i in ids)  # the shape of real ids
