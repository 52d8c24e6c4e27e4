"""The crash-consistency benchmark, small: kill -9 at random points, restart, compare.

``python -m benchmarks.crash_consistency`` runs 200 scenarios; the suite runs 10 (with
the self-test that shows every detector fires on an injected fault). Runs under both
IB libraries like every test here.
"""

from __future__ import annotations

import pytest

from benchmarks.crash_consistency import DETECTORS, run_benchmark


@pytest.mark.slow
def test_ten_kill_9_runs_leave_no_duplicate_no_orphan_and_no_lost_fill():
    record = run_benchmark(runs=10, seed=11, baseline_runs=1)
    assert all(n >= 1 for n in record["self_test"].values()), record["self_test"]
    assert {name: record[name] for name in DETECTORS} == dict.fromkeys(DETECTORS, 0), record
    assert record["failed_restarts"] == 0 and record["equal"], record
    assert record["killed"] >= 1
