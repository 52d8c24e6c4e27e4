"""Database / watchlist tab: edit the watchlist table and import stocks.txt or a ticker CSV.

The watchlist lives in the app database (:mod:`autotrader.appdb`); its SQLite
connection is opened and used on the Tk thread only (each call is one small
transaction). An import shows the summary and every rejected line.
"""

from __future__ import annotations

import logging
import sqlite3
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, ttk

from autotrader import appdb
from autotrader.gui.widgets import Table
from autotrader.universe import UniverseError, Watchlist

logger = logging.getLogger(__name__)


class WatchlistView(ttk.Frame):
    """Table of the watchlist, add/remove, import with a report of rejected lines."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.conn: sqlite3.Connection = appdb.connect(app.paths.db_path)
        self.watchlist = Watchlist(self.conn)
        self.message = tk.StringVar(self, value="")
        bar = ttk.Frame(self)
        bar.pack(fill="x", padx=6, pady=4)
        self.ticker = tk.StringVar(self, value="")
        ttk.Entry(bar, textvariable=self.ticker, width=10).pack(side="left")
        ttk.Button(bar, text=app.t("watchlist.add"), command=self.add).pack(side="left", padx=4)
        ttk.Button(bar, text=app.t("watchlist.remove"), command=self.remove_selected).pack(
            side="left", padx=4)
        self.import_path = tk.StringVar(self, value=str(app.paths.stocks_file or "stocks.txt"))
        ttk.Entry(bar, textvariable=self.import_path, width=40).pack(side="left", padx=(16, 2))
        ttk.Button(bar, text="...", width=3, command=self.browse).pack(side="left")
        ttk.Button(bar, text=app.t("watchlist.import"), command=self.import_file).pack(
            side="left", padx=4)
        ttk.Label(self, textvariable=self.message, wraplength=900).pack(fill="x", padx=6)
        self.table = Table(self, ("ticker", "note", "added_at"), height=14,
                           widths={"note": 300, "added_at": 220})
        self.table.pack(fill="x", padx=6, pady=4)
        ttk.Label(self, text="Rejected lines of the last import").pack(anchor="w", padx=6)
        self.rejected = tk.Text(self, height=8, width=100)
        self.rejected.pack(fill="x", padx=6, pady=4)
        self.refresh()

    def refresh(self) -> None:
        """Reload the table from the watchlist."""
        self.table.set_rows(self.watchlist.entries())

    def add(self) -> None:
        """Add the ticker typed in the entry; the message line says what happened."""
        try:
            ticker = self.watchlist.add(self.ticker.get())
        except UniverseError as e:
            self.message.set(f"not added: {e}")
            return
        self.ticker.set("")
        self.message.set(f"added {ticker}")
        self.refresh()

    def remove_selected(self) -> None:
        """Remove the selected tickers from the watchlist."""
        tree = self.table.tree
        removed = [tree.item(i, "values")[0] for i in tree.selection()]
        for ticker in removed:
            self.watchlist.remove(ticker)
        self.message.set(f"removed {', '.join(removed)}" if removed else "nothing selected")
        self.refresh()

    def browse(self) -> None:
        """Choose the import file in a file dialog (cancel keeps the current path)."""
        path = filedialog.askopenfilename(
            title="Import tickers", filetypes=[("Ticker files", "*.txt *.csv"), ("All", "*")])
        if path:
            self.import_path.set(path)

    def import_file(self) -> None:
        """Import the file named in the path field; show the summary and rejected lines."""
        path = Path(self.import_path.get().strip())
        try:
            report = self.watchlist.import_file(path)
        except UniverseError as e:
            self.message.set(f"import failed: {e}")
            return
        self.message.set(report.summary())
        self.rejected.delete("1.0", "end")
        lines = [str(r) for r in report.rejected] + list(report.duplicates)
        self.rejected.insert("1.0", "\n".join(lines) if lines else "(none)")
        self.refresh()

    def shutdown(self) -> None:
        """Close the view's database connection."""
        self.conn.close()


def register(app) -> None:
    """Add the Database / watchlist tab."""
    app.add_view("watchlist", "tab.watchlist", WatchlistView)
