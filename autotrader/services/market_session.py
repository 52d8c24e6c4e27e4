"""The NYSE session at a moment, in the words a trader reads: open or closed, and until when.

:func:`market_session` asks the product's one calendar
(:func:`bma_models.data.calendar.session_bounds`) and returns a
:class:`MarketSession`; :meth:`MarketSession.describe` gives the status strip's
text ("OPEN, closes 16:00 ET" / "CLOSED, opens Mon 09:30 ET") and
:meth:`MarketSession.next_open_text` the cycle summary's ("next open Mon 09:30 ET").
No tkinter: the GUI calls it on its Tk thread (about 1 ms once the calendar is
built; the first call builds it, ~0.5 s, so the GUI warms it on a helper thread).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

__all__ = ["NEW_YORK", "MarketSession", "et_clock", "market_session", "run_age_sessions"]

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class MarketSession:
    """Open or closed at ``at``, with the next open and close (aware datetimes, UTC).

    ``is_open`` is None when the calendar could not be read (``error`` says
    why); the trader then fails closed, and so does this record's wording.
    """

    at: dt.datetime
    is_open: bool | None
    next_open: dt.datetime | None = None
    next_close: dt.datetime | None = None
    error: str = ""

    def valid_at(self, now: dt.datetime) -> bool:
        """Return True while no open or close lies between :attr:`at` and ``now``.

        The cache check of the header: a session whose calendar lookup failed
        (``is_open`` None) stays valid for one minute.
        """
        if self.is_open is None:
            return now - self.at < dt.timedelta(minutes=1)
        edge = self.next_close if self.is_open else self.next_open
        return edge is not None and self.at <= now < edge

    def describe(self) -> str:
        """``"OPEN, closes 16:00 ET"`` / ``"CLOSED, opens Mon 09:30 ET"``.

        Examples
        --------
        >>> utc = dt.timezone.utc
        >>> MarketSession(dt.datetime(2026, 3, 7, 15, tzinfo=utc), False,
        ...               dt.datetime(2026, 3, 9, 13, 30, tzinfo=utc),
        ...               dt.datetime(2026, 3, 9, 20, 0, tzinfo=utc)).describe()
        'CLOSED, opens Mon 09:30 ET'
        """
        if self.is_open is None:
            return f"UNKNOWN (calendar: {self.error})"
        if self.is_open:
            return f"OPEN, closes {_et(self.next_close, self.at)}"
        return f"CLOSED, opens {_et(self.next_open, self.at)}"

    def next_open_text(self) -> str:
        """``"next open Mon 09:30 ET"`` (empty while open or unknown)."""
        if self.is_open is not False or self.next_open is None:
            return ""
        return f"next open {_et(self.next_open, self.at)}"


def _et(moment: dt.datetime | None, now: dt.datetime) -> str:
    # "16:00 ET" today, "Mon 09:30 ET" within a week, "Mon 6 Apr 09:30 ET" further out
    if moment is None:
        return "-"
    local, today = moment.astimezone(NEW_YORK), now.astimezone(NEW_YORK).date()
    if local.date() == today:
        return f"{local:%H:%M} ET"
    if (local.date() - today).days < 7:
        return f"{local:%a %H:%M} ET"
    return f"{local:%a} {local.day} {local:%b %H:%M} ET"


def et_clock(now: dt.datetime) -> str:
    """``"Fri 14:03:27 ET"``: the exchange clock of the status strip."""
    return f"{now.astimezone(NEW_YORK):%a %H:%M:%S} ET"


def market_session(now: dt.datetime) -> MarketSession:
    """Return the NYSE session around aware ``now`` (a calendar failure is returned, not raised).

    Examples
    --------
    >>> saturday = dt.datetime(2026, 3, 7, 15, 0, tzinfo=dt.timezone.utc)
    >>> market_session(saturday).describe()
    'CLOSED, opens Mon 09:30 ET'
    """
    from bma_models.data import calendar

    try:
        is_open, opens, closes = calendar.session_bounds(now)
    except Exception as e:  # noqa: BLE001 - any calendar failure: unknown, shown as such
        logger.warning("NYSE calendar unavailable at %s: %s", now, e)
        return MarketSession(now, None, error=f"{type(e).__name__}: {e}")
    return MarketSession(now, is_open, opens.to_pydatetime(), closes.to_pydatetime())


def run_age_sessions(last_date: dt.date, now: dt.datetime) -> int:
    """NYSE sessions closed since a run's last bar (``signals.max_run_age_sessions``).

    Raises whatever the calendar raises; the trader counts that as "unknown" and fails closed.

    Examples
    --------
    >>> thursday = dt.datetime(2025, 7, 10, 15, 0, tzinfo=dt.timezone.utc)
    >>> run_age_sessions(dt.date(2025, 6, 30), thursday)  # Jul 1, 2, 3, 7, 8, 9 (4th: holiday)
    6
    """
    from bma_models.data import calendar

    return calendar.sessions_completed_after(last_date, now)
