"""Fills while the trader is away: recovered and journaled before any new order.

Issue #20 scenario 4. During an IB connectivity gap (1100 ... 1101/1102) the socket to
TWS stays open, but executions of the gap may never be pushed; the fake gateway
withholds every push between :meth:`FakeGateway.lose_ib_connectivity` and
:meth:`FakeGateway.restore_ib_connectivity` and does not replay them. The trader must
ask for them (the day's executions, completed and open orders) and journal them
before it sends anything new. Also: execution ids stay unique across gateway
restarts, so a reused state directory never drops a fill as a replay.
"""

from __future__ import annotations

import pytest

from autotrader.domain.orders import OrderStatus
from autotrader.domain.records import Fill, OrderRequest, OrderType, Side
from tests.autotrader.broker.ib.conftest import SESSION, make_runner, wait_for
from tests.autotrader.conftest import FakeClock
from tests.fakes.tws import FillPolicy


def _working_order(runner, broker, gateway, ref: str, quantity: int) -> int:
    clock = runner.clock
    request = OrderRequest(ref, "IBM", Side.BUY, quantity, OrderType.LIMIT, limit_price=160.0)
    runner.journal.record_intent(request, clock(), clock().date(), "manual",
                                 session=broker.session())
    runner.journal.mark_transmitted(ref, broker.place(request), clock())
    order_id = int(runner.journal.order(ref).broker_order_id)
    wait_for(broker, lambda: gateway.order(order_id).is_live)
    return order_id


def _journal_fill_of(runner, broker, ref: str) -> None:
    def journaled() -> bool:
        for event in broker.poll_events():
            if isinstance(event, Fill):
                runner.journal.apply_fill(event)
        return bool(runner.journal.fills(ref))

    wait_for(broker, journaled)


@pytest.mark.parametrize("code", [1101, 1102])
@pytest.mark.parametrize("partial", [False, True], ids=["full", "partial"])
def test_fills_during_an_ib_connectivity_gap_are_journaled_before_any_new_order(
        tmp_path, make_gateway, make_broker, partial, code):
    gateway = make_gateway(fill_policy=FillPolicy(marketable_limits=False))
    broker = make_broker(gateway)
    runner = make_runner(tmp_path, broker, FakeClock(SESSION))
    runner.start()
    journal = runner.journal
    order_id = _working_order(runner, broker, gateway, "gap-1", 4)

    gateway.lose_ib_connectivity()  # 1100: the adapter reconnects its socket (as Watchdog)
    broker.account()
    assert broker.reconnects == 1
    execution = gateway.fill(order_id, qty=2 if partial else None, price=160.0)  # not pushed
    broker.wait(0.2)
    assert journal.fills("gap-1") == [] and gateway.withheld_frames > 0

    seen_at_reconcile: list[tuple[int, set[str]]] = []
    reconcile = broker.on_reconnect

    def spy(b) -> None:
        reconcile(b)
        seen_at_reconcile.append((len(gateway.requests("placeOrder")),
                                  {f.exec_id for f in journal.fills()}))

    broker.on_reconnect = spy
    placed = len(gateway.requests("placeOrder"))
    gateway.restore_ib_connectivity(code)
    broker.place(OrderRequest("after-gap", "AAPL", Side.BUY, 1, OrderType.LIMIT,
                              limit_price=150.0))
    assert seen_at_reconcile[:1] == [(placed, {execution.exec_id})], \
        "the gap's fill was not journaled before the next order"

    runner.run_cycle()
    order = journal.order("gap-1")
    assert order.filled_qty == (2 if partial else 4)
    assert order.status == (OrderStatus.PARTIALLY_FILLED if partial else OrderStatus.FILLED)
    assert {f.exec_id for f in journal.fills("gap-1")} == {execution.exec_id}
    assert not [e for e in journal.events("gap-1") if e[0].startswith("INVALID")]
    broker_view = {o.order_ref: o for o in broker.orders()}["gap-1"]
    assert (broker_view.status, broker_view.filled_qty) == (order.status, order.filled_qty)


def test_fills_of_a_restarted_gateway_are_not_dropped_as_replays(tmp_path, make_gateway,
                                                                 make_broker):
    first = make_gateway()
    broker = make_broker(first)
    runner = make_runner(tmp_path, broker, FakeClock(SESSION))
    runner.start()
    order_id = _working_order(runner, broker, first, "before-restart", 3)
    before = first.fill(order_id, price=160.0)
    _journal_fill_of(runner, broker, "before-restart")
    broker.disconnect()
    first.stop()

    second = make_gateway(fill_policy=FillPolicy(marketable_limits=False))  # TWS restarted
    broker.port = second.port
    broker.connect()
    order_id = _working_order(runner, broker, second, "after-restart", 3)
    after = second.fill(order_id, price=160.0)
    _journal_fill_of(runner, broker, "after-restart")
    assert before.exec_id != after.exec_id
    assert [f.exec_id for f in runner.journal.fills("after-restart")] == [after.exec_id]
