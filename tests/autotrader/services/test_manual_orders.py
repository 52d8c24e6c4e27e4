"""The trader's own actions on the paper broker: cancel, cancel all, flatten."""

from __future__ import annotations

import dataclasses
import datetime as dt

from autotrader.domain import OrderStatus, OrderType, Side
from autotrader.engine.risk import TradingState
from autotrader.services.cycle_records import TraderSettings
from autotrader.services.cycle_summary import cycle_summary
from autotrader.services.market_session import market_session
from tests.autotrader.services.test_trading import SETTINGS, _assert_journal_matches_broker, _runner

LIMIT_ENTRIES = dataclasses.replace(
    SETTINGS, planner=dataclasses.replace(SETTINGS.planner, order_type="limit"))


def _entered(broker, journal, run_dir, clock, prices, settings: TraderSettings = SETTINGS):
    runner = _runner(broker, journal, run_dir, clock, settings=settings)
    runner.start()
    report = runner.run_cycle()
    assert report.submitted, report.failures
    return runner


def _market_runs_away(broker, prices) -> None:
    # every placed buy sees the price jump 5 % above its limit: it stays working
    place = broker.place

    def place_then_rise(request):
        broker_id = place(request)
        prices.prices[request.symbol] *= 1.05
        return broker_id

    broker.place = place_then_rise


def test_cancel_notes_the_request_before_the_broker_and_cancels(broker, journal, run_dir,
                                                                 clock, prices):
    _market_runs_away(broker, prices)
    runner = _entered(broker, journal, run_dir, clock, prices, LIMIT_ENTRIES)
    working = [o for o in journal.orders(active_only=True) if o.side is Side.BUY]
    assert working
    ref = working[0].order_ref
    result = runner.cancel_order(ref)
    assert result.ok and result.refs == (ref,), result.message
    events = [e for e, _, _ in journal.events(ref)]
    assert events.index("CANCEL_REQUEST") < events.index("Cancelled")
    assert journal.order(ref).status == OrderStatus.CANCELLED
    again = runner.cancel_order(ref)
    assert not again.ok and "already Cancelled" in again.message
    unknown = runner.cancel_order("not-ours-1")
    assert not unknown.ok and "not an order of this journal" in unknown.message
    _assert_journal_matches_broker(journal, broker)


def test_cancel_all_cancels_every_working_order(broker, journal, run_dir, clock, prices):
    _market_runs_away(broker, prices)
    runner = _entered(broker, journal, run_dir, clock, prices, LIMIT_ENTRIES)
    assert journal.orders(active_only=True)
    result = runner.cancel_all()
    assert result.ok, result.message
    assert journal.orders(active_only=True) == []
    assert broker.open_orders() == []
    assert not runner.cancel_all().ok  # nothing left: says so
    _assert_journal_matches_broker(journal, broker)


def test_flatten_cancels_the_stop_then_sells_the_whole_position(broker, journal, run_dir,
                                                                clock, prices):
    runner = _entered(broker, journal, run_dir, clock, prices)
    clock.advance(60)
    runner.run_cycle()  # entries fill, protective stops are placed
    held = broker.positions()["BBB"].quantity
    assert held > 0
    assert any(o.symbol == "BBB" and o.order_type is OrderType.STOP
               for o in broker.open_orders())
    clock.advance(60)
    result = runner.flatten("BBB")
    assert result.ok, result.message
    assert "after cancelling 1 working orders" in result.message
    sell = journal.order(result.refs[0])
    assert (sell.symbol, sell.side, sell.quantity) == ("BBB", Side.SELL, held)
    assert "-manual-" in sell.order_ref  # run "manual": never resumed after a restart
    clock.advance(60)
    runner.run_cycle()
    assert "BBB" not in broker.positions()
    _assert_journal_matches_broker(journal, broker)


def test_flatten_is_denied_by_the_kill_switch_and_the_market_hours(broker, journal, run_dir,
                                                                   clock, prices):
    runner = _entered(broker, journal, run_dir, clock, prices)
    clock.advance(60)
    runner.run_cycle()
    runner.set_trading_state(TradingState.HALTED)
    halted = runner.flatten("CCC")
    assert not halted.ok and "HALTED" in halted.message
    runner.set_trading_state(TradingState.REDUCING)  # exits pass REDUCE-ONLY
    clock.now = dt.datetime(2026, 3, 7, 15, 0, tzinfo=dt.timezone.utc)  # a Saturday
    closed = runner.flatten("CCC")
    assert not closed.ok and "NYSE is closed" in closed.message
    assert not runner.flatten("ZZZ").ok


def test_cycle_summary_names_the_reason_and_the_next_open(broker, journal, run_dir, clock):
    clock.now = dt.datetime(2026, 3, 7, 15, 0, tzinfo=dt.timezone.utc)  # Saturday
    runner = _runner(broker, journal, run_dir, clock)
    runner.start()
    report = runner.run_cycle()
    assert report.submitted == [] and report.intents == 4
    assert report.status is not None and report.status["coverage"] == 0.0
    assert cycle_summary(report, market_session(clock.now)) == \
        "4 denied: market closed; next open Mon 09:30 ET; plan coverage 0.0%"


def test_equity_marks_are_kept_in_order(journal):
    at = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.timezone.utc)
    for minute, equity in enumerate((100.0, 101.5, 99.0)):
        journal.record_equity(at + dt.timedelta(minutes=minute), equity, 50.0)
    marks = journal.equity_marks(limit=2)
    assert [e for _, e in marks] == [101.5, 99.0]
    assert marks[0][0] == at + dt.timedelta(minutes=1)
