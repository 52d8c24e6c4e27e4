"""NYSE sessions for the bar store (exchange_calendars ``XNYS``).

Why not ``bma_models.data.calendar``: ``polygon`` is a leaf adapter and may
not import the research core (import-linter contract). This is the same
calendar, opened with an earlier start (Polygon history reaches back to 2003).
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import pandas as pd

CALENDAR_START = "2000-01-01"


@lru_cache(maxsize=1)
def _calendar():
    import exchange_calendars

    # exchange_calendars reads ``Series.values`` of tz-aware columns while it builds
    # a calendar, which pandas 3.1 deprecates (Pandas4Warning); the values are right.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*values returning an ndarray")
        return exchange_calendars.get_calendar("XNYS", start=CALENDAR_START)


def sessions(start: dt.date | str, end: dt.date | str) -> pd.DatetimeIndex:
    """NYSE sessions in [start, end] as tz-naive midnight ``datetime64[ns]`` timestamps."""
    cal = _calendar()
    first = max(pd.Timestamp(start).normalize(), cal.first_session)
    last = min(pd.Timestamp(end).normalize(), cal.last_session)
    if first > last:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    out = cal.sessions_in_range(first, last)
    return pd.DatetimeIndex(out.tz_localize(None) if out.tz else out).astype("datetime64[ns]")


def last_completed_session(now: dt.datetime | None = None) -> pd.Timestamp:
    """The latest session whose regular close is at or before ``now`` (naive = UTC)."""
    cal = _calendar()
    ts = pd.Timestamp(now if now is not None else dt.datetime.now(dt.timezone.utc))
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    day = ts.tz_convert("America/New_York").normalize().tz_localize(None)
    for session in reversed(sessions(day - pd.Timedelta(days=14), day)):
        if cal.session_close(session) <= ts:
            return pd.Timestamp(session)
    raise ValueError(f"no completed NYSE session in the 14 days before {ts}")
