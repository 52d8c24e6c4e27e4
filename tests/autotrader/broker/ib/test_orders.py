"""Order lifecycles through IBBroker: market, limit, partial fills, bracket + OCA, reject,
cancel, stop replacement and min-tick rounding, as domain events."""

from __future__ import annotations

import pytest

from autotrader.domain.errors import BrokerError
from autotrader.domain.orders import OrderStatus
from autotrader.domain.records import Fill, OrderRequest, OrderStatusEvent, OrderType, Side
from tests.autotrader.broker.ib.conftest import wait_for


def _collect(broker, events: list, predicate, timeout: float = 3.0) -> list:
    def done() -> bool:
        events.extend(broker.poll_events())
        return predicate(events)

    wait_for(broker, done, timeout)
    return events


def _statuses(events, ref):
    return [e.status for e in events if isinstance(e, OrderStatusEvent) and e.order_ref == ref]


def _fills(events, ref=None):
    return [e for e in events if isinstance(e, Fill) and (ref is None or e.order_ref == ref)]


def test_market_order_fills_with_commission_as_domain_events(gateway, broker):
    broker_id = broker.place(OrderRequest("m1", "AAPL", Side.BUY, 5, OrderType.MARKET))
    events = _collect(broker, [], lambda ev: _statuses(ev, "m1") and _fills(ev))
    (fill,) = _fills(events)
    assert (fill.exec_id, fill.quantity, fill.price, fill.commission, fill.side) == \
        (gateway.executions()[0].exec_id, 5, 190.0, 1.0, Side.BUY)
    assert _statuses(events, "m1") == [OrderStatus.FILLED]
    assert broker_id == str(gateway.orders()[0].order_id)
    assert broker.positions()["AAPL"].quantity == 5


def test_limit_order_partial_fills_then_complete(gateway, broker):
    broker_id = int(broker.place(OrderRequest("l1", "AAPL", Side.BUY, 10, OrderType.LIMIT,
                                              limit_price=180.0)))
    events = _collect(broker, [], lambda ev: _statuses(ev, "l1") == ["Submitted"])
    gateway.fill(broker_id, qty=4, price=180.0)
    _collect(broker, events, lambda ev: len(_fills(ev)) == 1
             and _statuses(ev, "l1")[-1] == OrderStatus.PARTIALLY_FILLED)
    assert {o.order_ref: o.filled_qty for o in broker.orders()} == {"l1": 4}
    gateway.fill(broker_id, price=179.5)
    _collect(broker, events, lambda ev: _statuses(ev, "l1")[-1] == OrderStatus.FILLED)
    assert [f.quantity for f in _fills(events)] == [4, 6]
    (order,) = broker.orders()
    assert (order.filled_qty, order.avg_fill_price) == (10, (4 * 180.0 + 6 * 179.5) / 10)


def test_limit_price_is_rounded_to_the_minimum_tick(gateway, broker):
    broker.place(OrderRequest("t1", "AAPL", Side.BUY, 1, OrderType.LIMIT, limit_price=150.0049))
    broker.place(OrderRequest("t2", "AAPL", Side.SELL, 1, OrderType.LIMIT, limit_price=250.001))
    assert [o.lmt_price for o in gateway.orders()] == [150.0, 250.01]
    assert all(e[0] != 110 for e in broker.errors)


def test_reject_201_becomes_a_rejected_event_with_the_ib_message(gateway, broker):
    gateway.reject_next_order(code=201, message="Order rejected - reason: no permission")
    broker.place(OrderRequest("rj", "AAPL", Side.BUY, 1, OrderType.LIMIT, limit_price=150.0))
    events = _collect(broker, [], lambda ev: _statuses(ev, "rj"))
    (event,) = [e for e in events if isinstance(e, OrderStatusEvent)]
    assert event.status == OrderStatus.REJECTED and "201" in event.message
    broker.wait(0.1)
    assert [e for e in broker.poll_events() if isinstance(e, OrderStatusEvent)] == []


def test_cancel_confirms_with_a_cancelled_event(gateway, broker):
    broker.place(OrderRequest("c1", "AAPL", Side.BUY, 1, OrderType.LIMIT, limit_price=150.0))
    broker.cancel("c1")
    events = _collect(broker, [], lambda ev: OrderStatus.CANCELLED in _statuses(ev, "c1"))
    assert _statuses(events, "c1")[-1] == OrderStatus.CANCELLED
    assert gateway.orders()[0].status == "Cancelled"
    broker.cancel("c1")  # already done: ignored, nothing sent
    assert len(gateway.requests("cancelOrder")) == 1


def _bracket(ref: str, qty: int = 10):
    return (OrderRequest(ref, "AAPL", Side.BUY, qty, OrderType.LIMIT, limit_price=185.0),
            OrderRequest(f"{ref}-tp", "AAPL", Side.SELL, qty, OrderType.LIMIT,
                         limit_price=200.0, parent_ref=ref, oca_group=f"{ref}-oca"),
            OrderRequest(f"{ref}-sl", "AAPL", Side.SELL, qty, OrderType.STOP,
                         stop_price=180.0, parent_ref=ref, oca_group=f"{ref}-oca"))


def test_bracket_transmit_chain_then_take_profit_fill_cancels_the_stop(gateway, broker):
    ids = [int(i) for i in broker.place_bracket(*_bracket("b1"))]
    placed = gateway.requests("placeOrder")
    assert [r.values["transmit"] for r in placed] == ["0", "0", "1"]
    assert [r.values["parentId"] for r in placed] == ["0", str(ids[0]), str(ids[0])]
    assert [r.values["ocaGroup"] for r in placed[1:]] == ["b1-oca"] * 2
    events = _collect(broker, [], lambda ev: _statuses(ev, "b1-sl") == ["Inactive"])
    assert _statuses(events, "b1") == ["Submitted"]
    gateway.fill(ids[0], price=185.0)
    _collect(broker, events, lambda ev: _statuses(ev, "b1-sl")[-1:] == ["Submitted"])
    gateway.set_price("AAPL", last=200.5, bid=200.4, ask=200.6)
    _collect(broker, events, lambda ev: _statuses(ev, "b1-sl")[-1:] == ["Cancelled"]
             and _statuses(ev, "b1-tp")[-1:] == ["Filled"])
    assert [f.order_ref for f in _fills(events)] == ["b1", "b1-tp"]
    assert gateway.positions() == {"AAPL": 0.0}


def test_runner_style_bracket_children_attach_to_the_working_parent(gateway, broker):
    parent, tp, sl = _bracket("b2", qty=4)
    ids = [int(broker.place(r)) for r in (parent, tp, sl)]
    assert [o.status for o in gateway.orders()] == ["Submitted", "PreSubmitted", "PreSubmitted"]
    gateway.fill(ids[0], price=185.0)
    gateway.set_price("AAPL", last=179.0, bid=178.9, ask=179.1)
    events = _collect(broker, [], lambda ev: _statuses(ev, "b2-tp")[-1:] == ["Cancelled"]
                      and _statuses(ev, "b2-sl")[-1:] == ["Filled"])
    assert sum(f.quantity for f in _fills(events, "b2-sl")) == 4


def test_a_bracket_cut_off_before_its_stop_leaves_nothing_live(gateway, broker):
    parent, tp, sl = _bracket("b3")
    gateway.drop_connection_on_place_order(3, process=False)  # the transmitting stop is lost
    broker.place_bracket(parent, tp, sl)
    assert broker.orders() == [] and broker.reconnects == 1  # held parent and TP dropped
    assert all(o.status != "Submitted" for o in gateway.orders())
    ids = broker.place_bracket(*_bracket("b3-retry"))
    assert len(ids) == 3 and gateway.order(int(ids[0])).status == "Submitted"


def test_stop_replacement_modifies_in_place_and_never_leaves_two_live_exits(gateway, broker):
    gateway.set_position("AAPL", 10, 150.0)
    broker_id = int(broker.place(OrderRequest("s1", "AAPL", Side.SELL, 10, OrderType.STOP,
                                              stop_price=170.0)))
    for stop in (172.004, 175.0, 176.5):
        broker.modify("s1", quantity=10, stop_price=stop)
        live = [o for o in gateway.orders() if o.is_live]
        assert len(live) == 1 and live[0].order_id == broker_id
    assert gateway.order(broker_id).aux_price == 176.5
    (order,) = broker.orders()
    assert (order.order_ref, order.stop_price) == ("s1", 176.5)


def test_modify_of_a_filled_order_is_refused(gateway, broker):
    broker_id = int(broker.place(OrderRequest("f1", "AAPL", Side.BUY, 1, OrderType.MARKET)))
    wait_for(broker, lambda: gateway.order(broker_id).status == "Filled")
    with pytest.raises(BrokerError, match="not a working order"):
        broker.modify("f1", quantity=2)


def test_an_order_ref_the_broker_has_is_never_sent_again(gateway, broker):
    first = broker.place(OrderRequest("dup", "AAPL", Side.BUY, 1, OrderType.LIMIT,
                                      limit_price=150.0))
    again = broker.place(OrderRequest("dup", "AAPL", Side.BUY, 1, OrderType.LIMIT,
                                      limit_price=150.0))
    assert first == again and len(gateway.orders()) == 1
