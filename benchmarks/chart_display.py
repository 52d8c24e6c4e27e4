"""Main-loop time of showing a Research chart, with and without the held photo colour table.

``xvfb-run -a python -m benchmarks.chart_display [--repeats 7] [--busy 2]``
(needs an X display) prints one JSON line. The Research tab's three-panel
chart (:func:`autotrader.gui.charts.research_image`, 1120 x 256 pixels in
strips of 140 rows) is shown with :class:`autotrader.gui.widgets.StripImage`
in a new window, as the first run after the workstation starts does, and every
``update()`` of the Tk loop while it is shown is timed (a strip's handler and
Tk's display conversion after it). ``ours_s`` is the median over the repeats
of the slowest of those pieces with
:func:`autotrader.gui.widgets.hold_photo_colors` in place (what the
workstation does), ``baseline_s`` the same without it, alternating in the same
process on the same bytes; ``*_again_ms`` are the same chart shown a second
time in the same window. ``--busy N`` keeps N processes spinning at niceness
10 meanwhile, as the research child's workers do during a run (the X server
then waits for a CPU too). ``equal``: every window holds exactly the rendered
pixels.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import time
import tkinter as tk
from pathlib import Path

import pandas as pd

from autotrader.gui.charts import IMAGE_FORMAT, research_image
from autotrader.gui.runfiles import RunSummary
from autotrader.gui.widgets import StripImage, hold_photo_colors


def _summary() -> RunSummary:
    models = ["ridge", "elastic_net", "random_forest", "xgboost", "lightgbm", "ranker", "stack"]
    return RunSummary(Path("."), pd.DataFrame(),
                      model_ic={m: 0.01 * (i - 2) for i, m in enumerate(models)},
                      quantile_returns={m: 0.002 * (3 - i) for i, m in enumerate(models)},
                      stack_weights={m: 1.0 / 6 for m in models[:-1]}, is_demo=True)


def _show_once(root: tk.Tk, widget: StripImage, strips: list[bytes]) -> float:
    # Show the chart like a new run does; return the slowest single pass of the Tk loop.
    widget.show(strips, IMAGE_FORMAT)
    slowest = 0.0
    while widget.pending:
        time.sleep(0.005)
        started = time.perf_counter()
        root.update()
        slowest = max(slowest, time.perf_counter() - started)
    started = time.perf_counter()
    root.update()  # the last strip's display conversion
    return max(slowest, time.perf_counter() - started)


def _payload(ppm: bytes) -> bytes:
    # the pixel bytes of a binary PPM ("P6", width, height, maxval, one whitespace, pixels)
    header = re.match(rb"P6\s+\d+\s+\d+\s+\d+\s", ppm)
    if header is None:
        raise ValueError(f"not a binary PPM: {ppm[:20]!r}")
    return ppm[header.end():]


def _pixels(root: tk.Tk, widget: StripImage) -> list[bytes]:
    return [_payload(bytes(root.tk.call(image.name, "data", "-format", "ppm")))
            for image in widget.images]


def measure(strips: list[bytes], hold: bool) -> tuple[float, float, list[bytes]]:
    """In a new window: worst main-loop piece (s) of the first show, of a second show, pixels."""
    root = tk.Tk()
    try:
        holder = hold_photo_colors(root) if hold else None
        widget = StripImage(root)
        widget.pack()
        root.update()
        first, again = _show_once(root, widget, strips), _show_once(root, widget, strips)
        pixels = _pixels(root, widget)
        del holder
        return first, again, pixels
    finally:
        root.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--busy", type=int, default=0,
                        help="processes spinning at niceness 10 while measuring")
    args = parser.parse_args(argv)
    try:
        tk.Tk().destroy()
    except tk.TclError as e:
        sys.stderr.write(f"chart_display needs an X display (xvfb-run -a ...): {e}\n")
        return 2
    strips = research_image(_summary())
    expected = [_payload(strip) for strip in strips]
    runs: dict[bool, list[tuple[float, float, list[bytes]]]] = {False: [], True: []}
    spinners = [subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", "while True: pass"])
                for _ in range(args.busy)]
    try:
        for _ in range(args.repeats):  # alternate, so both see the same machine
            for hold in (False, True):
                runs[hold].append(measure(strips, hold))
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    ours_s = statistics.median(first for first, _, _ in runs[True])
    baseline_s = statistics.median(first for first, _, _ in runs[False])
    sys.stdout.write(json.dumps({
        "name": "chart_display", "ours_s": round(ours_s, 4), "baseline_s": round(baseline_s, 4),
        "speedup": round(baseline_s / ours_s, 2),
        "equal": all(pixels == expected for run in runs.values() for _, _, pixels in run),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "strips": len(strips), "repeats": args.repeats, "busy": args.busy,
        "ours_first_ms": [round(1000 * first, 1) for first, _, _ in runs[True]],
        "baseline_first_ms": [round(1000 * first, 1) for first, _, _ in runs[False]],
        "ours_again_ms": [round(1000 * again, 1) for _, again, _ in runs[True]],
        "baseline_again_ms": [round(1000 * again, 1) for _, again, _ in runs[False]],
    }) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
