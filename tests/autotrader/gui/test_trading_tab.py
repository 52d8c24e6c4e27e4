"""Trading engine tab: paper auto trading, kill switch, preview/send, Test connection."""

from __future__ import annotations

import pytest

from autotrader.engine.risk import TradingState
from autotrader.services.book import read_status
from autotrader.services.trader_worker import CycleDone, TraderOptions
from tests.autotrader.gui.conftest import MARKET_TIME, pump_until, screenshot

pytestmark = pytest.mark.gui


@pytest.fixture
def trading_app(make_app, demo_result, tmp_path):
    options = TraderOptions(state_dir=tmp_path / "trader", result_root=demo_result,
                            interval_s=3600.0, clock=lambda: MARKET_TIME,
                            market_open=lambda now: True)
    app = make_app(result_root=demo_result, trader_options=options)
    cycles: list = []
    app.bus.subscribe(CycleDone, cycles.append)
    return app, app.views["trading"], cycles


def test_start_paper_auto_trading_shows_orders(trading_app):
    app, view, cycles = trading_app
    view.broker.set("paper")
    view.start_button.invoke()
    pump_until(app, lambda: cycles, timeout=30)
    report = cycles[0].report
    assert report.submitted, report.failures
    pump_until(app, lambda: view.orders.rows() or view.fills.rows(), timeout=10)
    refs = {r[0] for r in view.orders.rows()} | {r[-1] for r in view.fills.rows()}
    assert refs <= set(report.submitted) and refs
    pump_until(app, lambda: "connected" in app.strip.text("broker"), timeout=10)
    assert app.strip.text("broker").startswith("paper (simulated), connected")
    assert "market data: paper/sim prices" in view.session_line.get()
    assert "auto trading: ON" in view.session_line.get()
    assert view.start_button.instate(["disabled"])  # no second start while running
    view.stop_button.invoke()
    pump_until(app, lambda: "not connected" in app.strip.text("broker"), timeout=10)
    pump_until(app, lambda: not view.start_button.instate(["disabled"]), timeout=10)


def test_halt_kill_switch_stops_new_orders_until_reactivated(trading_app):
    app, view, cycles = trading_app
    pump_until(app, lambda: app.state.kill_state == "ACTIVE", timeout=10)
    view.kill_buttons[TradingState.HALTED].invoke()  # no session: written to the journal
    pump_until(app, lambda: app.strip.text("kill") == "HALTED", timeout=10)
    assert view.kill.get() == "HALTED" and "recorded in the journal" in view.message.get()
    view.start_button.invoke()
    pump_until(app, lambda: cycles, timeout=30)
    halted = cycles[0].report
    assert halted.submitted == []
    assert halted.denials["trading_state"] == halted.intents > 0
    assert view.orders.rows() == [] and view.fills.rows() == []
    view.kill_buttons[TradingState.ACTIVE].invoke()
    view.send_button.invoke()
    pump_until(app, lambda: len(cycles) >= 2, timeout=30)
    assert cycles[1].report.submitted


def test_preview_lists_the_orders_and_send_submits_them(trading_app, screenshots, tmp_path):
    app, view, cycles = trading_app
    view.preview_button.invoke()
    pump_until(app, lambda: view.preview_table.rows(), timeout=30)
    to_send = [r for r in view.preview_table.rows() if r[-1] == "SEND"]
    assert to_send and not cycles  # nothing was sent by the preview
    # beyond the per-cycle order limit the preview says so in words, not as a check code
    denied = [r[-1] for r in view.preview_table.rows() if r[-1] != "SEND"]
    assert denied and all(o.startswith("DENY order limit per cycle reached: ") for o in denied)
    view.send_button.invoke()
    pump_until(app, lambda: cycles, timeout=30)
    sent_symbols = {ref.split("-")[-2] for ref in cycles[0].report.submitted}
    assert {r[0] for r in to_send} <= sent_symbols
    pump_until(app, lambda: view.orders.rows() and view.positions.rows(), timeout=10)
    # planned weight per name, coverage and invested: the document of `autotrader status`
    status = read_status(tmp_path / "trader")
    pump_until(app, lambda: status["run_id"] in view.book.gap_note.cget("text"), timeout=10)
    planned = {row[0]: row[-1] for row in view.positions.rows()}
    assert planned == {p["symbol"]: f"{p['planned_weight']:.2%}" for p in status["positions"]}
    assert f"invested {status['invested']:.1%} of {status['planned_invested']:.1%} planned" \
        in view.book.gap_note.cget("text")
    assert [r[0] for r in view.book.gaps.rows()] == [g["symbol"] for g in status["gaps"]]
    assert view.summary.get().endswith(f"plan coverage {status['coverage']:.1%}")
    screenshot(app, "trading", screenshots)  # book after Send, the preview that led to it


def test_test_connection_against_the_fake_tws_gateway(make_app):
    from tests.fakes.tws import FakeGateway

    app = make_app()
    view = app.views["trading"]
    view.broker.set("ib")
    view._on_broker_change()
    with FakeGateway() as gateway:
        view.vars["port"].set(str(gateway.port))
        view.vars["client_id"].set("17")
        view.test_button.invoke()
        text = pump_until(app, lambda: view.message.get() if view.message.get().startswith(
            ("OK", "FAILED")) else "", timeout=30)
    assert text.startswith("OK"), text
    assert f"127.0.0.1:{gateway.port}" in text


def test_test_connection_reports_a_closed_port_and_a_bad_field(make_app):
    import socket

    app = make_app()
    view = app.views["trading"]
    view.broker.set("ib")
    view._on_broker_change()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    view.vars["port"].set(str(port))
    view.test_button.invoke()
    text = pump_until(app, lambda: view.message.get() if view.message.get().startswith(
        ("OK", "FAILED", "test failed")) else "", timeout=30)
    assert not text.startswith("OK")
    assert "connection refused: nothing listens there" in text
    view.vars["port"].set("74x97")
    view.test_button.invoke()
    assert "port must be a whole number" in view.message.get()


def test_preview_without_a_run_says_why_and_keeps_the_session(make_app, tmp_path):
    empty = tmp_path / "no-runs"
    empty.mkdir()
    options = TraderOptions(state_dir=tmp_path / "trader", result_root=empty,
                            interval_s=3600.0, clock=lambda: MARKET_TIME,
                            market_open=lambda now: True)
    app = make_app(result_root=empty, trader_options=options)
    view = app.views["trading"]
    view.preview_button.invoke()
    pump_until(app, lambda: view.preview is not None, timeout=30)
    assert view.preview.rows == () and view.preview.failures
    assert "recommendations:" in view.message.get()
    assert view.worker.alive  # the session survived the failed preview


def test_start_while_another_trader_holds_the_state_dir_says_who(trading_app, tmp_path,
                                                                  screenshots):
    from autotrader.services.state_lock import acquire_state_lock

    app, view, cycles = trading_app
    lock = acquire_state_lock(tmp_path / "trader", broker="ib")  # e.g. a headless trader
    try:
        view.broker.set("paper")
        view.start_button.invoke()
        pump_until(app, lambda: "another trader is running" in view.message.get(), timeout=30)
        assert str(tmp_path / "trader") in view.message.get()
        assert cycles == []
        pump_until(app, lambda: not view.start_button.instate(["disabled"]), timeout=10)
        screenshot(app, "trading", screenshots, "state-dir-busy")
    finally:
        lock.release()
