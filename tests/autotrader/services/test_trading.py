"""The runner against the paper broker: a whole trading day on an injected clock, and edges."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from autotrader.broker.paper import PaperBroker
from autotrader.domain import OrderStatus, OrderType, RecommendationsError
from autotrader.engine import PlannerSettings, RiskLimits, SizingSettings, StopSettings
from autotrader.engine.plan_status import format_status
from autotrader.engine.risk import TradingState
from autotrader.services.book import read_status
from autotrader.services.cycle_records import TraderSettings
from autotrader.services.recommendations import (
    RunSignal,
    latest_run_dir,
    load_recommendations,
)
from autotrader.services.trading import TradingRunner
from bma_models.data.calendar import is_open
from tests.autotrader.conftest import RECOMMENDATIONS, SESSION_OPEN, write_run

SETTINGS = TraderSettings(
    risk=RiskLimits(min_order_value_usd=500.0, acceptance_threshold=0.0,
                    max_single_position_pct=0.10, sector_exposure_limit=0.5),
    sizing=SizingSettings(max_position_pct_of_equity=0.10, cash_reserve_pct=0.05),
    planner=PlannerSettings(min_adv_usd=1e6, min_expected_alpha_bps=5.0),
    stops=StopSettings(atr_multiplier=3.0, max_loss_pct=0.08))


def _runner(broker, journal, run_dir, clock, settings=SETTINGS, market_open=is_open):
    return TradingRunner(broker, journal,
                         lambda: load_recommendations(run_dir, broker_is_live=broker.is_live),
                         settings=settings, clock=clock, market_open=market_open)


def _live_stops(broker) -> Counter:
    return Counter(o.symbol for o in broker.open_orders()
                   if o.order_type is OrderType.STOP and o.status != OrderStatus.INACTIVE)


def _assert_journal_matches_broker(journal, broker):
    at_broker = Counter(o.order_ref for o in broker.orders())
    assert all(n == 1 for n in at_broker.values()), "an order ref was placed twice"
    journaled = {o.order_ref: o for o in journal.orders()}
    for remote in broker.orders():
        local = journaled[remote.order_ref]
        assert (local.status, local.filled_qty) == (remote.status, remote.filled_qty)
        assert 0 <= local.filled_qty <= local.quantity
    assert {f.exec_id for f in journal.fills()} == {f.exec_id for f in broker.executions()}


def test_a_whole_paper_trading_day(broker, journal, run_dir, clock, prices):
    clock.now = SESSION_OPEN - dt.timedelta(minutes=60)  # 08:30 New York
    runner = _runner(broker, journal, run_dir, clock)
    runner.start()
    reports = []
    for step in range(17):  # 08:30 .. 16:30 every 30 minutes
        minutes = step * 30
        prices.prices["AAA"] = 50.0 + 0.25 * step  # a steady riser: its stop trails up
        prices.prices["DDD"] = 40.0 if minutes < 240 else 35.0  # gaps through its stop at 12:30
        reports.append(runner.run_cycle())
        clock.advance(30 * 60)
    pre_open, first = reports[0], reports[2]
    assert pre_open.submitted == [] and pre_open.denials["market_hours"] == 4
    assert reports[-1].submitted == [] and reports[-1].denials.get("market_hours", 0) >= 0
    entries = [r for r in first.submitted if "-stop-" not in r]
    assert len(entries) == 4
    positions = broker.positions()
    assert positions["BBB"].quantity == 41  # floor(100,000 * 0.05 / 120.0): weight x equity
    assert positions["CCC"].quantity == 166
    assert any(f.symbol == "DDD" and f.side.value == "SELL" for f in broker.executions())
    assert "DDD" not in positions  # stopped out at 12:30 and not re-entered the same day
    assert reports[-3].denials["stopped_out"] == 1
    aaa_stop = next(o for o in broker.open_orders()
                    if o.symbol == "AAA" and o.order_type is OrderType.STOP)
    assert aaa_stop.stop_price > 50.0 - 3.0 * 1.0  # raised above its first level (47.0)
    assert all(n == 1 for n in _live_stops(broker).values())
    assert set(_live_stops(broker)) == set(broker.positions())
    _assert_journal_matches_broker(journal, broker)
    assert runner.health.cycles == 17 and runner.health.denials["market_hours"] > 0
    assert journal.daily_orders(dt.date(2026, 3, 2)) == sum(
        1 for o in journal.orders() if "-stop-" not in o.order_ref)


def test_halted_sends_no_orders_and_survives_restart(broker, journal, run_dir, clock):
    runner = _runner(broker, journal, run_dir, clock, market_open=lambda now: True)
    runner.set_trading_state(TradingState.HALTED)
    again = _runner(broker, journal, run_dir, clock, market_open=lambda now: True)
    report = again.run_cycle()
    assert again.trading_state is TradingState.HALTED
    assert report.submitted == [] and report.denials["trading_state"] == 4


def test_calendar_failure_fails_closed(broker, journal, run_dir, clock):
    def broken(now):
        raise RuntimeError("calendar data missing")

    report = _runner(broker, journal, run_dir, clock, market_open=broken).run_cycle()
    assert report.submitted == [] and report.denials["market_hours"] == 4
    assert any(f.startswith("calendar") for f in report.failures)


def test_demo_recommendations_are_refused_on_a_live_broker(tmp_path, prices, clock, journal):
    class LivePaper(PaperBroker):
        is_live = True

    live = LivePaper(tmp_path / "live.db", prices.quote, clock)
    live.connect()
    demo = write_run(tmp_path / "res", "demo-run", source="demo")
    with pytest.raises(RecommendationsError):
        load_recommendations(demo, broker_is_live=True)
    report = _runner(live, journal, demo, clock, market_open=lambda now: True).run_cycle()
    assert report.submitted == [] and report.failures
    live.disconnect()


def test_selling_a_protected_position_cancels_its_stop_first(broker, journal, run_dir, clock,
                                                              tmp_path):
    runner = _runner(broker, journal, run_dir, clock, market_open=lambda now: True)
    runner.run_cycle()
    clock.advance(600)
    runner.run_cycle()  # fills, then one stop per position
    assert _live_stops(broker)["AAA"] == 1
    smaller = write_run(tmp_path / "res2", "next",
                        (run_dir / "recommendations.csv").read_text().replace(
                            "1,AAA,Tech,0.95,0.020,0.05", "1,AAA,Tech,0.95,0.020,0.00"))
    runner.recommendations = lambda: load_recommendations(smaller, broker_is_live=False)
    clock.advance(600)
    first = runner.run_cycle()
    assert first.denials["exit_orders_working"] == 1
    assert _live_stops(broker)["AAA"] == 0
    clock.advance(600)
    second = runner.run_cycle()
    assert any("-AAA-" in ref for ref in second.submitted)
    clock.advance(600)
    runner.run_cycle()
    assert "AAA" not in broker.positions()
    _assert_journal_matches_broker(journal, broker)


def test_bracket_entries_keep_one_stop_per_position(broker, journal, run_dir, clock, prices):
    settings = TraderSettings(risk=SETTINGS.risk, sizing=SETTINGS.sizing, stops=SETTINGS.stops,
                              planner=PlannerSettings(order_type="bracket",
                                                      min_expected_alpha_bps=5.0,
                                                      per_trade_risk_pct=0.05))
    runner = _runner(broker, journal, run_dir, clock, settings, market_open=lambda now: True)
    brackets, singles = [], []
    place, place_bracket = broker.place, broker.place_bracket
    broker.place = lambda r: singles.append(r.order_ref) or place(r)
    broker.place_bracket = lambda *rs: brackets.append([r.order_ref for r in rs]) or \
        place_bracket(*rs)
    report = runner.run_cycle()
    assert sum(ref.endswith("-sl") for ref in report.submitted) == 4
    # each bracket goes to the broker as one unit (IB holds the parent until the stop)
    assert len(brackets) == 4
    assert all(tp == f"{p}-tp" and sl == f"{p}-sl" for p, tp, sl in brackets)
    for _ in range(3):
        clock.advance(600)
        prices.prices["AAA"] += 1.0
        runner.run_cycle()
    assert all(n == 1 for n in _live_stops(broker).values())
    assert set(_live_stops(broker)) == set(broker.positions())
    aaa = next(o for o in broker.open_orders() if o.symbol == "AAA"
               and o.order_type is OrderType.STOP)
    assert aaa.order_ref.endswith("-sl") and aaa.stop_price > 48.0
    _assert_journal_matches_broker(journal, broker)


def test_latest_run_dir_skips_incomplete_runs(tmp_path):
    root = tmp_path / "result"
    older = write_run(root, "a-older")
    newer = write_run(root, "b-newer")
    (root / "c-incomplete").mkdir()
    ((root / "c-incomplete") / "recommendations.csv").write_text("rank\n")
    assert latest_run_dir(root) in (older, newer)
    assert latest_run_dir(root).name == "b-newer"
    with pytest.raises(RecommendationsError):
        latest_run_dir(tmp_path / "nothing")


@pytest.mark.parametrize(("csv_text", "message"), [
    ("rank,ticker\n1,AAA\n", "missing columns"),
    ("rank,ticker,sector,score,expected_return,weight,last_close,adv\n"
     "1,AAA,Tech,x,0.1,0.1,10,1e6\n", "line 2"),
    ("rank,ticker,sector,score,expected_return,weight,last_close,adv\n"
     "1,AAA,Tech,1,0.1,0.1,10,1e6\n2,aaa,Tech,1,0.1,0.1,10,1e6\n", "duplicate"),
])
def test_bad_recommendations_are_refused_with_a_reason(tmp_path: Path, csv_text, message):
    run = write_run(tmp_path, "bad", csv_text)
    with pytest.raises(RecommendationsError, match=message):
        load_recommendations(run, broker_is_live=False)


def test_without_modify_a_stop_is_replaced_by_cancel_then_place(tmp_path, prices, clock,
                                                                 journal, run_dir):
    class NoModifyPaper(PaperBroker):
        supports_modify = False

    paper = NoModifyPaper(tmp_path / "nomod.db", prices.quote, clock)
    paper.connect()
    runner = _runner(paper, journal, run_dir, clock, market_open=lambda now: True)
    runner.run_cycle()
    first_stop = next(o for o in paper.open_orders() if o.order_type is OrderType.STOP
                      and o.symbol == "AAA")
    prices.prices["AAA"] = 60.0  # the trail moves up: the old stop must go first
    clock.advance(600)
    runner.run_cycle()
    live = [o for o in paper.open_orders() if o.order_type is OrderType.STOP
            and o.symbol == "AAA"]
    assert len(live) <= 1
    clock.advance(600)
    runner.run_cycle()
    live = [o for o in paper.open_orders() if o.order_type is OrderType.STOP
            and o.symbol == "AAA"]
    assert len(live) == 1 and live[0].order_ref != first_stop.order_ref
    assert live[0].stop_price > first_stop.stop_price
    assert {o.order_ref: o for o in paper.orders()}[first_stop.order_ref].status == \
        OrderStatus.CANCELLED
    _assert_journal_matches_broker(journal, paper)
    paper.disconnect()


def _journal_pending(journal, clock, day=None, session=None, run_id="20260301-run"):
    from autotrader.domain import OrderRequest, SessionIdentity, Side

    now = clock()
    day = day or dt.date(2026, 3, 2)
    ref = journal.next_order_ref(day, run_id, "AAA")
    journal.record_intent(OrderRequest(ref, "AAA", Side.BUY, 10, OrderType.LIMIT,
                                       limit_price=60.0), now, day, run_id,
                          session=session or SessionIdentity("paper", "PAPER", False))
    return ref


@pytest.mark.parametrize(("state", "day", "market", "sent"), [
    (TradingState.ACTIVE, None, True, True),
    (TradingState.HALTED, None, True, False),
    (TradingState.REDUCING, None, True, False),  # a buy is not resumed while reducing
    (TradingState.ACTIVE, dt.date(2026, 2, 27), True, False),  # stale
    (TradingState.ACTIVE, None, False, False),
])
def test_start_resumes_untransmitted_orders_only_when_safe(broker, journal, run_dir, clock,
                                                           state, day, market, sent):
    ref = _journal_pending(journal, clock, day)
    runner = _runner(broker, journal, run_dir, clock, market_open=lambda now: market)
    runner.set_trading_state(state)
    report = runner.start()
    assert [r.order_ref for r in report.to_transmit] == [ref]
    assert (ref in broker.known_order_refs()) == sent
    assert journal.untransmitted() == []
    if not sent:
        assert journal.order(ref).status == OrderStatus.CANCELLED


# -- the age of the run (signals.max_run_age_sessions) --------------------------------------

STALE_LIMIT = replace(SETTINGS, risk=replace(SETTINGS.risk, max_run_age_sessions=2))
RECOMMENDATIONS_WITH_EEE = RECOMMENDATIONS + "5,EEE,Energy,0.60,0.010,0.05,25.00,20000000,0.5\n"


@pytest.mark.parametrize(("last_bar", "age", "buys"), [
    ("2026-02-27", 0, 4),  # Friday's bars, Monday 10:00: nothing closed since
    ("2026-02-25", 2, 4),  # Wednesday's: Thursday and Friday closed since, at the limit
    ("2026-02-24", 3, 0),  # Tuesday's: one session too old
])
def test_a_run_older_than_the_limit_opens_nothing(tmp_path, broker, journal, clock, caplog,
                                                  last_bar, age, buys):
    run = write_run(tmp_path / "result", "r", last_date=last_bar)
    runner = _runner(broker, journal, run, clock, settings=STALE_LIMIT,
                     market_open=lambda now: True)
    with caplog.at_level("WARNING"):
        first, second = runner.run_cycle(), runner.run_cycle()
    assert len([r for r in first.submitted if "-stop-" not in r]) == buys
    status = read_status(tmp_path)  # book.json next to the journal: `autotrader status`
    assert (status["run_last_date"], status["run_age_sessions"]) == (last_bar, age)
    assert f", data to {last_bar}, {age} sessions old): " in format_status(status)
    if buys == 0:
        assert first.denials == {"run_age": 4} and second.denials == {"run_age": 4}
        assert first.denial_reasons["run_age"] == (
            f"the run's data are {age} sessions old (limit 2): no new buys until research "
            "runs again")
        warned = [r for r in caplog.records if "sessions old" in r.getMessage()]
        assert len(warned) == 1 and "data to 2026-02-24" in warned[0].getMessage()  # once
    else:
        assert "run_age" not in first.denials


def test_a_stale_run_still_sells_what_it_no_longer_plans(tmp_path, broker, journal, clock,
                                                         prices):
    prices.prices["EEE"] = 25.0  # Monday: a fresh run buys EEE
    fresh = write_run(tmp_path / "result", "fresh", RECOMMENDATIONS_WITH_EEE)
    bought = _runner(broker, journal, fresh, clock, settings=STALE_LIMIT,
                     market_open=lambda now: True).run_cycle()
    assert any("EEE" in ref for ref in bought.submitted) and "EEE" in broker.positions()
    clock.advance(24 * 3600)  # Tuesday: an old plan with FFF instead of EEE, data a week old
    prices.prices["FFF"] = 20.0
    stale = write_run(tmp_path / "result", "stale", RECOMMENDATIONS + RECOMMENDATIONS_WITH_EEE
                      .splitlines()[-1].replace("EEE", "FFF") + "\n", last_date="2026-02-20")
    runner = _runner(broker, journal, stale, clock, settings=STALE_LIMIT,
                     market_open=lambda now: True)
    report = runner.run_cycle()  # cancels EEE's protective stop first
    sells = {d.intent.symbol: d for d in report.decisions if d.intent.side.value == "SELL"}
    assert sells["EEE"].intent.closes_position
    assert sells["EEE"].denial.check == "exit_orders_working"
    assert all(d.denial is None or d.denial.check != "run_age" for d in sells.values())
    clock.advance(600)
    assert any("EEE" in ref for ref in runner.run_cycle().submitted)  # then sells it
    buys = [d for d in report.decisions if d.intent.side.value == "BUY"]
    assert "FFF" in [d.intent.symbol for d in buys]
    assert all(d.denial.check == "run_age" for d in buys)


def test_an_unknown_run_age_fails_closed(tmp_path, broker, journal, clock):
    undated = write_run(tmp_path / "result", "undated", last_date=None)
    report = _runner(broker, journal, undated, clock, settings=STALE_LIMIT,
                     market_open=lambda now: True).run_cycle()
    assert report.submitted == [] and report.denials == {"run_age": 4}
    assert "unknown" in report.denial_reasons["run_age"]

    def broken(last_date, now):
        raise ValueError("no completed NYSE session")

    dated = write_run(tmp_path / "result", "dated")
    runner = TradingRunner(broker, journal,
                           lambda: load_recommendations(dated, broker_is_live=False),
                           settings=STALE_LIMIT, clock=clock, market_open=lambda now: True,
                           run_age=broken)
    report = runner.run_cycle()
    assert report.denials == {"run_age": 4} and any(f.startswith("calendar") for f in
                                                    report.failures)
    no_limit = replace(STALE_LIMIT, risk=replace(STALE_LIMIT.risk, max_run_age_sessions=None))
    report = _runner(broker, journal, undated, clock, settings=no_limit,
                     market_open=lambda now: True).run_cycle()
    assert "run_age" not in report.denials and len(report.submitted) >= 4


def test_the_run_records_its_last_bar_and_a_bad_one_is_named(tmp_path):
    run = write_run(tmp_path / "result", "r", last_date="2026-02-27")
    assert load_recommendations(run, broker_is_live=False).last_date == dt.date(2026, 2, 27)
    bad = write_run(tmp_path / "result", "bad", last_date="27/02/2026")
    with pytest.raises(RecommendationsError, match=r"manifest.json: data.last_date '27/02/2026'"):
        load_recommendations(bad, broker_is_live=False)


def test_a_manifest_that_is_not_a_json_object_is_named(tmp_path):
    run = write_run(tmp_path / "result", "listed")
    (run / "manifest.json").write_text("[]", encoding="utf-8")
    with pytest.raises(RecommendationsError, match=r"manifest.json holds a JSON list"):
        load_recommendations(run, broker_is_live=False)


# -- the run's signal check (metrics.json baselines) -----------------------------------------

@pytest.mark.parametrize(("baselines", "signal", "head"), [
    ({"beats_all_baselines": False, "beaten_by": ["reversal_5", "lightgbm_plain"]},
     RunSignal(False, ("reversal_5", "lightgbm_plain")),
     ", signal LOSES to reversal_5, lightgbm_plain): "),
    ({"beats_all_baselines": True, "beaten_by": []}, RunSignal(True), ", signal beats every "
                                                                       "baseline): "),
    (None, None, " sessions old): "),  # a run from before baselines: nothing said
])
def test_the_runs_signal_check_reaches_the_status_and_a_losing_one_the_log_once(
        tmp_path, broker, journal, clock, caplog, baselines, signal, head):
    run = write_run(tmp_path / "result", "r")
    if baselines is not None:
        (run / "metrics.json").write_text(json.dumps({"baselines": baselines}), encoding="utf-8")
    assert load_recommendations(run, broker_is_live=False).signal == signal
    runner = _runner(broker, journal, run, clock, market_open=lambda now: True)
    with caplog.at_level("WARNING"):
        first, _ = runner.run_cycle(), runner.run_cycle()
    assert len(first.submitted) >= 4  # a warning, not a gate: the plan is traded
    status = read_status(tmp_path)
    assert status["run_beats_baselines"] == (None if signal is None else
                                             signal.beats_all_baselines)
    assert status["run_beaten_by"] == ([] if signal is None else list(signal.beaten_by))
    assert head in format_status(status)
    warned = [r for r in caplog.records if "does NOT beat every baseline" in r.getMessage()]
    assert len(warned) == (1 if signal and not signal.beats_all_baselines else 0)
