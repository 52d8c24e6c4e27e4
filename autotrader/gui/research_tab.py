"""Research tab: parameters, "Run BMA model", per-stage progress, results and charts."""

from __future__ import annotations

import logging
import tkinter as tk
from dataclasses import dataclass
from pathlib import Path
from tkinter import ttk

from autotrader.domain.errors import RecommendationsError
from autotrader.gui.charts import IMAGE_FORMAT, research_image
from autotrader.gui.runfiles import RECOMMENDATION_COLUMNS, RunSummary, load_summary
from autotrader.gui.widgets import Form, StripImage, Table
from autotrader.services.recommendations import latest_run_dir
from autotrader.services.research_job import (
    JobFailed,
    JobFinished,
    JobProgress,
    ResearchJob,
    ResearchRequest,
)
from bma_models.pipeline import STAGES

logger = logging.getLogger(__name__)

PROGRESS_STAGES = ("load", *STAGES)
#: rows inserted per ``after`` tick when the results table is filled
TABLE_CHUNK = 50
SOURCES = ("auto", "demo", "csv", "polygon")
TABLE_WIDTHS = {"rank": 50, "ticker": 80, "sector": 210, "score": 110, "weight": 90,
                "last_close": 100, "target_shares": 110}


DASK_KEY = "research.dask.scheduler"


def dask_scheduler(text: str) -> str | None:
    """The Dask scheduler field as the runtime override: empty = None (no Dask).

    ``local`` or an address (``tcp://host:8786``, ``host:8786``); anything else
    raises ``ValueError`` with the reason before a run starts.
    """
    from bma_models.errors import SettingsError
    from bma_models.settings import DaskSettings

    value = text.strip() or None
    try:
        DaskSettings(scheduler=value).check()
    except SettingsError as e:
        raise ValueError(f"Dask scheduler {text!r}: {e}") from e
    return value


class ResearchView(ttk.Frame):
    """Run the pipeline in a worker and show the newest run (table + charts)."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.job: ResearchJob | None = None
        self.run_dir: Path | None = None
        self.summary: RunSummary | None = None
        self.last_stall_s: float | None = None
        self._build_params()
        self._build_progress()
        self.table = Table(self, RECOMMENDATION_COLUMNS, height=9, widths=TABLE_WIDTHS,
                           timer=app.stall, numeric=("rank", "score", "weight", "last_close",
                                                     "target_shares"))
        self.table.pack(fill="x", padx=6, pady=4)
        self.chart_image: StripImage | None = None
        self.chart = StripImage(self, text="charts appear after a run", timer=app.stall)
        self.chart.pack(fill="x", padx=6, pady=4)
        app.bus.subscribe(JobProgress, self._on_progress)
        app.bus.subscribe(JobFinished, self._on_finished)
        app.bus.subscribe(JobFailed, self._on_failed)
        self.after_idle(self._load_existing)

    def _build_params(self) -> None:
        top = ttk.Frame(self)
        top.pack(fill="x", padx=6, pady=4)
        self.form = Form(top)
        self.form.pack(side="left", anchor="n")
        research = self.app.settings.research
        self.form.add("start_date", "Start date (YYYY-MM-DD)", research.data.start_date or "")
        self.form.add("end_date", "End date (YYYY-MM-DD)", research.data.end_date or "")
        self.form.add("top_n", "Top N", research.portfolio.top_n)
        self.form.add("config_dir", "Config directory", self.app.paths.config_dir)
        self.form.add("data_path", "CSV file (source csv)", research.data.csv_path or "")
        self.form.add("sectors_path", "Sectors file (source csv, optional)", "")
        self.form.add("dask_scheduler", "Dask scheduler (empty = off)",
                      getattr(getattr(research, "dask", None), "scheduler", None) or "")
        self.source = tk.StringVar(self, value=research.data.source)
        ttk.Label(self.form, text="Source").grid(row=7, column=0, sticky="w", padx=4)
        ttk.Combobox(self.form, textvariable=self.source, values=SOURCES, state="readonly",
                     width=16).grid(row=7, column=1, sticky="w", padx=4)
        buttons = ttk.Frame(top)
        buttons.pack(side="left", anchor="n", padx=12)
        self.run_button = ttk.Button(buttons, text=self.app.t("research.run"), command=self.run)
        self.cancel_button = ttk.Button(buttons, text=self.app.t("research.cancel"),
                                        command=self.cancel, state="disabled")
        self.excel_button = ttk.Button(buttons, text=self.app.t("research.open_excel"),
                                       command=self.open_excel)
        self.folder_button = ttk.Button(buttons, text=self.app.t("research.open_folder"),
                                        command=self.open_folder)
        for button in (self.run_button, self.cancel_button, self.excel_button,
                       self.folder_button):
            button.pack(fill="x", pady=2)
        self.message = tk.StringVar(self, value="")
        ttk.Label(buttons, textvariable=self.message, wraplength=380).pack(fill="x", pady=4)

    def _build_progress(self) -> None:
        box = ttk.LabelFrame(self, text="Progress")
        box.pack(fill="x", padx=6, pady=4)
        self.bars: dict[str, ttk.Progressbar] = {}
        for i, stage in enumerate(PROGRESS_STAGES):
            ttk.Label(box, text=stage).grid(row=0, column=i, sticky="w", padx=4)
            bar = ttk.Progressbar(box, length=140, maximum=1.0)
            bar.grid(row=1, column=i, padx=4, pady=2)
            self.bars[stage] = bar

    # -- actions ---------------------------------------------------------------------------
    def request(self) -> ResearchRequest:
        """The run parameters from the fields (``ValueError`` names the bad field)."""
        values = self.form.values()
        top_n = values["top_n"]
        if top_n and not top_n.isdigit():
            raise ValueError(f"Top N must be a whole number, got {top_n!r}")
        return ResearchRequest(
            config_dir=values["config_dir"], output_root=str(self.app.paths.result_root),
            source=self.source.get(), start_date=values["start_date"] or None,
            end_date=values["end_date"] or None, top_n=int(top_n) if top_n else None,
            data_path=values["data_path"] or None, sectors_path=values["sectors_path"] or None,
            state_dir=str(self.app.paths.state_dir),
            overrides={DASK_KEY: dask_scheduler(values["dask_scheduler"])})

    def run(self) -> None:
        """Start a run in the configured mode (process or thread)."""
        if self.job is not None and self.job.running:
            self.message.set("a run is already in progress")
            return
        try:
            request = self.request()
        except ValueError as e:
            self.message.set(str(e))
            return
        for bar in self.bars.values():
            bar["value"] = 0.0
        self.job = ResearchJob(request, self.app.bus.post, mode=self.app.research_mode)
        self.app.stall.reset()  # the gap of this click is the first one measured
        with self.app.stall.timed("start research job"):
            self.job.start()
        with self.app.stall.timed("start helper process"):
            self.app.warm_up()
        self.run_button.state(["disabled"])
        self.cancel_button.state(["!disabled"])
        self.message.set(f"running ({self.app.research_mode})...")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.message.set("cancelling: the run stops before its next stage "
                             "(or its processes are ended within a few seconds)...")

    def open_excel(self) -> None:
        if self.run_dir is None:
            self.message.set("no run yet: run the model first")
            return
        if not self.app.open_file(self.run_dir / "recommendations.xlsx", "Excel file"):
            self.message.set(f"no Excel file in {self.run_dir.name} (recommendations.xlsx "
                             "is not written by this build's report)")

    def open_folder(self) -> None:
        target = self.run_dir or self.app.paths.result_root
        if not self.app.open_file(target, "result folder"):
            self.message.set(f"result folder not found: {target}")

    # -- bus handlers ----------------------------------------------------------------------
    def _on_progress(self, msg: JobProgress) -> None:
        if msg.stage in self.bars:
            index = PROGRESS_STAGES.index(msg.stage)
            for stage in PROGRESS_STAGES[:index]:
                self.bars[stage]["value"] = 1.0
            self.bars[msg.stage]["value"] = 1.0 if msg.stage != "load" else 0.5
        self.message.set(f"stage {msg.stage} ({msg.done}/{msg.total})")

    def _on_finished(self, msg: JobFinished) -> None:
        self.last_stall_s = self.app.stall.max_gap_s
        logger.info("research run finished in %.1fs: %s (main-loop max stall %.0f ms)",
                    msg.elapsed_s, msg.run_dir, 1000 * self.last_stall_s)
        self._idle()
        for bar in self.bars.values():
            bar["value"] = 1.0
        self.message.set(f"done in {msg.elapsed_s:.1f}s: {msg.run_dir.name}")
        self.show_run(msg.run_dir)

    def _on_failed(self, msg: JobFailed) -> None:
        self._idle()
        self.message.set(("cancelled: " if msg.cancelled else "failed: ") + msg.error)

    def _idle(self) -> None:
        self.run_button.state(["!disabled"])
        self.cancel_button.state(["disabled"])

    # -- results ---------------------------------------------------------------------------
    def _load_existing(self) -> None:
        try:
            run_dir = latest_run_dir(self.app.paths.result_root)
        except RecommendationsError:
            return
        self.show_run(run_dir)

    def show_run(self, run_dir: Path) -> None:
        """Read the run's files and render the charts in the helper process, then show them."""
        self.run_dir = Path(run_dir)
        self.app.run_in_process("load-run", _summary_and_chart, self.run_dir,
                                on_done=self._show_summary)

    def _show_summary(self, outcome) -> None:
        if outcome.error is not None:
            self.message.set(f"cannot read run: {outcome.error}")
            return
        summary, image = outcome.value
        self.table.set_rows(summary.recommendations.itertuples(index=False, name=None),
                            chunk=TABLE_CHUNK, on_done=lambda: self._filled(summary))
        self.chart.show(image, IMAGE_FORMAT)
        self.chart_image = self.chart
        self.app.bus.post(RunShown(summary.run_dir))

    def _filled(self, summary: RunSummary) -> None:
        self.summary = summary  # the table now holds every row of the run

    def shutdown(self) -> None:
        if self.job is not None and self.job.running:
            self.job.terminate()


def _summary_and_chart(run_dir: Path) -> tuple[RunSummary, list[bytes]]:
    summary = load_summary(run_dir)
    return summary, research_image(summary)


@dataclass(frozen=True)
class RunShown:
    """Posted after a run was displayed (the Backtest tab follows the newest run)."""

    run_dir: Path


def register(app) -> None:
    """Add the Research tab."""
    app.add_view("research", "tab.research", ResearchView)
