"""The workstation window: a ``ttk.Notebook`` of views fed by one event bus.

Threading model (the one rule): the Tk thread owns every widget. Workers -
the research job (a spawned process relayed by a thread), the trader session
thread, background helper tasks, logging handlers and config subscribers -
only post plain messages to :class:`~autotrader.gui.bus.EventBus`. The Tk
thread drains at most :data:`MAX_BATCH` messages per ``after(POLL_MS)`` tick
(thonny's ``_poll_backend_messages`` pattern) and re-arms the tick.

:class:`StallMeter` records the largest gap between two ticks: the longest the
main loop was unable to run a timer, i.e. the GUI's worst freeze.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import gc
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
import tkinter as tk
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from tkinter import messagebox, ttk
from typing import Any

from autotrader.config import ConfigStore, Settings
from autotrader.gui import theme
from autotrader.gui.bus import ConfigChanged, EventBus, QueueLogHandler, TaskDone
from autotrader.gui.header import ModeBanner, StatusStrip
from autotrader.gui.i18n import label
from autotrader.gui.state import WorkstationState, window_title
from autotrader.gui.widgets import ScrollablePage, hold_photo_colors, install_global_wheel
from autotrader.services.market_session import market_session
from autotrader.services.trader_worker import TraderOptions

logger = logging.getLogger(__name__)
stall_logger = logging.getLogger("autotrader.gui.stall")

POLL_MS = 20
MAX_BATCH = 50
CONFIG_CHECK_S = 1.0
MAX_SPIKES = 100
#: milliseconds between two redraws of the status strip's clock
STRIP_MS = 1000
#: seconds a status-bar message stays (it also goes when another tab is selected)
STATUS_S = 20.0


class NoDesktopOpener(OSError):
    """No program is installed that opens files for the desktop (``xdg-open`` on Linux)."""


def open_path(path: str | Path) -> None:
    """Open a file or folder with the desktop's default application (tests replace this).

    Raises
    ------
    NoDesktopOpener
        The desktop opener (``xdg-open``, ``open``) is not installed.
    """
    path = str(path)
    if sys.platform.startswith("win"):
        os.startfile(path)  # the user asked to open it
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    if shutil.which(opener) is None:
        raise NoDesktopOpener(f"{opener} is not installed")
    subprocess.Popen([opener, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _background_priority() -> None:
    if hasattr(os, "nice"):
        os.nice(5)


@dataclass
class StallMeter:
    """Largest gap between consecutive ``after()`` ticks since the last :meth:`reset`.

    Timed Tk-thread work (every bus handler, every chunk of a chunked fill) is
    reported with :meth:`note`. A gap longer than ``spike_s`` is kept in
    :attr:`spikes` with the slowest work noted during it, the *untimed* rest
    (Tk redraw and geometry, idle callbacks, garbage collection, waiting for
    the GIL or for a CPU) - the :data:`MAX_SPIKES` largest are kept, all are
    counted in :attr:`spike_count`; :attr:`longest` is the longest single piece of
    timed work since the reset. On Linux, a spike also has the Tk thread's own
    scheduler figures for the gap from ``/proc/thread-self/schedstat``:
    ``cpu_ms`` (it ran) and ``runq_ms`` (it was runnable but the OS ran other
    processes). With
    ``detailed`` (the stall probe) every tick also sums the figures of *all*
    threads of the process (``threads_cpu_ms``, ``threads_runq_ms``): Tcl's
    notifier thread and the relay threads, whose waits for a CPU delay the Tk
    thread while it sleeps, and the time the hypervisor took from each CPU of
    the machine (``steal_ms``, the largest per-CPU figure from ``/proc/stat``,
    10 ms resolution): a virtual machine whose CPUs are not running cannot run
    any program, so :attr:`max_gap_without_steal_s` is also kept, the largest
    gap in which no CPU lost any time, and every gap in :attr:`gaps` (for the
    probe's percentiles). Each spike is logged at DEBUG on
    ``autotrader.gui.stall``.
    """

    interval_s: float = POLL_MS / 1000.0
    last: float | None = None
    max_gap_s: float = 0.0
    ticks: int = 0
    spike_s: float = 0.03
    spikes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[tuple[str, float]] = field(default_factory=list)
    sched: tuple[int, int] | None = None
    longest: tuple[str, float] = ("-", 0.0)
    spike_count: int = 0
    detailed: bool = False
    threads_sched: tuple[int, int] | None = None
    steal: tuple[float, ...] | None = None
    max_gap_without_steal_s: float = 0.0
    read_steal: Callable[[], tuple[float, ...] | None] = field(
        default_factory=lambda: cpu_steal_ms)
    gaps: list[float] = field(default_factory=list)
    _gc_started: float | None = None

    def note(self, label: str, seconds: float) -> None:
        """Record that ``label`` ran ``seconds`` on the Tk thread since the last tick."""
        self.notes.append((label, seconds))
        if seconds > self.longest[1]:
            self.longest = (label, seconds)

    @contextlib.contextmanager
    def timed(self, label: str) -> Iterator[None]:
        """``with meter.timed("what"):`` notes the block's duration."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.note(label, time.perf_counter() - started)

    def tick(self, now: float) -> None:
        """Record one tick at ``now`` (``time.perf_counter()``)."""
        sched = _schedstat()
        threads = _process_schedstat() if self.detailed else None
        steal = self.read_steal() if self.detailed else None
        if self.last is not None:
            gap = now - self.last
            self.max_gap_s = max(self.max_gap_s, gap)
            if self.detailed:  # every gap, for the probe's percentiles
                self.gaps.append(gap)
            stolen = _largest_delta(steal, self.steal)
            if stolen == 0.0:
                self.max_gap_without_steal_s = max(self.max_gap_without_steal_s, gap)
            if gap > self.spike_s:
                self._spike(gap, sched, threads, now, stolen)
        self.notes = []
        self.last, self.sched, self.threads_sched, self.steal = now, sched, threads, steal
        self.ticks += 1

    def _spike(self, gap: float, sched: tuple[int, int] | None,
               threads: tuple[int, int] | None, now: float, stolen: float | None) -> None:
        worked = sum(s for _, s in self.notes)
        top = sorted(self.notes, key=lambda n: -n[1])[:3]
        ran = ", ".join(f"{label} {1000 * s:.1f}ms" for label, s in top) or "-"
        untimed = max(0.0, gap - self.interval_s - worked)
        spike: dict[str, Any] = {"gap_ms": round(1000 * gap, 1), "ran": ran,
                                 "untimed_ms": round(1000 * untimed, 1),
                                 "end_s": round(now, 4)}
        if sched is not None and self.sched is not None:
            spike["cpu_ms"] = round((sched[0] - self.sched[0]) / 1e6, 1)
            spike["runq_ms"] = round((sched[1] - self.sched[1]) / 1e6, 1)
        if threads is not None and self.threads_sched is not None:
            spike["threads_cpu_ms"] = round((threads[0] - self.threads_sched[0]) / 1e6, 1)
            spike["threads_runq_ms"] = round((threads[1] - self.threads_sched[1]) / 1e6, 1)
        if stolen is not None:
            spike["steal_ms"] = round(stolen, 1)
        self.spikes.append(spike)
        if len(self.spikes) > MAX_SPIKES:  # keep the largest ones
            self.spikes.remove(min(self.spikes, key=lambda x: x["gap_ms"]))
        self.spike_count += 1
        stall_logger.debug("tick gap %s", spike)

    def reset(self) -> None:
        """Forget every figure; the gap running now (since the last tick) is measured."""
        self.max_gap_s, self.max_gap_without_steal_s, self.ticks = 0.0, 0.0, 0
        self.spikes, self.longest, self.spike_count, self.gaps = [], ("-", 0.0), 0, []

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` hook: note every collection of generation 1 or 2 with its time."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif info.get("generation", 0) >= 1 and self._gc_started is not None:
            self.note(f"gc gen{info['generation']}", time.perf_counter() - self._gc_started)


def _schedstat(path: str = "/proc/thread-self/schedstat") -> tuple[int, int] | None:
    # (ns on a CPU, ns waiting on a run queue) of the calling thread; Linux only
    try:
        with open(path, encoding="ascii") as f:
            fields = f.read().split()
    except OSError:
        return None
    return int(fields[0]), int(fields[1])


def cpu_steal_ms(path: str = "/proc/stat") -> tuple[float, ...] | None:
    """Milliseconds the hypervisor took from each CPU since boot (``None`` off Linux)."""
    try:
        with open(path, encoding="ascii") as f:
            lines = [line.split() for line in f if line.startswith("cpu") and line[3] != " "]
    except OSError:
        return None
    tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK")
    return tuple(int(fields[8]) * tick_ms for fields in lines if len(fields) > 8)


def _largest_delta(now: tuple[float, ...] | None,
                   before: tuple[float, ...] | None) -> float | None:
    if now is None or before is None or len(now) != len(before):
        return None
    return max((a - b for a, b in zip(now, before)), default=0.0)


def _process_schedstat() -> tuple[int, int] | None:
    # the same summed over every thread of this process (~0.1 ms: stall probe only)
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    cpu = wait = 0
    for task in tasks:
        figures = _schedstat(f"/proc/self/task/{task}/schedstat")
        if figures is not None:
            cpu, wait = cpu + figures[0], wait + figures[1]
    return cpu, wait


@dataclass(frozen=True)
class Outcome:
    """Result of a background task: ``value`` or the ``error`` it raised."""

    value: Any = None
    error: BaseException | None = None


@dataclass
class AppPaths:
    """Where the workstation reads and writes."""

    config_dir: Path
    state_dir: Path
    result_root: Path
    db_path: Path | None = None
    stocks_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Workstation:
    """The main window; views register themselves with :meth:`add_view`.

    Parameters
    ----------
    root : tk.Tk
    store : ConfigStore
    paths : AppPaths
    research_mode : {"process", "thread"}
        Where the pipeline runs (see :mod:`autotrader.services.research_job`).
    trader_options : TraderOptions, optional
        Overrides for the trader session (tests inject a clock and calendar).
    """

    def __init__(self, root: tk.Tk, store: ConfigStore, paths: AppPaths,
                 research_mode: str = "process",
                 trader_options: TraderOptions | None = None) -> None:
        self.root = root
        self.store = store
        self.paths = paths
        self.research_mode = research_mode
        self.trader_options = trader_options
        self.bus = EventBus(MAX_BATCH, on_error=self._on_handler_error)
        self.stall = StallMeter()
        self.views: dict[str, Any] = {}
        self.pages: dict[str, ScrollablePage] = {}
        self.opener: Callable[[str | Path], None] = open_path
        self.confirm: Callable[[str, str], bool] = messagebox.askyesno
        self.status = tk.StringVar(root, value="")
        self.state = WorkstationState(broker=store.get().trading.broker,
                                      armed=store.get().trading.live_armed)
        self.calendar_ready = False
        self.banner: ModeBanner | None = None
        self.strip: StatusStrip | None = None
        self.status_label: ttk.Label | None = None
        self.dialogs: list[tk.Toplevel] = []
        self._status_id: str | None = None
        self._strip_id: str | None = None
        self.notebook = ttk.Notebook(root)
        self.photo_color_holder: tk.Label | None = None
        self._log_handler = QueueLogHandler(self.bus)
        self._unsubscribe: Callable[[], None] | None = None
        self._after_id: str | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._closed = False
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- construction --------------------------------------------------------------------------
    def build(self) -> Workstation:
        """Create the window content, register every view and start the poll loop."""
        from autotrader.gui import VIEW_MODULES
        from autotrader.gui.menus import build_menu

        theme.apply(self.root)
        self.root.geometry("1280x800")
        self.root.minsize(900, 560)
        self.banner = ModeBanner(self.root)
        self.banner.pack(fill="x", side="top")
        self.strip = StatusStrip(self.root, lambda: dt.datetime.now(dt.timezone.utc),
                                 market_session)
        self.strip.pack(fill="x", side="top")
        self.status_label = ttk.Label(self.root, textvariable=self.status, anchor="w",
                                      padding=(6, 2))
        self.status_label.pack(fill="x", side="bottom")
        self.notebook.pack(fill="both", expand=True)
        self.notebook.bind("<<NotebookTabChanged>>", lambda _e: self.set_status(""))
        logging.getLogger().addHandler(self._log_handler)
        self._unsubscribe = self.store.subscribe(lambda s: self.bus.post(ConfigChanged(s)))
        install_global_wheel(self.root)
        self.photo_color_holder = hold_photo_colors(self.root)  # charts: see its docstring
        for module in VIEW_MODULES:
            module.register(self)
        build_menu(self)
        self.root.protocol("WM_DELETE_WINDOW", self.request_close)
        self.refresh_header()
        self.run_background("calendar", lambda: market_session(dt.datetime.now(dt.timezone.utc)),
                            self._on_calendar)
        self._strip_tick()
        gc.callbacks.append(self.stall.on_gc)  # collections show up in the stall traces
        self._watcher = threading.Thread(target=self._watch_config, name="config-watch",
                                         daemon=True)
        self._watcher.start()
        self._poll()
        return self

    def add_view(self, key: str, title_key: str, view_cls: type) -> Any:
        """Add one tab: ``view_cls(master, app)`` inside a scrollable page."""
        page = ScrollablePage(self.notebook)
        view = view_cls(page.body, self)
        view.pack(fill="both", expand=True)
        self.notebook.add(page, text=self.t(title_key))
        self.views[key], self.pages[key] = view, page
        return view

    # -- services for the views ----------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """Current settings (cheap; the store hot-reloads on its own schedule)."""
        return self.store.get()

    def t(self, key: str) -> str:
        """Label of ``key`` in the configured ``app.language``."""
        return label(key, self.settings.app.language)

    def set_status(self, text: str, level: str = "info") -> None:
        """Show one line in the status bar for :data:`STATUS_S` s or until the tab changes.

        ``level`` is ``info`` or ``error`` (red).
        """
        self.status.set(text)
        if self.status_label is not None:
            self.status_label.configure(style="Error.TLabel" if level == "error" else "TLabel")
        if self._status_id is not None:
            self.root.after_cancel(self._status_id)
            self._status_id = None
        if text:
            self._status_id = self.root.after(int(STATUS_S * 1000), self.set_status, "")

    # -- the mode banner, the status strip and the title ---------------------------------------
    def refresh_header(self) -> None:
        """Redraw the banner, the strip and the window title from :attr:`state` (Tk thread)."""
        if self.banner is None or self.strip is None:
            return
        self.state.max_run_age_sessions = self.settings.signals.max_run_age_sessions
        self.banner.render(self.state)
        self.strip.render(self.state, self.calendar_ready)
        title = window_title(self.state)
        if self.root.title() != title:
            self.root.title(title)

    def _strip_tick(self) -> None:
        self._strip_id = None
        if self._closed:
            return
        assert self.strip is not None  # build() made it before the first tick
        with self.stall.timed("status strip"):
            self.strip.render(self.state, self.calendar_ready)
        self._strip_id = self.root.after(STRIP_MS, self._strip_tick)

    def _on_calendar(self, outcome: Outcome) -> None:
        if outcome.error is not None:
            logger.error("NYSE calendar unavailable: %s", outcome.error)
        else:
            assert self.strip is not None  # build() made it before asking for the calendar
            self.strip.session = outcome.value
        self.calendar_ready = True
        self.refresh_header()

    # -- tabs and closing ----------------------------------------------------------------------
    def show_tab(self, key: str) -> None:
        """Select the tab of view ``key``."""
        self.notebook.select(self.pages[key])

    def next_tab(self, step: int) -> None:
        """Select the next (``step`` 1) or previous (-1) tab, wrapping around."""
        tabs = self.notebook.tabs()
        index = tabs.index(self.notebook.select()) if self.notebook.select() in tabs else 0
        self.notebook.select(tabs[(index + step) % len(tabs)])

    def request_close(self) -> None:
        """Close the window, after a confirmation when a view asks for one (auto trading)."""
        for view in self.views.values():
            question = getattr(view, "close_question", lambda: None)()
            if question and not self.confirm("Close the workstation", question):
                return
        self.close()

    def run_background(self, name: str, fn: Callable[[], Any],
                       on_done: Callable[[Outcome], None]) -> threading.Thread:
        """Run blocking ``fn`` on a helper thread; ``on_done(Outcome)`` runs on the Tk thread."""

        def work() -> None:
            try:
                outcome = Outcome(value=fn())
            except Exception as e:  # noqa: BLE001 - delivered to on_done, which shows it
                logger.warning("%s failed: %s", name, e)
                outcome = Outcome(error=e)
            self.bus.post(TaskDone(on_done, outcome))

        thread = threading.Thread(target=work, name=name, daemon=True)
        thread.start()
        return thread

    def run_in_process(self, name: str, fn: Callable[..., Any], *args: Any,
                       on_done: Callable[[Outcome], None]) -> threading.Thread:
        """Run CPU-heavy picklable ``fn(*args)`` in a spawned helper process.

        Why: pandas/numpy work holds the GIL for long stretches (computing the
        backtest series in a thread stalled the Tk loop for ~200 ms); a process
        does not compete for it. Creating the pool and submitting happen on a
        short-lived thread, because the first submission spawns the helper and
        multiprocessing's resource tracker (20-40 ms of fork, exec and
        pickling). ``on_done(Outcome)`` runs on the Tk thread.
        """

        def done(f: concurrent.futures.Future) -> None:
            try:
                outcome = Outcome(value=f.result())
            except Exception as e:  # noqa: BLE001 - delivered to on_done, which shows it
                logger.warning("%s failed: %s", name, e)
                outcome = Outcome(error=e)
            self.bus.post(TaskDone(on_done, outcome))

        def submit() -> None:
            try:
                future = self._process_pool().submit(fn, *args)
            except RuntimeError as e:  # the pool was shut down (window closing)
                logger.warning("%s not started: %s", name, e)
                self.bus.post(TaskDone(on_done, Outcome(error=e)))
                return
            future.add_done_callback(done)

        thread = threading.Thread(target=submit, name=f"{name}-submit", daemon=True)
        thread.start()
        return thread

    def _process_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._pool_lock:  # called from helper threads
            if self._closed:
                raise RuntimeError("the workstation is closing")
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_background_priority)
            return self._pool

    def warm_up(self) -> None:
        """Start the helper process now, from a helper thread (it imports pandas/matplotlib)."""

        def submit() -> None:
            try:
                self._process_pool().submit(_background_priority)
            except RuntimeError as e:  # the pool was shut down (window closing)
                logger.warning("helper process not started: %s", e)

        threading.Thread(target=submit, name="warm-up", daemon=True).start()

    def open_file(self, path: Path, what: str) -> bool:
        """Open ``path`` with the desktop, or say exactly why not.

        A missing file is said in the status bar. Without a desktop opener
        (``xdg-open``) a dialog says so and shows the path with a Copy button,
        so the trader can open it by hand.
        """
        path = Path(path)
        if not path.exists():
            self.set_status(f"{what} not found: {path}", "error")
            logger.warning("%s not found: %s", what, path)
            return False
        try:
            self.opener(path)
        except NoDesktopOpener as e:
            from autotrader.gui.menus import PathDialog

            logger.warning("cannot open %s: %s", path, e)
            self.dialogs.append(PathDialog(
                self.root, f"Open {what}", f"This computer has no desktop opener ({e}), so "
                f"the workstation cannot open the {what} itself. Open it from a file "
                "manager or a terminal; the path is:", path))
            self.set_status(f"no desktop opener: the {what} is at {path}", "error")
            return False
        except OSError as e:
            self.set_status(f"cannot open {path}: {e}", "error")
            logger.error("cannot open %s: %s", path, e)
            return False
        self.set_status(f"opened {path}")
        return True

    # -- the poll loop -------------------------------------------------------------------------
    def _poll(self) -> None:
        now = time.perf_counter()
        self.stall.tick(now)
        self.bus.drain()
        for what, seconds in self.bus.last_timings:
            self.stall.note(what, seconds)
        if not self._closed:
            self._after_id = self.root.after(POLL_MS, self._poll)

    def _watch_config(self) -> None:
        # Lets the store notice external edits (hot reload; subscribers post ConfigChanged).
        # Off the Tk thread: a check stats every source and reads the DB layer, which took
        # up to 27 ms under load when it ran in the poll tick.
        while not self._stop.wait(CONFIG_CHECK_S):
            try:
                self.store.get()
            except Exception:  # keep watching; the store reports its own errors
                logger.exception("config check failed")

    def _on_handler_error(self, message: Any, error: BaseException) -> None:
        self.set_status(f"internal error in {type(message).__name__} handler: {error} "
                        "(Logs tab)", "error")

    def pump(self, seconds: float = 0.0) -> None:
        """Process Tk events for ``seconds`` (tests and scripted use; not the main loop)."""
        deadline = time.monotonic() + seconds
        while True:
            self.root.update()
            if time.monotonic() >= deadline:
                return
            time.sleep(0.005)

    def close(self) -> None:
        """Stop workers, detach the log handler and destroy the window."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._watcher is not None:  # it holds the window: release it on this thread
            self._watcher.join(2.0)
        for view in self.views.values():
            shutdown = getattr(view, "shutdown", None)
            if shutdown is not None:
                shutdown()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for after_id in (self._after_id, self._strip_id, self._status_id):
            if after_id is not None:
                self.root.after_cancel(after_id)
        logging.getLogger().removeHandler(self._log_handler)
        if self.stall.on_gc in gc.callbacks:
            gc.callbacks.remove(self.stall.on_gc)
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.root.destroy()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autotrader.app",
                                     description="Open the BMA trading workstation GUI.")
    parser.add_argument("--config-dir", type=Path, default=None,
                        help="config directory layered on the packaged defaults (default: "
                             "./config when it exists, else <state-dir>/config)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="journal, paper account, app DB (default $BMA_STATE_DIR or ./state)")
    parser.add_argument("--result-root", type=Path, default=Path("result"))
    parser.add_argument("--research-mode", choices=("process", "thread"), default="process")
    parser.add_argument("--log-level", default=None)
    return parser


def log_level(cli_level: str | None, settings) -> str:
    """Return the workstation's log level: ``--log-level``, else ``app.log_level``."""
    return cli_level or settings.app.log_level


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m autotrader.app``."""
    from autotrader.appdb import default_state_dir
    from autotrader.config import polygon_api_key, resolve_config_dir
    from bma_models.log import configure_logging

    args = _parser().parse_args(argv)
    state_dir = args.state_dir or default_state_dir()
    polygon_api_key()  # registers the secret with the log redaction before anything logs
    # the Risk and Connection tabs save into the config directory, so the GUI always has one
    config_dir = resolve_config_dir(args.config_dir) or state_dir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    store = ConfigStore(config_dir, db_path=state_dir / "workstation.db")
    configure_logging(log_level(args.log_level, store.get()), log_dir=state_dir / "logs",
                      filename="workstation.log")
    paths = AppPaths(config_dir=config_dir, state_dir=state_dir,
                     result_root=args.result_root, db_path=state_dir / "workstation.db",
                     stocks_file=Path(store.get().app.stocks_file))
    root = tk.Tk()
    app = Workstation(root, store, paths, research_mode=args.research_mode).build()
    root.mainloop()
    app.close()
    return 0
