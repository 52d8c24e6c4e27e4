"""The paper broker: fill model, brackets and OCA, partial fills, persistence."""

from __future__ import annotations

import pytest

from autotrader.broker.paper import PaperBroker
from autotrader.domain import (
    BrokerError,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderStatusEvent,
    OrderType,
    Side,
)


def _req(ref, side=Side.BUY, qty=100, kind=OrderType.MARKET, symbol="AAA", **kw):
    return OrderRequest(ref, symbol, side, qty, kind, **kw)


def _status(broker, ref):
    return {o.order_ref: o for o in broker.orders()}[ref].status


def test_market_order_fills_at_the_next_price_with_slippage_and_commission(broker, prices,
                                                                             clock):
    broker.place(_req("m1"))
    prices.prices["AAA"] = 51.0
    assert broker.match() == 0  # same instant as placement: no fill yet
    clock.advance(60)
    broker.match()
    fill = broker.executions()[0]
    assert fill.price == pytest.approx(51.0 * 1.001)
    assert fill.commission == pytest.approx(1.0)  # 100 * 0.01 = min commission 1.0
    assert broker.positions()["AAA"].quantity == 100
    assert broker.account().cash == pytest.approx(100_000.0 - 100 * fill.price - 1.0)


def test_limit_order_fills_only_when_price_crosses(broker, prices, clock):
    broker.place(_req("l1", kind=OrderType.LIMIT, limit_price=49.0))
    clock.advance(60)
    broker.match()
    assert _status(broker, "l1") == OrderStatus.SUBMITTED
    prices.prices["AAA"] = 48.5
    broker.match()
    assert _status(broker, "l1") == OrderStatus.FILLED
    assert broker.executions()[0].price == 48.5


def test_bracket_children_wait_for_parent_then_cancel_each_other(broker, prices, clock):
    broker.place(_req("p", kind=OrderType.LIMIT, limit_price=50.0))
    broker.place(_req("p-tp", Side.SELL, kind=OrderType.LIMIT, limit_price=55.0,
                      parent_ref="p", oca_group="g"))
    broker.place(_req("p-sl", Side.SELL, kind=OrderType.STOP, stop_price=45.0,
                      parent_ref="p", oca_group="g"))
    assert _status(broker, "p-tp") == OrderStatus.INACTIVE
    prices.prices["AAA"] = 44.0  # stop level, but the child is not active yet
    broker.match()
    assert _status(broker, "p") == OrderStatus.FILLED
    assert _status(broker, "p-sl") == OrderStatus.SUBMITTED
    broker.match()  # now the active stop triggers
    assert _status(broker, "p-sl") == OrderStatus.FILLED
    assert _status(broker, "p-tp") == OrderStatus.CANCELLED
    assert "AAA" not in broker.positions()


def test_cancelling_a_parent_cancels_its_children(broker):
    broker.place(_req("p", kind=OrderType.LIMIT, limit_price=10.0))
    broker.place(_req("p-sl", Side.SELL, kind=OrderType.STOP, stop_price=5.0, parent_ref="p",
                      oca_group="g"))
    broker.cancel("p")
    assert _status(broker, "p") == _status(broker, "p-sl") == OrderStatus.CANCELLED


def test_partial_fills_never_overfill(tmp_path, prices, clock):
    paper = PaperBroker(tmp_path / "partial.db", prices.quote, clock,
                        partial_fill_fraction=0.4)
    paper.connect()
    paper.place(_req("m", qty=10))
    clock.advance(1)
    sizes = []
    for _ in range(6):
        paper.match()
        sizes = [f.quantity for f in paper.executions()]
    assert sizes == [4, 2, 1, 1, 1, 1]  # floor(0.4 * remaining), at least one share
    assert _status(paper, "m") == OrderStatus.FILLED
    paper.disconnect()


def test_sell_above_free_position_is_rejected(broker):
    broker.place(_req("s", Side.SELL, qty=1))
    assert _status(broker, "s") == OrderStatus.REJECTED


def test_modify_changes_the_working_order_in_place(broker):
    broker.place(_req("l", kind=OrderType.LIMIT, limit_price=40.0))
    broker.modify("l", limit_price=41.0, quantity=50)
    order = broker.orders()[0]
    assert (order.limit_price, order.quantity, order.order_ref) == (41.0, 50, "l")
    broker.cancel("l")
    with pytest.raises(BrokerError):
        broker.modify("l", limit_price=42.0)


def test_invalid_requests_raise(broker):
    with pytest.raises(BrokerError):
        broker.place(_req("x", qty=0))
    with pytest.raises(BrokerError):
        broker.place(_req("y", kind=OrderType.LIMIT))
    with pytest.raises(BrokerError):
        broker.place(_req("z", kind=OrderType.BRACKET, limit_price=1.0))


def test_events_are_queued_and_poll_runs_the_simulation(broker, clock):
    broker.place(_req("m"))
    clock.advance(1)
    events = broker.poll_events()
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["OrderStatusEvent", "Fill", "OrderStatusEvent"]
    assert isinstance(events[1], Fill) and isinstance(events[2], OrderStatusEvent)
    assert events[2].status == OrderStatus.FILLED
    assert broker.poll_events() == []


def test_state_survives_a_reopen(tmp_path, prices, clock):
    path = tmp_path / "persist.db"
    first = PaperBroker(path, prices.quote, clock)
    first.connect()
    first.place(_req("m", qty=10))
    clock.advance(1)
    first.match()
    first.disconnect()
    second = PaperBroker(path, prices.quote, clock, initial_cash=1.0)
    second.connect()
    assert second.positions()["AAA"].quantity == 10
    assert second.known_order_refs() == {"m"}
    assert second.account().cash < 100_000.0 - 400  # the original cash, not 1.0
    second.disconnect()


def test_calls_before_connect_raise(tmp_path, prices, clock):
    with pytest.raises(BrokerError):
        PaperBroker(tmp_path / "x.db", prices.quote, clock).positions()
