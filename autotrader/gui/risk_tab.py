"""Risk settings tab: every risk setting with a plain label, its unit and help; validate, save.

Fields come from :func:`autotrader.gui.risk_fields.field_infos`: a plain label
(never the raw key), the unit (fractions of equity in percent), a "?" with the
help text (the setting's own doc and bounds, and its config key), checkboxes
for booleans and for the volatility buckets, a list for the order type.
Saving goes through :meth:`ConfigStore.save_file` ("risk_config.json"), which
validates the whole resulting configuration before it writes (temp file,
fsync, ``os.replace``): a bad value is highlighted with its message and
nothing is written. External edits arrive as :class:`ConfigChanged` (hot
reload) and refresh every field the user has not edited since it was loaded.
"""

from __future__ import annotations

import logging
import tkinter as tk
from tkinter import ttk
from typing import Any

from autotrader.config import ConfigError, Settings
from autotrader.gui.bus import ConfigChanged
from autotrader.gui.risk_fields import (
    SECTION_TITLES,
    FieldInfo,
    field_infos,
    parse,
    to_text,
    value_of,
)
from autotrader.gui.widgets import Tooltip

logger = logging.getLogger(__name__)

FILE = "risk_config.json"
#: sections in the left and the right column of the tab
COLUMNS = (("capital", "orders", "signals", "sizing", "filters"),
           ("risk_controls", "risk_controls.stops", "execution"))


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys back to nested section mappings."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


class FieldWidget:
    """One setting's input: an entry, a checkbox, a list, or one checkbox per choice."""

    def __init__(self, master: tk.Misc, info: FieldInfo, row: int) -> None:
        self.info = info
        self.label = ttk.Label(master, text=info.label)
        self.label.grid(row=row, column=0, sticky="w", padx=(4, 2), pady=1)
        self.var = tk.StringVar(master)
        self.checks: dict[str, tk.BooleanVar] = {}
        if info.kind == "bool":
            self.bool = tk.BooleanVar(master)
            self.input: tk.Widget = ttk.Checkbutton(master, variable=self.bool)
            self.bool.trace_add("write", lambda *_: self.var.set(
                "true" if self.bool.get() else "false"))
        elif info.kind == "choice":
            self.input = ttk.Combobox(master, textvariable=self.var, values=info.choices,
                                      state="readonly", width=10)
        elif info.kind == "choices":
            self.input = ttk.Frame(master)
            for choice in info.choices:
                var = tk.BooleanVar(master)
                var.trace_add("write", lambda *_: self.var.set(", ".join(
                    c for c, v in self.checks.items() if v.get())))
                ttk.Checkbutton(self.input, text=choice, variable=var).pack(side="left")
                self.checks[choice] = var
        else:
            numeric = info.kind in ("int", "float")
            self.input = ttk.Entry(master, textvariable=self.var, width=9 if numeric else 18,
                                   justify="right" if numeric else "left")
        self.input.grid(row=row, column=1, sticky="w", pady=1)
        ttk.Label(master, text=info.unit, style="Muted.TLabel").grid(row=row, column=2,
                                                                     sticky="w", padx=2)
        self.help = ttk.Label(master, text="?", style="Muted.TLabel", cursor="question_arrow")
        self.help.grid(row=row, column=3, sticky="w")
        self.tooltip = Tooltip(self.help, info.help)
        Tooltip(self.label, info.help)

    def get(self) -> str:
        """Return the field's current text."""
        return self.var.get()

    def set(self, text: str) -> None:
        """Show ``text`` (the form's text of a value, :func:`to_text`)."""
        self.var.set(text)
        if self.info.kind == "bool":
            self.bool.set(text == "true")
        elif self.info.kind == "choices":
            chosen = {part.strip() for part in text.split(",")}
            for choice, var in self.checks.items():
                var.set(choice in chosen)
            self.var.set(text)

    def mark(self, bad: bool) -> None:
        """Highlight the field (its label turns red, an entry's background too)."""
        self.label.configure(style="Error.TLabel" if bad else "TLabel")
        if isinstance(self.input, ttk.Entry):
            self.input.configure(style="Bad.TEntry" if bad else "TEntry")


class RiskView(ttk.Frame):
    """The settings in two columns of sections, Save / Revert and a validation message."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.fields: dict[str, FieldWidget] = {}
        self._loaded: dict[str, str] = {}
        self.message = tk.StringVar(self, value="")
        self._build_buttons(app)
        grid = ttk.Frame(self)
        grid.pack(fill="x", padx=6, pady=4)
        infos: dict[str, list[FieldInfo]] = {}
        for info in field_infos(app.settings):
            infos.setdefault(info.section, []).append(info)
        for column, sections in enumerate(COLUMNS):
            holder = ttk.Frame(grid)
            holder.grid(row=0, column=column, sticky="nw", padx=(0, 8))
            for section in sections:
                self._section(holder, section, infos.get(section, []))
        self._load(app.settings, force=True)
        app.bus.subscribe(ConfigChanged, self._on_config)

    @property
    def vars(self) -> dict[str, FieldWidget]:
        """Field widgets by dotted key (``.get()`` / ``.set(text)``; tests use this)."""
        return self.fields

    def _build_buttons(self, app) -> None:
        bar = ttk.Frame(self)
        bar.pack(fill="x", padx=6, pady=(6, 2))
        self.save_button = ttk.Button(bar, text=app.t("risk.save"), command=self.save,
                                      style="Accent.TButton")
        self.save_button.pack(side="left")
        ttk.Button(bar, text=app.t("risk.revert"), command=self.revert).pack(side="left",
                                                                             padx=4)
        ttk.Label(bar, text="Percent fields are percent (5 = 5 %). Rest the pointer on a label "
                            "or '?' for its meaning and limits.", style="Muted.TLabel").pack(
            side="left", padx=12)
        self.message_label = ttk.Label(self, textvariable=self.message, style="Error.TLabel",
                                       wraplength=1000)
        self.message_label.pack(fill="x", padx=8)

    def _section(self, master: tk.Misc, section: str, infos: list[FieldInfo]) -> None:
        if not infos:
            return
        box = ttk.LabelFrame(master, text=SECTION_TITLES.get(section, section), padding=4)
        box.pack(fill="x", pady=4)
        box.columnconfigure(0, minsize=190)
        for row, info in enumerate(infos):
            self.fields[info.key] = FieldWidget(box, info, row)

    def save(self) -> bool:
        """Validate and save; returns True when the file was written."""
        for widget in self.fields.values():
            widget.mark(False)
        values: dict[str, Any] = {}
        bad: dict[str, str] = {}
        for key, widget in self.fields.items():
            try:
                values[key] = parse(widget.info, widget.get())
            except ValueError as e:
                bad[key] = str(e)
        if bad:
            return self._refused(list(bad), "; ".join(bad.values()))
        try:
            self.app.store.save_file(FILE, nest(values))
        except ConfigError as e:
            return self._refused(self._keys_in(e), self._plain(str(e)))
        self.message_label.configure(style="Good.TLabel")
        self.message.set(f"saved to {self.app.store.config_dir / FILE}")
        self._load(self.app.settings, force=True)
        return True

    def _refused(self, keys: list[str], text: str) -> bool:
        for key in keys:
            self.fields[key].mark(True)
        self.message_label.configure(style="Error.TLabel")
        self.message.set(f"not saved: {text}")
        logger.warning("risk settings not saved: %s", text)
        return False

    def _keys_in(self, error: BaseException) -> list[str]:
        # the store's FieldError names its dotted keys; else find them in the message
        cause: BaseException | None = error
        while cause is not None:
            keys = getattr(cause, "keys", None)
            if isinstance(keys, tuple):
                found = [k for k in keys if k in self.fields]
                if found:
                    return found
            cause = cause.__cause__
        text = str(error)
        return [k for k in self.fields if k in text]

    def _plain(self, text: str) -> str:
        # the store speaks in dotted keys: name the fields as the form does
        for key in sorted(self.fields, key=len, reverse=True):
            text = text.replace(key, f"{self.fields[key].info.label} ({key})")
        return text

    def revert(self) -> None:
        """Discard the edits: reload every field from the current settings and clear the marks."""
        self._load(self.app.settings, force=True)
        for widget in self.fields.values():
            widget.mark(False)
        self.message_label.configure(style="TLabel")
        self.message.set("reverted to the current configuration")

    def _on_config(self, msg: ConfigChanged) -> None:
        changed = self._load(msg.settings, force=False)
        if changed:
            self.message_label.configure(style="TLabel")
            self.message.set("reloaded from disk: " + ", ".join(
                self.fields[k].info.label for k in changed))
        error = self.app.store.last_error
        if error:
            self.message_label.configure(style="Error.TLabel")
            self.message.set(f"config file rejected, keeping the last good values: {error}")

    def _load(self, settings: Settings, force: bool) -> list[str]:
        changed = []
        for key, widget in self.fields.items():
            text = to_text(widget.info, value_of(settings, key))
            edited = key in self._loaded and widget.get() != self._loaded[key]
            if (force or not edited) and widget.get() != text:
                widget.set(text)
                changed.append(key)
            if force or not edited:
                self._loaded[key] = text
        return changed if not force else []


def register(app) -> None:
    """Add the Risk settings tab."""
    app.add_view("risk", "tab.risk", RiskView)
