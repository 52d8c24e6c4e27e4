"""Sessions, worker deaths and failure messages (LocalCluster, worker processes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bma_models.cluster import ClusterError, dask_session, gather_with_progress, open_session
from bma_models.settings import DaskSettings


def _die_once(marker: str, value: int) -> int:
    # the first attempt kills its own worker process (as an OOM kill would)
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(1)
    return value * 2


def _always_die(value: int) -> int:
    os._exit(1)


def test_unreachable_scheduler_is_a_clear_cluster_error():
    with pytest.raises(ClusterError, match="could not reach a Dask scheduler.*dask worker"):
        open_session(DaskSettings(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1.0))


def test_a_task_whose_worker_died_is_retried_and_the_result_is_complete(dask_local, tmp_path):
    marker = tmp_path / "attempt"
    futures = [dask_local.client.submit(_die_once, str(marker), 21, pure=False)]
    assert gather_with_progress(dask_local.client, futures) == [42]
    killed = int(marker.read_text())
    assert killed not in dask_local.worker_pids().values()  # that process is gone
    dask_local.client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_a_task_lost_beyond_allowed_failures_fails_with_a_cluster_error():
    settings = DaskSettings(scheduler="local", workers=1, allowed_failures=0, memory_limit="0")
    with pytest.raises(ClusterError, match="lost with its worker 1 time.*allowed_failures"):
        with dask_session(settings) as session:
            gather_with_progress(session.client, [session.client.submit(_always_die, 1)])


def test_a_scheduler_without_workers_is_a_cluster_error_after_the_timeout():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty:
        with pytest.raises(ClusterError, match="with workers .* within 1s"):
            open_session(DaskSettings(scheduler=empty.scheduler_address, connect_timeout_s=1.0))
