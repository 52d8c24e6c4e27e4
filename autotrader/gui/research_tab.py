"""Research tab: parameters checked before the run, progress that moves, results with their age.

* The form is checked when "Run BMA model" (F5) is pressed
  (:func:`autotrader.gui.research_form.check_form`): every bad field is
  highlighted with its message and nothing starts.
* Progress: one bar per stage (load + the six pipeline stages) with its
  elapsed time and ETA, training counted per fold x model fit, and one line for
  the stage running now and the whole run (:class:`autotrader.gui.progress.RunClock`,
  the previous run's stage times for the overall ETA), refreshed twice a second.
* A failed run shows one red line; its traceback is behind "Show details".
* The results on screen are labelled with their run id, DEMO DATA and age;
  while a new run is in progress, or after it failed, they are labelled as the
  previous run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import tkinter as tk
from dataclasses import dataclass
from pathlib import Path
from tkinter import filedialog, ttk

from autotrader.domain.errors import RecommendationsError
from autotrader.gui.charts import DPI as CHART_DPI
from autotrader.gui.charts import IMAGE_FORMAT, research_image
from autotrader.gui.progress import RunClock
from autotrader.gui.research_form import check_form
from autotrader.gui.runfiles import (
    RECOMMENDATION_COLUMNS,
    RunSummary,
    SignalCheck,
    load_summary,
    recommendation_rows,
)
from autotrader.gui.state import ago_text, duration_text
from autotrader.gui.widgets import Form, StripImage, Table
from autotrader.services.recommendations import RunInfo, latest_run_dir, run_info
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
#: milliseconds between two refreshes of the elapsed times while a run is in progress
CLOCK_MS = 500
SOURCES = ("auto", "demo", "csv", "polygon")
TABLE_WIDTHS = {"rank": 50, "ticker": 75, "sector": 190, "score": 90, "weight": 70,
                "current_weight": 70, "trade_weight": 70, "last_close": 85, "target_shares": 95}
TABLE_HEADINGS = {"weight": "weight", "current_weight": "current", "trade_weight": "trade",
                  "last_close": "last close", "target_shares": "target shares"}
DASK_KEY = "research.dask.scheduler"
#: The "Backtest" check box: the run also backtests the strategy (``bma run --backtest``)
BACKTEST_KEY = "research.backtest.enabled"
BUTTON_WIDTH = 24


def dask_scheduler(text: str) -> str | None:
    """Return the Dask scheduler field as the runtime override: empty = None (no Dask)."""
    return text.strip() or None


class ResearchView(ttk.Frame):
    """Run the pipeline in a worker and show the newest run (table + charts)."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.job: ResearchJob | None = None
        self.run_dir: Path | None = None
        self.summary: RunSummary | None = None
        self.shown: RunInfo | None = None
        self.clock: RunClock | None = None
        self.last_stall_s: float | None = None
        self._tick_id: str | None = None
        self._build_params()
        self._build_progress()
        self._build_results()
        app.bus.subscribe(JobProgress, self._on_progress)
        app.bus.subscribe(JobFinished, self._on_finished)
        app.bus.subscribe(JobFailed, self._on_failed)
        self.after_idle(self._load_existing)

    # -- layout ----------------------------------------------------------------------------
    def _build_params(self) -> None:
        top = ttk.Frame(self)
        top.pack(fill="x", padx=6, pady=(6, 2))
        self.form = Form(top)
        self.form.pack(side="left", anchor="n")
        research = self.app.settings.research
        box = ttk.Combobox(self.form, values=SOURCES, state="readonly", width=16)
        self.form.add("source", "Source", research.data.source, widget=box,
                      hint="auto = Polygon with a key, else demo")
        self.source = self.form.vars["source"]
        self.form.add("start_date", "Start date", research.data.start_date or "",
                      hint="YYYY-MM-DD; empty = all data")
        self.form.add("end_date", "End date", research.data.end_date or "",
                      hint="YYYY-MM-DD; empty = last session")
        self.form.add("top_n", "Top N", research.portfolio.top_n, hint="names passed to the "
                                                                       "optimizer")
        self.form.add("data_path", "CSV file", research.data.csv_path or "", width=30,
                      hint="")
        self.form.extra("data_path", ttk.Button(self.form, text="...", width=3,
                                                command=self.browse_csv))
        self.form.add("sectors_path", "Sectors file", "", width=30,
                      hint="optional; none: no sector limit")
        self.form.extra("sectors_path", ttk.Button(self.form, text="...", width=3,
                                                   command=self.browse_sectors))
        self.form.add("config_dir", "Config directory", self.app.paths.config_dir, width=30)
        self.form.add("dask_scheduler", "Dask scheduler",
                      getattr(getattr(research, "dask", None), "scheduler", None) or "",
                      hint="empty = off, local, tcp://host:8786")
        self.backtest = tk.BooleanVar(self, value=research.backtest.enabled)
        ttk.Checkbutton(self.form, text="Backtest the strategy (with costs)",
                        variable=self.backtest).grid(row=self.form.grid_size()[1], column=1,
                                                     sticky="w", padx=4)
        buttons = ttk.Frame(top, width=BUTTON_WIDTH * 9)
        buttons.pack(side="left", anchor="n", padx=16)
        t = self.app.t
        self.run_button = ttk.Button(buttons, text=t("research.run") + "  (F5)",
                                     command=self.run, style="Accent.TButton",
                                     width=BUTTON_WIDTH)
        self.cancel_button = ttk.Button(buttons, text=t("research.cancel") + "  (Esc)",
                                        command=self.cancel, state="disabled",
                                        width=BUTTON_WIDTH)
        self.excel_button = ttk.Button(buttons, text=t("research.open_excel"),
                                       command=self.open_excel, width=BUTTON_WIDTH)
        self.folder_button = ttk.Button(buttons, text=t("research.open_folder"),
                                        command=self.open_folder, width=BUTTON_WIDTH)
        for button in (self.run_button, self.cancel_button, self.excel_button,
                       self.folder_button):
            button.pack(fill="x", pady=2)
        self.message = tk.StringVar(self, value="")
        self.message_label = ttk.Label(self, textvariable=self.message, wraplength=1000)
        self.message_label.pack(fill="x", padx=8)
        self.details_button = ttk.Button(self, text="Show details", command=self.toggle_details)
        self.details = tk.Text(self, height=12, width=100, wrap="none", foreground="#5b0000")

    def _build_progress(self) -> None:
        box = ttk.LabelFrame(self, text="Progress", padding=(6, 2))
        box.pack(fill="x", padx=6, pady=4)
        self.now_line = tk.StringVar(self, value="no run in progress")
        ttk.Label(box, textvariable=self.now_line, style="Heading.TLabel").grid(
            row=0, column=0, columnspan=len(PROGRESS_STAGES), sticky="w", pady=(0, 4))
        self.bars: dict[str, ttk.Progressbar] = {}
        self.stage_labels: dict[str, ttk.Label] = {}
        self.stage_times: dict[str, tk.StringVar] = {}
        for i, stage in enumerate(PROGRESS_STAGES):
            label = ttk.Label(box, text=stage)
            label.grid(row=1, column=i, sticky="w", padx=4)
            bar = ttk.Progressbar(box, length=120, maximum=1.0,
                                  style="Stage.Horizontal.TProgressbar")
            bar.grid(row=2, column=i, padx=4, pady=2, sticky="ew")
            times = tk.StringVar(self, value="")
            ttk.Label(box, textvariable=times, style="Small.TLabel").grid(row=3, column=i,
                                                                          sticky="w", padx=4)
            box.columnconfigure(i, weight=1, uniform="stage")
            self.bars[stage], self.stage_labels[stage], self.stage_times[stage] = \
                bar, label, times

    def _build_results(self) -> None:
        head = ttk.Frame(self)
        head.pack(fill="x", padx=6, pady=(6, 0))
        self.results_title = ttk.Label(head, text="Results: no run yet", style="Heading.TLabel")
        self.results_title.pack(side="left")
        self.stale = ttk.Label(self, text="", style="Warn.TLabel", wraplength=1000)
        self.stale.pack(fill="x", padx=8)
        # does the fused score beat the simple baselines? red when it does not
        self.signal_line = ttk.Label(self, text="", wraplength=1000)
        self.signal_line.pack(fill="x", padx=8)
        self.table = Table(self, RECOMMENDATION_COLUMNS, height=9, widths=TABLE_WIDTHS,
                           timer=self.app.stall, headings=TABLE_HEADINGS,
                           numeric=tuple(c for c in RECOMMENDATION_COLUMNS
                                         if c not in ("ticker", "sector")),
                           stretch=RECOMMENDATION_COLUMNS[1:])  # the rank stays by its ticker
        self.table.pack(fill="x", padx=6, pady=4)
        self.chart_image: StripImage | None = None
        self.chart = StripImage(self, text="charts appear after a run", timer=self.app.stall)
        self.chart.pack(fill="x", padx=6, pady=4)

    # -- messages --------------------------------------------------------------------------
    def say(self, text: str, level: str = "info") -> None:
        """One line under the form: ``info``, ``good``, ``warn`` or ``error`` (red)."""
        self.message.set(text)
        style = {"error": "Error.TLabel", "warn": "Warn.TLabel", "good": "Good.TLabel"}
        self.message_label.configure(style=style.get(level, "TLabel"))
        if level != "error":
            self._hide_details()

    def toggle_details(self) -> None:
        """Show or hide the traceback of the failed run."""
        if self.details.winfo_manager():
            self.details.pack_forget()
            self.details_button.configure(text="Show details")
        else:
            self.details.pack(fill="x", padx=8, pady=2, after=self.details_button)
            self.details_button.configure(text="Hide details")

    def _hide_details(self) -> None:
        self.details.pack_forget()
        self.details_button.pack_forget()
        self.details_button.configure(text="Show details")

    # -- actions ---------------------------------------------------------------------------
    def check(self) -> dict[str, str]:
        """Check the form; mark every bad field; ``{field: message}``."""
        self.form.clear_marks()
        errors = check_form(self.form.values(), self.source.get(),
                            today=dt.date.today(), environ=os.environ)
        for field, message in errors.items():
            self.form.mark(field, message)
        return errors

    def request(self) -> ResearchRequest:
        """Return the run parameters from the fields.

        Raises
        ------
        ValueError
            A field is invalid; the message is the first problem :meth:`check` found.
        """
        errors = self.check()
        if errors:
            raise ValueError(next(iter(errors.values())))
        values = self.form.values()
        return ResearchRequest(
            config_dir=values["config_dir"], output_root=str(self.app.paths.result_root),
            source=self.source.get(), start_date=values["start_date"] or None,
            end_date=values["end_date"] or None,
            top_n=int(values["top_n"]) if values["top_n"] else None,
            data_path=values["data_path"] or None, sectors_path=values["sectors_path"] or None,
            state_dir=str(self.app.paths.state_dir),
            overrides={DASK_KEY: dask_scheduler(values["dask_scheduler"]),
                       BACKTEST_KEY: bool(self.backtest.get())})

    def run(self) -> None:
        """Check the form, then start a run in the configured mode (process or thread)."""
        if self.job is not None and self.job.running:
            self.say("a run is already in progress", "warn")
            return
        try:
            request = self.request()
        except ValueError as e:
            count = len(self.form.marked())
            self.say(f"not started: {e}" if count < 2 else
                     f"not started: fix the {count} fields marked in red", "error")
            return
        self.clock = RunClock(PROGRESS_STAGES, time.monotonic(), self._previous_timings())
        for bar in self.bars.values():
            bar.configure(value=0.0, style="Stage.Horizontal.TProgressbar")
        self.job = ResearchJob(request, self.app.bus.post, mode=self.app.research_mode)
        self.app.stall.reset()  # the gap of this click is the first one measured
        with self.app.stall.timed("start research job"):
            self.job.start()
        with self.app.stall.timed("start helper process"):
            self.app.warm_up()
        self.run_button.state(["disabled"])
        self.cancel_button.state(["!disabled"])
        self.say(f"running ({self.app.research_mode})...")
        self._mark_stale("a new run is in progress")
        self._tick()

    def cancel(self) -> None:
        """Stop the run in progress (before its next stage or training task)."""
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.say("cancelling: the run stops before its next stage or training task...",
                     "warn")

    def cancel_with_confirmation(self) -> None:
        """Esc: cancel the run in progress after a confirmation (nothing when none runs)."""
        if self.job is not None and self.job.running and self.app.confirm(
                "Cancel the run", "Cancel the research run in progress? Nothing of it is "
                                  "kept."):
            self.cancel()

    def browse_csv(self) -> None:
        """Ask for a bars file (CSV or Parquet) and put its path into the data field."""
        path = filedialog.askopenfilename(title="Bars file", filetypes=[
            ("Bars", "*.csv *.csv.gz *.parquet"), ("All", "*")])
        if path:
            self.form.vars["data_path"].set(path)

    def browse_sectors(self) -> None:
        """Ask for a sectors CSV and put its path into the sectors field."""
        path = filedialog.askopenfilename(title="Sectors file", filetypes=[
            ("Sectors", "*.csv"), ("All", "*")])
        if path:
            self.form.vars["sectors_path"].set(path)

    def open_excel(self) -> None:
        """Open the shown run's ``recommendations.xlsx``, or say why it cannot."""
        if self.run_dir is None:
            self.say("no run yet: run the model first (F5)", "warn")
            return
        workbook = self.run_dir / "recommendations.xlsx"
        if not workbook.exists():
            self.say(f"run {self.run_dir.name} has no Excel workbook (recommendations.xlsx): "
                     "it was written by an older report, or the report failed to write it "
                     "(see the Logs tab)", "error")
            return
        self.app.open_file(workbook, "Excel workbook")

    def open_folder(self) -> None:
        """Open the shown run's folder, else the result root, or say it does not exist yet."""
        target = self.run_dir or self.app.paths.result_root
        if not Path(target).exists():
            self.say(f"no result folder yet: {target} is created by the first run", "warn")
            return
        self.app.open_file(target, "result folder")

    # -- progress --------------------------------------------------------------------------
    def _previous_timings(self) -> dict[str, float]:
        if self.run_dir is None:
            return {}
        try:
            metrics = json.loads((self.run_dir / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            logger.info("no previous stage times for the ETA: %s", e)
            return {}
        return {k: float(v) for k, v in metrics.get("timings_s", {}).items()
                if k in PROGRESS_STAGES}

    def _on_progress(self, msg: JobProgress) -> None:
        if self.clock is None:
            return
        self.clock.update(msg.stage, msg.done, msg.total, time.monotonic())
        self._draw_progress(self.clock)

    def _tick(self) -> None:
        self._tick_id = None
        if self.job is None or not self.job.running or self.clock is None:
            return
        self._draw_progress(self.clock)
        self._tick_id = self.after(CLOCK_MS, self._tick)

    def _draw_progress(self, clock: RunClock) -> None:
        now = time.monotonic()
        rows = clock.rows(now)
        for row in rows:
            bar = self.bars[row.name]
            if float(bar.cget("value")) != row.fraction:
                bar.configure(value=row.fraction)
            if row.state == "done":
                bar.configure(style="Done.Horizontal.TProgressbar")
                text = duration_text(row.elapsed_s)
            elif row.state == "running":
                tasks = f"{row.tasks[0]}/{row.tasks[1]} fits, " if row.tasks else ""
                text = f"{tasks}{duration_text(row.elapsed_s)}" + (
                    f", ETA {duration_text(row.eta_s)}" if row.eta_s is not None else "")
            else:
                text = f"~{duration_text(row.eta_s)}" if row.eta_s else ""
            self.stage_times[row.name].set(text)
            self.stage_labels[row.name].configure(
                style="Heading.TLabel" if row.state == "running" else "TLabel")
        self.now_line.set(self._now_text(clock, rows, now))
        self.app.state.research = self._strip_text(clock, rows, now)
        self.app.refresh_header()

    def _now_text(self, clock: RunClock, rows, now: float) -> str:
        elapsed, eta = clock.overall(now)
        run = f"run {duration_text(elapsed)}" + (f", about {duration_text(eta)} left"
                                                 if eta is not None else "")
        running = next((r for r in rows if r.state == "running"), None)
        if running is None:
            return f"starting...   ·   {run}"
        what = {"load": "Loading the market data", "train": "Training"}.get(
            running.name, f"Stage {running.name}")
        if running.tasks:
            what += f": {running.tasks[0]} of {running.tasks[1]} fits (fold x model)"
        stage = f"stage {duration_text(running.elapsed_s)}" + (
            f", ETA {duration_text(running.eta_s)}" if running.eta_s is not None else "")
        return f"{what}   ·   {stage}   ·   {run}"

    def _strip_text(self, clock: RunClock, rows, now: float) -> str:
        running = next((r for r in rows if r.state == "running"), None)
        _, eta = clock.overall(now)
        name = running.name if running else "starting"
        tasks = f" {running.tasks[0]}/{running.tasks[1]}" if running and running.tasks else ""
        return f"running: {name}{tasks}" + (f", ~{duration_text(eta)} left" if eta else "")

    def _on_finished(self, msg: JobFinished) -> None:
        self.last_stall_s = self.app.stall.max_gap_s
        logger.info("research run finished in %.1fs: %s (main-loop max stall %.0f ms)",
                    msg.elapsed_s, msg.run_dir, 1000 * self.last_stall_s)
        self._idle()
        for bar in self.bars.values():
            bar.configure(value=1.0, style="Done.Horizontal.TProgressbar")
        self.now_line.set(f"Finished in {duration_text(msg.elapsed_s)}: {msg.run_dir.name}")
        self.say(f"done in {msg.elapsed_s:.1f}s: {msg.run_dir.name}", "good")
        self.show_run(msg.run_dir)

    def _stop_progress(self, word: str) -> None:
        # the stage that was running says how it ended; no ETA is left anywhere
        if self.clock is None:
            return
        for row in self.clock.rows(time.monotonic()):
            if row.state == "running":
                self.stage_times[row.name].set(f"{word} after {duration_text(row.elapsed_s)}")
                self.stage_labels[row.name].configure(style="Error.TLabel")
            elif row.state == "waiting":
                self.stage_times[row.name].set("")

    def _on_failed(self, msg: JobFailed) -> None:
        self._idle()
        self._stop_progress("cancelled" if msg.cancelled else "failed")
        if msg.cancelled:
            self.say(f"cancelled: {msg.error}", "warn")
            self.now_line.set("Cancelled: nothing of the run was kept")
            self._mark_stale("the new run was cancelled")
            return
        self.say(f"Run failed: {msg.error}", "error")
        self.now_line.set("Failed: nothing of the run was kept")
        self._mark_stale("the new run failed")
        if msg.details:
            self.details.configure(state="normal")
            self.details.delete("1.0", "end")
            self.details.insert("1.0", msg.details)
            self.details.configure(state="disabled")
            self.details_button.pack(anchor="w", padx=8, after=self.message_label)

    def _idle(self) -> None:
        self.run_button.state(["!disabled"])
        self.cancel_button.state(["disabled"])
        if self._tick_id is not None:
            self.after_cancel(self._tick_id)
            self._tick_id = None
        self.app.state.research = ""
        self.app.refresh_header()

    def _mark_stale(self, why: str) -> None:
        if self.shown is None:
            self.stale.configure(text="")
            return
        age = ago_text(time.time() - self.shown.finished_at)
        self.stale.configure(text=f"shown: the previous run {self.shown.run_id} (finished "
                                  f"{age}); {why}")

    # -- results ---------------------------------------------------------------------------
    def _load_existing(self) -> None:
        # the run's identity first (a stat and a small JSON: the banner's DEMO DATA and the
        # strip at once), then its table and charts from the helper process
        root = self.app.paths.result_root
        self.app.run_background("latest-run", lambda: run_info(latest_run_dir(root)),
                                self._on_latest)

    def _on_latest(self, outcome) -> None:
        if outcome.error is not None:
            if not isinstance(outcome.error, RecommendationsError):
                self.say(f"cannot read the newest run: {outcome.error}", "error")
            return
        info: RunInfo = outcome.value
        state = self.app.state
        state.run_id, state.run_finished_at, state.demo_run = \
            info.run_id, info.finished_at, info.is_demo
        state.run_last_date = info.last_date
        self.app.refresh_header()
        self.show_run(info.run_dir)

    def show_run(self, run_dir: Path) -> None:
        """Read the run's files and render the charts in the helper process, then show them."""
        run_dir = self.run_dir = Path(run_dir)

        def summary_done(outcome) -> None:
            self._show_summary(run_dir, outcome)

        self.app.run_in_process("load-run", _summary_and_chart, run_dir,
                                self._chart_width_in(), on_done=summary_done)

    def _chart_width_in(self) -> float:
        # the charts fill the window's width at the time of the run (9 to 14 inches)
        # (the visible width: this view is as wide as its content, charts included)
        pixels = max(self.app.notebook.winfo_width(), 1) if \
            self.app.notebook.winfo_width() > 1 else self.app.root.winfo_width()
        return min(14.0, max(9.0, (pixels - 48) / CHART_DPI))

    def _show_summary(self, run_dir: Path, outcome) -> None:
        if run_dir != self.run_dir:  # a later show_run() is under way: its result follows
            logger.info("run %s not shown: %s was selected since", run_dir.name,
                        self.run_dir.name if self.run_dir else None)
            return
        if outcome.error is not None:
            self.say(f"cannot read run {run_dir.name}: {outcome.error}", "error")
            return
        summary, image, info = outcome.value
        self.shown = info
        self.table.set_rows(recommendation_rows(summary.recommendations),
                            chunk=TABLE_CHUNK, on_done=lambda: self._filled(summary))
        self.chart.show(image, IMAGE_FORMAT)
        self.chart_image = self.chart
        demo = "  ·  DEMO DATA" if summary.is_demo else ""
        self.results_title.configure(
            text=f"Results: run {info.run_id}{demo}  ·  finished "
                 f"{ago_text(time.time() - info.finished_at)}")
        if self.job is None or not self.job.running:
            self.stale.configure(text="")
        self._show_signal(summary.signal)
        state = self.app.state
        state.run_id, state.run_finished_at = info.run_id, info.finished_at
        state.run_last_date, state.demo_run = info.last_date, summary.is_demo
        state.run_signal = summary.signal.signal if summary.signal is not None else None
        self.app.refresh_header()
        self.app.bus.post(RunShown(summary.run_dir))

    def _show_signal(self, signal: SignalCheck | None) -> None:
        if signal is None:
            self.signal_line.configure(text="", style="TLabel")
            return
        styles: dict[bool | None, str] = {True: "Good.TLabel", False: "Error.TLabel"}
        style = styles.get(signal.good, "Warn.TLabel")
        text = signal.text if signal.good is not False else f"WARNING: {signal.text}"
        self.signal_line.configure(text=text, style=style)

    def _filled(self, summary: RunSummary) -> None:
        self.summary = summary  # the table now holds every row of the run

    def shutdown(self) -> None:
        """Terminate the research worker if one is running."""
        if self.job is not None and self.job.running:
            self.job.terminate()


def _summary_and_chart(run_dir: Path, width_in: float = 14.0
                       ) -> tuple[RunSummary, list[bytes], RunInfo]:
    summary = load_summary(run_dir)
    return summary, research_image(summary, width_in=width_in), run_info(run_dir)


@dataclass(frozen=True)
class RunShown:
    """Posted after a run was displayed (the Backtest tab follows the newest run)."""

    run_dir: Path


def register(app) -> None:
    """Add the Research tab."""
    app.add_view("research", "tab.research", ResearchView)
