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
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tkinter import messagebox, ttk
from typing import Any

from autotrader.config import ConfigStore, Settings
from autotrader.gui.bus import ConfigChanged, EventBus, QueueLogHandler, TaskDone
from autotrader.gui.i18n import label
from autotrader.gui.trader_worker import TraderOptions
from autotrader.gui.widgets import ScrollablePage, install_global_wheel

logger = logging.getLogger(__name__)

POLL_MS = 20
MAX_BATCH = 50
CONFIG_CHECK_S = 1.0


def open_path(path: str | Path) -> None:
    """Open a file or folder with the desktop's default application (tests replace this)."""
    path = str(path)
    if sys.platform.startswith("win"):
        os.startfile(path)  # noqa: S606 - the user asked to open it
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        subprocess.Popen([opener, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _background_priority() -> None:
    if hasattr(os, "nice"):
        os.nice(5)


@dataclass
class StallMeter:
    """Largest gap between consecutive ``after()`` ticks since the last :meth:`reset`."""

    interval_s: float = POLL_MS / 1000.0
    last: float | None = None
    max_gap_s: float = 0.0
    ticks: int = 0
    spike_s: float = 0.05
    spikes: list[tuple[float, str]] = field(default_factory=list)

    def tick(self, now: float, context: str = "") -> None:
        """Record one tick; ``context`` names what ran before it (kept for gaps > spike_s)."""
        if self.last is not None:
            gap = now - self.last
            self.max_gap_s = max(self.max_gap_s, gap)
            if gap > self.spike_s and len(self.spikes) < 100:
                self.spikes.append((round(gap, 3), context))
        self.last = now
        self.ticks += 1

    def reset(self) -> None:
        self.last, self.max_gap_s, self.ticks = None, 0.0, 0
        self.spikes = []


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
        self.status = tk.StringVar(root, value="ready")
        self.notebook = ttk.Notebook(root)
        self._log_handler = QueueLogHandler(self.bus)
        self._unsubscribe: Callable[[], None] | None = None
        self._after_id: str | None = None
        self._last_config_check = 0.0
        self._closed = False
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    # -- construction --------------------------------------------------------------------------
    def build(self) -> Workstation:
        """Create the window content, register every view and start the poll loop."""
        from autotrader.gui import VIEW_MODULES

        self.root.title("BMA trading workstation")
        self.root.geometry("1200x800")
        self.notebook.pack(fill="both", expand=True)
        ttk.Label(self.root, textvariable=self.status, anchor="w").pack(fill="x", side="bottom")
        logging.getLogger().addHandler(self._log_handler)
        self._unsubscribe = self.store.subscribe(lambda s: self.bus.post(ConfigChanged(s)))
        install_global_wheel(self.root)
        for module in VIEW_MODULES:
            module.register(self)
        self.root.protocol("WM_DELETE_WINDOW", self.close)
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

    def set_status(self, text: str) -> None:
        """Show one line in the status bar (Tk thread)."""
        self.status.set(text)

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
                       on_done: Callable[[Outcome], None]) -> concurrent.futures.Future:
        """Run CPU-heavy picklable ``fn(*args)`` in a spawned helper process.

        Why: pandas/numpy work holds the GIL for long stretches (computing the
        backtest series in a thread stalled the Tk loop for ~200 ms); a process
        does not compete for it. ``on_done(Outcome)`` runs on the Tk thread.
        """
        future = self._process_pool().submit(fn, *args)

        def done(f: concurrent.futures.Future) -> None:
            try:
                outcome = Outcome(value=f.result())
            except Exception as e:  # noqa: BLE001 - delivered to on_done, which shows it
                logger.warning("%s failed: %s", name, e)
                outcome = Outcome(error=e)
            self.bus.post(TaskDone(on_done, outcome))

        future.add_done_callback(done)
        return future

    def _process_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_background_priority)
        return self._pool

    def warm_up(self) -> None:
        """Start the helper process now (it imports pandas/matplotlib: seconds, off-thread)."""
        self._process_pool().submit(_background_priority)

    def open_file(self, path: Path, what: str) -> bool:
        """Open ``path`` with the desktop, or say why not in the status bar."""
        if not path.exists():
            self.set_status(f"{what} not found: {path}")
            logger.warning("%s not found: %s", what, path)
            return False
        try:
            self.opener(path)
        except OSError as e:
            self.set_status(f"cannot open {path}: {e}")
            logger.error("cannot open %s: %s", path, e)
            return False
        self.set_status(f"opened {path}")
        return True

    # -- the poll loop -------------------------------------------------------------------------
    def _poll(self) -> None:
        now = time.perf_counter()
        self.stall.tick(now, ",".join(sorted(set(self.bus.last_batch))))
        self.bus.drain()
        if now - self._last_config_check >= CONFIG_CHECK_S:
            self._last_config_check = now
            self.store.get()  # lets the store notice external edits (hot reload)
        if not self._closed:
            self._after_id = self.root.after(POLL_MS, self._poll)

    def _on_handler_error(self, message: Any, error: BaseException) -> None:
        self.status.set(f"error in {type(message).__name__} handler: {error}")

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
        for view in self.views.values():
            shutdown = getattr(view, "shutdown", None)
            if shutdown is not None:
                shutdown()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._after_id is not None:
            self.root.after_cancel(self._after_id)
        logging.getLogger().removeHandler(self._log_handler)
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.root.destroy()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autotrader.app",
                                     description="Open the BMA trading workstation GUI.")
    parser.add_argument("--config-dir", type=Path, default=Path("config"))
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="journal, paper account, app DB (default $BMA_STATE_DIR or ./state)")
    parser.add_argument("--result-root", type=Path, default=Path("result"))
    parser.add_argument("--research-mode", choices=("process", "thread"), default="process")
    parser.add_argument("--log-level", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m autotrader.app``."""
    from autotrader.appdb import default_state_dir
    from autotrader.config import polygon_api_key
    from bma_models.log import configure_logging

    args = _parser().parse_args(argv)
    state_dir = args.state_dir or default_state_dir()
    polygon_api_key()  # registers the secret with the log redaction before anything logs
    store = ConfigStore(args.config_dir, db_path=state_dir / "workstation.db")
    configure_logging(args.log_level or store.get().app.log_level, log_dir=state_dir / "logs",
                      filename="workstation.log")
    paths = AppPaths(config_dir=args.config_dir, state_dir=state_dir,
                     result_root=args.result_root, db_path=state_dir / "workstation.db",
                     stocks_file=Path(store.get().app.stocks_file))
    root = tk.Tk()
    app = Workstation(root, store, paths, research_mode=args.research_mode).build()
    root.mainloop()
    app.close()
    return 0
