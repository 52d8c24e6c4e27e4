"""Render the Research and Backtest charts to image bytes off the Tk thread.

Why not ``FigureCanvasTkAgg``: drawing a three-panel figure on the Tk thread
took 0.3-0.7 s on the 2-core dev box, the largest main-loop stall of a whole
BMA run (see docs/benchmarks.md). A private :class:`~matplotlib.figure.Figure` on the
Agg canvas (no pyplot, no global state) renders in the helper process; the Tk
thread only turns the bytes into a ``PhotoImage``.

Why PPM and not PNG: Tk decodes a 1120 x 520 PNG in 20-30 ms (inflate + filter
on the Tk thread, measured under Xvfb), a raw binary PPM of the same pixels in
1-3 ms. The bytes are larger (3 bytes per pixel, ~1.7 MB) but only cross a
local pipe to the helper process. Each chart comes as horizontal strips of
:data:`STRIP_ROWS` rows (one PPM each): showing a photo costs Tk another
~15 ms of CPU per 300 000 pixels (conversion for the display, after the
handler returns), and :class:`~autotrader.gui.widgets.StripImage` shows one
strip per ``after`` tick.

Layout: every figure uses matplotlib's constrained layout, so titles, tick
labels and legends are inside the image (nothing clipped at the edges), and
date axes use :class:`~matplotlib.dates.ConciseDateFormatter` (short labels
that never overlap).
"""

from __future__ import annotations

import numpy as np
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from autotrader.gui.runfiles import OosSeries, RunSummary, StrategyBacktest

DPI = 80
#: ``format=`` of ``tk.PhotoImage`` for the bytes these functions return
IMAGE_FORMAT = "ppm"
#: pixel rows per strip: Tk converts a shown photo for the display at ~15 ms of CPU per
#: 1120 x 270 pixels, so a chart is shown strip by strip, one per ``after`` tick
STRIP_ROWS = 140
_BAR = "#4472c4"
_NEGATIVE = "#c0504d"


def _ppm(figure: Figure) -> list[bytes]:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
    strips = []
    for part in np.array_split(rgb, max(1, -(-rgb.shape[0] // STRIP_ROWS)), axis=0):
        height, width = part.shape[:2]
        strips.append(f"P6 {width} {height} 255\n".encode("ascii")
                      + np.ascontiguousarray(part).tobytes())
    return strips


def _new_figure(width_in: float, height_in: float) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained",
                  facecolor="white")


def _bars(ax, title: str, values: dict[str, float], fmt: str) -> None:
    names, heights = list(values), [float(v) for v in values.values()]
    colours = [_BAR if h >= 0 else _NEGATIVE for h in heights]
    bars = ax.bar(names, heights, color=colours)
    ax.bar_label(bars, fmt=fmt, fontsize=7, padding=2)
    ax.set_title(title, fontsize=9)
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.tick_params(labelsize=8)
    ax.tick_params(axis="x", labelrotation=20)
    ax.margins(y=0.18)  # room for the value labels above/below the bars
    if not names:
        ax.text(0.5, 0.5, "no data in this run", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="#777777")


def research_image(summary: RunSummary, width_in: float = 14.0,
                   height_in: float = 3.2) -> list[bytes]:
    """Three bar panels: OOS rank IC, top-bottom quintile return, stacking weights (PPM strips)."""
    figure = _new_figure(width_in, height_in)
    demo = " [DEMO]" if summary.is_demo else ""
    axes = figure.subplots(1, 3)
    _bars(axes[0], "OOS rank IC by model" + demo, summary.model_ic, "%.4f")
    _bars(axes[1], "top - bottom quintile return, OOS mean per date" + demo,
          summary.quantile_returns, "%.4f")
    _bars(axes[2], "stacking weights" + demo, summary.stack_weights, "%.2f")
    return _ppm(figure)


def backtest_image(series: OosSeries, width_in: float = 14.0,
                   height_in: float = 6.5) -> list[bytes]:
    """Cumulative long-short (top panel) and per-date rank IC with a 20-date mean (PPM strips)."""
    figure = _new_figure(width_in, height_in)
    ax1, ax2 = figure.subplots(2, 1, sharex=True)
    cumulative = series.cumulative
    ax1.plot(cumulative.index, cumulative.values, color="#2e7d32")
    ax1.set_title(f"Cumulative long-short (top - bottom quintile) of {series.model}, out of "
                  f"sample, non-overlapping {series.horizon}-day holdings", fontsize=9)
    ax1.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax2.bar(series.ic.index, series.ic.values, color="#9e9e9e", width=1.0)
    ax2.plot(series.ic.index, series.ic.rolling(20, min_periods=5).mean().values,
             color="#c62828", label="20-date mean")
    ax2.set_title(f"Rank IC per date (mean {series.ic.mean():.4f})", fontsize=9)
    ax2.legend(fontsize=8, loc="upper left")
    locator = mdates.AutoDateLocator()
    ax2.xaxis.set_major_locator(locator)
    ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=8)
        ax.axhline(0.0, color="black", linewidth=0.5)
        ax.grid(axis="y", color="#e0e0e0", linewidth=0.5)
    return _ppm(figure)


def strategy_image(backtest: StrategyBacktest, width_in: float = 14.0,
                   height_in: float = 6.5) -> list[bytes]:
    """Equity vs the equal-weight benchmark (top) and both drawdowns (bottom), PPM strips."""
    figure = _new_figure(width_in, height_in)
    ax1, ax2 = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    daily = backtest.daily
    base = float(daily["equity"].iloc[0])
    demo = "DEMO - " if backtest.is_demo else ""
    ax1.plot(daily.index, daily["equity"] / base, color="#1f4e78", label="strategy after costs")
    ax1.plot(daily.index, daily["benchmark_equity"] / base, color="#ed7d31",
             label="equal-weight universe")
    ax1.set_title(f"{demo}Backtest: equity (start = 1), rebalanced every "
                  f"{backtest.stats.get('settings', {}).get('rebalance_every')} sessions",
                  fontsize=9)
    ax1.legend(fontsize=8, loc="upper left")
    for column, colour in (("equity", "#1f4e78"), ("benchmark_equity", "#ed7d31")):
        drawdown = daily[column] / daily[column].cummax() - 1.0
        ax2.fill_between(daily.index, drawdown.to_numpy(), 0.0, color=colour, alpha=0.35)
    ax2.set_title(f"{demo}Drawdown (strategy {backtest.stats.get('max_drawdown', 0):.1%}, "
                  f"equal-weight {backtest.stats.get('benchmark', {}).get('max_drawdown', 0):.1%})",
                  fontsize=9)
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
    locator = mdates.AutoDateLocator()
    ax2.xaxis.set_major_locator(locator)
    ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=8)
        ax.grid(axis="y", color="#e0e0e0", linewidth=0.5)
    return _ppm(figure)
