"""kill -9 of the trader mid-submit, against the fake gateway: restart sends exactly once.

``autotrader run --broker ib --once`` runs as a real subprocess connected over a socket
to a FakeGateway living in this test process (so the gateway's book survives the
crash, as TWS's does). It is started through ``tests/autotrader/crash_entry.py``,
whose runner checkpoint SIGKILLs the process right after the first order is
journaled (before it is sent) or right after IB accepted it (before the journal
marks it transmitted). A clean restart must leave one order per orderRef
at the gateway and every gateway execution in the journal.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.autotrader.broker.ib.conftest import RECOMMENDATIONS, refs_at_gateway, wait_for_gateway
from tests.autotrader.conftest import write_run
from tests.autotrader.crash_entry import launch

SIM_TIME = "2026-03-02T15:30:00+00:00"  # 10:30 New York, a regular session


def _run_trader(run_dir: Path, state: Path, config: Path, kill_at: str | None):
    args = ["run", "--broker", "ib", "--once", "--run-dir", str(run_dir), "--state-dir",
            str(state), "--config-dir", str(config), "--sim-time", SIM_TIME,
            "--log-level", "WARNING"]
    return launch(args, cwd=state.parent, kill_at=kill_at)


def _journal(state: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(state / "journal.db") as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["after-journal", "after-place"])
def test_kill_9_mid_submit_then_restart_sends_once_and_loses_no_fill(tmp_path, gateway,
                                                                   kill_at):
    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    state, config = tmp_path / "state", tmp_path / "config"
    config.mkdir()
    (config / "connection.json").write_text(json.dumps(
        {"connection": {"port": gateway.port, "client_id": 7, "connect_timeout_s": 5.0}}))

    crashed = _run_trader(run_dir, state, config, kill_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    first = _journal(state, "SELECT order_ref, transmitted_at FROM intents")
    assert len(first) == 1 and first[0][1] is None  # journaled, never marked transmitted
    ref = first[0][0]
    assert refs_at_gateway(gateway) == ({ref: 1} if kill_at == "after-place" else {})
    wait_for_gateway(lambda: gateway.connected_client_ids() == [])

    restarted = _run_trader(run_dir, state, config, None)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    at_gateway = refs_at_gateway(gateway)
    journaled = _journal(state, "SELECT order_ref, transmitted_at FROM intents")
    assert at_gateway[ref] == 1
    assert all(n == 1 for n in at_gateway.values()), at_gateway
    assert set(at_gateway) == {r for r, _ in journaled}
    assert all(t is not None for _, t in journaled)
    buys = Counter(o.contract.symbol for o in gateway.orders() if o.action == "BUY")
    assert all(n == 1 for n in buys.values()), f"a symbol was bought twice: {buys}"
    journal_fills = {e for (e,) in _journal(state, "SELECT exec_id FROM fills")}
    assert journal_fills == {e.exec_id for e in gateway.executions()}  # zero lost fills
    assert journal_fills  # the marketable entries did fill
