"""Run the BMA research pipeline off the GUI thread, with progress and cancellation.

A :class:`ResearchJob` runs ``bma run`` (the same composition as
:mod:`autotrader.research.wiring`) either in a **spawned subprocess** (default) or in a
**worker thread**. It never touches a widget: every outcome is a plain message
(:class:`JobProgress`, :class:`JobFinished`, :class:`JobFailed`) handed to the
``post`` callable, which the GUI points at its event queue.

Why a subprocess by default: training and cross-validation are CPU-bound
Python/numpy/LightGBM code; in a thread they compete with Tk for the GIL and
the main loop stalls for hundreds of milliseconds at a time. A spawned process
has its own interpreter, so the Tk thread only drains a queue. The price is a
start-up of one to a few seconds (importing pandas, sklearn, lightgbm in the
child). Measured figures are in docs/benchmarks.md ("GUI main-loop stall").

Log records of the child are forwarded over the same queue and re-emitted in
the parent through ``logging.getLogger(record.name).handle(record)``, so the
GUI's log tab shows them like any other record.

No orphaned workers: the child makes itself the leader of a new **process
group** before it imports the pipeline, so its joblib/loky workers, their
resource trackers and any local Dask cluster are members of that group. When
the run ends (finished, failed, cancelled or killed) the relay sends SIGTERM to
whatever is left of the group and SIGKILL to what is still there 3 s later;
:meth:`ResearchJob.cancel` waits ``cancel_grace_s`` for the child to stop
between stages and then ends the group the same way. Only the standard library
is used (``os.setpgid``/``os.killpg``); on a platform without process groups
the child alone is terminated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import logging.handlers
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["JobFailed", "JobFinished", "JobProgress", "ResearchJob", "ResearchRequest",
           "execute_research"]

MODES = ("process", "thread")
#: The research child runs at this niceness (POSIX): its joblib workers may occupy every
#: core, and at equal priority the OS then starves the Tk process for 100+ ms at a time.
CHILD_NICENESS = 10
#: Linux keeps the nice value per thread and a new process inherits the one of the
#: thread that starts it (elsewhere nice is per process: the child lowers its own)
PER_THREAD_NICE = sys.platform.startswith("linux")


@dataclass(frozen=True)
class ResearchRequest:
    """Parameters of one research run (the GUI's Research tab fields).

    ``source`` is ``auto`` (Polygon when a key is set, else the demo market, as
    ``bma run``), ``demo``, ``csv`` or ``polygon``. ``overrides`` are extra
    dotted config overrides (highest precedence), e.g.
    ``{"research.dask.scheduler": "tcp://host:8786"}`` (the Research tab's
    "Dask scheduler" field; None = no Dask), as ``bma run --dask-scheduler``.
    ``sectors_path`` is the optional sectors file of a CSV run (``bma run
    --sectors``); ``holdings`` and ``state_dir`` are ``bma run --holdings`` and
    ``--state-dir`` (default: the trader's book when it has one, else cash).
    """

    config_dir: str
    output_root: str
    source: str = "auto"
    start_date: str | None = None
    end_date: str | None = None
    top_n: int | None = None
    data_path: str | None = None
    sectors_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    holdings: str = "auto"
    state_dir: str | None = None


@dataclass(frozen=True)
class JobProgress:
    """A progress report of the research worker.

    Either stage ``stage`` completed (``done`` of ``total`` stages), or, when
    ``stage`` is ``"<stage>:tasks"``, ``done`` of the stage's ``total`` tasks
    completed (training: one task per fold x model fit).
    """

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class JobFinished:
    """The run directory was committed."""

    run_dir: Path
    elapsed_s: float


@dataclass(frozen=True)
class JobFailed:
    """The run failed or was cancelled; nothing was committed.

    ``error`` is one line (exception type and message); ``details`` the
    traceback, for a "details" view (empty for a cancel).
    """

    error: str
    cancelled: bool = False
    details: str = ""


@dataclass(frozen=True)
class _GroupReady:
    pgid: int


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to every process of group ``pgid``; False when none is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError as e:  # a member we may not signal: report, do not hide it
        logger.error("cannot signal research process group %d: %s", pgid, e)
        return False
    return True


def _namespace(request: ResearchRequest) -> argparse.Namespace:
    return argparse.Namespace(
        config=request.config_dir, output=request.output_root,
        source=None if request.source == "auto" else request.source,
        start_date=request.start_date, end_date=request.end_date, top_n=request.top_n,
        seed=None, jobs=None, data=request.data_path, sectors=request.sectors_path,
        holdings=request.holdings, state_dir=request.state_dir)


def execute_research(request: ResearchRequest, progress: Callable[[str, int, int], None],
                     cancel: Any = None, environ: dict[str, str] | None = None) -> Path:
    """Load the data and run the pipeline exactly as ``bma run`` does; return the run directory.

    Uses :func:`autotrader.research.wiring.run_research`, so a ``research.dask.scheduler``
    (from the config files or ``request.overrides``) opens the Dask session
    around the run as on the command line.

    Parameters
    ----------
    request : ResearchRequest
    progress : callable
        ``progress(stage, done, total)``: ``("load", 0, n)`` when loading starts,
        ``("load", 1, 1)`` when the data is in, then the pipeline's stages and, during
        training, ``("train:tasks", done, total)`` per fold x model fit.
    cancel : threading.Event or multiprocessing.Event, optional
        Checked between pipeline stages.
    environ : mapping, optional
        Environment for the Polygon key (default ``os.environ``).

    Raises
    ------
    bma_models.errors.BMAError, ValueError, autotrader.config.ConfigError
        Bad parameters, missing data or a cancelled run.
    """
    from autotrader.config import ConfigStore, resolve_config_dir
    from autotrader.research.wiring import (
        cli_overrides,
        factor_set_for,
        load_market_data,
        portfolio_inputs,
        run_research,
        source_and_dates,
        trader_rule,
    )
    from bma_models.pipeline import STAGES

    env = dict(os.environ if environ is None else environ)
    ns = _namespace(request)
    config_dir = resolve_config_dir(request.config_dir)
    configured = ConfigStore(config_dir, overrides={**cli_overrides(ns, None),
                                                    **request.overrides}).get()
    source, dates = source_and_dates(ns, configured.research.data, env,
                                     dt.datetime.now(dt.timezone.utc))
    overrides = {**cli_overrides(ns, source), **request.overrides}
    settings = ConfigStore(config_dir, overrides=overrides).get()
    factors = factor_set_for(config_dir, settings.research)
    rules, holdings = portfolio_inputs(ns, settings)
    progress("load", 0, len(STAGES))
    started = time.perf_counter()
    market = load_market_data(source, settings, dates, ns, env)
    load_s = time.perf_counter() - started
    progress("load", 1, 1)
    argv = [f"gui:{k}={v}" for k, v in sorted(vars(ns).items()) if v is not None]
    return run_research(market, settings.research, Path(request.output_root), argv,
                        progress=progress, cancel=cancel, load_s=load_s, rules=rules,
                        holdings=holdings, factors=factors, order_rule=trader_rule(settings))


def _outcome(request: ResearchRequest, post: Callable[[object], None], cancel: Any) -> None:
    from bma_models.pipeline import PipelineCancelled

    started = time.perf_counter()
    try:
        run_dir = execute_research(
            request, lambda stage, done, total: post(JobProgress(stage, done, total)), cancel)
    except PipelineCancelled as e:
        post(JobFailed(str(e), cancelled=True))
    except Exception as e:  # the job boundary: every failure becomes a message
        logger.exception("research job failed")
        post(JobFailed(f"{type(e).__name__}: {e}", details=traceback.format_exc()))
    else:
        post(JobFinished(Path(run_dir), time.perf_counter() - started))


def _child_main(request: ResearchRequest, channel: Any, cancel: Any, level: int) -> None:
    if hasattr(os, "setpgid"):  # own process group: the parent can end the whole tree
        os.setpgid(0, 0)
        channel.put(_GroupReady(os.getpgid(0)))
    if hasattr(os, "nice") and not PER_THREAD_NICE:  # (on Linux it started at it)
        os.nice(CHILD_NICENESS)  # background priority, inherited by the joblib workers
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(channel)]
    root.setLevel(level)
    _outcome(request, channel.put, cancel)


def start_in_background(start: Callable[[], Any]) -> Any:
    """Call ``start`` so that the processes it starts run at :data:`CHILD_NICENESS`.

    On Linux ``start`` runs in a short thread that lowered its own priority
    first, so a spawned child imports pandas, scikit-learn and LightGBM (one to
    two seconds of CPU) at background priority instead of competing with the
    Tk thread until it could lower its own; the caller's priority is unchanged.
    Elsewhere ``start`` runs here and the child lowers its own priority.
    Returns what ``start`` returns; re-raises what it raised.
    """
    if not (PER_THREAD_NICE and hasattr(os, "nice")):
        return start()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            os.nice(CHILD_NICENESS)
            outcome["value"] = start()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller below
            outcome["error"] = e

    starter = threading.Thread(target=run, name="research-spawn", daemon=True)
    starter.start()
    starter.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class ResearchJob:
    """One research run in a spawned process (``mode="process"``) or a thread.

    Parameters
    ----------
    request : ResearchRequest
    post : callable
        Receives every :class:`JobProgress` and exactly one :class:`JobFinished`
        or :class:`JobFailed`; called from a relay/worker thread, so it must be
        thread-safe (``queue.Queue.put``).
    mode : {"process", "thread"}
    cancel_grace_s : float
        Process mode: seconds a cancelled child may take to stop between
        stages before its process group is ended.

    Examples
    --------
    >>> job = ResearchJob(ResearchRequest("config", "result"), post=print, mode="thread")
    >>> job.running
    False
    """

    def __init__(self, request: ResearchRequest, post: Callable[[object], None],
                 mode: str = "process", cancel_grace_s: float = 3.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        self.request = request
        self.post = post
        self.mode = mode
        self.cancel_grace_s = cancel_grace_s
        self._thread: threading.Thread | None = None
        self._cancel: Any = None
        self._process: Any = None
        self._pgid: int | None = None
        self._cancel_at: float | None = None
        self._end_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ResearchJob(mode={self.mode!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """True until the final message was posted."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the run; returns at once.

        In process mode the queue, the event and the child are created by the
        relay thread, not here: ``Process.start`` (fork + exec + pickling) and
        the first named semaphore (which starts multiprocessing's resource
        tracker process) took 15-40 ms together, and the caller is the Tk thread.
        """
        if self.running:
            raise RuntimeError("this research job is already running")
        logger.info("research job starting (%s): %s", self.mode, self.request)
        self._pgid, self._cancel_at, self._process = None, None, None
        target: Callable[..., None]
        args: tuple[Any, ...]
        if self.mode == "thread":
            self._cancel = threading.Event()
            target, args = _outcome, (self.request, self.post, self._cancel)
        else:
            self._cancel = None
            target, args = self._relay, ()
        self._thread = threading.Thread(target=target, args=args, name="research-job",
                                        daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop the run; it then posts ``JobFailed(cancelled=True)``.

        The pipeline stops before its next stage. In process mode a child that
        is still running ``cancel_grace_s`` later (a long training stage) is
        ended with its whole process group (joblib/loky workers included).
        """
        if self._cancel_at is None and self.running:
            logger.warning("research job: cancel requested")
            self._cancel_at = time.monotonic()
            if self._cancel is not None:  # else the relay sees _cancel_at before it spawns
                self._cancel.set()

    def terminate(self, grace_s: float = 5.0) -> None:
        """Cancel, wait up to ``grace_s`` for the child, then end its process tree (close)."""
        self.cancel()
        if self._process is not None:
            with self._end_lock:
                started = self._process.pid is not None
            if started:
                self._process.join(grace_s)
            self._end_tree()
        self.join(grace_s)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the final message (tests and shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def process_group(self) -> int | None:
        """The child's process group id once the child created it (process mode)."""
        return self._pgid

    def _relay(self) -> None:
        with self._end_lock:
            if self._cancel_at is not None:  # cancelled or closed before the child existed
                self.post(JobFailed("cancelled before the research process started",
                                    cancelled=True))
                return
            channel = start_in_background(self._spawn_child)
            if self._cancel_at is not None:  # cancel() ran while the child was starting
                self._cancel.set()
        try:
            self._forward(channel)
        finally:  # whatever happened, no worker of the run survives it
            self._end_tree()

    def _spawn_child(self) -> Any:
        ctx = multiprocessing.get_context("spawn")
        channel = ctx.Queue()
        self._cancel = ctx.Event()
        # not a daemon: a daemonic process may not start children, and the pipeline's
        # joblib workers (research.jobs) would silently fall back to one job
        self._process = ctx.Process(
            target=_child_main, name="bma-research", daemon=False,
            args=(self.request, channel, self._cancel, logging.getLogger().level))
        self._process.start()
        return channel

    def _forward(self, channel: Any) -> None:
        # Forward the child's messages until the final one; a child that died without
        # one (killed, crashed interpreter, ended after a cancel) is reported here.
        while True:
            try:
                item = channel.get(timeout=0.2)
            except queue.Empty:
                if not self._process.is_alive():
                    self.post(self._death_message())
                    return
                if self._cancel_at is not None and \
                        time.monotonic() - self._cancel_at > self.cancel_grace_s:
                    logger.warning("research process still running %.1fs after cancel: "
                                   "ending its process group", self.cancel_grace_s)
                    self._end_tree()
                continue
            if isinstance(item, _GroupReady):
                self._pgid = item.pgid
                continue
            if isinstance(item, logging.LogRecord):
                logging.getLogger(item.name).handle(item)
                continue
            self.post(item)
            if isinstance(item, (JobFinished, JobFailed)):
                self._process.join(5.0)
                return

    def _death_message(self) -> JobFailed:
        code = self._process.exitcode
        if self._cancel_at is not None:
            return JobFailed(f"cancelled: research process ended (exit code {code})",
                             cancelled=True)
        return JobFailed(f"research process exited with code {code} without a result")

    def _end_tree(self, term_grace_s: float = 3.0) -> None:
        # SIGTERM the group, give it term_grace_s to go away, then SIGKILL what is left.
        # The resource trackers ignore SIGTERM and exit on their own once every process
        # writing to them is gone, after removing the run's /dev/shm folders and semaphores:
        # killed before that (1 s was too short on the loaded box) they leak them.
        with self._end_lock:
            process, pgid = self._process, self._pgid
            if process is None or process.pid is None:  # never started
                return
            if pgid is None:  # the child never got to create its group: it has no workers
                if process.is_alive():
                    process.terminate()
                    process.join(term_grace_s)
                return
            if _signal_group(pgid, signal.SIGTERM):
                deadline = time.monotonic() + term_grace_s
                while time.monotonic() < deadline and _signal_group(pgid, 0):
                    process.join(0.05)
                if _signal_group(pgid, signal.SIGKILL):
                    logger.warning("research process group %d killed", pgid)
            process.join(term_grace_s)
