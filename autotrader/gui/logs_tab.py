"""Logs tab: the live log pane fed by :class:`~autotrader.gui.bus.QueueLogHandler`.

Records arrive as :class:`LogLine` messages through the bus (so any thread may
log); the pane keeps the last :data:`MAX_LINES` records, filters by level and
follows the tail unless "follow" is off.

Lines are buffered and written with one ``Text.insert`` per idle moment
(after the bus batch that delivered them): inserting 50 lines one call at a
time, each with its own ``see("end")``, cost ~11 ms of Tk thread under Xvfb,
one call with all of them ~0.5 ms.
"""

from __future__ import annotations

import logging
import tkinter as tk
from collections import deque
from tkinter import ttk

from autotrader.gui.bus import LogLine

MAX_LINES = 5000
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class LogView(ttk.Frame):
    """A read-only text pane with a level filter and a follow-tail switch."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.lines: deque[LogLine] = deque(maxlen=MAX_LINES)
        self._pending: list[LogLine] = []
        self._flush_id: str | None = None
        bar = ttk.Frame(self)
        bar.pack(fill="x", padx=6, pady=4)
        ttk.Label(bar, text="Level").pack(side="left")
        self.level = tk.StringVar(self, value="INFO")
        box = ttk.Combobox(bar, textvariable=self.level, values=LEVELS, state="readonly",
                           width=10)
        box.pack(side="left", padx=4)
        box.bind("<<ComboboxSelected>>", lambda _e: self.rerender())
        self.follow = tk.BooleanVar(self, value=True)
        ttk.Checkbutton(bar, text="Follow", variable=self.follow).pack(side="left", padx=8)
        ttk.Button(bar, text="Clear", command=self.clear).pack(side="left")
        frame = ttk.Frame(self)
        frame.pack(fill="both", expand=True, padx=6, pady=4)
        self.text = tk.Text(frame, height=40, wrap="none", state="disabled")
        scroll = ttk.Scrollbar(frame, orient="vertical", command=self.text.yview)
        self.text.configure(yscrollcommand=scroll.set)
        scroll.pack(side="right", fill="y")
        self.text.pack(side="left", fill="both", expand=True)
        for name, colour in (("WARNING", "#b26a00"), ("ERROR", "#c62828")):
            self.text.tag_configure(name, foreground=colour)
        app.bus.subscribe(LogLine, self.append)

    def _threshold(self) -> int:
        return logging.getLevelName(self.level.get())

    def append(self, line: LogLine) -> None:
        """Keep ``line``; show it (with the others of this batch) when Tk is next idle."""
        self.lines.append(line)
        if line.levelno >= self._threshold():
            self._pending.append(line)
            if self._flush_id is None:
                self._flush_id = self.after_idle(self._flush)

    def _flush(self) -> None:
        self._flush_id = None
        lines, self._pending = self._pending, []
        if lines:
            with self.app.stall.timed(f"log pane {len(lines)} lines"):
                self._insert(lines)

    def _insert(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        chunks: list[str] = []
        for line in lines:
            tag = "ERROR" if line.levelno >= logging.ERROR else (
                "WARNING" if line.levelno >= logging.WARNING else "")
            chunks += [line.text + "\n", tag]
        self.text.configure(state="normal")
        self.text.insert("end", *chunks)
        excess = int(self.text.index("end-1c").split(".")[0]) - MAX_LINES
        if excess > 0:
            self.text.delete("1.0", f"{excess + 1}.0")
        self.text.configure(state="disabled")
        if self.follow.get():
            self.text.see("end")

    def rerender(self) -> None:
        """Show the kept records again with the current level filter."""
        self._pending = []  # every kept record is re-inserted below
        self.text.configure(state="normal")
        self.text.delete("1.0", "end")
        self.text.configure(state="disabled")
        threshold = self._threshold()
        self._insert([line for line in self.lines if line.levelno >= threshold])

    def visible_text(self) -> str:
        """Return the text the view shows now (the filtered lines)."""
        return self.text.get("1.0", "end-1c")

    def clear(self) -> None:
        """Forget the kept records and empty the view."""
        self.lines.clear()
        self.rerender()


def register(app) -> None:
    """Add the Logs tab."""
    app.add_view("logs", "tab.logs", LogView)
