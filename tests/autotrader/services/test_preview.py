"""TradingRunner.preview: the cycle's order list without journaling or sending anything."""

from __future__ import annotations

import datetime as dt

from autotrader.domain import RecommendationsError
from autotrader.domain.records import OrderType, Side
from autotrader.engine.risk import TradingState
from autotrader.services.recommendations import load_recommendations
from autotrader.services.trading import TradingRunner
from tests.autotrader.conftest import RECOMMENDATIONS, SESSION_OPEN, write_run
from tests.autotrader.services.test_trading import SETTINGS


def _runner(broker, journal, run_dir, clock, market_open=lambda now: True):
    return TradingRunner(broker, journal,
                         lambda: load_recommendations(run_dir, broker_is_live=broker.is_live),
                         settings=SETTINGS, clock=clock, market_open=market_open)


def test_preview_lists_the_orders_of_the_next_cycle_and_sends_nothing(broker, journal,
                                                                      run_dir, clock):
    runner = _runner(broker, journal, run_dir, clock)
    preview = runner.preview()
    assert preview.run_id == "20260301-run" and preview.failures == ()
    assert preview.at == clock()
    assert [line.outcome for line in preview.lines] == ["SEND"] * 4
    assert all(line.side is Side.BUY and line.current == 0 for line in preview.lines)
    assert journal.orders() == [] and broker.orders() == []  # nothing journaled or placed
    planned = {line.symbol: (line.quantity, line.order_type, line.limit_price)
               for line in preview.lines}
    assert planned["BBB"][0] == 41  # floor(100,000 * 0.05 / 120.0), as the cycle
    report = runner.run_cycle()
    sent = {o.symbol: (o.quantity, o.order_type, o.limit_price) for o in journal.orders()
            if o.order_type is not OrderType.STOP and o.parent_ref is None}
    assert sent == planned
    assert report.intents == len(preview.lines)


def test_preview_shows_the_current_position_against_the_target(broker, journal, run_dir,
                                                               clock, tmp_path):
    runner = _runner(broker, journal, run_dir, clock)
    runner.run_cycle()
    clock.advance(60)
    runner.run_cycle()  # ingests the fills of the first cycle
    assert broker.positions()["BBB"].quantity == 41
    # the next run drops BBB: the target is 0 shares, the book holds 41
    newer = write_run(tmp_path / "result", "20260302-run",
                      "\n".join(line for line in RECOMMENDATIONS.splitlines()
                                if ",BBB," not in line) + "\n")
    preview = _runner(broker, journal, newer, clock).preview()
    assert preview.run_id == "20260302-run"
    bbb = next(line for line in preview.lines if line.symbol == "BBB")
    assert (bbb.side, bbb.quantity, bbb.current) == (Side.SELL, 41, 41)
    # its protective stop must go first; the cycle cancels it, the preview only says so
    assert bbb.outcome.startswith("DENY exit_orders_working: ")
    stops = [o for o in broker.open_orders() if o.symbol == "BBB"
             and o.order_type is OrderType.STOP]
    assert stops and all(o.status != "PendingCancel" for o in stops)
    held = broker.positions()
    assert all(line.current == (held[line.symbol].quantity if line.symbol in held else 0)
               for line in preview.lines)


def test_preview_gives_every_denial_with_its_check_and_reason(broker, journal, run_dir, clock):
    closed = _runner(broker, journal, run_dir, clock, market_open=lambda now: False).preview()
    assert [line.denial.check for line in closed.lines] == ["market_hours"] * 4
    assert all(line.outcome.startswith("DENY market_hours: ") for line in closed.lines)
    assert all(line.order_type is None and line.limit_price is None for line in closed.lines)
    runner = _runner(broker, journal, run_dir, clock)
    runner.set_trading_state(TradingState.HALTED)
    halted = runner.preview()
    assert [line.denial.check for line in halted.lines] == ["trading_state"] * 4
    assert not any(line.sends for line in halted.lines)


def test_preview_reports_missing_recommendations_instead_of_raising(broker, journal, clock,
                                                                    tmp_path):
    def missing():
        raise RecommendationsError(f"no complete run under {tmp_path}")

    runner = TradingRunner(broker, journal, missing, settings=SETTINGS, clock=clock,
                           market_open=lambda now: True)
    preview = runner.preview()
    assert preview.lines == () and preview.run_id == ""
    assert preview.failures and preview.failures[0].startswith("recommendations: no complete")


def test_preview_does_not_change_what_the_cycle_sends(tmp_path, prices, run_dir):
    from autotrader.broker.paper import PaperBroker
    from autotrader.journal import Journal
    from autotrader.services.session import SimClock

    results = []
    for with_preview in (False, True):
        clock = SimClock(SESSION_OPEN + dt.timedelta(minutes=30))
        broker = PaperBroker(tmp_path / f"paper{with_preview}.db", prices.quote, clock,
                             initial_cash=100_000.0)
        broker.connect()
        with Journal(tmp_path / f"journal{with_preview}.db") as journal:
            runner = _runner(broker, journal, run_dir, clock)
            if with_preview:
                runner.preview()
            report = runner.run_cycle()
            results.append((sorted(report.submitted), dict(report.denials),
                            sorted((o.order_ref, o.quantity, str(o.limit_price))
                                   for o in broker.orders())))
        broker.disconnect()
    assert results[0] == results[1] and results[0][0]
