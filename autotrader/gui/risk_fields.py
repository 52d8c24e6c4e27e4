"""What each risk setting is called, in what unit it is shown, and how it is read back.

The Risk settings tab shows every key of the sections in ``risk_config.json``
with a plain label, a unit and a help text, never the raw config key (the key
is in the help, for whoever edits files). Fractions of equity are shown in
percent (``0.05`` as ``5``), booleans as checkboxes, choices as lists. The
help text is the field's own ``doc`` and bounds from the typed configuration
(:mod:`autotrader.config.sections`): one source of truth. A key without a
plain label here still appears, labelled from its name.

Pure (no tkinter): :func:`field_infos`, :func:`to_text` and :func:`parse` are
unit-tested.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from dataclasses import dataclass
from typing import Any, Literal

from autotrader.config import Settings

__all__ = ["SECTIONS", "FieldInfo", "field_infos", "parse", "to_text"]

SECTIONS = ("capital", "orders", "signals", "sizing", "risk_controls", "execution", "filters")
SECTION_TITLES = {"capital": "Capital", "orders": "Orders", "signals": "Signals",
                  "sizing": "Position sizing", "risk_controls": "Risk controls",
                  "risk_controls.stops": "Protective stops", "execution": "Execution",
                  "filters": "Tradable names and hours"}
PCT = "%"
EQUITY = "% of equity"
#: dotted key -> (plain label, unit); unit "%" or "% of ..." shows a fraction in percent
LABELS: dict[str, tuple[str, str]] = {
    "capital.cash_reserve_pct": ("Cash reserve", EQUITY),
    "capital.max_single_position_pct": ("Max position size", EQUITY),
    "capital.max_portfolio_exposure": ("Max gross exposure", EQUITY),
    "orders.min_order_value_usd": ("Smallest order", "USD"),
    "orders.daily_order_limit": ("Max orders per day", "orders"),
    "orders.per_cycle_order_limit": ("Max orders per cycle", "orders"),
    "signals.acceptance_threshold": ("Min score percentile to buy", PCT),
    "signals.max_run_age_sessions": ("Oldest research run that may buy", "sessions"),
    "sizing.per_trade_risk_pct": ("Risk per trade (entry to stop)", EQUITY),
    "sizing.max_position_pct_of_equity": ("Position cap when sizing", EQUITY),
    "sizing.notional_round_lots": ("Round to 100-share lots", ""),
    "risk_controls.sector_exposure_limit": ("Max per sector", EQUITY),
    "risk_controls.max_correlation": ("Max correlation with a holding", "0 to 1"),
    "risk_controls.correlation_window": ("Correlation window", "sessions"),
    "risk_controls.max_daily_loss_pct": ("Daily loss that stops buying", EQUITY),
    "risk_controls.stops.enabled": ("Place protective stops", ""),
    "risk_controls.stops.atr_window": ("ATR window", "sessions"),
    "risk_controls.stops.atr_multiplier": ("Stop distance", "x ATR"),
    "risk_controls.stops.trailing": ("Trail the stop up", ""),
    "risk_controls.stops.max_loss_pct": ("Hard stop below entry", PCT),
    "risk_controls.stops.min_atr_multiplier": ("Closest stop distance", "x ATR"),
    "risk_controls.stops.decay_per_day": ("Stop tightening per day held", "%"),
    "execution.min_adv_usd": ("Min average daily volume", "USD"),
    "execution.max_spread_bps": ("Max bid/ask spread", "bps"),
    "execution.min_expected_alpha_bps": ("Min expected return", "bps"),
    "execution.volatility_low_max": ("'Low' volatility: ATR up to", "% of price"),
    "execution.volatility_medium_max": ("'Medium' volatility: ATR up to", "% of price"),
    "execution.allowed_volatility_buckets": ("Volatility allowed for entries", ""),
    "execution.max_limit_offset_bps": ("Max limit offset", "bps"),
    "execution.order_type": ("Entry order type", ""),
    "execution.take_profit_atr_multiple": ("Bracket take profit", "x ATR"),
    "execution.stop_atr_multiple": ("Bracket stop", "x ATR"),
    "execution.min_seconds_between_orders": ("Wait between orders, same name", "s"),
    "filters.min_price": ("Min price", "USD"),
    "filters.max_price": ("Max price", "USD"),
    "filters.trading_start": ("Trade from", "HH:MM"),
    "filters.trading_end": ("Trade until", "HH:MM"),
    "filters.timezone": ("Time zone of those hours", ""),
}
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


@dataclass(frozen=True)
class FieldInfo:
    """One setting as the form shows it.

    ``kind`` is ``bool``, ``int``, ``float``, ``text``, ``choice`` (one of
    ``choices``) or ``choices`` (any subset of ``choices``); ``percent`` shows a
    fraction multiplied by 100. An ``optional`` field (``X | None`` in the
    configuration) shows None as an empty box, and an empty box means None.
    """

    key: str
    section: str
    label: str
    unit: str
    kind: str
    help: str
    choices: tuple[str, ...] = ()
    optional: bool = False

    @property
    def percent(self) -> bool:
        """Return True when the form shows the value as a percentage (unit ``%...``)."""
        return self.unit.startswith("%")


def _optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(hint, False)``."""
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _kind(hint: Any) -> tuple[str, tuple[str, ...]]:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(hint))
    if origin is tuple:
        inner = typing.get_args(hint)[0]
        if typing.get_origin(inner) is Literal:
            return "choices", tuple(str(a) for a in typing.get_args(inner))
        return "text", ()
    if hint is bool:
        return "bool", ()
    if hint is int:
        return "int", ()
    if hint is float:
        return "float", ()
    return "text", ()


def _bounds(meta: dict, percent: bool) -> str:
    scale, suffix = (100.0, " %") if percent else (1.0, "")
    parts = []
    for key, word in (("ge", "at least"), ("gt", "more than"), ("le", "at most"),
                      ("lt", "less than")):
        if meta.get(key) is not None:
            parts.append(f"{word} {meta[key] * scale:g}{suffix}")
    return ("Allowed: " + ", ".join(parts) + ".") if parts else ""


def field_infos(settings: Settings | None = None) -> list[FieldInfo]:
    """Every setting of :data:`SECTIONS`, in file order, with label, unit, kind and help."""
    settings = settings or Settings()
    out: list[FieldInfo] = []

    def walk(prefix: str, obj: Any, section: str) -> None:
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            key = f"{prefix}{f.name}"
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(f"{key}.", value, key)
                continue
            label, unit = LABELS.get(key, (f.name.replace("_", " ").capitalize(), ""))
            hint, optional = _optional(hints[f.name])
            kind, choices = _kind(hint)
            doc = f.metadata.get("doc", "")
            help_text = " ".join(part for part in (
                (doc[0].upper() + doc[1:] + ".") if doc else "",
                _bounds(dict(f.metadata), unit.startswith("%")),
                "Empty: no limit." if optional else "",
                f"Config key: {key} (risk_config.json).") if part)
            out.append(FieldInfo(key, section, label, unit, kind, help_text, choices,
                                 optional))

    for name in SECTIONS:
        walk(f"{name}.", getattr(settings, name), name)
    return out


def value_of(settings: Settings, key: str) -> Any:
    """Return the value of dotted ``key`` in ``settings``."""
    obj: Any = settings
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def to_text(info: FieldInfo, value: Any) -> str:
    """Format ``value`` as the form shows it (``5`` for 0.05 of equity, ``true``, ``low, high``).

    Examples
    --------
    >>> info = FieldInfo("capital.cash_reserve_pct", "capital", "Cash reserve", "% of equity",
    ...                  "float", "")
    >>> to_text(info, 0.07)
    '7'
    """
    if value is None and info.optional:
        return ""
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, bool):
        return "true" if value else "false"
    if info.percent and isinstance(value, (int, float)):
        return f"{value * 100:.10g}"
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def parse(info: FieldInfo, text: str) -> Any:
    """Parse the form's ``text`` into a config value (``ValueError`` in the form's words).

    Examples
    --------
    >>> info = FieldInfo("capital.cash_reserve_pct", "capital", "Cash reserve", "% of equity",
    ...                  "float", "")
    >>> parse(info, "7")
    0.07
    >>> parse(info, "abc")
    Traceback (most recent call last):
    ...
    ValueError: Cash reserve: 'abc' is not a number
    """
    text = text.strip()
    if info.optional and not text:
        return None
    if info.kind == "choices":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if info.kind == "bool":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{info.label}: {text!r} is not true/false")
    if info.kind == "int":
        try:
            return int(text)
        except ValueError as e:
            raise ValueError(f"{info.label}: {text!r} is not a whole number") from e
    if info.kind == "float":
        try:
            number = float(text.rstrip("%").strip())
        except ValueError as e:
            raise ValueError(f"{info.label}: {text!r} is not a number") from e
        return round(number / 100.0, 12) if info.percent else number
    return text
