"""The trader's workstation (#21) through the real widgets: every state a trader must see.

Screenshots of each state go to ``test-artifacts/gui/`` (mode banners, market
closed, training progress, failed run, blotter, narrow window, no desktop opener).
"""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from autotrader.services.book import read_status
from autotrader.services.trader_worker import ActionDone, CycleDone, TraderOptions
from tests.autotrader.gui.conftest import END_DATE, MARKET_TIME, grab, pump_until, screenshot

pytestmark = pytest.mark.gui

SATURDAY = dt.datetime(2026, 3, 7, 15, 0, tzinfo=dt.timezone.utc)


def _trading(make_app, result_root, tmp_path, clock=lambda: MARKET_TIME,
             market_open=lambda now: True):
    options = TraderOptions(state_dir=tmp_path / "trader", result_root=result_root,
                            interval_s=3600.0, clock=clock, market_open=market_open)
    app = make_app(result_root=result_root, trader_options=options)
    cycles: list = []
    app.bus.subscribe(CycleDone, cycles.append)
    return app, app.views["trading"], cycles


def _use_ib(view, port: int) -> None:
    view.broker.set("ib")
    view._on_broker_change()
    view.vars["port"].set(str(port))


def _tested(app, view) -> str:
    view.test_button.invoke()
    return pump_until(app, lambda: view.message.get() if view.message.get().startswith(
        ("OK", "FAILED", "test failed")) else "", timeout=30)


# -- 1. state at a glance ------------------------------------------------------------------
def test_paper_mode_with_a_demo_run_is_in_the_banner_and_the_title(make_app, demo_result,
                                                                   screenshots):
    app = make_app(result_root=demo_result)
    pump_until(app, lambda: app.state.demo_run, timeout=30)
    assert app.root.title() == "BMA workstation — PAPER — DEMO DATA"
    mode, explanation, demo_tag = app.banner.texts()
    assert (mode, demo_tag) == ("PAPER", True) and "no real money" in explanation
    pump_until(app, lambda: app.strip.text("kill") == "ACTIVE", timeout=10)  # journal read
    assert app.strip.text("research").startswith(f"run {app.state.run_id}")
    assert ", data to Mon 2025-06-30" in app.strip.text("research")  # its last bar
    view = app.views["trading"]
    assert view.arm_check.instate(["disabled"])  # nothing to arm on the paper broker
    screenshot(app, "research", screenshots, "mode-paper-demo")


def test_ib_live_account_is_live_not_armed_until_armed_with_confirmation(make_app,
                                                                         screenshots):
    from tests.fakes.tws import FakeGateway

    app = make_app()
    view = app.views["trading"]
    with FakeGateway(accounts=("U7654321",)) as gateway:
        _use_ib(view, gateway.port)
        assert app.banner.texts()[0] == "LIVE (not armed)"  # not seen yet: treated as live
        assert "not seen yet" in app.banner.texts()[1]
        view.start_button.invoke()
        assert view.worker is None and "Test connection first" in view.message.get()
        assert view.arm_check.instate(["disabled"])
        assert _tested(app, view).startswith("OK"), view.message.get()
    assert app.state.live_account is True and app.state.account == "U7654321"
    assert app.root.title() == "BMA workstation — LIVE (not armed)"
    assert not view.arm_check.instate(["disabled"])
    screenshot(app, "trading", screenshots, "mode-live-not-armed")
    app.confirm = lambda title, text: False
    view.arm_check.invoke()
    assert not view.armed.get() and not app.settings.trading.live_armed
    asked = []
    app.confirm = lambda title, text: asked.append(text) or True
    view.arm_check.invoke()
    assert "REAL account U7654321" in asked[0]
    assert app.settings.trading.live_armed
    assert app.root.title() == "BMA workstation — LIVE (armed)"
    assert "LIVE trading ARMED" in view.message.get()
    screenshot(app, "trading", screenshots, "mode-live-armed")
    view.vars["client_id"].set("9")  # another connection may be another account
    assert not app.settings.trading.live_armed and app.state.live_account is None
    assert app.banner.texts()[0] == "LIVE (not armed)" and "disarmed" in view.message.get()
    view.broker.set("paper")
    view._on_broker_change()  # back to paper: disarmed at once
    assert not app.settings.trading.live_armed and app.banner.texts()[0] == "PAPER"


def test_an_ib_paper_account_is_paper_and_cannot_be_armed(make_app):
    from tests.fakes.tws import FakeGateway

    app = make_app()
    view = app.views["trading"]
    with FakeGateway(accounts=("DU1234567",)) as gateway:
        _use_ib(view, gateway.port)
        assert _tested(app, view).startswith("OK")
    assert app.banner.texts()[0] == "PAPER" and "DU1234567" in app.banner.texts()[1]
    view.armed.set(True)
    view.toggle_arm()  # forced: the checkbox itself is disabled
    assert not app.settings.trading.live_armed and "paper account" in view.message.get()


def test_market_closed_cycle_says_why_and_when_it_opens(make_app, demo_result, tmp_path,
                                                       screenshots):
    # the NYSE calendar decides (no injected market_open): Saturday, closed
    app, view, cycles = _trading(make_app, demo_result, tmp_path, clock=lambda: SATURDAY,
                                 market_open=None)
    app.strip.clock = lambda: SATURDAY
    app.strip.session = None
    view.send_button.invoke()
    pump_until(app, lambda: cycles, timeout=30)
    report = cycles[0].report
    assert report.submitted == [] and report.denials["market_hours"] == report.intents > 0
    assert f"{report.intents} denied: market closed; next open Mon 09:30 ET; plan coverage " \
        in view.summary.get()
    # the gaps are those of `autotrader status`: every planned name waits for the open
    status = read_status(tmp_path / "trader")
    assert status["gaps"] and {g["kind"] for g in status["gaps"]} == {"market_closed"}
    pump_until(app, lambda: len(view.book.gaps.rows()) == len(status["gaps"]), timeout=10)
    assert [(r[0], r[3], r[4]) for r in view.book.gaps.rows()] == \
        [(g["symbol"], "waiting for the open", g["reason_text"]) for g in status["gaps"]]
    assert {r[4] for r in view.book.gaps.rows()} == {"market closed: NYSE is closed"}
    assert view.book.tiles["coverage"].cget("text") == f"{status['coverage']:.1%}"
    assert f"coverage {status['coverage']:.1%}" in view.book.gap_note.cget("text")
    app.refresh_header()
    assert app.strip.text("market").startswith("CLOSED, opens Mon 09:30 ET")
    screenshot(app, "trading", screenshots, "market-closed")
    page = app.pages["trading"]
    top = view.book.gap_note.winfo_rooty() - page.body.winfo_rooty() - 40
    page.canvas.yview_moveto(top / page.body.winfo_height())
    screenshot(app, "trading", screenshots, "plan-gaps")  # the gaps table and its reasons


def test_a_stale_run_buys_nothing_and_the_trader_reads_why(make_app, demo_result, tmp_path,
                                                          screenshots):
    # the run's last bar is Mon 2025-06-30; Thu 10 July 11:00 ET six sessions have closed since
    thursday = dt.datetime(2025, 7, 10, 15, 0, tzinfo=dt.timezone.utc)
    app, view, cycles = _trading(make_app, demo_result, tmp_path, clock=lambda: thursday)
    view.send_button.invoke()
    pump_until(app, lambda: cycles, timeout=30)
    report = cycles[0].report
    assert report.submitted == [] and report.denials == {"run_age": report.intents}
    assert report.intents > 0
    assert f": {report.intents} denied: research run too old; plan coverage 0.0%" in \
        view.summary.get()
    status = read_status(tmp_path / "trader")
    pump_until(app, lambda: len(view.book.gaps.rows()) == len(status["gaps"]), timeout=10)
    assert {r[4] for r in view.book.gaps.rows()} == {
        "research run too old: the run's data are 6 sessions old (limit 2): no new buys until "
        "research runs again"}
    app.strip.clock, app.strip.session = (lambda: thursday), None
    app.refresh_header()
    assert ", data to Mon 2025-06-30 (6 sessions old, limit 2: opens nothing), finished " in \
        app.strip.text("research")
    assert app.strip.values["research"].cget("style") == "StripWarn.TLabel"
    page = app.pages["trading"]
    top = view.book.gap_note.winfo_rooty() - page.body.winfo_rooty() - 40
    page.canvas.yview_moveto(top / page.body.winfo_height())
    screenshot(app, "trading", screenshots, "stale-run")


def test_test_connection_tests_the_selected_broker(make_app, tmp_path):
    app = make_app()
    view = app.views["trading"]
    assert view.broker.get() == "paper"
    text = _tested(app, view)
    assert text.startswith("OK: paper broker") and "nothing to connect to" in text
    assert not (tmp_path / "state" / "paper_broker.db").exists()  # the test creates nothing
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _use_ib(view, port)
    text = _tested(app, view)
    assert text.startswith("FAILED") and "connection refused: nothing listens there" in text
    assert "ConnectionRefusedError" not in text


# -- 2. research progress that moves ---------------------------------------------------------
def test_training_progress_counts_fits_with_elapsed_time_and_eta(make_app, tmp_path,
                                                                 screenshots):
    app = make_app(result_root=tmp_path / "result", research_mode="process")
    view = app.views["research"]
    view.form.vars["end_date"].set(END_DATE)
    view.source.set("demo")
    view.run_button.invoke()
    pump_until(app, lambda: view.clock is not None and view.clock.running == "train"
               and view.clock.tasks.get("train", (0, 0))[0] >= 2, timeout=240)
    app.pump(0.6)  # one clock tick redraws the times
    line = view.now_line.get()
    assert line.startswith("Training: ") and "fits (fold x model)" in line, line
    assert "stage 0:" in line and "ETA" in line
    assert "fits" in view.stage_times["train"].get() and "ETA" in view.stage_times["train"].get()
    assert view.stage_times["features"].get()  # the finished stage keeps its time
    assert app.strip.text("research").startswith("running: train")
    assert 0.0 < float(view.bars["train"].cget("value")) < 1.0
    screenshot(app, "research", screenshots, "training-progress")
    view.cancel_button.invoke()
    pump_until(app, lambda: not view.job.running, timeout=60)
    assert app.strip.text("research") != "" and not app.state.research


def test_bad_fields_are_marked_before_anything_starts(make_app, tmp_path, screenshots):
    app = make_app(result_root=tmp_path / "result")
    view = app.views["research"]
    view.source.set("csv")
    view.form.vars["start_date"].set("2024/01/31")
    view.form.vars["end_date"].set("2023-13-40")
    view.form.vars["top_n"].set("0")
    view.form.vars["data_path"].set("")
    view.run_button.invoke()
    assert view.job is None
    marked = view.form.marked()
    assert set(marked) == {"start_date", "end_date", "top_n", "data_path"}
    assert marked["start_date"].startswith("Start date: write it as YYYY-MM-DD")
    assert "--" not in view.message.get()  # form words, not command-line flags
    assert view.message.get() == "not started: fix the 4 fields marked in red"
    screenshot(app, "research", screenshots, "research-form-errors")
    view.source.set("demo")
    view.form.vars["start_date"].set("2025-06-30")
    view.form.vars["end_date"].set("2024-01-02")
    view.form.vars["top_n"].set("50")
    view.run_button.invoke()
    assert view.job is None
    assert view.form.marked() == {"start_date": "Start date 2025-06-30 is after the end "
                                                "date 2024-01-02"}


def test_a_failed_run_shows_one_red_line_details_on_demand_and_the_old_run_labelled(
        make_app, demo_result, tmp_path, screenshots):
    bad = tmp_path / "bars.csv"
    bad.write_text("this,is,not,a,bars,file\n1,2,3,4,5,6\n")
    app = make_app(result_root=demo_result, research_mode="thread")
    view = app.views["research"]
    pump_until(app, lambda: view.shown is not None, timeout=60)
    view.source.set("csv")
    view.form.vars["data_path"].set(str(bad))
    view.form.vars["end_date"].set(END_DATE)
    view.run_button.invoke()
    assert "previous run" in view.stale.cget("text")
    assert "a new run is in progress" in view.stale.cget("text")
    pump_until(app, lambda: view.job is not None and not view.job.running
               and view.message.get().startswith("Run failed"), timeout=120)
    assert "\n" not in view.message.get()
    assert str(view.message_label.cget("style")) == "Error.TLabel"
    assert "the new run failed" in view.stale.cget("text")
    assert view.shown.run_id in view.stale.cget("text")
    assert view.details_button.winfo_manager() and not view.details.winfo_manager()
    view.details_button.invoke()
    assert view.details.winfo_manager()
    assert "Traceback" in view.details.get("1.0", "end")
    screenshot(app, "research", screenshots, "failed-run")
    view.details_button.invoke()
    assert not view.details.winfo_manager()


# -- 3. a trading view worth watching --------------------------------------------------------
def test_blotter_cancel_flatten_and_cancel_all_ask_and_go_through_the_journal(
        make_app, demo_result, tmp_path, screenshots):
    app, view, cycles = _trading(make_app, demo_result, tmp_path)
    asked: list[str] = []
    app.confirm = lambda title, text: asked.append(title) or True
    actions: list = []
    app.bus.subscribe(ActionDone, actions.append)
    view.preview_button.invoke()
    pump_until(app, lambda: view.preview_table.rows(), timeout=30)
    view.send_button.invoke()
    pump_until(app, lambda: cycles, timeout=30)
    assert "Send orders" in asked
    pump_until(app, lambda: len(view.orders.rows()) >= 3 and view.positions.rows()
               and view.book.chart.marks, timeout=20)
    assert view.start_button.instate(["!disabled"]) and view.book.cancel_button.instate(
        ["disabled"])  # nothing selected yet
    row = view.positions.rows()[0]
    assert row[3] != "-" and row[4] != "-" and row[7].endswith("%") and row[8].endswith("%")
    assert view.book.tiles["equity"].cget("text") != "-"
    # the names beyond the per-cycle order limit wait, said in words (the summary and the gaps)
    status = read_status(tmp_path / "trader")
    waiting = [g for g in status["gaps"] if g["kind"] == "order_limit"]
    assert waiting and "order limit per cycle reached" in view.summary.get()
    pump_until(app, lambda: len(view.book.gaps.rows()) == len(status["gaps"]), timeout=10)
    words = {r[0]: (r[3], r[4]) for r in view.book.gaps.rows()}
    for gap in waiting:
        assert words[gap["symbol"]] == ("waiting for order limit", gap["reason_text"])
        assert gap["reason_text"].startswith("order limit per cycle reached: ")
    assert not any("_" in text for row in view.book.gaps.rows() for text in row[3:])
    assert "_" not in view.summary.get().split("plan coverage")[0]
    pump_until(app, lambda: "intents" in view.book.preview_note.cget("text"), timeout=20)
    # cancel one working order
    orders = view.orders.rows()
    view.orders.tree.selection_set(view.orders.tree.get_children()[0])
    app.pump(0.1)
    assert view.book.cancel_button.instate(["!disabled"])
    view.book.cancel_button.invoke()
    pump_until(app, lambda: actions, timeout=20)
    assert "Cancel orders" in asked
    assert actions[0].result.ok and actions[0].result.refs == (orders[0][0],)
    pump_until(app, lambda: orders[0][0] not in {r[0] for r in view.orders.rows()}, timeout=20)
    app.pages["trading"].canvas.yview_moveto(0.22)  # positions and the blotter in view
    screenshot(app, "trading", screenshots, "blotter")
    # flatten a position that still has its stop
    symbol = next(r[1] for r in view.orders.rows())
    item = next(i for i in view.positions.tree.get_children()
                if view.positions.tree.item(i, "values")[0] == symbol)
    view.positions.tree.selection_set(item)
    app.pump(0.1)
    view.book.flatten_button.invoke()
    pump_until(app, lambda: len(actions) >= 2, timeout=20)
    assert "Flatten" in asked
    assert actions[1].result.ok, actions[1].result.message
    assert f"sell order for {symbol} sent after cancelling 1 working orders" in \
        actions[1].result.message
    # cancel everything that is left
    view.book.cancel_all_button.invoke()
    pump_until(app, lambda: len(actions) >= 3, timeout=20)
    assert "Cancel all" in asked and actions[2].result.ok
    pump_until(app, lambda: view.orders.rows() == [], timeout=20)


def test_closing_with_auto_trading_on_asks_first(make_app, demo_result, tmp_path):
    app, view, cycles = _trading(make_app, demo_result, tmp_path)
    view.start_button.invoke()
    pump_until(app, lambda: cycles and view.auto, timeout=30)
    assert view.start_button.instate(["disabled"])
    asked = []
    app.confirm = lambda title, text: asked.append(text) or False
    app.request_close()
    assert asked and "Auto trading is running" in asked[0] and not app._closed
    app.confirm = lambda title, text: True
    app.request_close()
    assert app._closed


# -- 4. honest messages ----------------------------------------------------------------------
def test_without_a_desktop_opener_the_path_is_shown_with_a_copy_button(make_app, demo_result,
                                                                       screenshots):
    from autotrader.gui.app import NoDesktopOpener

    app = make_app(result_root=demo_result)
    view = app.views["research"]
    pump_until(app, lambda: view.run_dir is not None, timeout=30)

    def no_opener(path):
        raise NoDesktopOpener("xdg-open is not installed")

    app.opener = no_opener
    view.folder_button.invoke()
    dialog = app.dialogs[-1]
    assert dialog.path == str(view.run_dir)
    dialog.copy_button.invoke()
    assert app.root.clipboard_get() == str(view.run_dir)
    assert "no desktop opener" in app.status.get()
    assert "not found" not in app.status.get() + view.message.get()
    grab(dialog, screenshots / "no-opener.png")
    dialog.destroy()
    app.show_tab("trading")  # the status-bar message does not stick on every tab
    app.pump(0.1)
    assert app.status.get() == ""


# -- 5. layout and input ---------------------------------------------------------------------
@pytest.mark.parametrize("size", ["1280x800", "1024x640"])
def test_every_tab_fits_the_window_or_scrolls(make_app, demo_result, size, screenshots):
    app = make_app(result_root=demo_result)
    app.root.geometry(f"{size}+0+0")
    app.pump(0.5)
    view = app.views["research"]
    pump_until(app, lambda: view.run_dir is not None, timeout=30)
    pump_until(app, lambda: view.chart.width() and not view.chart.pending, timeout=60)
    view.show_run(view.run_dir)  # charts drawn for this width
    visible = app.pages["research"].canvas.winfo_width()
    pump_until(app, lambda: 0 < view.chart.width() <= visible and not view.chart.pending,
               timeout=60)
    width = app.root.winfo_width()
    for key in ("research", "trading", "risk", "data", "watchlist", "logs"):
        app.show_tab(key)
        app.pump(0.3)
        page = app.pages[key]
        assert not page.clipped, (key, page.body.winfo_reqwidth(), page.canvas.winfo_width())
        # no stale sideways scrollbar either (the research charts were first drawn wider)
        assert not page.xscrollbar.winfo_ismapped(), key
        assert page.body.winfo_width() == page.canvas.winfo_width(), key
    for cell in app.strip.cells.values():  # the strip wraps instead of clipping
        assert cell.winfo_x() + cell.winfo_width() <= app.strip.winfo_width() <= width
    screenshot(app, "trading", screenshots, f"window-{size}")
    _tables_fill_their_width(app)
    screenshot(app, "research", screenshots, f"research-{size}")
    # narrower and back: the stretched columns give the width back (the research page's charts
    # keep the width they were drawn for, so only the trading page is checked for clipping)
    other = "1024x640" if size == "1280x800" else "1280x800"
    for geometry in (other, size):
        app.root.geometry(f"{geometry}+0+0")
        app.pump(0.5)
        _tables_fill_their_width(app, pages=("trading",))


def _tables_fill_their_width(app, pages=("trading", "research")) -> None:
    """Positions, blotter, gaps and research results use their width; ``pages`` fit the window."""
    trading, research = app.views["trading"], app.views["research"]
    for key, table in (("trading", trading.book.positions), ("trading", trading.book.orders),
                       ("trading", trading.book.gaps), ("research", research.table)):
        app.show_tab(key)
        app.pump(0.3)
        tree = table.tree
        widths = [tree.column(c, "width") for c in tree["columns"]]
        assert abs(sum(widths) - tree.winfo_width()) <= 4, (key, widths, tree.winfo_width())
        assert all(w >= tree.column(c, "minwidth") for c, w in zip(tree["columns"], widths,
                                                                   strict=True))
        assert key not in pages or not app.pages[key].clipped, key


def test_shortcuts_and_menus(make_app):
    from autotrader.gui.menus import SHORTCUTS, show_about, show_shortcuts

    app = make_app()
    app.root.focus_force()
    app.pump(0.2)
    app.show_tab("research")
    app.next_tab(1)
    assert app.notebook.select() == str(app.pages["trading"])
    app.next_tab(-1)
    assert app.notebook.select() == str(app.pages["research"])
    view = app.views["research"]
    view.form.vars["top_n"].set("many")
    app.root.event_generate("<F5>", when="now")
    app.pump(0.1)
    assert "Top N" in view.message.get()  # F5 pressed Run: the form was checked
    keys = [k for k, _ in SHORTCUTS]
    assert {"F5", "Ctrl+P", "Esc"} <= set(keys) and any("Ctrl+Tab" in k for k in keys)
    window = show_shortcuts(app)
    window.destroy()
    about = show_about(app)
    texts = [w.cget("text") for w in about.winfo_children()[0].winfo_children()
             if w.winfo_class() == "TLabel"]
    assert any("BMA workstation 0." in t for t in texts) and any("gui.md" in t for t in texts)
    about.destroy()
    menu = app.root.nametowidget(app.root.cget("menu"))
    assert [menu.entrycget(i, "label") for i in range(menu.index("end") + 1)] == \
        ["File", "View", "Help"]
