"""Colours, fonts and ttk styles of the workstation: one place, so every view looks alike.

The palette keeps meaning fixed across the window: blue is paper, orange a live
account that cannot trade, red a live account that can (and every error),
green a gain, purple demo data. :func:`apply` configures the ``clam`` theme
(flat, readable, the same on every X server) and the named styles the views use.
"""

from __future__ import annotations

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

__all__ = ["BANNER", "COLOURS", "apply"]

COLOURS = {
    "bg": "#eef1f5",
    "panel": "#ffffff",
    "text": "#1f2328",
    "muted": "#5b6675",
    "accent": "#0b5cad",
    "good": "#11793a",
    "bad": "#c4161c",
    "warn": "#a25a00",
    "demo": "#6b2fb3",
    "strip": "#dde3ea",
    "bad_field": "#ffe3e3",
    "selected": "#cfe2ff",
}

#: banner background and text per trading mode (see autotrader.gui.state)
BANNER = {
    "PAPER": ("#0b5cad", "#ffffff"),
    "LIVE (not armed)": ("#c25e00", "#ffffff"),
    "LIVE (armed)": ("#b3001b", "#ffffff"),
}


def apply(root: tk.Tk) -> None:
    """Configure the theme, the default fonts and every named style on ``root``."""
    style = ttk.Style(root)
    if "clam" in style.theme_names():
        style.theme_use("clam")
    base = tkfont.nametofont("TkDefaultFont")
    base.configure(size=10)
    for name in ("TkTextFont", "TkMenuFont", "TkHeadingFont"):
        tkfont.nametofont(name).configure(size=10)
    family = base.actual("family")
    c = COLOURS
    root.configure(background=c["bg"])
    style.configure(".", background=c["bg"], foreground=c["text"])
    style.configure("TFrame", background=c["bg"])
    style.configure("TLabel", background=c["bg"], foreground=c["text"])
    style.configure("TLabelframe", background=c["bg"])
    style.configure("TLabelframe.Label", background=c["bg"], foreground=c["muted"],
                    font=(family, 10, "bold"))
    style.configure("TCheckbutton", background=c["bg"])
    style.configure("TRadiobutton", background=c["bg"])
    style.configure("TNotebook", background=c["bg"])
    style.configure("TNotebook.Tab", padding=(12, 4), font=(family, 10))
    style.map("TNotebook.Tab", background=[("selected", c["panel"])],
              foreground=[("selected", c["accent"])])
    style.configure("Treeview", rowheight=22, background=c["panel"],
                    fieldbackground=c["panel"])
    style.configure("Treeview.Heading", font=(family, 9, "bold"), foreground=c["muted"])
    style.map("Treeview", background=[("selected", c["selected"])],
              foreground=[("selected", c["text"])])
    style.configure("Muted.TLabel", foreground=c["muted"])
    style.configure("Small.TLabel", foreground=c["muted"], font=(family, 9))
    style.configure("Error.TLabel", foreground=c["bad"])
    style.configure("Good.TLabel", foreground=c["good"])
    style.configure("Warn.TLabel", foreground=c["warn"])
    style.configure("Heading.TLabel", font=(family, 11, "bold"))
    style.configure("Big.TLabel", font=(family, 12, "bold"))
    style.configure("BigWarn.TLabel", font=(family, 12, "bold"), foreground=c["warn"])
    style.configure("BigBad.TLabel", font=(family, 12, "bold"), foreground=c["bad"])
    style.configure("BigGood.TLabel", font=(family, 12, "bold"), foreground=c["good"])
    style.configure("Strip.TFrame", background=c["strip"])
    style.configure("Strip.TLabel", background=c["strip"], foreground=c["muted"],
                    font=(family, 9))
    style.configure("StripValue.TLabel", background=c["strip"], foreground=c["text"],
                    font=(family, 9, "bold"))
    style.configure("StripBad.TLabel", background=c["strip"], foreground=c["bad"],
                    font=(family, 9, "bold"))
    style.configure("StripWarn.TLabel", background=c["strip"], foreground=c["warn"],
                    font=(family, 9, "bold"))
    style.configure("StripGood.TLabel", background=c["strip"], foreground=c["good"],
                    font=(family, 9, "bold"))
    style.configure("Tile.TFrame", background=c["panel"], relief="solid", borderwidth=1)
    style.configure("TileCaption.TLabel", background=c["panel"], foreground=c["muted"],
                    font=(family, 8))
    style.configure("TileValue.TLabel", background=c["panel"], foreground=c["text"],
                    font=(family, 12, "bold"))
    style.configure("TileGood.TLabel", background=c["panel"], foreground=c["good"],
                    font=(family, 12, "bold"))
    style.configure("TileBad.TLabel", background=c["panel"], foreground=c["bad"],
                    font=(family, 12, "bold"))
    style.configure("TileWarn.TLabel", background=c["panel"], foreground=c["warn"],
                    font=(family, 12, "bold"))
    style.configure("Accent.TButton", foreground="#ffffff", background=c["accent"],
                    font=(family, 10, "bold"))
    style.map("Accent.TButton", background=[("disabled", "#9db7d5"), ("active", "#0a4f96")])
    style.configure("Danger.TButton", foreground=c["bad"])
    style.configure("Bad.TEntry", fieldbackground=c["bad_field"], bordercolor=c["bad"])
    style.configure("Bad.TCombobox", fieldbackground=c["bad_field"], bordercolor=c["bad"])
    style.configure("Stage.Horizontal.TProgressbar", background=c["accent"])
    style.configure("Done.Horizontal.TProgressbar", background=c["good"])
