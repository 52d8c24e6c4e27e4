"""Backtest tab: out-of-sample performance of the newest run, read from its files.

A run with a strategy backtest (``backtest.parquet``, from ``bma run --backtest``
or ``bma backtest``) shows its equity curve against the equal-weight benchmark,
both drawdowns and the statistics (:func:`autotrader.gui.runfiles.strategy_backtest`).
A run without one shows the cumulative top-minus-bottom quintile return and
per-date rank IC of the fused score (:func:`autotrader.gui.runfiles.oos_series`).
The realized returns are the ``label`` column of the run's
``predictions_oos.parquet`` (any source); only an older demo run without that
column has them rebuilt from the demo market, and the tab says which was used.
Computed and rendered to an image in a helper process
(:meth:`Workstation.run_in_process`: the pandas work holds the GIL too long for
a thread), shown on the Tk thread.
"""

from __future__ import annotations

import logging
import tkinter as tk
from pathlib import Path
from tkinter import ttk

from autotrader.domain.errors import RecommendationsError
from autotrader.gui.charts import IMAGE_FORMAT, backtest_image, strategy_image
from autotrader.gui.research_tab import RunShown
from autotrader.gui.runfiles import OosSeries, StrategyBacktest, oos_series, strategy_backtest
from autotrader.gui.widgets import StripImage
from autotrader.services.recommendations import latest_run_dir

logger = logging.getLogger(__name__)

SOURCE_NOTE = ("Realized returns: the label column of predictions_oos.parquet (runs written "
               "by this build, any source: csv, polygon, demo; older runs: predictions_oos.csv)."
               " Older runs without it: a demo run is rebuilt from its demo market; a "
               "csv/polygon run must be run again.")
#: the explanation line before a run is loaded
WAITING_NOTE = ("Shows the newest run's strategy backtest (equity after costs against the "
                "equal-weight benchmark) when it has one, else its IC view (signal quality, no "
                "costs).")
IC_NOTE = ("IC view, no strategy backtest in this run (tick \"Backtest the strategy (with "
           "costs)\" on the Research tab, or run bma backtest): top, the cumulative "
           "top-minus-bottom quintile return of the fused score (no costs, no trading rules); "
           "bottom, its rank IC per date. ")


def explanation(shown: OosSeries | StrategyBacktest) -> str:
    """Return the line under the buttons: what the charts show, for the view on screen.

    A strategy backtest: the strategy's equity after costs against the
    equal-weight benchmark, with its span, rebalancing, capital and costs
    (DEMO first for a demo run); the IC view: what its two charts are and where
    the realized returns come from.
    """
    if isinstance(shown, OosSeries):
        return IC_NOTE + SOURCE_NOTE
    stats = shown.stats
    every = (stats.get("settings") or {}).get("rebalance_every")
    capital = stats.get("initial_capital")
    costs = stats.get("total_costs")
    parts = [f"Strategy backtest of run {shown.run_dir.name}"
             + (f", {stats['start']} to {stats['end']}" if stats.get("start") else "") + ":",
             "top, the strategy's equity after costs (commission, half spread, market impact: "
             "research.backtest.costs)"
             + (f", USD {costs:,.0f} in all" if costs is not None else "")
             + " against the equal-weight universe (rebalanced daily, no costs), both from "
             + (f"USD {capital:,.0f}" if capital is not None else "the same capital")
             + (f", the strategy rebalanced every {every} sessions" if every else "")
             + "; bottom, both drawdowns."]
    if shown.is_demo:
        parts.insert(0, "DEMO DATA (a simulated market, not a track record).")
    return " ".join(parts)


class BacktestView(ttk.Frame):
    """Two charts (cumulative long-short, IC over time) and a summary line."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.series: OosSeries | None = None
        self.strategy: StrategyBacktest | None = None
        self.run_dir: Path | None = None
        self.message = tk.StringVar(self, value="no run loaded")
        bar = ttk.Frame(self)
        bar.pack(fill="x", padx=6, pady=4)
        ttk.Button(bar, text=app.t("backtest.load"), command=self.load_newest).pack(side="left")
        ttk.Label(bar, textvariable=self.message, wraplength=900).pack(side="left", padx=8)
        self.note = ttk.Label(self, text=WAITING_NOTE, foreground="#555555", wraplength=1100)
        self.note.pack(fill="x", padx=6)
        self.chart_image: StripImage | None = None
        self.chart = StripImage(self, timer=app.stall)
        self.chart.pack(fill="both", expand=True, padx=6, pady=4)
        app.bus.subscribe(RunShown, lambda msg: self.load(msg.run_dir))

    def load_newest(self) -> None:
        """Load the newest complete run under the result root, or show why there is none."""
        try:
            self.load(latest_run_dir(self.app.paths.result_root))
        except RecommendationsError as e:
            self.message.set(str(e))

    def load(self, run_dir: Path) -> None:
        """Compute the series of ``run_dir`` in the helper process, then draw."""
        run_dir = self.run_dir = Path(run_dir)
        self.message.set(f"loading {run_dir.name}...")

        def series_done(outcome) -> None:
            self._on_series(run_dir, outcome)

        self.app.run_in_process("backtest", _series_and_chart, run_dir, on_done=series_done)

    def _on_series(self, run_dir: Path, outcome) -> None:
        if run_dir != self.run_dir:  # a later load() is under way: its result follows
            logger.info("backtest of %s not shown: %s was loaded since", run_dir.name,
                        self.run_dir.name if self.run_dir else None)
            return
        if outcome.error is not None:
            self.message.set(f"cannot compute the backtest: {outcome.error}")
            self.note.configure(text=WAITING_NOTE)
            return
        series, reason, image = outcome.value
        if isinstance(series, StrategyBacktest):
            self.strategy, self.series = series, None
            self.message.set(series.summary)
            self.note.configure(text=explanation(series))
            self.chart.show(image, IMAGE_FORMAT)
            self.chart_image = self.chart
            return
        if series is None:
            self.message.set(reason)
            self.note.configure(text=SOURCE_NOTE)
            return
        self.strategy = None
        self.series = series
        self.note.configure(text=explanation(series))
        cumulative = series.cumulative
        self.message.set(
            f"{run_dir.name}: model {series.model}, {len(series.ic)} OOS dates, mean rank "
            f"IC {series.ic.mean():.4f}, cumulative long-short {cumulative.iloc[-1]:+.1%} "
            f"(non-overlapping {series.horizon}-day holdings); realized returns: "
            f"{series.label_source}")
        self.chart.show(image, IMAGE_FORMAT)
        self.chart_image = self.chart


def _series_and_chart(run_dir: Path
                      ) -> tuple[OosSeries | StrategyBacktest | None, str, list[bytes] | None]:
    strategy = strategy_backtest(run_dir)
    if strategy is not None:
        return strategy, "", strategy_image(strategy)
    series, reason = oos_series(run_dir)
    return series, reason, backtest_image(series) if series is not None else None


def register(app) -> None:
    """Add the Backtest tab."""
    app.add_view("backtest", "tab.backtest", BacktestView)
