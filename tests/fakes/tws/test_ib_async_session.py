"""Connection, sync, contracts, market data and reconnects with the real ib_async client."""

from __future__ import annotations

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from tests.fakes.tws import FakeGateway
from tests.fakes.tws.conftest import wait_for_gateway, wait_until


def test_connect_runs_startup_sync(gateway, connect):
    gateway.set_position("MSFT", 20, 400.0)
    ib = connect(3)
    assert ib.managedAccounts() == ["DU1234567"]
    assert [(p.contract.symbol, p.position, p.avgCost) for p in ib.positions()] == [
        ("MSFT", 20.0, 400.0)
    ]
    values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
    assert values[("TotalCashValue", "USD")] == "100000.00"
    assert values[("NetLiquidation", "USD")] == "108200.00"  # 100000 + 20 * 410
    assert [item.marketValue for item in ib.portfolio()] == [8200.0]
    names = {r.name for r in gateway.requests(client_id=3)}
    assert {"startApi", "reqPositions", "reqOpenOrders", "reqCompletedOrders",
            "reqAccountUpdates", "reqExecutions"} <= names  # fmt: skip


def test_qualify_success_unknown_and_ambiguous(connect):
    ib = connect(1)
    aapl, unknown, ambiguous = ib.qualifyContracts(
        Stock("AAPL", "SMART", "USD"), Stock("ZZZZ", "SMART", "USD"), Stock("DUAL", "SMART", "USD")
    )
    assert (aapl.conId, aapl.primaryExchange, aapl.exchange) == (265598, "NASDAQ", "SMART")
    assert unknown is None
    assert ambiguous is None


def test_primary_exchange_hint_resolves_smart_failures(connect):
    ib = connect(1)
    assert ib.qualifyContracts(Stock("HINT", "SMART", "USD")) == [None]
    (hinted,) = ib.qualifyContracts(Stock("HINT", "SMART", "USD", primaryExchange="AMEX"))
    assert hinted.conId == 900003
    (dual,) = ib.qualifyContracts(Stock("DUAL", "SMART", "USD", primaryExchange="ARCA"))
    assert dual.conId == 900002


def test_live_quotes_stream_to_subscribers(gateway, connect):
    ib = connect(1)
    ticker = ib.reqMktData(ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0])
    wait_until(ib, lambda: ticker.last == 190.0)
    gateway.set_price("AAPL", last=191.25, bid=191.2, ask=191.3)
    wait_until(ib, lambda: ticker.last == 191.25)
    assert (ticker.bid, ticker.ask, ticker.marketDataType) == (191.2, 191.3, 1)


def test_delayed_data_fallback_after_permission_error(gateway, connect):
    gateway.set_live_permission(False, symbol="AAPL")
    ib = connect(1)
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    aapl, msft = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"), Stock("MSFT", "SMART", "USD"))
    live = ib.reqMktData(aapl)
    wait_until(ib, lambda: 354 in errors)
    assert live.last != live.last  # NaN: nothing was streamed
    ib.cancelMktData(live.contract)
    ib.reqMarketDataType(3)
    delayed = ib.reqMktData(aapl)
    # ib_async empties ``Ticker.ticks`` whenever new socket data arrives, so the tick types
    # are collected from every update instead of read from the last batch
    tick_types: list[int] = []
    delayed.updateEvent += lambda t: tick_types.extend(tick.tickType for tick in t.ticks)
    wait_until(ib, lambda: delayed.last == 190.0)
    assert delayed.marketDataType == 3
    assert 68 in tick_types  # DELAYED_LAST, not LAST (4)
    assert 4 not in tick_types
    # Symbols with live permission stay live even after asking for delayed data.
    msft = ib.reqMktData(msft)
    wait_until(ib, lambda: msft.last == 410.0)
    assert msft.marketDataType == 1


def test_snapshot_tickers_end_with_snapshot_end(connect):
    ib = connect(1)
    (ticker,) = ib.reqTickers(*ib.qualifyContracts(Stock("IBM", "SMART", "USD")))
    assert (ticker.bid, ticker.ask, ticker.last) == (169.99, 170.01, 170.0)


def test_forced_disconnect_then_same_client_id_sees_prior_state(gateway, connect):
    ib = connect(5)
    contract = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
    resting = ib.placeOrder(contract, LimitOrder("BUY", 10, 150.0, orderRef="intent-7:entry"))
    filled = ib.placeOrder(contract, MarketOrder("BUY", 2, orderRef="intent-8:entry"))
    wait_until(ib, lambda: resting.orderStatus.status == "Submitted" and filled.isDone())
    disconnected = []
    ib.disconnectedEvent += lambda: disconnected.append(True)
    gateway.disconnect_clients()
    wait_until(ib, lambda: disconnected == [True])
    wait_for_gateway(lambda: gateway.connected_client_ids() == [])

    again = connect(5)
    open_trades = again.openTrades()
    assert [(t.order.orderId, t.order.orderRef) for t in open_trades] == [
        (resting.order.orderId, "intent-7:entry")
    ]
    assert [f.execution.orderRef for f in again.fills()] == ["intent-8:entry"]
    assert [f.execution.orderRef for f in again.reqExecutions()] == ["intent-8:entry"]
    assert [t.order.orderRef for t in again.reqOpenOrders()] == ["intent-7:entry"]
    completed = [t for t in again.trades() if t.orderStatus.status == "Filled"]
    assert [t.order.orderRef for t in completed] == ["intent-8:entry"]
    # nextValidId is above every id this client used before.
    assert again.client.getReqId() > filled.order.orderId


def test_disconnect_on_nth_place_order_keeps_the_processed_order(gateway, connect):
    ib = connect(2)
    contract = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
    gateway.drop_connection_on_place_order(2, process=True)
    ib.placeOrder(contract, LimitOrder("BUY", 1, 150.0, orderRef="a"))
    ib.placeOrder(contract, LimitOrder("BUY", 1, 151.0, orderRef="b"))
    wait_until(ib, lambda: not ib.isConnected())
    wait_for_gateway(lambda: gateway.connected_client_ids() == [])
    again = connect(2)
    assert sorted(t.order.orderRef for t in again.openTrades()) == ["a", "b"]
    assert len([o for o in gateway.orders() if o.is_live]) == 2


def test_disconnect_before_processing_loses_the_order(gateway, connect):
    ib = connect(2)
    contract = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
    gateway.drop_connection_on_place_order(1, process=False)
    ib.placeOrder(contract, LimitOrder("BUY", 1, 150.0, orderRef="lost"))
    wait_until(ib, lambda: not ib.isConnected())
    assert gateway.orders() == []
    assert gateway.requests("placeOrder")[0].values["orderRef"] == "lost"


def test_held_orders_are_dropped_on_disconnect(gateway, connect):
    ib = connect(4)
    contract = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
    parent = LimitOrder("BUY", 1, 150.0, transmit=False)
    ib.placeOrder(contract, parent)
    wait_for_gateway(lambda: len(gateway.orders()) == 1)
    gateway.disconnect_clients()
    wait_for_gateway(lambda: gateway.orders() == [])


def test_duplicate_client_id_is_refused_with_326(gateway, connect):
    connect(9)
    second = IB()
    codes = []
    second.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    with pytest.raises((TimeoutError, ConnectionError)):
        second.connect("127.0.0.1", gateway.port, clientId=9, timeout=1)
    assert 326 in codes
    assert gateway.connected_client_ids() == [9]


def test_connectivity_notices_reach_the_client(gateway, connect):
    ib = connect(1)
    codes = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append((req_id, code))
    for code in (1100, 1101, 1102):
        gateway.send_notice(code)
    wait_until(ib, lambda: len(codes) >= 3)
    assert codes[:3] == [(-1, 1100), (-1, 1101), (-1, 1102)]


def test_outage_refuses_reconnects_for_a_while(gateway):
    gateway.disconnect_clients(refuse_for=30.0)
    ib = IB()
    with pytest.raises((TimeoutError, ConnectionError, OSError)):
        ib.connect("127.0.0.1", gateway.port, clientId=1, timeout=1)
    ib.disconnect()


def test_orders_of_other_clients_only_via_all_open_orders(gateway, connect):
    first = connect(1)
    contract = first.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
    trade = first.placeOrder(contract, LimitOrder("BUY", 1, 150.0, orderRef="c1"))
    wait_until(first, lambda: trade.orderStatus.status == "Submitted")
    second = connect(2)
    assert second.reqOpenOrders() == []
    assert [t.order.orderRef for t in second.reqAllOpenOrders()] == ["c1"]


def test_server_version_other_than_176_is_refused():
    with pytest.raises(Exception, match="176"):
        FakeGateway(server_version=178).start()
