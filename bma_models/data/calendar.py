"""The NYSE trading calendar (exchange_calendars ``XNYS``): the product's one calendar.

Why a library: holidays, early closes and one-off closures (national days of
mourning, hurricanes) are maintained upstream; a hand-written list drifts.

Everything that needs sessions uses this module: the data sources, ``bma run``'s
end-date clamp, the trader's market-hours check, and the Polygon bar store, which
may not import the research core and receives this module as its ``calendar``
parameter from the composition root (any object with :func:`sessions` and
:func:`last_completed_session` will do).
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache
from zoneinfo import ZoneInfo

import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")
#: First session the calendar knows. exchange_calendars opens 20 years back by
#: default, which would leave older history (real data from 2000, Polygon from
#: 2003) unchecked.
CALENDAR_START = "1990-01-01"


@lru_cache(maxsize=1)
def _calendar():
    import exchange_calendars

    # exchange_calendars 4.x reads ``Series.values`` of tz-aware columns while it
    # builds a calendar, which pandas 3.1 deprecates (Pandas4Warning). The
    # values it gets are still right (UTC nanoseconds); silence only that.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Warning, message=".*Series.values returning")
        return exchange_calendars.get_calendar("XNYS", start=CALENDAR_START)


def sessions(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """NYSE sessions in [start, end], as tz-naive midnight timestamps (datetime64[ns])."""
    cal = _calendar()
    start = max(pd.Timestamp(start).normalize(), cal.first_session)
    end = min(pd.Timestamp(end).normalize(), cal.last_session)
    if start > end:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    out = cal.sessions_in_range(start, end)
    return pd.DatetimeIndex(out.tz_localize(None) if out.tz else out).astype("datetime64[ns]")


def last_completed_session(now: dt.datetime | None = None) -> pd.Timestamp:
    """Return the latest session whose regular close is at or before ``now`` (default: now).

    ``now`` may be naive (taken as UTC) or aware.
    """
    cal = _calendar()
    ts = pd.Timestamp(now if now is not None else dt.datetime.now(dt.timezone.utc))
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    day = ts.tz_convert(NEW_YORK).normalize().tz_localize(None)
    schedule = cal.schedule.loc[day - pd.Timedelta(days=14): day, "close"]
    closed = schedule[schedule <= ts]
    if len(closed):
        return pd.Timestamp(closed.index[-1]).tz_localize(None) if closed.index.tz else \
            pd.Timestamp(closed.index[-1])
    raise ValueError(f"no completed NYSE session in the 14 days before {ts}")


def sessions_completed_after(day: str | dt.date | pd.Timestamp, now: dt.datetime) -> int:
    """Count the sessions after ``day`` whose regular close is at or before ``now``.

    The age of data whose last bar is ``day``, in sessions: 0 until the next
    session closes (and when ``day`` lies after ``now``, as with a simulated
    clock behind the data).

    Examples
    --------
    >>> import datetime as dt
    >>> tuesday_10am = dt.datetime(2026, 3, 10, 14, 0, tzinfo=dt.timezone.utc)
    >>> sessions_completed_after("2026-03-09", tuesday_10am)  # Monday's bars
    0
    >>> sessions_completed_after("2026-03-05", tuesday_10am)  # Thursday's: Fri, Mon
    2
    """
    last = last_completed_session(now)
    first = pd.Timestamp(day).normalize() + pd.Timedelta(days=1)
    return 0 if first > last else len(sessions(first, last))


def is_open(now: dt.datetime) -> bool:
    """Tell whether ``now`` is within a regular NYSE session (early closes honoured).

    Raises
    ------
    ValueError
        If ``now`` is naive (the session hours are only defined for an instant).
    """
    ts = pd.Timestamp(now)
    if ts.tzinfo is None:
        raise ValueError("is_open needs a timezone-aware datetime")
    ts = ts.tz_convert("UTC")
    day = ts.tz_convert(NEW_YORK).normalize().tz_localize(None)
    schedule = _calendar().schedule
    if day not in schedule.index:
        return False
    row = schedule.loc[day]
    return bool(row["open"] <= ts < row["close"])


def session_bounds(now: dt.datetime) -> tuple[bool, pd.Timestamp, pd.Timestamp]:
    """``(open now, next open, next close)`` around aware ``now`` (UTC timestamps).

    While a session is open, ``next close`` is today's close and ``next open``
    the following session's open; while closed, both belong to the next session.

    Examples
    --------
    >>> import datetime as dt
    >>> saturday = dt.datetime(2026, 3, 7, 15, 0, tzinfo=dt.timezone.utc)
    >>> is_open_now, opens, closes = session_bounds(saturday)
    >>> is_open_now, str(opens), str(closes)
    (False, '2026-03-09 13:30:00+00:00', '2026-03-09 20:00:00+00:00')
    """
    ts = pd.Timestamp(now)
    if ts.tzinfo is None:
        raise ValueError("session_bounds needs a timezone-aware datetime")
    ts = ts.tz_convert("UTC")
    day = ts.tz_convert(NEW_YORK).normalize().tz_localize(None)
    schedule = _calendar().schedule.loc[day - pd.Timedelta(days=1): day + pd.Timedelta(days=20)]
    upcoming = schedule[schedule["close"] > ts]
    if len(upcoming) < 2:
        raise ValueError(f"the NYSE calendar has no session after {ts}")
    first, second = upcoming.iloc[0], upcoming.iloc[1]
    if first["open"] <= ts:
        return True, second["open"], first["close"]
    return False, first["open"], first["close"]
