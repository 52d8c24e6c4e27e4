"""Real Tk under Xvfb: a display for the session, a workstation factory, screenshots.

The session fixture starts ``Xvfb :N`` when ``DISPLAY`` is unset and skips the
GUI tests (with the reason) only if Xvfb is not installed. Tests pump Tk
events with ``update()`` in a loop with a deadline instead of ``mainloop``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.autotrader.conftest import END_DATE, SMALL  # noqa: F401  (re-exported to the GUI tests)

# a Tuesday 11:00 in New York: inside the trading window of the risk chain
MARKET_TIME = dt.datetime(2025, 7, 1, 15, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="session")
def display():
    """An X display: the current one, else a private Xvfb server."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("GUI tests need an X display: Xvfb is not installed "
                    "(apt-get install xvfb; .ci/run does this)")
    for number in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and \
                not Path(f"/tmp/.X{number}-lock").exists():
            break
    name = f":{number}"
    proc = subprocess.Popen([xvfb, name, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"Xvfb {name} did not start (exit {proc.poll()})")
        time.sleep(0.05)
    os.environ["DISPLAY"] = name
    yield name
    os.environ.pop("DISPLAY", None)
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def screenshots(repo_root) -> Path:
    path = repo_root / "test-artifacts" / "gui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pump_until(app, predicate, timeout: float, step: float = 0.01):
    """Process Tk events until ``predicate()`` is truthy; fail with a message on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        app.root.update()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s; status: {app.status.get()!r}")
        time.sleep(step)


def screenshot(app, key: str, folder: Path, name: str | None = None) -> Path:
    """Select tab ``key``, let it draw, and save the window as ``folder/<name or key>.png``."""
    app.notebook.select(app.pages[key])
    app.pump(0.4)
    return grab(app.root, folder / f"{name or key}.png")


def grab(window, path: Path) -> Path:
    """Save what ``window`` (a Tk or Toplevel) shows on the screen as ``path``."""
    from PIL import ImageGrab

    window.update()
    box = (window.winfo_rootx(), window.winfo_rooty(),
           window.winfo_rootx() + window.winfo_width(),
           window.winfo_rooty() + window.winfo_height())
    ImageGrab.grab(bbox=box, xdisplay=os.environ["DISPLAY"]).save(path)
    return path


@pytest.fixture
def make_app(display, tmp_path, gui_config):
    """Factory of built workstations; every one is closed at teardown."""
    import tkinter as tk

    from autotrader.config import ConfigStore
    from autotrader.gui.app import AppPaths, Workstation

    apps = []

    def build(result_root: Path | None = None, research_mode: str = "process",
              trader_options=None, config_dir: Path | None = None, overrides=None):
        store = ConfigStore(config_dir or gui_config, interval_s=0.2, overrides=overrides)
        paths = AppPaths(config_dir=config_dir or gui_config, state_dir=tmp_path / "state",
                         result_root=result_root or tmp_path / "result",
                         db_path=tmp_path / "state" / "workstation.db",
                         stocks_file=tmp_path / "stocks.txt")
        root = tk.Tk()
        app = Workstation(root, store, paths, research_mode=research_mode,
                          trader_options=trader_options)
        app.opened = []
        app.opener = app.opened.append
        app.confirm = lambda title, text: True
        app.build()
        root.geometry("1200x800+0+0")
        app.pump(0.2)
        apps.append(app)
        return app

    yield build
    while apps:  # pop: no list or loop variable keeps a closed window alive through the
        apps.pop().close()  # collect below
    # finalise the closed apps' Tk objects here, on the main thread: left to a later garbage
    # collection that happens to run in a worker thread, Variable.__del__ calls into the dead
    # interpreter and that thread blocks (seen as a 30 s timeout in the next test)
    import gc

    gc.collect()


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
    return text[text.rindex(")") + 2:].split()


def live_processes() -> dict[int, tuple[int, int]]:
    """``pid -> (ppid, pgid)`` of every process not dead or a zombie (Linux ``/proc``)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X"):
                table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(pid: int) -> set[int]:
    """Live descendants of ``pid`` (children, grandchildren, ...)."""
    table = live_processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def survivors(pids: set[int], pgid: int | None, timeout: float) -> set[int]:
    """Processes of ``pids`` or of group ``pgid`` still alive after up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        table = live_processes()
        alive = {p for p in pids if p in table} | {p for p, (_, g) in table.items()
                                                  if pgid is not None and g == pgid}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)
