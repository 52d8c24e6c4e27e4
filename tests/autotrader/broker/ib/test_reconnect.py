"""Disconnects mid-order: reconnect with the same clientId, reconcile, never a duplicate.

The whole trader runs here (TradingRunner + Journal + IBBroker over a socket to the
fake); the gateway drops the connection at the n-th placeOrder, before or after
processing it, for every n a trading day of this test produces.
"""

from __future__ import annotations

from collections import Counter

import pytest

from autotrader.broker._ib_session import ReconnectPolicy
from autotrader.domain.errors import BrokerError
from autotrader.domain.orders import OrderStatus
from autotrader.domain.records import OrderRequest, OrderType, Side
from tests.autotrader.broker.ib.conftest import SESSION, make_runner, refs_at_gateway, wait_for
from tests.autotrader.conftest import FakeClock


def _trade_day(runner, clock, broker, cycles: int = 3) -> None:
    runner.start()
    for _ in range(cycles):
        runner.run_cycle()
        broker.wait(0.05)
        clock.advance(600)  # past the planner's per-symbol throttle: a lost buy is re-planned
    runner.run_cycle()


def _check_exactly_once(gateway, runner) -> None:
    at_gateway = refs_at_gateway(gateway)
    assert all(n == 1 for n in at_gateway.values()), at_gateway
    journal = runner.journal
    journaled = {o.order_ref: o for o in journal.orders()}
    assert set(at_gateway) <= set(journaled)
    entries = Counter(o.contract.symbol for o in gateway.orders()
                      if o.action == "BUY" and o.status in ("Submitted", "Filled"))
    assert all(n == 1 for n in entries.values()), f"a symbol was bought twice: {entries}"
    gateway_fills = {e.exec_id: e for e in gateway.executions()}
    journal_fills = {f.exec_id for f in journal.fills()}
    assert journal_fills == set(gateway_fills), "a fill was lost or invented"
    for ref, order in journaled.items():
        if ref in at_gateway:
            assert order.filled_qty == sum(e.shares for e in gateway_fills.values()
                                           if e.order_ref == ref)


def test_a_clean_trading_day_against_the_fake(tmp_path, gateway, broker):
    clock = FakeClock(SESSION)
    runner = make_runner(tmp_path, broker, clock)
    _trade_day(runner, clock, broker)
    assert runner.health.failures == Counter()
    assert len(gateway.requests("placeOrder")) >= 4  # four entries, then their stops
    assert set(broker.positions()) == {"AAPL", "MSFT", "IBM", "XOM"}
    _check_exactly_once(gateway, runner)
    stops = [o for o in gateway.orders() if o.order_type == "STP" and o.is_live]
    assert sorted(o.contract.symbol for o in stops) == ["AAPL", "IBM", "MSFT", "XOM"]


@pytest.mark.slow
@pytest.mark.parametrize("process", [True, False], ids=["after-processing", "before"])
@pytest.mark.parametrize("nth", range(1, 9))
def test_disconnect_at_the_nth_place_order_never_duplicates(tmp_path, make_gateway,
                                                            make_broker, nth, process):
    gateway = make_gateway()
    broker = make_broker(gateway)
    clock = FakeClock(SESSION)
    runner = make_runner(tmp_path, broker, clock)
    gateway.drop_connection_on_place_order(nth, process=process)
    _trade_day(runner, clock, broker)
    if nth <= len(gateway.requests("placeOrder")):
        assert broker.reconnects >= 1
    _check_exactly_once(gateway, runner)
    assert set(broker.positions()) == {"AAPL", "MSFT", "IBM", "XOM"}


def test_forced_disconnect_with_an_outage_reconnects_with_the_same_client_id(gateway,
                                                                            broker):
    broker.place(OrderRequest("o1", "AAPL", Side.BUY, 2, OrderType.LIMIT, limit_price=150.0))
    gateway.disconnect_clients(refuse_for=0.3)
    gateway.fill(int(broker.orders()[0].broker_order_id), price=150.0)  # while we are away
    orders = broker.orders()  # reconnects (several attempts), then syncs
    assert broker.reconnects == 1 and gateway.connected_client_ids() == [1]
    assert [(o.order_ref, o.status, o.filled_qty) for o in orders] == \
        [("o1", OrderStatus.FILLED, 2)]
    events = broker.poll_events()
    assert [type(e).__name__ for e in events] == ["Fill", "OrderStatusEvent"]


def test_1100_triggers_a_reconnect_and_the_reconcile_hook(gateway, broker):
    calls: list[int] = []
    broker.on_reconnect = lambda b: calls.append(len(b.orders()))
    broker.place(OrderRequest("o2", "AAPL", Side.BUY, 1, OrderType.LIMIT, limit_price=150.0))
    gateway.send_notice(1100)
    wait_for(broker, lambda: broker.reconnects == 1)  # waiting reconnects at once
    broker.positions()
    assert broker.reconnects == 1 and calls == [1]


def test_reconnect_gives_up_with_a_broker_error_after_the_policy_attempts(gateway,
                                                                           make_broker):
    broker = make_broker(gateway, connect_timeout_s=0.5,
                         reconnect=ReconnectPolicy(base_delay_s=0.01, max_attempts=2))
    gateway.disconnect_clients(refuse_for=30.0)
    with pytest.raises(BrokerError, match="reconnect .* failed after 2 attempts"):
        broker.account()
    assert broker.reconnects == 0


def test_a_fill_while_disconnected_is_reconciled_into_the_journal(tmp_path, gateway, broker):
    clock = FakeClock(SESSION)
    runner = make_runner(tmp_path, broker, clock)
    runner.start()
    ref = "manual-1"
    day = clock().date()
    request = OrderRequest(ref, "IBM", Side.BUY, 3, OrderType.LIMIT, limit_price=160.0)
    runner.journal.record_intent(request, clock(), day, "t")
    runner.journal.mark_transmitted(ref, broker.place(request), clock())
    gateway.disconnect_clients(refuse_for=0.2)
    gateway.fill(int(runner.journal.order(ref).broker_order_id), price=160.0)
    broker.account()  # the reconnect runs the journal's reconcile before returning
    assert runner.journal.order(ref).status == OrderStatus.FILLED
    assert [f.quantity for f in runner.journal.fills(ref)] == [3]
