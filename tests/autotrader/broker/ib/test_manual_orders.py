"""The blotter's actions against the fake TWS: cancel all, then flatten (cancel the stop, sell)."""

from __future__ import annotations

from tests.autotrader.broker.ib.conftest import SESSION, make_runner, refs_at_gateway, wait_for
from tests.autotrader.conftest import FakeClock
from tests.fakes.tws import FillPolicy


def _entered(tmp_path, broker):
    clock = FakeClock(SESSION)
    runner = make_runner(tmp_path, broker, clock)
    runner.start()
    runner.run_cycle()
    broker.wait(0.1)
    clock.advance(600)
    runner.run_cycle()  # fills ingested, protective stops placed
    broker.wait(0.1)
    return runner, clock


def test_cancel_all_reaches_the_gateway_and_the_journal(tmp_path, make_gateway, make_broker):
    gateway = make_gateway(fill_policy=FillPolicy(marketable_limits=False))  # entries stay
    broker = make_broker(gateway)
    runner, _ = _entered(tmp_path, broker)
    working = [o for o in gateway.orders() if o.is_live]
    assert working
    result = runner.cancel_all()
    assert result.ok, result.message
    wait_for(broker, lambda: not any(o.is_live for o in gateway.orders()))
    runner.run_cycle()  # the cancel confirmations reach the journal
    journaled = {o.order_ref: o for o in runner.journal.orders()}
    for order in working:
        assert journaled[order.order_ref].status == "Cancelled"
        events = [e for e, _, _ in runner.journal.events(order.order_ref)]
        assert "CANCEL_REQUEST" in events


def test_flatten_cancels_the_stop_and_sells_the_position(tmp_path, gateway, broker):
    runner, clock = _entered(tmp_path, broker)
    held = broker.positions()["AAPL"].quantity
    assert held > 0
    stops = [o for o in gateway.orders() if o.order_type == "STP" and o.is_live
             and o.contract.symbol == "AAPL"]
    assert stops
    clock.advance(60)
    result = runner.flatten("AAPL")
    assert result.ok, result.message
    assert not any(o.is_live for o in gateway.orders() if o.order_ref == stops[0].order_ref)
    sells = [o for o in gateway.orders() if o.action == "SELL" and o.order_type != "STP"
             and o.contract.symbol == "AAPL"]
    assert len(sells) == 1 and sells[0].total_qty == held
    wait_for(broker, lambda: "AAPL" not in broker.positions())
    assert all(n == 1 for n in refs_at_gateway(gateway).values())
