"""Data / Polygon tab: key status (never the key), cache coverage, update with progress, test.

Every network or disk call runs on a helper thread (:meth:`Workstation.run_background`);
progress of "Update data" is posted to the bus as :class:`DataProgress`.
"""

from __future__ import annotations

import datetime as dt
import logging
import tkinter as tk
from dataclasses import dataclass
from pathlib import Path
from tkinter import ttk

from autotrader.config import polygon_api_key
from autotrader.gui.widgets import Table

logger = logging.getLogger(__name__)

UPDATE_YEARS = 3


@dataclass(frozen=True)
class DataProgress:
    """``done`` of ``total`` tickers refreshed; ``label`` is the last one."""

    done: int
    total: int
    label: str


def _client(settings):
    from polygon.client import PolygonClient

    poly = settings.polygon
    return PolygonClient(base_url=poly.base_url, api_key=polygon_api_key(),
                         rate_limit_per_min=poly.requests_per_minute, timeout_s=poly.timeout_s,
                         max_retries=poly.max_retries)


def cache_coverage(cache_dir: str | Path) -> list[tuple[str, str, str]]:
    """``(ticker, first session, last session)`` of every cached bar file."""
    from bma_models.data import calendar
    from polygon.store import BarStore

    store = BarStore(None, cache_dir, calendar=calendar)  # read-only: no client, no request
    rows = []
    for ticker in store.cached_tickers():
        span = store.coverage(ticker)
        rows.append((ticker, str(span[0].date()), str(span[1].date())) if span
                    else (ticker, "", ""))
    return rows


class DataView(ttk.Frame):
    """Polygon status, cache table, Update data, Test request."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.key_status = tk.StringVar(self, value="")
        self.message = tk.StringVar(self, value="")
        key = ttk.Frame(self)
        key.pack(fill="x", padx=6, pady=(6, 0))
        ttk.Label(key, text="Polygon API key:", style="Heading.TLabel").pack(side="left")
        ttk.Label(key, textvariable=self.key_status).pack(side="left", padx=6)
        head = ttk.Frame(self)
        head.pack(fill="x", padx=6, pady=4)
        self.update_button = ttk.Button(head, text=app.t("data.update"), command=self.update_data)
        self.update_button.pack(side="left")
        self.test_button = ttk.Button(head, text=app.t("data.test"), command=self.test_request)
        self.test_button.pack(side="left", padx=6)
        ttk.Button(head, text="Refresh coverage", command=self.refresh).pack(side="left")
        self.progress = ttk.Progressbar(self, length=400, maximum=1.0)
        self.progress.pack(anchor="w", padx=6)
        ttk.Label(self, textvariable=self.message, wraplength=900).pack(fill="x", padx=6)
        self.coverage = Table(self, ("ticker", "first", "last"), height=14)
        self.coverage.pack(fill="x", padx=6, pady=4)
        app.bus.subscribe(DataProgress, self._on_progress)
        self.after_idle(self.refresh)

    def refresh(self) -> None:
        """Key status now; cache coverage on a helper thread."""
        has_key = bool(polygon_api_key())
        self.key_status.set("set (from the environment)" if has_key else
                            "NOT set: export POLYGON_API_KEY (or MASSIVE_API_KEY); demo data "
                            "works without it")
        cache_dir = self.app.settings.polygon.cache_dir
        self.app.run_background("cache-coverage", lambda: cache_coverage(cache_dir),
                                self._on_coverage)

    def _on_coverage(self, outcome) -> None:
        if outcome.error is not None:
            self.message.set(f"cache unreadable: {outcome.error}")
            return
        self.coverage.set_rows(outcome.value)
        self.message.set(f"{len(outcome.value)} tickers cached in "
                         f"{self.app.settings.polygon.cache_dir}")

    def _needs_key(self) -> bool:
        if polygon_api_key():
            return False
        self.message.set("no Polygon API key in the environment: nothing to request")
        return True

    def update_data(self) -> None:
        """Refresh the bar cache for the configured universe (helper thread)."""
        if self._needs_key():
            return
        settings, post = self.app.settings, self.app.bus.post
        db_path = self.app.paths.db_path

        def work():
            from autotrader.universe import configured_universe
            from bma_models.data import calendar
            from polygon.store import BarStore

            app_cfg = settings.app
            tickers = configured_universe(app_cfg.universe_source, app_cfg.stocks_file,
                                          db_path)
            start = dt.date.today() - dt.timedelta(days=365 * UPDATE_YEARS)
            with _client(settings) as client:
                store = BarStore(client, settings.polygon.cache_dir, calendar=calendar,
                                 raise_on_failure=False,
                                 progress=lambda d, t, label: post(DataProgress(d, t, label)))
                return store.refresh(tickers, str(start))

        self.update_button.state(["disabled"])
        self.message.set("updating...")
        self.app.run_background("update-data", work, self._on_updated)

    def _on_updated(self, outcome) -> None:
        self.update_button.state(["!disabled"])
        if outcome.error is not None:
            self.message.set(f"update failed: {outcome.error}")
            return
        report = outcome.value
        self.message.set(f"updated {len(report.tickers)} tickers ({report.mode}), "
                         f"{report.requests} requests, {len(report.failures)} failures")
        self.refresh()

    def _on_progress(self, msg: DataProgress) -> None:
        self.progress["value"] = msg.done / msg.total if msg.total else 1.0
        self.message.set(f"{msg.done}/{msg.total} {msg.label}")

    def test_request(self) -> None:
        """One previous-close request for SPY."""
        if self._needs_key():
            return
        settings = self.app.settings

        def work():
            with _client(settings) as client:
                return client.get_previous_close("SPY")

        self.message.set("requesting SPY previous close...")
        self.app.run_background("test-request", work, self._on_tested)

    def _on_tested(self, outcome) -> None:
        if outcome.error is not None:
            self.message.set(f"test request failed: {outcome.error}")
        else:
            self.message.set(f"test request OK: {outcome.value}")


def register(app) -> None:
    """Add the Data / Polygon tab."""
    app.add_view("data", "tab.data", DataView)
