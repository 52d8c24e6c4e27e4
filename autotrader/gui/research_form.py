"""Check the Research form before a run starts, in the form's own words.

A bad date used to surface a minute into the run, worded as a command-line
flag (``--start-date``) with a traceback. :func:`check_form` finds every
problem at once, keyed by field, phrased for the form; the Research tab marks
those fields and starts nothing. Pure (no tkinter, no calendar: the end date
is clamped to the last completed session by the run itself, as ``bma run``
does, and the form says so).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["FIELDS", "check_form"]

#: field -> label, in form order
FIELDS = {
    "source": "Source",
    "start_date": "Start date",
    "end_date": "End date",
    "top_n": "Top N",
    "data_path": "CSV file",
    "sectors_path": "Sectors file",
    "config_dir": "Config directory",
    "dask_scheduler": "Dask scheduler",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEYS = ("POLYGON_API_KEY", "MASSIVE_API_KEY")


def _date(text: str, label: str) -> tuple[dt.date | None, str | None]:
    if not text:
        return None, None
    if not _DATE.match(text):
        return None, f"{label}: write it as YYYY-MM-DD, e.g. 2021-01-04 (not {text!r})"
    try:
        return dt.date.fromisoformat(text), None
    except ValueError:
        return None, f"{label}: {text} is not a calendar date"


def check_form(values: Mapping[str, str], source: str, *, today: dt.date,
               environ: Mapping[str, str]) -> dict[str, str]:
    """Every problem of the form, ``{field: message}`` (empty when it may run).

    Examples
    --------
    >>> today = dt.date(2026, 3, 9)
    >>> form = {"start_date": "2024/01/02", "end_date": "2023-01-01", "top_n": "ten",
    ...         "data_path": "", "config_dir": ".", "dask_scheduler": ""}
    >>> sorted(check_form(form, "csv", today=today, environ={}))
    ['data_path', 'start_date', 'top_n']
    >>> check_form({**form, "start_date": "2024-01-02", "top_n": "50", "data_path": "."},
    ...            "demo", today=today, environ={})["start_date"]
    'Start date 2024-01-02 is after the end date 2023-01-01'
    """
    errors: dict[str, str] = {}
    start, problem = _date(values.get("start_date", ""), "Start date")
    if problem:
        errors["start_date"] = problem
    end, problem = _date(values.get("end_date", ""), "End date")
    if problem:
        errors["end_date"] = problem
    if start is not None and start >= today:
        errors["start_date"] = f"Start date {start} is not in the past"
    elif start is not None and end is not None and start > end:
        errors["start_date"] = f"Start date {start} is after the end date {end}"
    top_n = values.get("top_n", "")
    if top_n and (not top_n.isdigit() or int(top_n) < 1):
        errors["top_n"] = (f"Top N must be a whole number of names, at least 1, e.g. 200 "
                           f"(not {top_n!r})")
    if source == "csv":
        path = values.get("data_path", "")
        if not path:
            errors["data_path"] = "CSV file: choose the bars file (source csv reads it)"
        elif not Path(path).exists():
            errors["data_path"] = f"CSV file: {path} does not exist"
    sectors = values.get("sectors_path", "")
    if sectors and not Path(sectors).is_file():
        errors["sectors_path"] = f"Sectors file: {sectors} does not exist"
    if source == "polygon" and not any(environ.get(k) for k in _KEYS):
        errors["source"] = ("Source polygon needs POLYGON_API_KEY (or MASSIVE_API_KEY) in "
                            "the environment; choose demo or csv, or set the key and restart")
    config = values.get("config_dir", "")
    if not config:
        errors["config_dir"] = "Config directory: give the folder of your config files"
    elif not Path(config).is_dir():
        errors["config_dir"] = f"Config directory: {config} is not a folder"
    dask = _dask_problem(values.get("dask_scheduler", ""))
    if dask:
        errors["dask_scheduler"] = dask
    return errors


def _dask_problem(text: str) -> str | None:
    from bma_models.errors import SettingsError
    from bma_models.settings import DaskSettings

    value = text.strip() or None
    try:
        DaskSettings(scheduler=value).check()
    except SettingsError as e:
        return f"Dask scheduler {text!r}: {e}"
    return None
