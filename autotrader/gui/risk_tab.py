"""Risk settings tab: edit capital / orders / sizing / risk_controls, validate, save atomically.

Saving goes through :meth:`ConfigStore.save_file` ("risk_config.json"), which
validates the whole resulting configuration before it writes (temp file,
fsync, ``os.replace``): a bad value gives a message and writes nothing.
External edits arrive as :class:`ConfigChanged` (hot reload) and refresh every
field the user has not edited since it was last loaded.
"""

from __future__ import annotations

import dataclasses
import logging
import tkinter as tk
from tkinter import ttk
from typing import Any

from autotrader.config import ConfigError, Settings
from autotrader.gui.bus import ConfigChanged

logger = logging.getLogger(__name__)

SECTIONS = ("capital", "orders", "sizing", "risk_controls", "execution")
FILE = "risk_config.json"
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def flatten(settings: Settings) -> dict[str, Any]:
    """``{"capital.cash_reserve_pct": 0.05, "risk_controls.stops.enabled": True, ...}``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, obj: Any) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(f"{prefix}{f.name}.", value)
            else:
                out[f"{prefix}{f.name}"] = value

    for section in SECTIONS:
        walk(f"{section}.", getattr(settings, section))
    return out


def parse_value(key: str, text: str, like: Any) -> Any:
    """Parse ``text`` to the type of the current value ``like`` (``ValueError`` names the key).

    Examples
    --------
    >>> parse_value("orders.daily_order_limit", "30", 20)
    30
    >>> parse_value("capital.cash_reserve_pct", "abc", 0.05)
    Traceback (most recent call last):
    ...
    ValueError: capital.cash_reserve_pct: 'abc' is not a number
    >>> parse_value("execution.allowed_volatility_buckets", "low, high", ("low",))
    ('low', 'high')
    """
    text = text.strip()
    if isinstance(like, tuple):  # a list of choices: comma separated (validated by the store)
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(like, bool):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{key}: {text!r} is not true/false")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError as e:
            raise ValueError(f"{key}: {text!r} is not a whole number") from e
    if isinstance(like, float):
        try:
            return float(text)
        except ValueError as e:
            raise ValueError(f"{key}: {text!r} is not a number") from e
    return text


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


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


class RiskView(ttk.Frame):
    """One entry per key, a Save button and a validation message line."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.vars: dict[str, tk.StringVar] = {}
        self._loaded: dict[str, str] = {}
        self.message = tk.StringVar(self, value="")
        values = flatten(app.settings)
        grid = ttk.Frame(self)
        grid.pack(fill="x", padx=6, pady=4)
        for row, (key, value) in enumerate(values.items()):
            ttk.Label(grid, text=key).grid(row=row, column=0, sticky="w", padx=4)
            var = tk.StringVar(self, value=_text(value))
            ttk.Entry(grid, textvariable=var, width=16).grid(row=row, column=1, sticky="w")
            self.vars[key] = var
            self._loaded[key] = _text(value)
        buttons = ttk.Frame(self)
        buttons.pack(fill="x", padx=6, pady=4)
        self.save_button = ttk.Button(buttons, text=app.t("risk.save"), command=self.save)
        self.save_button.pack(side="left")
        ttk.Button(buttons, text=app.t("risk.revert"), command=self.revert).pack(side="left",
                                                                                 padx=4)
        self.message_label = ttk.Label(self, textvariable=self.message, foreground="#a00000",
                                       wraplength=900)
        self.message_label.pack(fill="x", padx=6)
        app.bus.subscribe(ConfigChanged, self._on_config)

    def save(self) -> bool:
        """Validate and save; returns True when the file was written."""
        current = flatten(self.app.settings)
        try:
            flat = {k: parse_value(k, v.get(), current[k]) for k, v in self.vars.items()}
            self.app.store.save_file(FILE, nest(flat))
        except (ValueError, ConfigError) as e:
            self.message_label.configure(foreground="#a00000")
            self.message.set(f"not saved: {e}")
            logger.warning("risk settings not saved: %s", e)
            return False
        self.message_label.configure(foreground="#006000")
        self.message.set(f"saved to {self.app.store.config_dir / FILE}")
        self._load(self.app.settings, force=True)
        return True

    def revert(self) -> None:
        self._load(self.app.settings, force=True)
        self.message.set("reverted to the current configuration")

    def _on_config(self, msg: ConfigChanged) -> None:
        changed = self._load(msg.settings, force=False)
        if changed:
            self.message_label.configure(foreground="#000080")
            self.message.set("reloaded from disk: " + ", ".join(changed))
        error = self.app.store.last_error
        if error:
            self.message.set(f"config file rejected, keeping the last good values: {error}")

    def _load(self, settings: Settings, force: bool) -> list[str]:
        changed = []
        for key, value in flatten(settings).items():
            text, var = _text(value), self.vars[key]
            edited = var.get() != self._loaded[key]
            if (force or not edited) and var.get() != text:
                var.set(text)
                changed.append(key)
            if force or not edited:
                self._loaded[key] = text
        return changed


def register(app) -> None:
    """Add the Risk settings tab."""
    app.add_view("risk", "tab.risk", RiskView)
