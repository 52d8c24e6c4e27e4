"""Exactly-once under kill -9: the runner dies between the journal write and the broker call.

The runner runs as a real subprocess started through the test-only entry
``tests/autotrader/crash_entry.py``, which installs a runner checkpoint that SIGKILLs
it at the chosen point; a second, clean run must send every journaled order
exactly once to the (persisted) paper broker.
"""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.autotrader.conftest import write_run
from tests.autotrader.crash_entry import launch

SIM_TIME = "2026-03-02T15:30:00+00:00"  # 10:30 New York, a regular session


def _run_trader(run_dir: Path, state: Path, config: Path, kill_at: str | None):
    args = ["run", "--broker", "paper", "--once", "--run-dir", str(run_dir), "--state-dir",
            str(state), "--config-dir", str(config), "--sim-time", SIM_TIME,
            "--log-level", "WARNING"]
    return launch(args, cwd=state.parent, kill_at=kill_at)


def _broker_orders(state: Path) -> Counter:
    with sqlite3.connect(state / "paper_broker.db") as conn:
        return Counter(ref for (ref,) in conn.execute("SELECT order_ref FROM orders"))


def _journal(state: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(state / "journal.db") as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["after-journal", "after-place"])
def test_kill_between_journal_and_submit_then_restart_sends_exactly_once(tmp_path, kill_at):
    run_dir = write_run(tmp_path / "result", "20260301-run")
    state, config = tmp_path / "state", tmp_path / "config"
    config.mkdir()
    crashed = _run_trader(run_dir, state, config, kill_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    first = _journal(state, "SELECT order_ref, transmitted_at FROM intents")
    assert len(first) == 1 and first[0][1] is None  # journaled, never marked transmitted
    ref = first[0][0]
    placed_before_restart = _broker_orders(state)
    assert placed_before_restart == (Counter({ref: 1}) if kill_at == "after-place"
                                     else Counter())

    restarted = _run_trader(run_dir, state, config, None)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    at_broker = _broker_orders(state)
    journaled = _journal(state, "SELECT order_ref, transmitted_at FROM intents")
    assert at_broker[ref] == 1
    assert all(n == 1 for n in at_broker.values())
    assert set(at_broker) == {r for r, _ in journaled}
    assert all(t is not None for _, t in journaled)
    entries = [r for r, _ in journaled if "-stop-" not in r]
    symbols = Counter(r.split("-")[3] for r in entries)
    assert all(n == 1 for n in symbols.values()), f"a symbol was bought twice: {entries}"
