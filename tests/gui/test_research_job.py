"""The research child's process tree: cancel and finish leave no worker process behind."""

from __future__ import annotations

import queue
import sys
import time

import pytest

from autotrader.services.research_job import (
    JobFailed,
    JobFinished,
    JobProgress,
    ResearchJob,
    ResearchRequest,
)
from tests.gui.conftest import END_DATE, descendants, survivors

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
