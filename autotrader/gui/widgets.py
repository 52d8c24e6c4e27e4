"""Small reusable widgets: a scrollable page, a table and a labelled form grid."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Iterable, Sequence
from tkinter import ttk


class ScrollablePage(ttk.Frame):
    """A vertically scrollable page; put content in :attr:`body`.

    The mouse wheel scrolls the page under the pointer ("global scrolling"),
    except over a widget that scrolls itself (tables, text), which keeps the
    wheel.
    """

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.canvas = tk.Canvas(self, highlightthickness=0)
        self.scrollbar = ttk.Scrollbar(self, orient="vertical", command=self.canvas.yview)
        self.canvas.configure(yscrollcommand=self.scrollbar.set)
        self.body = ttk.Frame(self.canvas)
        self._window = self.canvas.create_window((0, 0), window=self.body, anchor="nw")
        self.scrollbar.pack(side="right", fill="y")
        self.canvas.pack(side="left", fill="both", expand=True)
        self.body.bind("<Configure>", self._on_body)
        self.canvas.bind("<Configure>", self._on_canvas)

    def _on_body(self, _event: tk.Event) -> None:
        self.canvas.configure(scrollregion=self.canvas.bbox("all"))

    def _on_canvas(self, event: tk.Event) -> None:
        self.canvas.itemconfigure(self._window, width=event.width)

    def scroll(self, units: int) -> None:
        """Scroll by ``units`` lines (negative = up)."""
        self.canvas.yview_scroll(units, "units")


def install_global_wheel(root: tk.Tk) -> None:
    """Route wheel events to the nearest :class:`ScrollablePage` above the pointer widget."""

    def on_wheel(event: tk.Event) -> None:
        widget = event.widget
        if isinstance(widget, (ttk.Treeview, tk.Text, tk.Listbox)):
            return
        units = -1 if getattr(event, "num", 0) == 4 or getattr(event, "delta", 0) > 0 else 1
        while widget is not None and not isinstance(widget, ScrollablePage):
            widget = getattr(widget, "master", None)
        if widget is not None:
            widget.scroll(units)

    for sequence in ("<MouseWheel>", "<Button-4>", "<Button-5>"):
        root.bind_all(sequence, on_wheel, add="+")


class Table(ttk.Frame):
    """A :class:`ttk.Treeview` with scrollbars and whole-table replacement."""

    def __init__(self, master: tk.Misc, columns: Sequence[str], height: int = 10,
                 widths: dict[str, int] | None = None) -> None:
        super().__init__(master)
        self.tree = ttk.Treeview(self, columns=list(columns), show="headings", height=height)
        for name in columns:
            self.tree.heading(name, text=name)
            self.tree.column(name, width=(widths or {}).get(name, 90), anchor="w")
        yscroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        xscroll = ttk.Scrollbar(self, orient="horizontal", command=self.tree.xview)
        self.tree.configure(yscrollcommand=yscroll.set, xscrollcommand=xscroll.set)
        self.tree.grid(row=0, column=0, sticky="nsew")
        yscroll.grid(row=0, column=1, sticky="ns")
        xscroll.grid(row=1, column=0, sticky="ew")
        self.columnconfigure(0, weight=1)
        self.rowconfigure(0, weight=1)

    def set_rows(self, rows: Iterable[Sequence[object]]) -> None:
        """Replace every row."""
        self.tree.delete(*self.tree.get_children())
        for row in rows:
            self.tree.insert("", "end", values=[_cell(v) for v in row])

    def rows(self) -> list[tuple[str, ...]]:
        """The displayed rows as text tuples (tests read the table through this)."""
        return [tuple(str(v) for v in self.tree.item(i, "values"))
                for i in self.tree.get_children()]


def _cell(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


class Form(ttk.Frame):
    """A two-column grid of labelled entry fields, keyed by name."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.vars: dict[str, tk.StringVar] = {}
        self.entries: dict[str, ttk.Entry] = {}

    def add(self, name: str, text: str, value: object = "", width: int = 18) -> tk.StringVar:
        """Add one row; returns its variable."""
        row = len(self.vars)
        var = tk.StringVar(self, value="" if value is None else str(value))
        ttk.Label(self, text=text).grid(row=row, column=0, sticky="w", padx=4, pady=1)
        entry = ttk.Entry(self, textvariable=var, width=width)
        entry.grid(row=row, column=1, sticky="w", padx=4, pady=1)
        self.vars[name], self.entries[name] = var, entry
        return var

    def values(self) -> dict[str, str]:
        """Current text of every field."""
        return {name: var.get().strip() for name, var in self.vars.items()}
