"""A real Ctrl-C during training: `bma run` exits 130, writes nothing, leaves no worker behind.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group: the
CLI process and its joblib/loky workers. The test starts ``bma run`` in its own
process group, waits until the walk-forward's worker processes exist (the train
stage is running), signals the group, and checks the outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_csv_run import _config_dir

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(),
                                reason="reads the process tree from /proc (Linux)")


def _descendants(pid: int) -> set[int]:
    found, stack = set(), [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*/children"):
            try:
                children = {int(c) for c in task.read_text().split()}
            except OSError:  # the task ended while we read it
                continue
            stack += list(children - found)
            found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait() is missing


def test_sigint_to_the_process_group_mid_train_cancels_cleanly(tmp_path, repo_root):
    config = _config_dir(tmp_path, {"data": {"demo_tickers": 80, "demo_sessions": 700},
                                    "jobs": 2, "joblib_backend": "loky"})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autotrader.research", "run", "--source", "demo", "--config",
               str(config), "--output", str(out), "--end-date", "2025-06-30"]
    child = subprocess.Popen(command, cwd=repo_root, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, workers = time.monotonic() + 240, set()
        while time.monotonic() < deadline and child.poll() is None:
            workers = {p for p in _descendants(child.pid)
                       if "loky" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")}
            if len(workers) >= 2:
                break
            time.sleep(0.1)
        assert len(workers) >= 2, "the walk-forward never started its worker processes"
        time.sleep(1.0)  # let the workers pick up fold fits
        os.killpg(child.pid, signal.SIGINT)
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 130, stderr[-2000:]
    assert "cancelled by the user" in stderr
    assert stdout.strip() == ""  # no run directory path printed
    assert not out.exists() or list(out.iterdir()) == []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)], "worker processes outlived the cancelled run"
