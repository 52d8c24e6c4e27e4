"""The research child's process tree: cancel and finish leave no worker process behind."""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
from pathlib import Path

import pytest

from autotrader.services.research_job import (
    CHILD_NICENESS,
    JobFailed,
    JobFinished,
    JobProgress,
    ResearchJob,
    ResearchRequest,
    start_in_background,
)
from tests.autotrader.gui.conftest import END_DATE, descendants, survivors

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the process table from /proc")


def _final(messages: queue.Queue, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = messages.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(item, (JobFinished, JobFailed)):
            return item
    pytest.fail(f"no final message within {timeout}s")


def test_cancel_mid_training_ends_every_worker_of_the_child(gui_config, tmp_path):
    messages: queue.Queue = queue.Queue()
    job = ResearchJob(ResearchRequest(str(gui_config), str(tmp_path / "result"),
                                      source="demo", end_date=END_DATE),
                      messages.put, mode="process", cancel_grace_s=1.0)
    job.start()
    deadline = time.monotonic() + 180
    while job.process_group is None:  # the child reports the group it leads
        assert job.running and time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    child = job.process_group
    assert child == job._process.pid  # the child leads its own process group
    workers: set[int] = set()
    while not workers:  # research.jobs = 2: joblib starts loky worker processes
        assert job.running and time.monotonic() < deadline, "no worker process appeared"
        workers = descendants(child)
        time.sleep(0.05)
    job.cancel()
    final = _final(messages, timeout=30)
    assert isinstance(final, JobFailed) and final.cancelled, final
    assert survivors(workers | {child}, job.process_group, timeout=5.0) == set()
    stages = []
    while not messages.empty():
        item = messages.get()
        stages += [item.stage] if isinstance(item, JobProgress) else []
    assert "report" not in stages  # it was stopped, not finished
    assert not any(p.is_dir() for p in (tmp_path / "result").glob("2*"))


def _nice_of(pid: int) -> int:
    # field 19 of /proc/<pid>/stat: the nice value of the process's main thread
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_child_runs_at_background_priority_from_its_first_instruction():
    ctx = multiprocessing.get_context("spawn")
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    child = ctx.Process(target=time.sleep, args=(30,))
    assert start_in_background(child.start) is None
    try:  # still in spawn's bootstrap (importing), long before any code of ours runs
        assert _nice_of(child.pid) == min(19, mine + CHILD_NICENESS)
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine  # the caller is not lowered
    finally:
        child.kill()
        child.join(10)


def test_start_in_background_returns_the_value_and_reraises_the_error():
    assert start_in_background(lambda: "channel") == "channel"

    def fails() -> None:
        raise OSError("no more processes")

    with pytest.raises(OSError, match="no more processes"):
        start_in_background(fails)
