"""``PolygonClient``: the facade of the Polygon.io / Massive REST adapter.

Polygon.io renamed itself Massive in October 2025; the REST API and keys are
unchanged and ``api.polygon.io`` still answers. The default base URL is the
new host :data:`DEFAULT_BASE_URL` (``https://api.massive.com``); a configured
``base_url`` always wins (tests point it at the fake server on 127.0.0.1).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator

from polygon._http import HttpSession, RateLimiter, RetryPolicy
from polygon.errors import AuthError, BadResponseError
from polygon.models import DailyBar, TickerDetails, results_list

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.massive.com"
API_KEY_ENV_VARS: tuple[str, ...] = ("POLYGON_API_KEY", "MASSIVE_API_KEY")
MAX_AGGREGATES_LIMIT = 50_000

DateLike = dt.date | str


def api_key_from_env(environ: dict[str, str] | None = None) -> str:
    """Return the API key from ``POLYGON_API_KEY``, else ``MASSIVE_API_KEY``.

    Raises
    ------
    AuthError
        If neither variable is set (the message names both).
    """
    env = os.environ if environ is None else environ
    for name in API_KEY_ENV_VARS:
        value = env.get(name, "").strip()
        if value:
            return value
    raise AuthError(f"no Polygon/Massive API key: set {' or '.join(API_KEY_ENV_VARS)}")


class PolygonClient:
    """Typed access to the daily-bar and reference endpoints.

    ``list_*`` methods return iterators (pages are fetched lazily, following
    ``next_url``); ``get_*`` methods return complete lists or records.

    Parameters
    ----------
    base_url : str
        Scheme and host; default :data:`DEFAULT_BASE_URL`.
    api_key : str or None
        None reads ``POLYGON_API_KEY``, else ``MASSIVE_API_KEY``.
    rate_limit_per_min : float or None
        Client-side limit shared by all threads; None = unlimited. The free
        plan allows 5 requests/minute.
    timeout_s : float
        Read timeout per request (connect timeout: ``connect_timeout_s``).
    max_concurrency : int
        Worker threads callers may run; sizes the connection pool.
    max_retries, backoff_base_s, backoff_max_s, max_retry_after_s
        The :class:`~polygon._http.RetryPolicy` for 429/5xx/timeouts/resets.
    connect_retries : int
        Quick retries (0.5 s, then 1 s, all within 8 s) when no connection to the
        host can be made at all; then :class:`~polygon.errors.PolygonUnreachable`.
    sleep, clock, wall_clock : callable
        Injectable time for tests (backoff and rate-limit waits).
    seed : int or None
        Seed of the backoff jitter.

    Examples
    --------
    >>> client = PolygonClient(base_url="http://127.0.0.1:1", api_key="k")
    >>> client.base_url
    'http://127.0.0.1:1'
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        rate_limit_per_min: float | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        max_concurrency: int = 8,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 120.0,
        connect_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self._http = HttpSession(
            api_key=api_key if api_key is not None else api_key_from_env(),
            base_url=self.base_url,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=timeout_s,
            retry=RetryPolicy(max_retries, backoff_base_s, backoff_max_s, max_retry_after_s,
                              connect_retries=connect_retries),
            rate_limiter=RateLimiter(rate_limit_per_min, clock=clock, sleep=sleep),
            pool_size=max_concurrency,
            sleep=sleep,
            wall_clock=wall_clock,
            seed=seed,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"PolygonClient(base_url={self.base_url!r}, requests={self.request_count})"

    def __enter__(self) -> PolygonClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def request_count(self) -> int:
        """HTTP attempts sent so far (retries included)."""
        return self._http.request_count

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        self._http.close()

    def list_daily_bars(
        self, ticker: str, start: DateLike, end: DateLike, limit: int = MAX_AGGREGATES_LIMIT
    ) -> Iterator[DailyBar]:
        """Yield the adjusted daily bars of ``ticker`` in [start, end], oldest first, all pages.

        ``GET /v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}?adjusted=true&sort=asc``.
        """
        symbol = ticker.upper()
        path = f"/v2/aggs/ticker/{symbol}/range/1/day/{_day(start)}/{_day(end)}"
        params = {"adjusted": "true", "sort": "asc", "limit": str(limit)}
        for body in self._http.iter_pages(path, params):
            for item in results_list(body):
                yield DailyBar.from_json(item, ticker=symbol)

    def get_daily_bars(
        self, ticker: str, start: DateLike, end: DateLike, limit: int = MAX_AGGREGATES_LIMIT
    ) -> list[DailyBar]:
        """All adjusted daily bars of ``ticker`` in [start, end] (see :meth:`list_daily_bars`)."""
        return list(self.list_daily_bars(ticker, start, end, limit))

    def get_grouped_daily(self, date: DateLike) -> list[DailyBar]:
        """Return the adjusted bars of every US stock for one session (empty on a holiday).

        ``GET /v2/aggs/grouped/locale/us/market/stocks/{date}?adjusted=true``.
        """
        path = f"/v2/aggs/grouped/locale/us/market/stocks/{_day(date)}"
        body = self._http.get_json(path, {"adjusted": "true"})
        return [DailyBar.from_json(item) for item in results_list(body)]

    def get_ticker_details(self, ticker: str, date: DateLike | None = None) -> TickerDetails:
        """Return reference data (market cap, shares, SIC, exchange) as of ``date`` (None: today).

        ``GET /v3/reference/tickers/{ticker}?date=...``.

        Raises
        ------
        NotFoundError
            If the server does not know the ticker at that date.
        """
        params = {"date": _day(date)} if date is not None else None
        body = self._http.get_json(f"/v3/reference/tickers/{ticker.upper()}", params)
        return TickerDetails.from_json(body)

    def get_previous_close(self, ticker: str) -> DailyBar | None:
        """Return the previous session's adjusted bar, None when the server has none.

        ``GET /v2/aggs/ticker/{ticker}/prev?adjusted=true``.
        """
        symbol = ticker.upper()
        body = self._http.get_json(f"/v2/aggs/ticker/{symbol}/prev", {"adjusted": "true"})
        results = results_list(body)
        if len(results) > 1:
            raise BadResponseError(
                f"previous close of {symbol} has {len(results)} bars",
                request_id=body.get("request_id"),
            )
        return DailyBar.from_json(results[0], ticker=symbol) if results else None


def _day(value: DateLike) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(str(value)[:10]).isoformat()
