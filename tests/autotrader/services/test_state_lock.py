"""One trader per state directory: a second trader is refused, a dead one never blocks."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from autotrader.cli import main
from autotrader.config import Settings
from autotrader.domain.errors import TraderError
from autotrader.services import state_lock
from autotrader.services.session import JOURNAL_FILE, SessionOptions, build_session
from autotrader.services.state_lock import (
    OWNER_FILE,
    StateDirBusy,
    acquire_state_lock,
)
from tests.autotrader.conftest import write_run

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from autotrader.services.state_lock import acquire_state_lock
    lock = acquire_state_lock(Path(sys.argv[1]), broker="ib")
    print("locked", flush=True)
    sys.stdin.readline()  # hold until killed or told to go
""")


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the trader lock of ``tmp_path / 'state'``."""
    state = tmp_path / "state"
    state.mkdir()
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(state)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=os.getcwd())
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child, state
    finally:
        child.kill()
        child.wait(timeout=30)


def _options(tmp_path, state):
    return SessionOptions(state_dir=state, result_root=tmp_path / "result", broker="paper")


def test_a_second_session_on_one_state_dir_is_refused_until_the_first_closes(tmp_path):
    state = tmp_path / "state"
    first = build_session(Settings(), _options(tmp_path, state))
    try:
        with pytest.raises(StateDirBusy, match="another trader is running") as refused:
            build_session(Settings(), _options(tmp_path, state))
        assert str(state) in str(refused.value)
        assert f"pid {os.getpid()}" in str(refused.value)
        assert "broker paper" in str(refused.value)
    finally:
        first.close()
    assert not (state / OWNER_FILE).exists()
    second = build_session(Settings(), _options(tmp_path, state))  # free again
    second.close()
    second.close()  # idempotent


def test_another_process_holding_the_lock_is_named_and_nothing_is_opened(holder, tmp_path):
    child, state = holder
    with pytest.raises(StateDirBusy) as refused:
        build_session(Settings(), _options(tmp_path, state))
    assert f"pid {child.pid}" in str(refused.value) and "broker ib" in str(refused.value)
    assert not (state / JOURNAL_FILE).exists()  # refused before the journal was opened


def test_a_killed_trader_leaves_no_stale_lock(holder, tmp_path):
    child, state = holder
    with pytest.raises(StateDirBusy):
        acquire_state_lock(state, broker="paper")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert json.loads((state / OWNER_FILE).read_text())["pid"] == child.pid  # stale record
    lock = acquire_state_lock(state, broker="paper")  # the OS released the dead one's lock
    try:
        assert json.loads((state / OWNER_FILE).read_text())["pid"] == os.getpid()
    finally:
        lock.release()


def test_a_failed_build_releases_the_lock(tmp_path):
    state = tmp_path / "state"
    bad = SessionOptions(state_dir=state, result_root=tmp_path / "result", broker="nope")
    with pytest.raises(Exception, match="nope"):
        build_session(Settings(), bad)
    lock = acquire_state_lock(state, broker="paper")
    lock.release()
    assert not lock.held


def test_autotrader_run_exits_1_naming_the_running_trader(holder, tmp_path, caplog):
    child, state = holder
    write_run(tmp_path / "result", "20260301-run")
    (tmp_path / "config").mkdir()
    with caplog.at_level(logging.ERROR):
        code = main(["run", "--broker", "paper", "--once", "--result-root",
                     str(tmp_path / "result"), "--state-dir", str(state), "--config-dir",
                     str(tmp_path / "config"), "--sim-time", "2026-03-02T15:30:00+00:00",
                     "--log-level", "WARNING"])
    assert code == 1
    assert f"another trader is running on state directory {state}" in caplog.text
    assert f"pid {child.pid}" in caplog.text
    assert not (state / JOURNAL_FILE).exists() and not (state / "paper_broker.db").exists()


def test_a_file_system_without_locks_is_refused_not_worked_around(tmp_path, monkeypatch):
    def no_locks(fd):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(state_lock, "_try_lock", no_locks)
    with pytest.raises(TraderError, match="does not support locks") as refused:
        acquire_state_lock(tmp_path, broker="paper")
    assert not isinstance(refused.value, StateDirBusy)
    assert not (tmp_path / OWNER_FILE).exists()


def test_account_locks_are_per_account_and_named_safely(tmp_path):
    from autotrader.services.state_lock import AccountBusy, acquire_account_lock

    first = acquire_account_lock(tmp_path / "locks", broker="ib", account="DU1/2",
                                 state_dir=tmp_path / "a")
    try:
        other = acquire_account_lock(tmp_path / "locks", broker="ib", account="DU3",
                                     state_dir=tmp_path / "b")  # another account: free
        other.release()
        with pytest.raises(AccountBusy, match="ib account DU1/2") as refused:
            acquire_account_lock(tmp_path / "locks", broker="ib", account="DU1/2",
                                 state_dir=tmp_path / "b")
        assert f"state directory {tmp_path / 'a'}" in str(refused.value)
        assert (tmp_path / "locks" / "account-ib-DU1_2.lock").is_file()  # no "/" in a name
    finally:
        first.release()
    assert not list((tmp_path / "locks").glob("*.owner.json"))


def test_the_lock_directory_comes_from_the_environment_or_the_home(monkeypatch, tmp_path):
    from pathlib import Path

    from autotrader.services.state_lock import default_lock_dir

    monkeypatch.setenv("BMA_LOCK_DIR", str(tmp_path))
    assert default_lock_dir() == tmp_path
    monkeypatch.delenv("BMA_LOCK_DIR")
    assert default_lock_dir() == Path.home() / ".bma-workstation" / "locks"
