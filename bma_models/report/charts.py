"""PNG charts of one run (matplotlib, Agg canvas; no pyplot, no GUI, thread-safe).

* ``chart_cumulative_ic.png`` -- cumulative sum of the per-date OOS rank IC of
  every model, the stack and the fused score (a straight rising line is a
  stable signal; flat stretches are dead periods).
* ``chart_quantile_returns.png`` -- mean forward return of each score quintile
  (stack and fused); a monotone staircase is what a ranking signal should show.
* ``chart_long_short.png`` -- cumulative return of the top-minus-bottom
  quintile spread of the fused and stack scores, on non-overlapping
  ``horizon``-session periods (every ``horizon``-th OOS date), so the curve
  is a return an investor could have earned, not a sum of overlapping windows.
* ``chart_sector_weights.png`` -- portfolio weight per sector against the cap.
* ``chart_baselines.png`` -- cumulative OOS rank IC of the fused score, the
  stack and its best member against the simple baselines every run is
  measured against (:mod:`bma_models.baselines`); the title says whether the
  fused score beats them all.

Every title carries the data source; demo charts start with ``DEMO``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bma_models.baselines import BASELINE_COLUMNS
from bma_models.evaluation import PerDateScores
from bma_models.report.excel import sector_exposure

logger = logging.getLogger(__name__)

__all__ = ["CHART_FILES", "chart_data", "write_charts"]

CHART_FILES: tuple[str, ...] = ("chart_cumulative_ic.png", "chart_quantile_returns.png",
                                "chart_long_short.png", "chart_sector_weights.png",
                                "chart_baselines.png")
_SCORES = ("stack", "fused")


def chart_data(result) -> dict[str, pd.DataFrame]:
    """Return the numbers behind the charts (also handy in a notebook).

    Returns
    -------
    dict
        ``cumulative_ic`` (dates x models), ``quantile_returns`` (quintile x
        {stack, fused}), ``long_short`` (non-overlapping period end dates x
        {stack, fused}, cumulative compounded return), ``sectors`` (the
        Excel sheet's sector table), ``baselines`` (dates x rows of the
        baseline table: cumulative rank IC).
    """
    oos = result.predictions_oos
    # the run's cached per-date figures (the metrics computed them already)
    scores = getattr(result, "per_date", None) or PerDateScores(
        oos.drop(columns=["fold", "label"], errors="ignore"), oos["label"])
    baseline_columns = set(BASELINE_COLUMNS.values())
    models = [c for c in oos.columns if c not in ("fold", "label", *baseline_columns)]
    cumulative = pd.DataFrame({m: scores.rank_ic(m) for m in models}).cumsum()
    table = (result.baselines or {}).get("scores", {})
    baselines = pd.DataFrame({row: scores.rank_ic(entry["column"])
                              for row, entry in table.items()}).cumsum()
    quantiles = pd.DataFrame({m: scores.quantile_returns(m).mean() for m in _SCORES})
    horizon = int(result.settings.labels.horizon)
    spreads = pd.DataFrame({m: scores.long_short_spread(m) for m in _SCORES})
    periods = spreads.iloc[::horizon]
    long_short = (1.0 + periods.fillna(0.0)).cumprod() - 1.0
    return {"cumulative_ic": cumulative, "quantile_returns": quantiles,
            "long_short": long_short, "sectors": sector_exposure(result),
            "baselines": baselines}


def write_charts(directory: str | Path, result, title_prefix: str) -> list[Path]:
    """Write the four PNG charts into ``directory``; returns their paths.

    Parameters
    ----------
    directory : str or Path
        The run's staging directory.
    result : ResearchResult
    title_prefix : str
        Put in front of every title (``"DEMO - ..."`` for demo data).
    """
    directory = Path(directory)
    data = chart_data(result)
    horizon = int(result.settings.labels.horizon)
    drawers = (
        lambda ax: _cumulative_ic(ax, data["cumulative_ic"]),
        lambda ax: _quantiles(ax, data["quantile_returns"], horizon),
        lambda ax: _long_short(ax, data["long_short"], horizon),
        lambda ax: _sectors(ax, data["sectors"], result.plan.rules.sector_limit),
        lambda ax: _baselines(ax, data["baselines"], result.baselines or {}),
    )
    paths = []
    for name, draw in zip(CHART_FILES, drawers):
        path = directory / name
        render_chart(draw, title_prefix).savefig(path, format="png")
        paths.append(path)
    logger.info("charts written: %s", [p.name for p in paths])
    return paths


def render_chart(draw, title_prefix: str) -> Figure:
    """Draw one chart of a run on a new 900 x 500 px figure, with the run's title prefix.

    Parameters
    ----------
    draw : callable
        ``draw(ax) -> str`` plots on the axes and returns the chart's subtitle.
    title_prefix : str
        Put in front of the title (``"DEMO - ..."`` for demo data).

    Returns
    -------
    matplotlib.figure.Figure
        The laid-out figure, on an Agg canvas (no GUI backend), ready to ``savefig``.
    """
    fig = Figure(figsize=(9, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    subtitle = draw(ax)
    ax.set_title(f"{title_prefix}\n{subtitle}", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def _cumulative_ic(ax, cumulative: pd.DataFrame) -> str:
    for name in cumulative.columns:
        emphasis = name in _SCORES
        ax.plot(cumulative.index, cumulative[name].to_numpy(), label=name,
                linewidth=2.2 if emphasis else 1.0, alpha=1.0 if emphasis else 0.7)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel("cumulative rank IC")
    ax.legend(fontsize=8, ncol=2)
    return "Cumulative OOS rank IC per model"


def _quantiles(ax, table: pd.DataFrame, horizon: int) -> str:
    x = np.arange(len(table))
    width = 0.8 / max(1, len(table.columns))
    for j, name in enumerate(table.columns):
        ax.bar(x + j * width, table[name].to_numpy() * 1e4, width, label=name)
    ax.set_xticks(x + width * (len(table.columns) - 1) / 2,
                  [f"Q{int(q) + 1}" for q in table.index])
    ax.set_ylabel(f"mean {horizon}-session forward return (bp)")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.legend(fontsize=8)
    return "OOS mean forward return by score quintile (Q5 = highest score)"


def _long_short(ax, curve: pd.DataFrame, horizon: int) -> str:
    for name in curve.columns:
        ax.plot(curve.index, curve[name].to_numpy() * 100, label=name)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel("cumulative return (%)")
    ax.legend(fontsize=8)
    return (f"Top-minus-bottom quintile, non-overlapping {horizon}-session periods "
            "(no costs)")


def _sectors(ax, sectors: pd.DataFrame, cap: float) -> str:
    ax.barh(sectors["sector"], sectors["weight"].to_numpy() * 100, color="#1F4E78")
    ax.axvline(cap * 100, color="#C00000", linestyle="--", label=f"sector cap {cap:.0%}")
    ax.invert_yaxis()
    ax.set_xlabel("portfolio weight (%)")
    ax.legend(fontsize=8)
    return "Portfolio weight by sector"


def _baselines(ax, cumulative: pd.DataFrame, report: dict) -> str:
    reference = report.get("reference", "fused")
    for name in cumulative.columns:
        main = name == reference
        ax.plot(cumulative.index, cumulative[name].to_numpy(), label=name,
                linewidth=2.4 if main else 1.1, alpha=1.0 if main else 0.8,
                linestyle="-" if main or name in ("stack", "best_member") else "--",
                color="#C00000" if main and not report.get("beats_all_baselines", True)
                else None)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel("cumulative rank IC")
    ax.legend(fontsize=8, ncol=2)
    if not report:
        return "Baselines: not computed"
    verdict = ("beats every baseline" if report.get("beats_all_baselines")
               else "does NOT beat every baseline: " + ", ".join(report.get("beaten_by", [])))
    return f"Cumulative OOS rank IC vs simple baselines: {reference} {verdict}"
