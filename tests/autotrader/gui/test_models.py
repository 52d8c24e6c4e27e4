"""The workstation's pure models (no display): modes, progress clock, book rows, summaries."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import pytest

from autotrader.domain.records import Account, Position, Quote
from autotrader.gui.book_rows import book_figures, position_rows
from autotrader.gui.progress import RunClock
from autotrader.gui.state import WorkstationState, arm_refusal, trading_mode, window_title
from autotrader.services.cycle_records import CycleReport
from autotrader.services.cycle_summary import cycle_summary
from autotrader.services.market_session import market_session
from autotrader.services.plan_view import PlanView, load_plan_view, plan_view

UTC = dt.timezone.utc


@pytest.mark.parametrize(("broker", "live", "armed", "mode"), [
    ("paper", None, False, "PAPER"),
    ("paper", True, True, "PAPER"),  # the paper broker never trades a real account
    ("ib", None, False, "LIVE (not armed)"),  # not seen yet: treated as live
    ("ib", False, False, "PAPER"),
    ("ib", True, False, "LIVE (not armed)"),
    ("ib", True, True, "LIVE (armed)"),
])
def test_trading_mode_of_every_broker_and_account(broker, live, armed, mode):
    state = WorkstationState(broker=broker, live_account=live, armed=armed)
    assert trading_mode(state) == mode
    assert window_title(state) == f"BMA workstation — {mode}"
    assert (arm_refusal(state) is None) == (broker == "ib" and live is True)


def test_run_clock_estimates_the_run_from_the_previous_runs_stage_times():
    stages = ("load", "features", "train", "fusion")
    clock = RunClock(stages, started=0.0,
                     previous={"load": 10.0, "features": 20.0, "train": 60.0, "fusion": 10.0})
    clock.update("load", 0, 3, now=2.0)
    clock.update("load", 1, 1, now=5.0)  # twice as fast as last time
    assert clock.running == "features"
    elapsed, eta = clock.overall(now=5.0)
    rows = {r.name: r for r in clock.rows(now=5.0)}
    assert rows["load"].elapsed_s == 5.0 and rows["load"].state == "done"
    assert rows["features"].eta_s == pytest.approx(10.0)  # 20 s last time, at half the pace
    assert (elapsed, eta) == (5.0, pytest.approx(10.0 + (60.0 + 10.0) * 0.5))
    clock.update("features", 1, 3, now=15.0)
    clock.update("train:tasks", 4, 16, now=25.0)
    train = {r.name: r for r in clock.rows(now=25.0)}["train"]
    assert (train.state, train.tasks, train.eta_s) == ("running", (4, 16), 30.0)
    assert train.fraction == 0.25
    clock.update("fusion", 3, 3, now=70.0)  # the last stage: everything is done
    assert clock.running is None and clock.overall(now=70.0) == (70.0, 0.0)


def test_run_clock_without_a_previous_run_has_no_overall_eta():
    clock = RunClock(("load", "features"), started=0.0)
    clock.update("load", 0, 2, now=1.0)
    assert clock.overall(now=3.0) == (3.0, None)


def test_position_rows_value_pnl_and_weights():
    positions = [Position("AAA", 10, 90.0), Position("BBB", 5, 200.0)]
    quotes = {"AAA": Quote("AAA", last=100.0, prev_close=95.0),
              "BBB": Quote("BBB", last=0.0, prev_close=190.0)}  # no last: previous close
    plan = PlanView("r1", {"AAA": 0.4, "CCC": 0.3, "DDD": 0.1})
    rows = position_rows(positions, quotes, Account(equity=4000.0, cash=2050.0), plan)
    assert [r[0] for r in rows] == ["AAA", "BBB", "CCC", "DDD"]  # held by value, then plan
    assert rows[1][3:8] == ("190.00", "950.00", "-50.00", "+0.00", "23.75%")
    assert rows[1][8] == "0.00%" and rows[2][8] == "30.00%" and rows[2][1] == 0
    figures = book_figures(positions, quotes, Account(equity=4000.0, cash=2050.0), 3)
    assert figures.unrealised == pytest.approx(100.0 - 50.0)
    assert figures.day_pnl == pytest.approx(50.0)
    assert figures.invested == pytest.approx(1950.0 / 4000.0)
    empty = book_figures([], {}, None, 0)
    assert math.isnan(empty.equity) and math.isnan(empty.invested)


def test_cycle_summary_wording():
    at = dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    sent = CycleReport(at, run_id="r1", intents=15, submitted=["a", "b", "c"],
                       denials=Counter(signal_threshold=8, cash_reserve=4),
                       denial_reasons={"signal_threshold": "x", "cash_reserve": "y"})
    assert cycle_summary(sent) == \
        "3 submitted; 12 denied: 8 score below threshold, 4 cash reserve reached"
    window = CycleReport(at, run_id="r1", intents=2, denials=Counter(market_hours=2),
                         denial_reasons={"market_hours": "08:15 America/New_York is outside "
                                                         "the trading window 09:30-16:00"})
    assert cycle_summary(window, market_session(at)) == "2 denied: outside trading hours"
    failed = CycleReport(at, failures=["recommendations: no complete run under result"])
    assert cycle_summary(failed) == \
        "no orders; 1 failure: recommendations: no complete run under result"
    assert cycle_summary(CycleReport(at, run_id="r1")) == \
        "no orders needed: the book matches the plan"
    covered = CycleReport(at, run_id="r1", intents=2, denials=Counter(market_hours=2),
                          denial_reasons={"market_hours": "NYSE is closed"},
                          status={"coverage": 0.61})
    assert cycle_summary(covered) == "2 denied: market closed; plan coverage 61.0%"


def test_market_session_open_closed_and_early_close():
    monday = market_session(dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC))  # 10:00 ET
    assert monday.is_open and monday.describe() == "OPEN, closes 16:00 ET"
    assert monday.next_open_text() == ""
    evening = market_session(dt.datetime(2026, 3, 2, 22, 0, tzinfo=UTC))
    assert evening.describe() == "CLOSED, opens Tue 09:30 ET"
    friday = market_session(dt.datetime(2025, 11, 28, 15, 0, tzinfo=UTC))  # day after Thanks.
    assert friday.describe() == "OPEN, closes 13:00 ET"
    assert friday.valid_at(dt.datetime(2025, 11, 28, 17, 59, tzinfo=UTC))
    assert not friday.valid_at(dt.datetime(2025, 11, 28, 18, 0, tzinfo=UTC))


def test_plan_view_reads_the_plan_versus_book_status_of_autotrader_status(tmp_path):
    from autotrader.engine.plan_status import BookPosition, BookSnapshot, Outcome
    from autotrader.services.book import BOOK_FILE, read_status, write_book

    empty = load_plan_view(tmp_path)  # no cycle yet: nothing planned, and why
    assert empty.run_id == "" and not empty.planned and "first cycle" in empty.note
    write_book(tmp_path / BOOK_FILE, BookSnapshot(
        "2026-03-02T15:00:00+00:00", "paper", "r9", 1000.0, 500.0,
        (BookPosition("AAA", 5, 100.0, 99.0),), planned={"AAA": 0.5, "BBB": 0.4},
        prices={"AAA": 100.0, "BBB": 10.0},
        outcomes={"BBB": Outcome("denied", "market_hours", "NYSE is closed")}))
    status = read_status(tmp_path)  # what `autotrader status --json` prints
    view = load_plan_view(tmp_path)
    assert view == plan_view(status)
    assert view.run_id == "r9" and view.as_of == status["as_of"]
    assert dict(view.planned) == {"AAA": 0.5, "BBB": 0.4}
    assert (view.coverage, view.invested, view.planned_invested) == \
        (status["coverage"], status["invested"], status["planned_invested"])
    assert [(g.symbol, g.kind, g.reason) for g in view.gaps] == \
        [("BBB", "market_closed", "NYSE is closed")]
    rows = position_rows([Position("AAA", 5, 99.0)], {}, Account(1000.0, 500.0), view)
    assert [r[-1] for r in rows] == ["50.00%", "40.00%"]
    unknown = position_rows([Position("AAA", 5, 99.0)], {}, Account(1000.0, 500.0), empty)
    assert unknown[0][-1] == "-"  # no status: the plan is unknown, not 0 %
    (tmp_path / BOOK_FILE).write_text("{not json")
    assert "unreadable" in load_plan_view(tmp_path).note
