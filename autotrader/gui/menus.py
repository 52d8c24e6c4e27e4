"""The menu bar, the keyboard shortcuts and the small dialogs (path, shortcuts, about).

Shortcuts (also listed in Help > Keyboard shortcuts, from :data:`SHORTCUTS`):
F5 runs the BMA model, Ctrl+P previews the orders, Ctrl+Tab / Ctrl+Shift+Tab
switch tabs, Ctrl+1..7 go to a tab, Esc cancels the research run in progress
(after a confirmation) or closes a dialog, Ctrl+O opens the result folder,
Ctrl+Q quits (asking first while auto trading runs).
"""

from __future__ import annotations

import logging
import tkinter as tk
from pathlib import Path
from tkinter import ttk
from typing import Any

from autotrader import __version__

logger = logging.getLogger(__name__)

__all__ = ["SHORTCUTS", "PathDialog", "build_menu", "docs_path", "show_about", "show_shortcuts"]

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("F5", "Run BMA model (Research)"),
    ("Ctrl+P", "Preview orders (Trading engine)"),
    ("Ctrl+Tab / Ctrl+Shift+Tab", "next / previous tab"),
    ("Ctrl+1 ... Ctrl+7", "go to tab 1 ... 7"),
    ("Esc", "cancel the research run in progress (asks first); close a dialog"),
    ("Ctrl+O", "open the result folder"),
    ("Ctrl+Q", "quit (asks first while auto trading runs)"),
)

DOCS_FILE = "docs/gui.md"


def docs_path() -> Path:
    """Where the GUI documentation is in this checkout (the repository's ``docs/gui.md``)."""
    return Path(__file__).resolve().parents[2] / DOCS_FILE


def build_menu(app: Any) -> tk.Menu:
    """Create the menu bar (File, View, Help) and bind the shortcuts on ``app.root``."""
    root = app.root
    bar = tk.Menu(root, tearoff=False)
    file_menu = tk.Menu(bar, tearoff=False)
    file_menu.add_command(label="Open result folder", accelerator="Ctrl+O",
                          command=lambda: app.views["research"].open_folder())
    file_menu.add_command(label="Open Excel workbook",
                          command=lambda: app.views["research"].open_excel())
    file_menu.add_separator()
    file_menu.add_command(label="Quit", accelerator="Ctrl+Q", command=app.request_close)
    bar.add_cascade(label="File", menu=file_menu)
    view = tk.Menu(bar, tearoff=False)
    for number, key in enumerate(app.pages, start=1):
        def show(k: str = key) -> None:
            app.show_tab(k)

        view.add_command(label=app.notebook.tab(app.pages[key], "text"),
                         accelerator=f"Ctrl+{number}", command=show)
    bar.add_cascade(label="View", menu=view)
    help_menu = tk.Menu(bar, tearoff=False)
    help_menu.add_command(label="Keyboard shortcuts", command=lambda: show_shortcuts(app))
    help_menu.add_command(label="Documentation", command=lambda: app.open_file(
        docs_path(), "documentation"))
    help_menu.add_command(label="About", command=lambda: show_about(app))
    bar.add_cascade(label="Help", menu=help_menu)
    root.configure(menu=bar)
    _bind_shortcuts(app)
    return bar


def _bind_shortcuts(app: Any) -> None:
    root = app.root
    research = app.views["research"]
    trading = app.views["trading"]
    bindings = {
        "<F5>": lambda: research.run_button.invoke(),
        "<Control-p>": lambda: trading.preview_button.invoke(),
        "<Control-Tab>": lambda: app.next_tab(1),
        "<Control-Shift-Tab>": lambda: app.next_tab(-1),
        "<Control-ISO_Left_Tab>": lambda: app.next_tab(-1),
        "<Escape>": research.cancel_with_confirmation,
        "<Control-o>": research.open_folder,
        "<Control-q>": app.request_close,
    }
    for number, key in enumerate(app.pages, start=1):
        bindings[f"<Control-Key-{number}>"] = lambda k=key: app.show_tab(k)
    for sequence, action in bindings.items():
        root.bind_all(sequence, lambda _e, a=action: (a(), "break")[1])


def _close(window: tk.Toplevel) -> str:
    # an Escape binding: close the dialog, and "break" so no other binding sees the key
    window.destroy()
    return "break"


class PathDialog(tk.Toplevel):
    """A path the workstation cannot open itself: the reason, the path and a Copy button."""

    def __init__(self, master: tk.Misc, title: str, reason: str, path: Path) -> None:
        super().__init__(master)
        self.title(title)
        self.transient(master.winfo_toplevel())
        self.path = str(path)
        frame = ttk.Frame(self, padding=12)
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text=reason, wraplength=520, justify="left").pack(anchor="w")
        row = ttk.Frame(frame)
        row.pack(fill="x", pady=8)
        entry = ttk.Entry(row, width=70)
        entry.insert(0, self.path)
        entry.configure(state="readonly")
        entry.pack(side="left", fill="x", expand=True)
        self.copy_button = ttk.Button(row, text="Copy path", command=self.copy)
        self.copy_button.pack(side="left", padx=6)
        self.copied = ttk.Label(frame, text="", style="Good.TLabel")
        self.copied.pack(anchor="w")
        ttk.Button(frame, text="Close", command=self.destroy).pack(anchor="e")
        self.bind("<Escape>", lambda _e: _close(self))

    def copy(self) -> None:
        """Put the path on the clipboard."""
        self.clipboard_clear()
        self.clipboard_append(self.path)
        self.copied.configure(text="copied to the clipboard")


def show_shortcuts(app: Any) -> tk.Toplevel:
    """Open a window listing the keyboard shortcuts; Escape or Close dismisses it."""
    window = tk.Toplevel(app.root)
    window.title("Keyboard shortcuts")
    window.transient(app.root)
    frame = ttk.Frame(window, padding=12)
    frame.pack(fill="both", expand=True)
    for row, (keys, what) in enumerate(SHORTCUTS):
        ttk.Label(frame, text=keys, style="Heading.TLabel").grid(row=row, column=0, sticky="w",
                                                                 padx=(0, 16), pady=2)
        ttk.Label(frame, text=what).grid(row=row, column=1, sticky="w")
    ttk.Button(frame, text="Close", command=window.destroy).grid(
        row=len(SHORTCUTS), column=1, sticky="e", pady=(8, 0))
    window.bind("<Escape>", lambda _e: _close(window))
    return window


def show_about(app: Any) -> tk.Toplevel:
    """Version, what the program is, and where its documentation is."""
    window = tk.Toplevel(app.root)
    window.title("About the BMA workstation")
    window.transient(app.root)
    frame = ttk.Frame(window, padding=14)
    frame.pack(fill="both", expand=True)
    ttk.Label(frame, text=f"BMA workstation {__version__}", style="Big.TLabel").pack(anchor="w")
    ttk.Label(frame, text="Research (BMA pipeline) and trading (paper or Interactive Brokers) "
                          "for US equities.", wraplength=460).pack(anchor="w", pady=(4, 8))
    ttk.Label(frame, text=f"Documentation: {docs_path()}", style="Muted.TLabel",
              wraplength=460).pack(anchor="w")
    buttons = ttk.Frame(frame)
    buttons.pack(fill="x", pady=(10, 0))
    ttk.Button(buttons, text="Open documentation", command=lambda: app.open_file(
        docs_path(), "documentation")).pack(side="left")
    ttk.Button(buttons, text="Close", command=window.destroy).pack(side="right")
    window.bind("<Escape>", lambda _e: _close(window))
    return window
