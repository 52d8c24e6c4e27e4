"""Order lifecycles against the fake, driven by the real ib_async client."""

from __future__ import annotations

from ib_async import LimitOrder, MarketOrder, Order, Stock, StopOrder

from tests.fakes.tws.conftest import wait_until


def _aapl(ib):
    (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    return contract


def test_market_order_fills_at_last_with_commission_and_position(gateway, connect):
    ib = connect(1)
    trade = ib.placeOrder(_aapl(ib), MarketOrder("BUY", 5, orderRef="mkt-1"))
    wait_until(ib, lambda: trade.isDone() and trade.fills)
    wait_until(ib, lambda: trade.fills[0].commissionReport.commission > 0)
    assert trade.orderStatus.status == "Filled"
    fill = trade.fills[0]
    assert (fill.execution.shares, fill.execution.price, fill.execution.side) == (5, 190.0, "BOT")
    assert fill.execution.orderRef == "mkt-1"
    assert fill.commissionReport.commission == 1.0
    wait_until(ib, lambda: [p.position for p in ib.positions()] == [5.0])
    assert gateway.positions() == {"AAPL": 5.0}


def test_limit_order_partial_fill_then_complete(gateway, connect):
    ib = connect(1)
    trade = ib.placeOrder(_aapl(ib), LimitOrder("BUY", 10, 180.0, orderRef="lmt-1"))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gateway.fill(trade.order.orderId, qty=4, price=180.0)
    wait_until(ib, lambda: trade.orderStatus.filled == 4)
    assert trade.orderStatus.status == "Submitted"
    assert trade.orderStatus.remaining == 6
    gateway.fill(trade.order.orderId, price=179.5)
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    assert [f.execution.cumQty for f in trade.fills] == [4, 10]
    assert abs(trade.orderStatus.avgFillPrice - (4 * 180.0 + 6 * 179.5) / 10) < 1e-9


def test_marketable_limit_fills_when_price_moves(gateway, connect):
    ib = connect(1)
    trade = ib.placeOrder(_aapl(ib), LimitOrder("SELL", 3, 195.0))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gateway.set_price("AAPL", last=195.5, bid=195.4, ask=195.6)
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.price == 195.4


def test_bracket_parent_fill_activates_children_and_tp_fill_cancels_stop(gateway, connect):
    ib = connect(1)
    contract = _aapl(ib)
    parent, take_profit, stop_loss = ib.bracketOrder("BUY", 10, 190.05, 200.0, 180.0)
    trades = [ib.placeOrder(contract, order) for order in (parent, take_profit, stop_loss)]
    wait_until(ib, lambda: trades[0].orderStatus.status == "Filled")
    wait_until(ib, lambda: [t.orderStatus.status for t in trades[1:]] == ["Submitted"] * 2)
    gateway.set_price("AAPL", last=200.5, bid=200.4, ask=200.6)
    wait_until(ib, lambda: all(t.isDone() for t in trades))
    assert [t.orderStatus.status for t in trades] == ["Filled", "Filled", "Cancelled"]
    assert gateway.positions() == {"AAPL": 0.0}


def test_held_bracket_parent_is_not_reported_until_the_last_child(gateway, connect):
    ib = connect(1)
    contract = _aapl(ib)
    parent, take_profit, stop_loss = ib.bracketOrder("BUY", 10, 185.0, 200.0, 180.0)
    first = ib.placeOrder(contract, parent)
    gateway.wait_for_requests("placeOrder", 1)
    ib.sleep(0.1)
    assert first.orderStatus.status == "PendingSubmit"
    trades = [first, ib.placeOrder(contract, take_profit), ib.placeOrder(contract, stop_loss)]
    wait_until(ib, lambda: [t.orderStatus.status for t in trades]
               == ["Submitted", "PreSubmitted", "PreSubmitted"])
    # A child cannot fill before its parent has filled.
    gateway.fill(parent.orderId, price=185.0)
    wait_until(ib, lambda: trades[2].orderStatus.status == "Submitted")
    gateway.set_price("AAPL", last=179.0, bid=178.9, ask=179.1)
    wait_until(ib, lambda: trades[1].orderStatus.status == "Cancelled")
    assert trades[2].orderStatus.status == "Filled"


def test_explicit_oca_partial_fill_reduces_sibling(gateway, connect):
    ib = connect(1)
    contract = _aapl(ib)
    orders = ib.oneCancelsAll(
        [LimitOrder("SELL", 10, 200.0), StopOrder("SELL", 10, 180.0)], "oca-1", 3
    )
    trades = [ib.placeOrder(contract, order) for order in orders]
    wait_until(ib, lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    gateway.fill(trades[0].order.orderId, qty=4)
    wait_until(ib, lambda: trades[1].order.totalQuantity == 6)
    gateway.fill(trades[0].order.orderId)
    wait_until(ib, lambda: trades[1].orderStatus.status == "Cancelled")


def test_cancel_order(gateway, connect):
    ib = connect(1)
    trade = ib.placeOrder(_aapl(ib), LimitOrder("BUY", 1, 150.0))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert gateway.order(trade.order.orderId).status == "Cancelled"
    assert not ib.openTrades()


def test_scripted_reject_201_cancels_the_trade(gateway, connect):
    ib = connect(1)
    trade = ib.placeOrder(_aapl(ib), LimitOrder("BUY", 1, 150.0))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gateway.reject(trade.order.orderId, code=201, message="Order rejected - reason: margin")
    wait_until(ib, lambda: trade.isDone())
    assert trade.orderStatus.status == "Cancelled"
    assert any(entry.errorCode == 201 for entry in trade.log)


def test_reject_next_order_never_submits(gateway, connect):
    ib = connect(1)
    gateway.reject_next_order(code=201, message="Order rejected - reason: no trading permission")
    trade = ib.placeOrder(_aapl(ib), MarketOrder("BUY", 1))
    wait_until(ib, lambda: trade.isDone())
    assert trade.orderStatus.status == "Cancelled"
    assert not trade.fills


def test_modify_stop_keeps_one_live_order(gateway, connect):
    ib = connect(1)
    contract = _aapl(ib)
    stop = StopOrder("SELL", 10, 180.0, orderRef="exit-1")
    trade = ib.placeOrder(contract, stop)
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    stop.auxPrice = 185.0
    same = ib.placeOrder(contract, stop)
    assert same is trade
    wait_until(ib, lambda: trade.log[-1].message == "Modified")
    live = [o for o in gateway.orders() if o.is_live]
    assert [(o.order_id, o.aux_price) for o in live] == [(stop.orderId, 185.0)]
    assert {t.order.orderId for t in ib.reqOpenOrders()} == {stop.orderId}
    gateway.set_price("AAPL", last=184.9, bid=184.8, ask=185.0)
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")


def test_price_off_min_tick_is_rejected_with_110(gateway, connect):
    ib = connect(1)
    trade = ib.placeOrder(_aapl(ib), LimitOrder("BUY", 1, 150.001))
    wait_until(ib, lambda: any(entry.errorCode == 110 for entry in trade.log))
    assert not [o for o in gateway.orders() if o.is_live]


def test_unsupported_algo_order_gets_321(gateway, connect):
    ib = connect(1)
    order = Order(action="BUY", totalQuantity=1, orderType="MKT", algoStrategy="Adaptive")
    trade = ib.placeOrder(_aapl(ib), order)
    wait_until(ib, lambda: any(entry.errorCode == 321 for entry in trade.log))
    assert gateway.orders() == []


def test_sparse_status_mode_still_delivers_executions(gateway, connect):
    ib = connect(1)
    gateway.set_sparse_status(True)
    trade = ib.placeOrder(_aapl(ib), LimitOrder("BUY", 10, 180.0, orderRef="sparse"))
    gateway.wait_for_requests("placeOrder")
    gateway.fill(trade.order.orderId, qty=10)
    wait_until(ib, lambda: len(trade.fills) == 1)
    assert trade.fills[0].execution.orderRef == "sparse"
    assert gateway.order(trade.order.orderId).status == "Filled"
    assert trade.orderStatus.status != "Filled"  # no orderStatus was sent
