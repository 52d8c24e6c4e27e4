"""Connect the research run to a Dask cluster (the optional ``dask`` extra).

This is an adapter: the only module of :mod:`bma_models` that starts or
connects a ``distributed.Client``. The composition roots (``bma run`` in
:mod:`autotrader.research.wiring`, the GUI's research job) open a :class:`DaskSession`
around the pipeline; the pure computation modules only receive the session's
client or its joblib backend name (``"dask"``).

Dask is imported only inside :func:`open_session`: with
``research.dask.scheduler: null`` (the default) nothing here runs and dask is
never imported, so the single-machine path needs no extra package.

Why errors are translated here: when a worker dies, the scheduler re-runs its
tasks elsewhere up to ``allowed_failures`` times; past that (or when the
scheduler connection drops) distributed raises ``KilledWorker`` /
``CommClosedError`` from deep inside joblib or a future. :func:`cluster_errors`
turns those into one :class:`ClusterError` naming the scheduler and what to
check, so a run ends with a clear message and no partial result (the report
writer commits a run directory only after the pipeline returned).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bma_models.errors import BMAError
from bma_models.settings import DaskSettings

logger = logging.getLogger(__name__)

__all__ = [
    "JOBLIB_BACKEND",
    "ClusterError",
    "DaskSession",
    "cluster_errors",
    "dask_session",
    "gather_with_progress",
    "open_session",
]

#: joblib backend name of a Dask session (joblib's own ``DaskDistributedBackend``).
JOBLIB_BACKEND = "dask"
TaskProgress = Callable[[int, int], None]


class ClusterError(BMAError):
    """The Dask cluster could not be reached, or lost a task for good; nothing was written."""


@dataclass
class DaskSession:
    """A connected ``distributed.Client`` (and the ``LocalCluster`` it owns, if any).

    Attributes
    ----------
    client : distributed.Client
        Also the process-wide default client, which joblib's ``"dask"`` backend uses.
    address : str
        Scheduler address (``tcp://...``).
    local : bool
        True when this session started a ``LocalCluster`` (and closes it).
    settings : DaskSettings
    cluster : distributed.LocalCluster or None
    """

    client: Any
    address: str
    local: bool
    settings: DaskSettings
    cluster: Any = None

    def __repr__(self) -> str:
        return f"DaskSession({self.address}, local={self.local}, workers={self.n_workers})"

    @property
    def joblib_backend(self) -> str:
        """Backend name for :func:`joblib.parallel_config`."""
        return JOBLIB_BACKEND

    @property
    def n_workers(self) -> int:
        """Workers currently connected to the scheduler."""
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    @property
    def n_threads(self) -> int:
        """Task slots: the sum of the workers' threads (at least 1)."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers))

    def worker_pids(self) -> dict[str, int]:
        """``{worker address: process id}`` (diagnostics, tests, the benchmark)."""
        return self.client.run(os.getpid)

    def close(self) -> None:
        """Close the client and, for a local session, its cluster."""
        with cluster_errors(self.address):
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        logger.info("dask session closed: %s", self.address)


def _import_distributed():
    try:
        import distributed
    except ImportError as e:
        raise ClusterError(
            "research.dask.scheduler is set but dask is not installed: "
            "pip install \".[dask]\" (dask[distributed])") from e
    return distributed


def open_session(settings: DaskSettings) -> DaskSession:
    """Start a ``LocalCluster`` (``scheduler: local``) or connect to a scheduler.

    Parameters
    ----------
    settings : DaskSettings
        ``research.dask``; ``scheduler`` must not be None.

    Returns
    -------
    DaskSession
        Its client is set as the default client of this process.

    Raises
    ------
    ClusterError
        Dask missing, scheduler unreachable, or no worker within
        ``connect_timeout_s``.
    """
    if settings.scheduler is None:
        raise ClusterError("open_session needs research.dask.scheduler (local or an address)")
    distributed = _import_distributed()
    cluster = client = None
    started = time.perf_counter()
    try:
        if settings.scheduler == "local":
            cluster = distributed.LocalCluster(
                n_workers=settings.workers or _cores(),
                threads_per_worker=settings.threads_per_worker,
                processes=True, memory_limit=_memory_limit(settings.memory_limit),
                dashboard_address=None, scheduler_kwargs={
                    # the scheduler's HTTP endpoints on a free port, not a clash on :8787
                    "allowed_failures": settings.allowed_failures, "dashboard_address": ":0"})
            target = cluster
        else:
            target = settings.scheduler
        client = distributed.Client(target, timeout=settings.connect_timeout_s,
                                    set_as_default=True)
        client.wait_for_workers(1, timeout=settings.connect_timeout_s)
    except (OSError, TimeoutError) as e:
        for resource in (client, cluster):
            if resource is not None:
                resource.close()
        raise ClusterError(
            f"could not reach a Dask scheduler with workers at {settings.scheduler!r} within "
            f"{settings.connect_timeout_s:g}s: {e}. Start one with `dask scheduler` and "
            "`dask worker tcp://HOST:8786`, or use --dask-scheduler local") from e
    session = DaskSession(client=client, address=client.scheduler.address,
                          local=cluster is not None, settings=settings, cluster=cluster)
    logger.info("dask session open in %.1fs: %r", time.perf_counter() - started, session)
    return session


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _memory_limit(text: str) -> str | int:
    return 0 if text.strip() in ("0", "none", "") else text


@contextlib.contextmanager
def dask_session(settings: DaskSettings) -> Iterator[DaskSession | None]:
    """Context manager: a :class:`DaskSession` when ``settings.scheduler`` is set, else None.

    Cluster failures raised inside the block become :class:`ClusterError`.

    Examples
    --------
    >>> with dask_session(DaskSettings()) as session:   # scheduler null: no dask at all
    ...     print(session)
    None
    """
    if settings.scheduler is None:
        yield None
        return
    session = open_session(settings)
    try:
        with cluster_errors(session.address):
            yield session
    finally:
        session.close()


@contextlib.contextmanager
def cluster_errors(address: str) -> Iterator[None]:
    """Translate a lost task or a dropped scheduler connection into :class:`ClusterError`."""
    try:
        yield
    except ClusterError:
        raise
    except Exception as e:
        problem = _cluster_problem(e)
        if problem is None:
            raise
        raise ClusterError(f"Dask cluster {address}: {problem}; the run was aborted and "
                           "nothing was written") from e


def _cluster_problem(error: BaseException) -> str | None:
    # only called with dask imported (inside a session)
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    if isinstance(error, FutureCancelledError):
        return (f"task {error.key!r} was cancelled ({error.reason or 'no reason given'}): a "
                "worker died holding its finished result or its input data, which Dask "
                "cannot recompute here, or the cluster shut down; run again")
    if isinstance(error, KilledWorker):
        return (f"task {error.task!r} was lost with its worker {error.allowed_failures + 1} "
                f"time(s) (last worker {error.last_worker.address}); raise "
                "research.dask.allowed_failures or check the workers' memory and logs")
    if isinstance(error, CommClosedError):
        return f"the connection to the scheduler closed ({error})"
    return None


def gather_with_progress(client: Any, futures: Iterable[Any],
                         on_task: TaskProgress | None = None) -> list[Any]:
    """Results of ``futures`` in submission order, calling ``on_task(done, total)`` as each ends.

    A failed task re-raises its exception at once and cancels the others, so
    a caller never sees a partial list.
    """
    from distributed import as_completed

    futures = list(futures)
    position = {future.key: i for i, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    try:
        for done, future in enumerate(as_completed(futures), 1):
            # result() raises for an erred task and for a cancelled one (lost input data):
            # a failed task never turns into a value
            results[position[future.key]] = future.result()
            if on_task is not None:
                on_task(done, len(futures))
    except BaseException:
        client.cancel(futures)
        raise
    return results
