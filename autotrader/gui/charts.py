"""Render the Research and Backtest charts to PNG bytes off the Tk thread.

Why not ``FigureCanvasTkAgg``: drawing a three-panel figure with
``tight_layout`` on the Tk thread took 0.3-0.7 s on the 2-core dev box, the
largest main-loop stall of a whole BMA run (see the README). A private
:class:`~matplotlib.figure.Figure` on the Agg canvas (no pyplot, no global
state) is safe to render on a helper thread; the Tk thread then only decodes
a PNG into a ``PhotoImage`` (a few milliseconds).
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from autotrader.gui.runfiles import OosSeries, RunSummary

DPI = 80


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def research_png(summary: RunSummary, width_in: float = 14.0, height_in: float = 3.4) -> bytes:
    """Three bar panels: OOS rank IC, top-bottom quintile return, stacking weights."""
    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    panels = (("OOS rank IC by model", summary.model_ic),
              ("top-bottom quintile return (OOS mean)", summary.quantile_returns),
              ("stacking weights", summary.stack_weights))
    for i, (title, values) in enumerate(panels):
        ax = figure.add_subplot(1, 3, i + 1)
        ax.bar(list(values), list(values.values()), color="#4472c4")
        ax.set_title(title + (" [DEMO]" if summary.is_demo else ""), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.axhline(0.0, color="black", linewidth=0.5)
    return _png(figure)


def backtest_png(series: OosSeries, width_in: float = 14.0, height_in: float = 6.5) -> bytes:
    """Cumulative long-short (top panel) and per-date rank IC with a 20-date mean."""
    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    cumulative = series.cumulative
    ax1 = figure.add_subplot(2, 1, 1)
    ax1.plot(cumulative.index, cumulative.values, color="#2e7d32")
    ax1.set_title(f"Cumulative long-short (top - bottom quintile) of {series.model}, "
                  "out of sample", fontsize=9)
    ax2 = figure.add_subplot(2, 1, 2)
    ax2.bar(series.ic.index, series.ic.values, color="#9e9e9e", width=1.0)
    ax2.plot(series.ic.index, series.ic.rolling(20, min_periods=5).mean().values,
             color="#c62828", label="20-date mean")
    ax2.set_title("Rank IC per date", fontsize=9)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=8)
        ax.axhline(0.0, color="black", linewidth=0.5)
    return _png(figure)
