"""Make the documentation's screenshot: a demo run, then a paper session on a weekday clock.

``xvfb-run -a python -m autotrader.gui.screenshot docs/img/workstation.png`` opens
the workstation in a temporary state/result directory, runs the BMA model on
the small demo market (120 tickers x 500 sessions, ridge + LightGBM), then
trades it on the paper broker for ``--cycles`` cycles of a simulated clock that
starts on a weekday at 10:00 New York time and moves ``--step-min`` minutes per
cycle (the status strip shows that clock too), previews the next cycle and
saves the window of the Trading tab. Nothing outside the temporary directory
is touched. Needs a display (Xvfb) and Pillow (a dependency of matplotlib).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import tkinter as tk
from pathlib import Path

from autotrader.config import ConfigStore
from autotrader.gui.app import AppPaths, Workstation
from autotrader.gui.stallprobe import SMALL
from autotrader.services.session import SimClock
from autotrader.services.trader_worker import CycleDone, PreviewReady, TraderOptions

START = dt.datetime(2025, 7, 1, 14, 0, tzinfo=dt.timezone.utc)  # Tuesday 10:00 New York
END_DATE = "2025-06-30"


def _pump(app: Workstation, until, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the workstation did not get there in {timeout} s "
                               f"(status: {app.status.get()!r})")
        app.root.update()
        time.sleep(0.01)


def make(out: Path, cycles: int, step_min: float, size: str) -> Path:
    """Run the scenario and save the Trading tab's window as ``out`` (PNG)."""
    from PIL import ImageGrab

    work = Path(tempfile.mkdtemp(prefix="workstation-shot-"))
    try:
        config = work / "config"
        config.mkdir()
        (config / "config.json").write_text(json.dumps(SMALL))
        clock = SimClock(START)
        options = TraderOptions(state_dir=work / "state", result_root=work / "result",
                                interval_s=step_min * 60, clock=clock)
        root = tk.Tk()
        app = Workstation(root, ConfigStore(config),
                          AppPaths(config, work / "state", work / "result",
                                   db_path=work / "state" / "workstation.db"),
                          trader_options=options).build()
        app.confirm = lambda title, text: True
        assert app.strip is not None  # build() made it
        app.strip.clock = clock
        root.geometry(f"{size}+0+0")
        research, trading = app.views["research"], app.views["trading"]
        research.form.vars["end_date"].set(END_DATE)
        research.source.set("demo")
        research.run_button.invoke()
        _pump(app, lambda: research.summary is not None, 600)
        done: list = []
        app.bus.subscribe(CycleDone, done.append)
        for n in range(cycles):
            trading.send_button.invoke()
            _pump(app, lambda n=n: len(done) > n, 120)
            clock.advance(step_min * 60)
        previews: list = []
        app.bus.subscribe(PreviewReady, previews.append)
        trading.preview_button.invoke()
        _pump(app, lambda: previews, 120)
        app.show_tab("trading")
        app.refresh_header()
        app.pump(1.0)
        box = (root.winfo_rootx(), root.winfo_rooty(), root.winfo_rootx() + root.winfo_width(),
               root.winfo_rooty() + root.winfo_height())
        out.parent.mkdir(parents=True, exist_ok=True)
        ImageGrab.grab(bbox=box, xdisplay=os.environ.get("DISPLAY")).save(out, optimize=True)
        app.close()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m autotrader.gui.screenshot OUT``: save the screenshot, print its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--step-min", type=float, default=15.0)
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args(argv)
    path = make(args.out, args.cycles, args.step_min, args.size)
    sys.stdout.write(f"{path} ({path.stat().st_size / 1024:.0f} KB)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
