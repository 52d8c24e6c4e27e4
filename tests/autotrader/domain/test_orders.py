"""The order state machine: the table, out-of-order events, and hypothesis invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrader.domain import (
    TRANSITIONS,
    Fill,
    InvalidTransition,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    OverfillError,
    Side,
    next_status,
)

ALL_PAIRS = list(itertools.product(sorted(OrderStatus.ALL), list(OrderEvent)))


def _order(quantity: int = 100, status: str = OrderStatus.PENDING_SUBMIT) -> Order:
    return Order("ref-1", "AAA", Side.BUY, quantity, OrderType.LIMIT, limit_price=10.0,
                 status=status)


def _fill(quantity: int, n: int = 1, price: float = 10.0) -> Fill:
    return Fill(f"x{n}", "ref-1", "AAA", Side.BUY, quantity, price)


@pytest.mark.parametrize(("status", "event"), ALL_PAIRS)
def test_every_pair_is_either_in_the_table_or_raises(status, event):
    if (status, event) in TRANSITIONS:
        assert next_status(status, event) == TRANSITIONS[(status, event)]
    else:
        with pytest.raises(InvalidTransition):
            next_status(status, event)


def test_the_table_only_names_known_statuses():
    for (status, _event), target in TRANSITIONS.items():
        assert status in OrderStatus.ALL and target in OrderStatus.ALL


@pytest.mark.parametrize(("status", "event"), [p for p in ALL_PAIRS if p[0] in OrderStatus.DONE])
def test_no_row_leaves_a_done_state(status, event):
    if (status, event) in TRANSITIONS:
        assert TRANSITIONS[(status, event)] == status


def test_done_and_active_partition_all_statuses():
    assert OrderStatus.DONE | OrderStatus.ACTIVE == OrderStatus.ALL
    assert not OrderStatus.DONE & OrderStatus.ACTIVE


def test_illegal_transitions_raise():
    with pytest.raises(InvalidTransition):
        _order(status=OrderStatus.FILLED).apply(OrderEvent.CANCEL)
    with pytest.raises(InvalidTransition):
        _order(status=OrderStatus.REJECTED).apply(OrderEvent.ACCEPT)
    with pytest.raises(InvalidTransition):
        _order().apply_broker_status("NoSuchStatus")


def test_fill_after_cancel_request_keeps_pending_cancel_then_completes():
    order = _order().apply(OrderEvent.ACCEPT).apply(OrderEvent.REQUEST_CANCEL)
    order = order.apply_fill(_fill(40))
    assert order.status == OrderStatus.PENDING_CANCEL and order.filled_qty == 40
    order = order.apply_fill(_fill(60, 2))
    assert order.status == OrderStatus.FILLED and order.remaining == 0


def test_late_fill_after_cancel_is_recorded_and_order_stays_cancelled():
    order = _order().apply(OrderEvent.ACCEPT).apply(OrderEvent.CANCEL)
    order = order.apply_fill(_fill(30))
    assert order.status == OrderStatus.CANCELLED and order.filled_qty == 30


def test_rejected_cancel_of_a_partial_fill_resumes_partially_filled():
    order = _order().apply(OrderEvent.ACCEPT).apply_fill(_fill(10))
    order = order.apply(OrderEvent.REQUEST_CANCEL).apply(OrderEvent.CANCEL_REJECT)
    assert order.status == OrderStatus.PARTIALLY_FILLED


def test_stale_submitted_after_filled_is_ignored():
    order = _order().apply_fill(_fill(100)).apply_broker_status("Submitted")
    assert order.status == OrderStatus.FILLED


def test_average_fill_price_is_quantity_weighted():
    order = _order().apply_fill(_fill(25, 1, 10.0)).apply_fill(_fill(75, 2, 12.0))
    assert order.avg_fill_price == pytest.approx(11.5)


def test_overfill_raises_and_zero_fill_raises():
    order = _order(10).apply_fill(_fill(8))
    with pytest.raises(OverfillError):
        order.apply_fill(_fill(3, 2))
    with pytest.raises(OverfillError):
        order.apply_fill(_fill(0, 3))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(list(OrderEvent)), max_size=30))
def test_no_event_sequence_leaves_a_terminal_state(events):
    order = _order()
    terminal = None
    for event in events:
        try:
            order = order.apply(event)
        except InvalidTransition:
            continue
        if terminal is not None:
            assert order.status == terminal
        elif order.is_done:
            terminal = order.status


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.integers(1, 500), st.lists(st.integers(1, 200), max_size=20),
       st.lists(st.sampled_from([OrderEvent.ACCEPT, OrderEvent.REQUEST_CANCEL,
                                 OrderEvent.CANCEL]), max_size=3))
def test_no_fill_sequence_overfills(quantity, fills, status_events):
    order = _order(quantity)
    for event in status_events:
        try:
            order = order.apply(event)
        except InvalidTransition:
            pass
    for n, qty in enumerate(fills):
        before = order
        try:
            order = order.apply_fill(_fill(qty, n))
        except OverfillError:
            assert qty > before.remaining
            assert order is before
        assert 0 <= order.filled_qty <= order.quantity
    if order.filled_qty == quantity and order.status != OrderStatus.CANCELLED:
        assert order.status == OrderStatus.FILLED
