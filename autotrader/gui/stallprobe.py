"""Measure the main-loop stall of the GUI during a full demo BMA run.

``python -m autotrader.gui.stallprobe --mode process`` opens the workstation
(needs a display, e.g. under ``xvfb-run``), clicks "Run BMA model" on the demo
market in a temporary config/result directory, runs the real ``mainloop``
until the results table is filled and prints one JSON line: the largest gap
between two ``after()`` ticks (``max_stall_ms``; ``p50_stall_ms`` and
``p99_stall_ms`` of every gap, the 20 ms tick period included), the tick count, the wall
time, the load average before and after (other processes share the cores) and
every gap over 30 ms with the Tk-thread work timed in it (``spikes``).
On a virtual machine the hypervisor can stop the machine's CPUs (``steal``
in ``/proc/stat``): no program runs then, whatever it is doing. The probe
reports the steal of the window per CPU (``steal_ms``), each spike's
``steal_ms`` and ``max_stall_without_steal_ms``, the largest gap in which no
CPU lost any time (10 ms resolution).
``--size full`` runs the committed default (500 tickers x 1260 sessions, every
default model); ``--size small`` (default) runs 120 x 500 with ridge + lightgbm.
``--mode thread`` runs the pipeline in a worker thread of the GUI process
instead, for comparison; ``--mode idle`` runs no job for 15 s (the noise floor
of a loaded machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import tkinter as tk
from collections.abc import Callable, Iterator
from pathlib import Path

from autotrader.config import ConfigStore
from autotrader.gui.app import AppPaths, StallMeter, Workstation, cpu_steal_ms

SMALL = {"research": {
    "data": {"demo_tickers": 120, "demo_sessions": 500},
    "models": {"enabled": ["ridge", "lightgbm"]},
    "portfolio": {"top_n": 60},
}, "capital": {"max_single_position_pct": 0.05}, "signals": {"acceptance_threshold": 0.0},
    "execution": {"allowed_volatility_buckets": ["low", "medium", "high"]}}
# (a 120-name demo: the rulebook lets every score percentile and volatility bucket in)


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _callback_name(func: object) -> str:
    name = getattr(func, "__qualname__", type(func).__name__)
    if name.endswith("after.<locals>.callit"):  # Misc.after wraps the function it calls
        for cell in getattr(func, "__closure__", None) or ():
            if callable(cell.cell_contents):
                return "after:" + _callback_name(cell.cell_contents)
    return name


@contextlib.contextmanager
def timed_tk_callbacks(meter: Callable[[], StallMeter | None]) -> Iterator[None]:
    """Note every Tcl-to-Python callback (events, ``after``, commands, traces) on ``meter()``.

    Only callbacks registered inside the block are timed (Tk keeps the bound
    method it was given), so build the window inside it. What a spike then
    holds untimed is Tk's own work (redisplay, geometry, image conversion) or
    time the thread did not run.
    """
    original = tk.CallWrapper.__call__

    def timed_call(wrapper: tk.CallWrapper, *args: object) -> object:
        target = meter()
        mark = len(target.notes) if target is not None else 0
        started = time.perf_counter()
        try:
            return original(wrapper, *args)
        finally:
            name = _callback_name(wrapper.func)
            if target is not None and not name.endswith("Workstation._poll"):
                # the tick itself is not noted (its bus handlers are); work the callback
                # noted itself (a chart strip, a table chunk) is not counted twice
                inner = sum(seconds for _, seconds in target.notes[mark:])
                target.note(f"tk:{name}", max(0.0, time.perf_counter() - started - inner))

    # the probe wraps Tk's callback dispatch (CallWrapper.__call__) to time every callback
    tk.CallWrapper.__call__ = timed_call  # type: ignore[method-assign]  # wraps to time it
    try:
        yield
    finally:
        tk.CallWrapper.__call__ = original  # type: ignore[method-assign]  # unwraps it


def measure(mode: str, end_date: str, timeout_s: float = 1800.0,
            idle_s: float = 15.0, settle_s: float = 5.0, size: str = "small") -> dict:
    """Run one GUI research run in ``mode``; return the stall figures."""
    work = Path(tempfile.mkdtemp(prefix="stallprobe-"))
    load_before = _load()
    apps: list[Workstation] = []
    try:
        config = work / "config"
        config.mkdir()
        if size == "small":
            (config / "config.json").write_text(json.dumps(SMALL))
        with timed_tk_callbacks(lambda: apps[0].stall if apps else None):
            root = tk.Tk()
            apps.append(Workstation(
                root, ConfigStore(config),
                AppPaths(config, work / "state", work / "result",
                         db_path=work / "state" / "workstation.db"),
                research_mode="thread" if mode == "thread" else "process").build())
            result = _drive(apps[0], mode, end_date, timeout_s, idle_s, settle_s)
        result.update(name="gui_stall", mode=mode, size=size, load_before=load_before,
                      load_after=_load(), poll_ms=20, target_ms=50.0)
        result["meets_target"] = result["max_stall_ms"] <= 50.0
        return result
    finally:
        if apps:
            apps[0].close()
        shutil.rmtree(work, ignore_errors=True)


def _drive(app: Workstation, mode: str, end_date: str, timeout_s: float, idle_s: float,
           settle_s: float) -> dict:
    # Click "Run BMA model" after start-up, run the real main loop to the end, collect figures.
    root, view = app.root, app.views["research"]
    app.stall.detailed = True
    view.form.vars["end_date"].set(end_date)
    started = time.monotonic()
    result: dict = {}
    steal_before = cpu_steal_ms()

    def finish() -> None:
        # the whole window: run, results table and chart drawing, plus one idle second
        steal_after = cpu_steal_ms()
        if steal_before is not None and steal_after is not None:
            result["steal_ms"] = [round(a - b) for a, b in zip(steal_after, steal_before)]
        gaps = sorted(app.stall.gaps)
        result.update(p50_stall_ms=_percentile_ms(gaps, 0.50),
                      p99_stall_ms=_percentile_ms(gaps, 0.99),
                      max_stall_ms=round(1000 * app.stall.max_gap_s, 1),
                      max_stall_without_steal_ms=round(
                          1000 * app.stall.max_gap_without_steal_s, 1),
                      ticks=app.stall.ticks, outcome=view.message.get(),
                      spikes=sorted(app.stall.spikes, key=lambda x: -x["gap_ms"])[:15],
                      spikes_over_30ms=app.stall.spike_count,
                      longest_tk_work=[app.stall.longest[0],
                                       round(1000 * app.stall.longest[1], 1)],
                      wall_s=round(time.monotonic() - started, 1),
                      threads={t.name: t.native_id for t in threading.enumerate()})
        root.quit()

    def check() -> None:
        done = view.summary is not None or view.message.get().startswith(
            ("Run failed", "cancelled", "not started"))
        if done or time.monotonic() - started > timeout_s:
            result["run_stall_ms"] = round(1000 * (view.last_stall_s or 0.0), 1)
            result["run_s"] = round(time.monotonic() - started, 1)
            root.after(1000, finish)
        else:
            root.after(100, check)

    if mode == "idle":  # the noise floor: same window, no job, after the same start-up
        root.after(int(settle_s * 1000), app.stall.reset)
        root.after(int((settle_s + idle_s) * 1000), finish)
    else:
        root.after(int(settle_s * 1000), view.run_button.invoke)  # after start-up I/O
        root.after(int(settle_s * 1000) + 100, check)
    root.mainloop()
    return result


def _percentile_ms(ordered: list[float], q: float) -> float | None:
    """Return the ``q`` quantile (nearest rank) of sorted gaps in s, in ms (None: no gap).

    >>> _percentile_ms([0.02] * 99 + [0.2], 0.99), _percentile_ms([0.02] * 98 + [0.2] * 2, 0.99)
    (20.0, 200.0)
    """
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return round(1000 * ordered[rank - 1], 1)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m autotrader.gui.stallprobe``: measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("process", "thread", "idle"), default="process")
    parser.add_argument("--end-date", default="2025-06-30")
    parser.add_argument("--size", choices=("small", "full"), default="small")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(measure(args.mode, args.end_date,
                                        size=args.size)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
