"""Small reusable widgets: a scrollable page, a table and a labelled form grid."""

from __future__ import annotations

import itertools
import tkinter as tk
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from tkinter import ttk
from typing import Any, Literal


class ScrollablePage(ttk.Frame):
    """A scrollable page; put content in :attr:`body`.

    The page scrolls vertically, and horizontally when its content is wider
    than the window (the horizontal bar appears only then): nothing is ever
    clipped at a small window size. The mouse wheel scrolls the page under the
    pointer ("global scrolling"), except over a widget that scrolls itself
    (tables, text), which keeps the wheel.
    """

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.canvas = tk.Canvas(self, highlightthickness=0, borderwidth=0,
                                background=ttk.Style(self).lookup("TFrame", "background"))
        self.scrollbar = ttk.Scrollbar(self, orient="vertical", command=self.canvas.yview)
        self.xscrollbar = ttk.Scrollbar(self, orient="horizontal", command=self.canvas.xview)
        self.canvas.configure(yscrollcommand=self.scrollbar.set,
                              xscrollcommand=self.xscrollbar.set)
        self.body = ttk.Frame(self.canvas)
        self._window = self.canvas.create_window((0, 0), window=self.body, anchor="nw")
        self.canvas.grid(row=0, column=0, sticky="nsew")
        self.scrollbar.grid(row=0, column=1, sticky="ns")
        self.xscrollbar.grid(row=1, column=0, sticky="ew")
        self.xscrollbar.grid_remove()
        self.rowconfigure(0, weight=1)
        self.columnconfigure(0, weight=1)
        self.body.bind("<Configure>", self._on_body)
        self.canvas.bind("<Configure>", self._on_canvas)

    def _on_body(self, _event: tk.Event) -> None:
        self.refit()

    def _on_canvas(self, event: tk.Event) -> None:
        self._fit(event.width)

    def _fit(self, width: int) -> None:
        # the body is as wide as the window, or as wide as it needs (then it scrolls)
        needed = self.body.winfo_reqwidth()
        self.canvas.itemconfigure(self._window, width=max(width, needed))
        if needed > width > 1:
            self.xscrollbar.grid()
        else:
            self.xscrollbar.grid_remove()
            self.canvas.xview_moveto(0)

    def refit(self) -> None:
        """Fit the body to the window again after its content changed width.

        Tk reports no change of a widget's requested width, so a page whose
        content got narrower (a chart redrawn for a narrower window) kept its
        old width and its horizontal scrollbar until the window was resized;
        content that changes width calls this (:class:`StripImage` does).
        """
        self._fit(self.canvas.winfo_width())
        self.canvas.configure(scrollregion=self.canvas.bbox("all"))

    @property
    def clipped(self) -> bool:
        """True when the content is wider than the visible page (then it scrolls sideways)."""
        return self.body.winfo_reqwidth() > self.canvas.winfo_width()

    def scroll(self, units: int) -> None:
        """Scroll by ``units`` lines (negative = up)."""
        self.canvas.yview_scroll(units, "units")


def install_global_wheel(root: tk.Tk) -> None:
    """Route wheel events to the nearest :class:`ScrollablePage` above the pointer widget."""

    def on_wheel(event: tk.Event) -> None:
        widget: tk.Misc | None = event.widget
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
    """A :class:`ttk.Treeview` with scrollbars and whole-table replacement.

    Columns keep at least their configured width (the horizontal scrollbar
    shows the rest) instead of being squeezed unreadable; ``numeric`` columns
    are right-aligned, headings included. The ``stretch`` columns share the
    spare width of a wide window evenly and give it back when the window
    narrows (default: the last column, when it is text); the table's requested
    width stays the sum of the configured widths, so a stretched table never
    makes its page scroll sideways. :meth:`set_rows` with
    ``chunk`` inserts that many rows per ``after`` tick, so a long table never
    blocks the Tk thread in one piece; ``timer`` (the app's
    :class:`~autotrader.gui.app.StallMeter`) times every chunk.
    """

    def __init__(self, master: tk.Misc, columns: Sequence[str], height: int = 10,
                 widths: dict[str, int] | None = None, timer: Any = None,
                 numeric: Sequence[str] = (), headings: dict[str, str] | None = None,
                 selectmode: Literal["extended", "browse", "none"] = "extended",
                 stretch: Sequence[str] | None = None) -> None:
        super().__init__(master)
        self.timer = timer
        self._fill: Iterator[Sequence[object]] | None = None
        self._fill_id: str | None = None
        self._on_filled: Callable[[], None] | None = None
        self._tag_of: Callable[[Sequence[object]], str | None] | None = None
        self._reselect: set[str] = set()
        self.tree = ttk.Treeview(self, columns=list(columns), show="headings", height=height,
                                 selectmode=selectmode)
        if stretch is None:  # a text last column takes any spare width; none shrinks
            stretch = () if columns[-1] in numeric else (columns[-1],)
        unknown = set(stretch) - set(columns)
        if unknown:
            raise ValueError(f"stretch names columns the table does not have: {sorted(unknown)}")
        for name in columns:
            width = (widths or {}).get(name, 90)
            anchor: Literal["e", "w"] = "e" if name in numeric else "w"
            self.tree.heading(name, text=(headings or {}).get(name, name), anchor=anchor)
            self.tree.column(name, width=width, minwidth=width, anchor=anchor,
                             stretch=name in stretch)
        yscroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        xscroll = ttk.Scrollbar(self, orient="horizontal", command=self.tree.xview)
        self.tree.configure(yscrollcommand=yscroll.set, xscrollcommand=xscroll.set)
        self.tree.grid(row=0, column=0, sticky="nsew")
        yscroll.grid(row=0, column=1, sticky="ns")
        xscroll.grid(row=1, column=0, sticky="ew")
        self.columnconfigure(0, weight=1)
        self.rowconfigure(0, weight=1)

    def destroy(self) -> None:
        """Cancel an unfinished chunked fill, then destroy."""
        if self._fill_id is not None:
            self.after_cancel(self._fill_id)
            self._fill_id = None
        super().destroy()

    @property
    def pending(self) -> bool:
        """True while a chunked :meth:`set_rows` is still inserting."""
        return self._fill is not None

    def set_rows(self, rows: Iterable[Sequence[object]], chunk: int | None = None,
                 on_done: Callable[[], None] | None = None,
                 tag_of: Callable[[Sequence[object]], str | None] | None = None) -> None:
        """Replace every row; with ``chunk``, ``chunk`` rows per ``after`` tick.

        ``on_done()`` runs once the last row is in (at once without ``chunk``).
        A new call abandons an unfinished chunked fill. ``tag_of(row)`` names a
        row tag (colours: :meth:`tag`). Rows whose first value was selected
        stay selected (a refresh does not lose the trader's selection).
        """
        if self._fill_id is not None:
            self.after_cancel(self._fill_id)
            self._fill_id = None
        self._reselect = {str(v[0]) for v in self.selected()}
        self.tree.delete(*self.tree.get_children())
        self._fill, self._on_filled, self._tag_of = iter(rows), on_done, tag_of
        self._insert_chunk(chunk)

    def tag(self, name: str, **options: Any) -> None:
        """Configure row tag ``name`` (``foreground=``, ``background=``, ``font=``)."""
        self.tree.tag_configure(name, **options)

    def selected(self) -> list[tuple[str, ...]]:
        """Return the displayed values of the selected rows."""
        return [tuple(str(v) for v in self.tree.item(i, "values")) for i in self.tree.selection()]

    def _insert_chunk(self, chunk: int | None) -> None:
        self._fill_id = None
        if self._fill is None:
            return
        timing = self.timer.timed("table rows") if self.timer is not None else nullcontext()
        with timing:
            batch = list(itertools.islice(self._fill, chunk)) if chunk else list(self._fill)
            for row in batch:
                tag = self._tag_of(row) if self._tag_of is not None else None
                item = self.tree.insert("", "end", values=[_cell(v) for v in row],
                                        tags=(tag,) if tag else ())
                if row and str(_cell(row[0])) in self._reselect:
                    self.tree.selection_add(item)
        if chunk and len(batch) == chunk:
            self._fill_id = self.after(1, self._insert_chunk, chunk)
            return
        self._fill, done, self._on_filled = None, self._on_filled, None
        if done is not None:
            done()

    def rows(self) -> list[tuple[str, ...]]:
        """Return the displayed rows as text tuples (tests read the table through this)."""
        return [tuple(str(v) for v in self.tree.item(i, "values"))
                for i in self.tree.get_children()]


def _cell(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


class Form(ttk.Frame):
    """A grid of labelled entry fields, keyed by name, with a per-field error line.

    :meth:`mark` highlights a field in red with its message under it (form
    wording, shown before anything runs); :meth:`clear_marks` removes them.
    """

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.vars: dict[str, tk.StringVar] = {}
        self.entries: dict[str, ttk.Entry] = {}
        self.errors: dict[str, ttk.Label] = {}
        self.hints: dict[str, ttk.Label] = {}
        self._rows = 0

    def add(self, name: str, text: str, value: object = "", width: int = 18,
            widget: ttk.Entry | None = None, hint: str = "") -> tk.StringVar:
        """Add one row (an entry, or ``widget`` bound to the returned variable)."""
        row = self._rows
        self._rows += 2
        var = tk.StringVar(self, value="" if value is None else str(value))
        ttk.Label(self, text=text).grid(row=row, column=0, sticky="w", padx=4, pady=(2, 0))
        entry = widget or ttk.Entry(self, textvariable=var, width=width)
        if widget is not None:
            widget.configure(textvariable=var)
        entry.grid(row=row, column=1, sticky="w", padx=4, pady=(2, 0))
        if hint:
            self.hints[name] = ttk.Label(self, text=hint, style="Small.TLabel")
            self.hints[name].grid(row=row, column=2, sticky="w", padx=4)
        error = ttk.Label(self, text="", style="Error.TLabel")
        error.grid(row=row + 1, column=1, columnspan=2, sticky="w", padx=4)
        error.grid_remove()
        self.vars[name], self.entries[name], self.errors[name] = var, entry, error
        return var

    def extra(self, name: str, widget: tk.Widget) -> None:
        """Put ``widget`` (a "..." button) right of field ``name``, before its hint."""
        info = self.entries[name].grid_info()
        widget.grid(row=info["row"], column=2, sticky="w", padx=2)
        if name in self.hints:  # the hint moves right of the widget, in the same cell
            self.hints[name].grid_configure(padx=(widget.winfo_reqwidth() + 8, 4))

    def values(self) -> dict[str, str]:
        """Return the current text of every field, stripped."""
        return {name: var.get().strip() for name, var in self.vars.items()}

    def mark(self, name: str, message: str) -> None:
        """Highlight field ``name`` and show ``message`` under it."""
        entry = self.entries[name]
        kind = "TCombobox" if isinstance(entry, ttk.Combobox) else "TEntry"
        entry.configure(style=f"Bad.{kind}")
        self.errors[name].configure(text=message)
        self.errors[name].grid()

    def clear_marks(self) -> None:
        """Remove every highlight and error line."""
        for name, entry in self.entries.items():
            entry.configure(style="TCombobox" if isinstance(entry, ttk.Combobox) else "TEntry")
            self.errors[name].configure(text="")
            self.errors[name].grid_remove()

    def marked(self) -> dict[str, str]:
        """``{field: message}`` of the highlighted fields (tests read the form through this)."""
        return {name: label.cget("text") for name, label in self.errors.items()
                if label.cget("text")}


class Tooltip:
    """A help text shown next to ``widget`` while the pointer rests on it (0.4 s delay)."""

    def __init__(self, widget: tk.Widget, text: str, wraplength: int = 420) -> None:
        self.widget, self.text, self.wraplength = widget, text, wraplength
        self._after: str | None = None
        self._tip: tk.Toplevel | None = None
        widget.bind("<Enter>", self._schedule, add="+")
        widget.bind("<Leave>", self.hide, add="+")
        widget.bind("<ButtonPress>", self.hide, add="+")

    def _schedule(self, _event: tk.Event | None = None) -> None:
        self._cancel()
        self._after = self.widget.after(400, self.show)

    def _cancel(self) -> None:
        if self._after is not None:
            self.widget.after_cancel(self._after)
            self._after = None

    def show(self) -> None:
        """Show the tip now (tests and screenshots call this directly)."""
        self._after = None
        if self._tip is not None or not self.text:
            return
        x = self.widget.winfo_rootx() + 16
        y = self.widget.winfo_rooty() + self.widget.winfo_height() + 4
        self._tip = tk.Toplevel(self.widget)
        self._tip.wm_overrideredirect(True)
        self._tip.wm_geometry(f"+{x}+{y}")
        tk.Label(self._tip, text=self.text, justify="left", background="#fffbe6",
                 relief="solid", borderwidth=1, wraplength=self.wraplength,
                 padx=6, pady=4).pack()

    def hide(self, _event: tk.Event | None = None) -> None:
        """Hide the tip (and cancel a pending one)."""
        self._cancel()
        if self._tip is not None:
            self._tip.destroy()
            self._tip = None


class PhotoHolder(tk.Label):
    """A label that keeps a reference to its photo (Tk does not: see :func:`hold_photo_colors`)."""

    def __init__(self, master: tk.Misc, image: tk.PhotoImage, name: str) -> None:
        super().__init__(master, image=image, name=name)
        self.image = image  # the label must keep the photo alive


def hold_photo_colors(root: tk.Misc) -> PhotoHolder:
    """Keep Tk's photo colour table of ``root``'s display allocated while ``root`` lives.

    Why: Tk allocates a colour table for a display when the first photo image
    is used there and frees it when the last photo goes. Under Xvfb, the first
    strip of a chart then cost 20-30 ms of main-loop time (8-13 ms of CPU,
    the rest X round trips) where every later strip cost 1-5 ms; a new run
    replaces the charts, so every run paid it again. A 1 x 1 photo held by a
    label that is never shown keeps the table, so the first strip costs what
    the others do. Returns that label (it owns the photo).
    """
    image = tk.PhotoImage(master=root, width=1, height=1)
    return PhotoHolder(root, image, "photo_color_holder")


#: milliseconds between two strips of a :class:`StripImage` (one main-loop poll tick), so
#: that each strip's display conversion falls in its own tick
STRIP_INTERVAL_MS = 20


class StripImage(ttk.Frame):
    """An image made of horizontal strips, shown one strip per ``after`` tick.

    Why: Tk converts a photo for the display after the handler that set it
    returns (~15 ms of CPU per 300 000 pixels under Xvfb), in one piece; a
    1120 x 520 chart then stalls the main loop for ~30 ms at once. Strips of
    :data:`autotrader.gui.charts.STRIP_ROWS` rows, one per tick, keep each
    piece short. The strips are stacked without gaps, so the result looks like
    one image.
    """

    def __init__(self, master: tk.Misc, text: str = "", timer: Any = None) -> None:
        super().__init__(master)
        self.timer = timer
        self.placeholder = ttk.Label(self, text=text)
        self.placeholder.pack(anchor="w")
        self.images: list[tk.PhotoImage] = []
        self._labels: list[tk.Label] = []
        self._size = (0, 0)
        self._after_id: str | None = None

    def width(self) -> int:
        """Width of the image being shown (pixels)."""
        return self._size[0]

    def height(self) -> int:
        """Height of the whole image being shown (all strips, pixels)."""
        return self._size[1]

    @property
    def pending(self) -> bool:
        """True while strips are still being shown."""
        return self._after_id is not None

    def show(self, strips: Sequence[bytes], image_format: str) -> None:
        """Replace the image by ``strips`` (top to bottom), one per ``after`` tick."""
        if self._after_id is not None:
            self.after_cancel(self._after_id)
            self._after_id = None
        self.placeholder.pack_forget()
        sizes = [_ppm_size(strip) for strip in strips]
        self._size = (max((w for w, _ in sizes), default=0), sum(h for _, h in sizes))
        self.images = []
        for label in self._labels[len(strips):]:
            label.pack_forget()
        self._after_id = self.after(STRIP_INTERVAL_MS, self._show_strip, list(strips),
                                    image_format, 0)

    def destroy(self) -> None:
        """Cancel the pending strip, then destroy (no callback into a dead widget)."""
        if self._after_id is not None:
            self.after_cancel(self._after_id)
            self._after_id = None
        super().destroy()

    def _show_strip(self, strips: list[bytes], image_format: str, index: int) -> None:
        self._after_id = None
        if index in (1, len(strips)):
            # a tick after the first strip (the new width) and after the last one (the older,
            # perhaps wider image is gone), once Tk has passed the new size up: the page fits it
            self._refit_page()
        if index >= len(strips):
            return
        timing = self.timer.timed("chart strip") if self.timer is not None else nullcontext()
        with timing:
            image = tk.PhotoImage(master=self, data=strips[index], format=image_format)
            if index == len(self._labels):
                self._labels.append(tk.Label(self, borderwidth=0, highlightthickness=0))
            label = self._labels[index]
            label.configure(image=image)
            label.pack(anchor="w", padx=0, pady=0)
            self.images.append(image)
        self._after_id = self.after(STRIP_INTERVAL_MS, self._show_strip, strips, image_format,
                                    index + 1)


    def _refit_page(self) -> None:
        widget: tk.Misc | None = self.master
        while widget is not None and not isinstance(widget, ScrollablePage):
            widget = widget.master
        if widget is not None:
            widget.refit()


def _ppm_size(data: bytes) -> tuple[int, int]:
    # "P6 <width> <height> 255\n" as written by autotrader.gui.charts
    fields = data[:64].split(maxsplit=3)
    return int(fields[1]), int(fields[2])
