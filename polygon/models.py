"""Typed records of Polygon responses: terse wire keys mapped to names.

Each record has a ``from_json`` that validates the fields it needs and raises
:class:`~polygon.errors.BadResponseError` naming the missing or malformed key,
so an unexpected body shape fails loudly at the boundary instead of surfacing
as a NaN three modules later.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from polygon.errors import BadResponseError

NEW_YORK = ZoneInfo("America/New_York")


@lru_cache(maxsize=65_536)
def session_date(epoch_ms: int) -> dt.date:
    """Return the NYSE session date of a daily bar whose start is ``epoch_ms``.

    Why New York time and not UTC: Polygon stamps a daily bar at 00:00
    America/New_York, i.e. 04:00 or 05:00 UTC of the same day, so the calendar
    date in New York is the session (``1112331600000`` -> 2005-04-01).

    Examples
    --------
    >>> session_date(1112331600000)
    datetime.date(2005, 4, 1)
    """
    return dt.datetime.fromtimestamp(epoch_ms / 1000.0, tz=NEW_YORK).date()


class DailyBar(NamedTuple):
    """One adjusted daily bar (``o h l c v vw n t`` on the wire)."""

    ticker: str
    session: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    transactions: int | None
    timestamp_ms: int

    @classmethod
    def from_json(cls, item: Any, ticker: str | None = None) -> DailyBar:
        """Build a bar from one ``results`` item; ``ticker`` defaults to its ``T`` key.

        Raises
        ------
        BadResponseError
            If a price, volume or timestamp key is missing or not numeric.
        """
        # one try block and no per-field checks: this runs once per bar (millions per download)
        try:
            name = (item["T"] if ticker is None else ticker).upper()
            stamp = int(item["t"])
            vwap, trades = item.get("vw"), item.get("n")
            bar = cls(
                name, session_date(stamp), float(item["o"]), float(item["h"]), float(item["l"]),
                float(item["c"]), float(item["v"]),
                # vw is absent for a few illiquid bars; NaN keeps the column numeric
                float("nan") if vwap is None else float(vwap),
                None if trades is None else int(trades), stamp,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BadResponseError(f"malformed bar: {e!r} in {item!r:.160}") from e
        if not name:
            raise BadResponseError(f"bar has an empty ticker: {item!r:.160}")
        return bar


class TickerDetails(NamedTuple):
    """Reference data of one ticker from ``/v3/reference/tickers/{ticker}``."""

    ticker: str
    name: str | None
    active: bool | None
    primary_exchange: str | None
    type: str | None
    market_cap: float | None
    share_class_shares_outstanding: float | None
    weighted_shares_outstanding: float | None
    sic_code: str | None
    sic_description: str | None

    @property
    def shares_outstanding(self) -> float | None:
        """Share-class shares when known (what a per-ticker market cap uses), else weighted."""
        if self.share_class_shares_outstanding is not None:
            return self.share_class_shares_outstanding
        return self.weighted_shares_outstanding

    @classmethod
    def from_json(cls, body: Any) -> TickerDetails:
        """Build from a full response body (``{"results": {...}, ...}``).

        Raises
        ------
        BadResponseError
            If ``results`` is not an object or has no ``ticker``.
        """
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, dict) or not isinstance(results.get("ticker"), str):
            raise BadResponseError(
                f"ticker details without results.ticker: {body!r:.160}",
                request_id=body.get("request_id") if isinstance(body, dict) else None,
            )
        sic = results.get("sic_code")
        return cls(
            ticker=results["ticker"].upper(),
            name=_text(results.get("name")),
            active=results.get("active") if isinstance(results.get("active"), bool) else None,
            primary_exchange=_text(results.get("primary_exchange")),
            type=_text(results.get("type")),
            market_cap=_number(results.get("market_cap")),
            share_class_shares_outstanding=_number(results.get("share_class_shares_outstanding")),
            weighted_shares_outstanding=_number(results.get("weighted_shares_outstanding")),
            sic_code=str(sic) if sic not in (None, "") else None,
            sic_description=_text(results.get("sic_description")),
        )


def results_list(body: dict[str, Any]) -> list[Any]:
    """Return the ``results`` array of an aggregates body; an absent key means no bars.

    Raises
    ------
    BadResponseError
        If ``results`` is present but not a list, or the status is not OK/DELAYED.
    """
    status = body.get("status")
    if status not in (None, "OK", "DELAYED"):
        raise BadResponseError(
            f"unexpected status {status!r} in a 200 response", request_id=body.get("request_id")
        )
    results = body.get("results", [])
    if results is None:
        return []
    if not isinstance(results, list):
        raise BadResponseError(
            f"results is {type(results).__name__}, expected a list",
            request_id=body.get("request_id"),
        )
    return results


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
