"""Money safety across sessions: whose orders a restart may resume, and client id changes.

Issue #20, scenarios 1 and 2, against the fake gateway (which shows a client only its
own open orders, as TWS does). The first trader runs as a real subprocess that is
SIGKILLed at a runner checkpoint (``tests/autotrader/crash_entry.py``); the gateway lives
in this process, so its book survives the crash as TWS's does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sqlite3
from collections import Counter
from pathlib import Path

from autotrader.cli import main
from autotrader.domain.orders import OrderStatus
from autotrader.journal import Journal
from autotrader.services.recommendations import load_recommendations
from autotrader.services.trading import TradingRunner
from tests.autotrader.broker.ib.conftest import (
    RECOMMENDATIONS,
    SESSION,
    refs_at_gateway,
    wait_for_gateway,
)
from tests.autotrader.conftest import FakeClock, write_run
from tests.autotrader.crash_entry import launch
from tests.fakes.tws import FillPolicy

SIM_TIME = SESSION.isoformat()  # Monday 2 March 2026, 10:30 New York
LATER = (SESSION + dt.timedelta(minutes=10)).isoformat()  # past the per-symbol throttle


def _config(tmp_path: Path, port: int, client_id: int, **extra: object) -> Path:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "connection.json").write_text(json.dumps({"connection": {
        "port": port, "client_id": client_id, "connect_timeout_s": 2.0, "connect_attempts": 2,
        "reconnect_base_delay_s": 0.05}}))
    if extra:
        (config / "risk_config.json").write_text(json.dumps(extra))
    return config


def _args(tmp_path: Path, run_dir: Path, config: Path, sim_time: str = SIM_TIME) -> list[str]:
    return ["run", "--broker", "ib", "--once", "--run-dir", str(run_dir), "--state-dir",
            str(tmp_path / "state"), "--config-dir", str(config), "--sim-time", sim_time,
            "--log-level", "WARNING"]


def _journal_rows(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "state" / "journal.db") as conn:
        return conn.execute(sql).fetchall()


def _crash(tmp_path: Path, run_dir: Path, config: Path, kill_at: str) -> str:
    crashed = launch(_args(tmp_path, run_dir, config), cwd=tmp_path, kill_at=kill_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    rows = _journal_rows(tmp_path, "SELECT order_ref, transmitted_at FROM intents")
    assert len(rows) == 1 and rows[0][1] is None  # journaled, never marked transmitted
    return rows[0][0]


# -- scenario 1: a DEMO run's order and a LIVE account ------------------------------------------
def test_a_demo_order_journaled_on_paper_is_never_resumed_on_a_live_account(
        tmp_path, make_gateway, make_broker, caplog):
    paper, live = make_gateway(), make_gateway(accounts=("U7654321",))
    run_dir = write_run(tmp_path / "result", "20260301-demo", RECOMMENDATIONS, source="demo")
    ref = _crash(tmp_path, run_dir, _config(tmp_path, paper.port, 7), "after-journal")
    assert paper.orders() == []
    wait_for_gateway(lambda: paper.connected_client_ids() == [])

    # trader B: same state directory and client id, a LIVE account, armed, same day
    broker = make_broker(live, client_id=7, live_armed=True)
    assert broker.is_live
    journal = Journal(tmp_path / "state" / "journal.db").open()
    clock = FakeClock(SESSION)
    broker.on_reconnect = lambda b: journal.reconcile(b, clock())
    runner = TradingRunner(broker, journal,
                           lambda: load_recommendations(run_dir, broker_is_live=broker.is_live),
                           clock=clock, market_open=lambda _now: True)
    with caplog.at_level(logging.WARNING):
        runner.start()
        runner.run_cycle()
    assert live.orders() == [], "a DEMO order reached the live account"
    order = journal.order(ref)
    assert order.status == OrderStatus.CANCELLED
    assert "DEMO run 20260301-demo" in journal.events(ref)[-1][2]
    assert any(r.levelno == logging.WARNING and "not resuming" in r.getMessage()
               and "DEMO" in r.getMessage() for r in caplog.records)
    journal.close()


# -- scenario 2: connection.client_id changes between sessions ----------------------------------
def test_a_new_client_id_after_a_crash_mid_send_refuses_instead_of_sending_twice(
        tmp_path, make_gateway, caplog):
    gateway = make_gateway(fill_policy=FillPolicy(marketable_limits=False))  # entries rest
    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    ref = _crash(tmp_path, run_dir, _config(tmp_path, gateway.port, 7), "after-place")
    assert refs_at_gateway(gateway) == {ref: 1}  # live at IB under client 7
    wait_for_gateway(lambda: gateway.connected_client_ids() == [])

    assert main(_args(tmp_path, run_dir, _config(tmp_path, gateway.port, 8))) == 1
    assert refs_at_gateway(gateway) == {ref: 1}, "the same orderRef went live twice"
    refusal = [r.getMessage() for r in caplog.records if "client id 7" in r.getMessage()]
    assert refusal and "client id 8" in refusal[0] and "connection.client_id = 7" in refusal[0]
    assert _journal_rows(tmp_path, "SELECT state FROM intents") == [(OrderStatus.PENDING_SUBMIT,)]

    # the way out the message names: the journal's client id
    assert main(_args(tmp_path, run_dir, _config(tmp_path, gateway.port, 7))) == 0
    at_gateway = refs_at_gateway(gateway)
    assert at_gateway[ref] == 1 and all(n == 1 for n in at_gateway.values()), at_gateway
    journal_refs = {r for (r,) in _journal_rows(tmp_path, "SELECT order_ref FROM intents")}
    assert set(at_gateway) == journal_refs


def test_a_new_client_id_after_a_clean_stop_never_cancels_working_orders_or_doubles(
        tmp_path, make_gateway, caplog):
    gateway = make_gateway(fill_policy=FillPolicy(marketable_limits=False))  # entries rest
    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    assert main(_args(tmp_path, run_dir, _config(tmp_path, gateway.port, 7))) == 0
    working = {o.order_ref for o in gateway.orders() if o.is_live}
    assert len(working) >= 2

    later = _args(tmp_path, run_dir, _config(tmp_path, gateway.port, 8), sim_time=LATER)
    assert main(later) == 1
    states = dict(_journal_rows(tmp_path, "SELECT order_ref, state FROM intents"))
    assert all(states[ref] == OrderStatus.SUBMITTED for ref in working), states
    buys = Counter(o.contract.symbol for o in gateway.orders() if o.action == "BUY")
    assert all(n == 1 for n in buys.values()), f"the book doubled: {buys}"
    assert any("connection.client_id = 7" in r.getMessage() for r in caplog.records)


def test_a_new_client_id_with_nothing_working_is_accepted_and_recorded(tmp_path, gateway,
                                                                     caplog):
    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    no_exits = {"execution": {"order_type": "market"},
                "risk_controls": {"stops": {"enabled": False}}}
    assert main(_args(tmp_path, run_dir, _config(tmp_path, gateway.port, 7, **no_exits))) == 0
    assert gateway.orders() and not any(o.is_live for o in gateway.orders())
    with caplog.at_level(logging.WARNING):
        config = _config(tmp_path, gateway.port, 8, **no_exits)
        assert main(_args(tmp_path, run_dir, config, sim_time=LATER)) == 0
    assert any("client id changed from 7 to 8" in r.getMessage() for r in caplog.records)
    with Journal(tmp_path / "state" / "journal.db") as journal:
        assert journal.recorded_session().client_id == 8
        assert {f.exec_id for f in journal.fills()} == {e.exec_id for e in gateway.executions()}
    assert all(n == 1 for n in refs_at_gateway(gateway).values())


# -- one trader per IB account, whatever the state directory ------------------------------------
def test_a_second_trader_on_the_same_ib_account_is_refused_before_any_order(tmp_path, gateway,
                                                                          caplog):
    from autotrader.services.state_lock import acquire_account_lock, default_lock_dir

    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    config = _config(tmp_path, gateway.port, 7)
    # e.g. the GUI, started in another folder, trading DU1234567 from its own ./state
    other = acquire_account_lock(default_lock_dir(), broker="ib", account="DU1234567",
                                 state_dir=tmp_path / "gui-state")
    try:
        with caplog.at_level(logging.ERROR):
            assert main(_args(tmp_path, run_dir, config)) == 1
        message = " ".join(r.getMessage() for r in caplog.records)
        assert "another trader is trading ib account DU1234567" in message
        assert f"state directory {tmp_path / 'gui-state'}" in message
        assert gateway.orders() == []  # refused after connecting, before the first cycle
    finally:
        other.release()
    assert main(_args(tmp_path, run_dir, config)) == 0  # the account is free again
    assert gateway.orders()


def test_a_trader_with_another_journal_never_doubles_the_working_orders_of_the_first(
        tmp_path, make_gateway, caplog):
    # e.g. the GUI on a laptop (client id 7) and the CLI on a server (client id 8) on one
    # account: the account lock is per machine, so only the broker's book can tell
    gateway = make_gateway(fill_policy=FillPolicy(marketable_limits=False))  # entries rest
    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    laptop, server = tmp_path / "laptop", tmp_path / "server"
    laptop.mkdir(), server.mkdir()
    assert main(_args(laptop, run_dir, _config(laptop, gateway.port, 7))) == 0
    working = sorted(o.order_ref for o in gateway.orders() if o.is_live)
    assert len(working) >= 2
    with caplog.at_level(logging.ERROR):
        code = main(_args(server, run_dir, _config(server, gateway.port, 8), sim_time=LATER))
    assert code == 1
    buys = Counter(o.contract.symbol for o in gateway.orders() if o.action == "BUY")
    assert all(n == 1 for n in buys.values()), f"the book doubled: {buys}"
    message = " ".join(r.getMessage() for r in caplog.records)
    assert f"{len(working)} working order(s) of another trader" in message
    assert "client id 7" in message and working[0] in message


def test_a_running_trader_stops_sending_once_another_trader_works_orders(
        tmp_path, make_gateway, make_broker, caplog):
    gateway = make_gateway(fill_policy=FillPolicy(marketable_limits=False))  # entries rest
    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    broker = make_broker(gateway, client_id=8)  # the server's trader, started first
    journal = Journal(tmp_path / "server" / "journal.db").open()
    runner = TradingRunner(broker, journal,
                           lambda: load_recommendations(run_dir, broker_is_live=False),
                           clock=FakeClock(SESSION), market_open=lambda _now: True)
    runner.start()  # nothing works at the broker yet: it starts
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    assert main(_args(laptop, run_dir, _config(laptop, gateway.port, 7))) == 0  # the other
    with caplog.at_level(logging.ERROR):
        report = runner.run_cycle()
    assert report.submitted == [] and report.decisions == []
    assert any(f.startswith("another trader: ") and "client id 7" in f for f in report.failures)
    buys = Counter(o.contract.symbol for o in gateway.orders() if o.action == "BUY")
    assert buys and all(n == 1 for n in buys.values()), f"the book doubled: {buys}"
    assert "not in this journal" in caplog.text
    journal.close()
