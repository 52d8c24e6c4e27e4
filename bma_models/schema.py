"""Typed, frozen, validated settings dataclasses built from plain mappings.

Shared by :mod:`bma_models.settings` (the research section) and
:mod:`autotrader.config` (every other section), so both follow one set of
rules:

* a section is a ``@dataclass(frozen=True)`` subclass of :class:`Section`;
* each field's bounds are declared next to it with :func:`setting`;
* :func:`build` turns a nested mapping (parsed YAML/JSON) into the dataclass
  tree, rejecting unknown keys, wrong types and out-of-range values with a
  :class:`FieldError` that names the dotted key and, when a ``source_of``
  callback is given, the file the value came from;
* ``__post_init__`` re-checks types and ranges, so an instance built directly in
  code is exactly as valid as one built from a file, and runs the section's
  cross-field checks (:meth:`Section.check`).

Why a small in-house builder instead of pydantic or msgspec: the research core
may depend on numpy/pandas/sklearn only, and the rules we need (strict scalar
types, numeric bounds, ``Literal`` choices, dates, frozen mappings, error
messages naming file and key) fit in one short module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Literal, Union

from bma_models.errors import SettingsError

__all__ = ["FieldError", "Section", "build", "flatten", "setting", "to_dict"]

_NO_VALUE = object()
_JSON_SCALARS = (str, int, float, bool, type(None))


class FieldError(SettingsError):
    """A setting is unknown, of the wrong type, out of range or inconsistent.

    Parameters
    ----------
    keys : tuple of str
        Dotted keys involved (one for a single-field error, several for a
        cross-field check). Relative to the section that raised until
        :func:`build` qualifies them.
    problem : str
        What is wrong, phrased to follow ``key = value``.
    value : object, optional
        The offending value (omitted for unknown keys and cross-field checks).
    """

    def __init__(self, keys: tuple[str, ...], problem: str, value: Any = _NO_VALUE) -> None:
        self.keys = tuple(keys)
        self.problem = problem
        self.value = value
        self.sources: tuple[str, ...] = ()
        super().__init__(self._render())

    def qualify(self, prefix: str, source_of: Callable[[str], str] | None) -> FieldError:
        """Return a copy whose keys carry ``prefix`` and whose message names the sources."""
        keys = tuple(f"{prefix}.{k}" if prefix else k for k in self.keys)
        error = FieldError(keys, self.problem, self.value)
        if source_of is not None:
            error.sources = tuple(dict.fromkeys(source_of(k) for k in keys))
            error.args = (error._render(),)
        return error

    def _render(self) -> str:
        where = f"{', '.join(self.sources)}: " if self.sources else ""
        if len(self.keys) == 1:
            shown = "" if self.value is _NO_VALUE else f" = {self.value!r}"
            return f"{where}{self.keys[0]}{shown} {self.problem}"
        return f"{where}{', '.join(self.keys)}: {self.problem}"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    doc: str = "",
) -> Any:
    """Declare a settings field with optional numeric bounds.

    Bounds apply to numbers only (``None`` is allowed when the annotation is
    ``X | None``). ``doc`` is a one-line description kept with the field.
    """
    metadata = {"ge": ge, "gt": gt, "le": le, "lt": lt, "doc": doc}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Section:
    """Base class of every settings section: validates itself on construction."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            _check_value(value, _hints(type(self))[field.name], field.name)
            _check_bounds(value, field)
        self.check()

    def check(self) -> None:
        """Cross-field checks; override and raise :class:`FieldError` naming the keys."""


def _hints(cls: type) -> dict[str, Any]:
    # the plain ``type`` parameter is what mypy accepts as Hashable for the cache
    # (it rejects ``type[Section]``, python/mypy#11470)
    return _cached_hints(cls)


@cache
def _cached_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build(
    cls: type[Section],
    data: Mapping[str, Any] | None,
    *,
    prefix: str = "",
    source_of: Callable[[str], str] | None = None,
) -> Any:
    """Build a ``cls`` instance from a nested mapping; missing keys take defaults.

    Parameters
    ----------
    cls : type
        A frozen :class:`Section` dataclass.
    data : mapping or None
        Parsed YAML/JSON. ``None`` means "all defaults".
    prefix : str
        Dotted path of ``cls`` inside a larger document, used in messages.
    source_of : callable, optional
        Maps a fully dotted key to the name of the file (or layer) that set it.

    Raises
    ------
    FieldError
        For the first unknown key, wrong type, out-of-range value or failed
        cross-field check, naming the dotted key (and its source).

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Window(Section):
    ...     size: int = setting(5, ge=1)
    >>> build(Window, {"size": 3})
    Window(size=3)
    >>> build(Window, {"size": 0}, prefix="cv")
    Traceback (most recent call last):
    ...
    bma_models.schema.FieldError: cv.size = 0 is out of range [1, inf)
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise FieldError((prefix or "<root>",), "must be a mapping of keys", data).qualify(
            "", source_of
        )
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise FieldError((_join(prefix, str(key)),), "is not a known key").qualify(
                "", source_of
            )
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in data:
            path = _join(prefix, field.name)
            kwargs[field.name] = _convert(data[field.name], _hints(cls)[field.name], path,
                                          source_of)
    try:
        return cls(**kwargs)
    except FieldError as e:
        raise e.qualify(prefix, source_of) from e


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _fail(path: str, problem: str, value: Any, source_of: Callable[[str], str] | None) -> None:
    raise FieldError((path,), problem, value).qualify("", source_of)


def _convert(value: Any, tp: Any, path: str, source_of: Callable[[str], str] | None) -> Any:
    # Turn parsed YAML/JSON into the annotated type; type/range checks happen in __post_init__
    # too, but converting here lets conversion errors name the full dotted path.
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, path, source_of)
    if isinstance(tp, type) and issubclass(tp, Section):
        if isinstance(value, tp):
            return value
        return build(tp, value, prefix=path, source_of=source_of)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is dt.date and isinstance(value, str):
        return _parse(dt.date.fromisoformat, value, path, "an ISO date YYYY-MM-DD", source_of)
    if tp is dt.time and isinstance(value, str):
        return _parse(dt.time.fromisoformat, value, path, "a time HH:MM", source_of)
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(_convert(v, args[0], f"{path}[{i}]", source_of) for i, v in enumerate(value))
    if origin in (Mapping, dict) and isinstance(value, Mapping):
        return types.MappingProxyType(
            {k: _convert(v, args[1], _join(path, str(k)), source_of) for k, v in value.items()}
        )
    if tp is Any:
        return _freeze_json(value, path, source_of)
    problem = _type_problem(value, tp)
    if problem:
        _fail(path, problem, value, source_of)
    return value


def _parse(parser: Callable[[str], Any], value: str, path: str, expected: str,
           source_of: Callable[[str], str] | None) -> Any:
    try:
        return parser(value)
    except ValueError as e:
        raise FieldError((path,), f"is not {expected}", value).qualify("", source_of) from e


def _freeze_json(value: Any, path: str, source_of: Callable[[str], str] | None) -> Any:
    if isinstance(value, Mapping):
        return types.MappingProxyType(
            {str(k): _freeze_json(v, _join(path, str(k)), source_of) for k, v in value.items()}
        )
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_json(v, f"{path}[{i}]", source_of) for i, v in enumerate(value))
    if not isinstance(value, _JSON_SCALARS):
        _fail(path, "must be a string, number, boolean, null, list or mapping", value, source_of)
    return value


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + "|".join(str(a) for a in typing.get_args(tp))
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             dt.date: "a date", dt.time: "a time HH:MM"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _type_problem(value: Any, tp: Any) -> str | None:
    """Return why ``value`` is not of the (converted) type ``tp``, or None if it is."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return None if value in args and isinstance(value, str) else f"is not {_type_name(tp)}"
    if tp is bool:
        return None if isinstance(value, bool) else "is not a boolean (true/false)"
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "is not an integer"
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "is not a number"
        return None if math.isfinite(value) else "is not a finite number"
    if tp is dt.date:
        ok = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
        return None if ok else "is not a date"
    if isinstance(tp, type) and not isinstance(value, tp):
        return f"is not {_type_name(tp)}"
    return None


def _check_value(value: Any, tp: Any, path: str) -> None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return
        if value is None:
            raise FieldError((path,), "must not be null", value)
        (inner,) = [a for a in args if a is not type(None)]
        _check_value(value, inner, path)
    elif origin is tuple:
        if not isinstance(value, tuple):
            raise FieldError((path,), "is not a list", value)
        for i, item in enumerate(value):
            _check_value(item, args[0], f"{path}[{i}]")
    elif origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise FieldError((path,), "is not a mapping", value)
        for key, item in value.items():
            if not isinstance(key, str):
                raise FieldError((path,), "must have string keys", key)
            _check_value(item, args[1], _join(path, key))
    elif tp is not Any:
        problem = _type_problem(value, tp)
        if problem:
            raise FieldError((path,), problem, value)


def _check_bounds(value: Any, field: dataclasses.Field) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    meta = field.metadata
    lo = meta.get("ge") if meta.get("ge") is not None else meta.get("gt")
    hi = meta.get("le") if meta.get("le") is not None else meta.get("lt")
    too_low = (meta.get("ge") is not None and value < meta["ge"]) or (
        meta.get("gt") is not None and value <= meta["gt"])
    too_high = (meta.get("le") is not None and value > meta["le"]) or (
        meta.get("lt") is not None and value >= meta["lt"])
    if too_low or too_high:
        left = "[" if meta.get("ge") is not None else "("
        right = "]" if meta.get("le") is not None else ")"
        low = "-inf" if lo is None else _num(lo)
        high = "inf" if hi is None else _num(hi)
        raise FieldError((field.name,), f"is out of range {left}{low}, {high}{right}", value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def to_dict(obj: Any) -> Any:
    """Return plain YAML/JSON-ready data: dicts, lists, ISO dates, ``HH:MM`` times."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dt.time):
        return obj.strftime("%H:%M")
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to ``{"a.b.c": leaf}``; empty mappings are leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = _join(prefix, str(key))
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out

