"""The account's equity curve, drawn as a line on a ``tk.Canvas``.

A few hundred points and six text items: drawing it costs well under a
millisecond, so it is redrawn on the Tk thread with every book snapshot (no
helper process, unlike the research charts). The marks come from the journal
(:meth:`autotrader.journal.Journal.equity_marks`, one per cycle).
"""

from __future__ import annotations

import datetime as dt
import tkinter as tk
from collections.abc import Sequence
from typing import Literal

from autotrader.gui.theme import COLOURS

__all__ = ["EquityChart"]

PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 70, 12, 22, 22


class EquityChart(tk.Canvas):
    """Equity over time with the first/last time, the range and the change since the start."""

    def __init__(self, master: tk.Misc, width: int = 420, height: int = 170) -> None:
        super().__init__(master, width=width, height=height, background=COLOURS["panel"],
                         highlightthickness=1, highlightbackground="#c9d1da")
        self.marks: tuple[tuple[dt.datetime, float], ...] = ()
        self.bind("<Configure>", lambda _e: self.draw(self.marks))

    def draw(self, marks: Sequence[tuple[dt.datetime, float]]) -> None:
        """Redraw with ``marks`` (``(time, equity)``, oldest first)."""
        self.marks = tuple(marks)
        self.delete("all")
        width = max(self.winfo_width(), int(self.cget("width")))
        height = max(self.winfo_height(), int(self.cget("height")))
        muted = COLOURS["muted"]
        self.create_text(8, 4, anchor="nw", text="Account equity (USD)", fill=muted,
                         font=("TkDefaultFont", 9, "bold"))
        if len(self.marks) < 2:
            self.create_text(width // 2, height // 2, fill=muted, text=(
                "one mark per trading cycle: the curve appears after the second cycle"
                if self.marks else "no equity marks yet: start a session"))
            return
        values = [v for _, v in self.marks]
        low, high = min(values), max(values)
        span = (high - low) or max(abs(high) * 0.001, 1.0)
        left, right = PAD_LEFT, width - PAD_RIGHT
        top, bottom = PAD_TOP, height - PAD_BOTTOM
        step = (right - left) / (len(values) - 1)
        points = []
        for i, value in enumerate(values):
            points += [left + i * step, bottom - (value - low) / span * (bottom - top)]
        change = values[-1] - values[0]
        colour = COLOURS["good"] if change >= 0 else COLOURS["bad"]
        self.create_line(left, bottom, right, bottom, fill="#c9d1da")
        self.create_line(*points, fill=colour, width=2)
        for value, y in ((high, top), (low, bottom)):
            self.create_text(left - 6, y, anchor="e", text=f"{value:,.0f}", fill=muted,
                             font=("TkDefaultFont", 8))
        first, last = self.marks[0][0], self.marks[-1][0]
        anchor: Literal["nw", "ne"]
        for moment, x, anchor in ((first, left, "nw"), (last, right, "ne")):
            self.create_text(x, bottom + 3, anchor=anchor, text=f"{moment:%m-%d %H:%M}",
                             fill=muted, font=("TkDefaultFont", 8))
        self.create_text(right, 4, anchor="ne", fill=colour, font=("TkDefaultFont", 9, "bold"),
                         text=f"{values[-1]:,.0f}  ({change:+,.0f}, "
                              f"{change / values[0]:+.2%})" if values[0] else "")
