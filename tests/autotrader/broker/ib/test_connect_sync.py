"""Connect and startup sync against the fake gateway over a real socket."""

from __future__ import annotations

import pytest

from autotrader.broker._ib_session import ReconnectPolicy
from autotrader.broker.ib import IBBroker
from autotrader.domain.errors import BrokerError
from autotrader.domain.orders import OrderStatus
from autotrader.domain.records import OrderRequest, OrderType, Side
from tests.autotrader.broker.ib.conftest import wait_for, wait_for_gateway


def test_connect_syncs_account_positions_orders_and_executions(gateway, make_broker):
    gateway.set_position("MSFT", 10, 400.0)
    first = make_broker(gateway, client_id=3)
    first.place(OrderRequest("sync-mkt", "AAPL", Side.BUY, 5, OrderType.MARKET))
    first.place(OrderRequest("sync-lmt", "AAPL", Side.BUY, 2, OrderType.LIMIT,
                             limit_price=150.0))
    first.disconnect()
    wait_for_gateway(lambda: gateway.connected_client_ids() == [])

    broker = make_broker(gateway, client_id=3)  # a new process: everything from the sync
    assert broker.account_id == "DU1234567" and not broker.is_live
    assert broker._ib.client.MaxRequests == 45 and broker._ib.RequestTimeout == 3.0
    account = broker.account()
    assert account.cash == pytest.approx(100_000.0 - 5 * 190.0 - 1.0)
    assert account.equity > account.cash
    positions = broker.positions()
    assert {s: (p.quantity, p.avg_cost) for s, p in positions.items()} == {
        "AAPL": (5, 190.0), "MSFT": (10, 400.0)}
    orders = {o.order_ref: o for o in broker.orders()}
    assert orders["sync-mkt"].status == OrderStatus.FILLED
    assert orders["sync-lmt"].status == OrderStatus.SUBMITTED
    assert orders["sync-lmt"].limit_price == 150.0
    (fill,) = broker.executions()
    assert (fill.order_ref, fill.quantity, fill.price, fill.commission) == \
        ("sync-mkt", 5, 190.0, 1.0)
    assert broker.known_order_refs() == {"sync-mkt", "sync-lmt"}


def test_events_after_a_restart_replay_the_book_once(gateway, make_broker):
    first = make_broker(gateway)
    first.place(OrderRequest("r1", "AAPL", Side.BUY, 1, OrderType.MARKET))
    first.disconnect()
    wait_for_gateway(lambda: gateway.connected_client_ids() == [])
    broker = make_broker(gateway, client_id=1)
    wait_for(broker, lambda: broker.executions())
    events = broker.poll_events()
    assert [type(e).__name__ for e in events] == ["Fill", "OrderStatusEvent"]
    assert events[1].status == OrderStatus.FILLED
    assert broker.poll_events() == []


def test_unreachable_gateway_raises_broker_error_after_the_policy_attempts():
    broker = IBBroker("127.0.0.1", 1, client_id=1, connect_timeout_s=1.0,
                      reconnect=ReconnectPolicy(base_delay_s=0.01, max_attempts=2))
    with pytest.raises(BrokerError, match="connect .* failed after 2 attempts: cannot connect"):
        broker.connect()


def test_client_id_in_use_is_retried_with_backoff_then_named(gateway, make_broker):
    make_broker(gateway, client_id=5)
    with pytest.raises(BrokerError, match=r"client id 5 is already in use .*\(IB 326\)"):
        make_broker(gateway, client_id=5, connect_timeout_s=0.5,
                    reconnect=ReconnectPolicy(base_delay_s=0.01, max_attempts=2))
    assert len(gateway.requests("startApi", client_id=5)) == 3  # the holder, then 2 attempts


def test_client_id_freed_during_the_backoff_connects_on_a_later_attempt(gateway, make_broker):
    holder = make_broker(gateway, client_id=5)

    def release_then_sleep(seconds: float) -> None:  # the backoff's sleep
        holder.disconnect()
        wait_for_gateway(lambda: gateway.connected_client_ids() == [])

    second = make_broker(gateway, client_id=5, connect_timeout_s=0.5, sleep=release_then_sleep,
                         reconnect=ReconnectPolicy(base_delay_s=0.01, max_attempts=3))
    assert second.connected and gateway.connected_client_ids() == [5]


@pytest.mark.parametrize("request_name", ["reqExecutions", "reqOpenOrders", "reqPositions"])
def test_a_socket_drop_during_the_startup_sync_is_retried(gateway, make_broker, request_name):
    gateway.drop_during_sync(connections=2, request=request_name)
    broker = make_broker(gateway, reconnect=ReconnectPolicy(base_delay_s=0.01, max_attempts=3))
    assert broker.connected and broker.reconnects == 0
    assert len(gateway.requests("startApi")) == 3


def test_live_account_refuses_orders_unless_armed(make_gateway, make_broker):
    gw = make_gateway(accounts=("U7654321",))
    broker = make_broker(gw)
    assert broker.is_live
    with pytest.raises(BrokerError, match="LIVE"):
        broker.place(OrderRequest("live-1", "AAPL", Side.BUY, 1, OrderType.MARKET))
    assert gw.orders() == []
    armed = make_broker(gw, client_id=2, live_armed=True)
    assert armed.place(OrderRequest("live-2", "AAPL", Side.BUY, 1, OrderType.MARKET))
    assert [o.order_ref for o in gw.orders()] == ["live-2"]


def test_live_port_is_live_before_connecting():
    assert IBBroker(port=7496).is_live and IBBroker(port=4001).is_live
    assert not IBBroker(port=4002).is_live
