"""The one owner of the HTTP session: auth, timeouts, retry/backoff, rate limit, pagination.

Layering (style guide principle 12): this module speaks HTTP and JSON only;
:mod:`polygon.client` turns bodies into typed records from :mod:`polygon.models`.

Why the key goes in the ``Authorization: Bearer`` header and never in the URL:
URLs end up in logs, exception texts and proxies. Every URL, message and
exception text produced here is nevertheless passed through :func:`redact`,
because a ``next_url`` or an upstream library message could still carry it.
"""

from __future__ import annotations

import email.utils
import errno
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from polygon.errors import (
    AuthError,
    BadResponseError,
    NotFoundError,
    PolygonError,
    PolygonUnreachable,
    RateLimitedError,
    ServiceError,
)

logger = logging.getLogger(__name__)

_KEY_PARAM = re.compile(r"(apiKey=)[^&\s'\"]+", re.IGNORECASE)
_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9_\-\.]+")
_AUTH_HINT = (
    "check the API key in POLYGON_API_KEY (or MASSIVE_API_KEY) and that your plan "
    "includes this endpoint and date range"
)
_TRANSPORT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)
_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "network unreachable",
}


def redact(text: str, secret: str | None) -> str:
    """Return ``text`` with ``secret``, ``apiKey=...`` and ``Bearer ...`` replaced by ``***``."""
    if secret:
        text = text.replace(secret, "***")
    text = _KEY_PARAM.sub(r"\1***", text)
    return _BEARER.sub(r"\1***", text)


def connect_failure(error: BaseException) -> tuple[str, str] | None:
    """Why no connection to the host could be made, or None if the failure came after connecting.

    ``requests`` wraps urllib3's ``MaxRetryError``, whose ``reason`` is the
    connection-phase error (``NameResolutionError``, ``NewConnectionError``,
    ``ConnectTimeoutError``) caused by the socket error. A reset or a read
    timeout on an open connection is not a connect failure.

    Parameters
    ----------
    error : BaseException
        The exception raised by ``requests``.

    Returns
    -------
    tuple of str or None
        ``(reason, detail)``: reason is ``"DNS lookup failed"``, ``"connection refused"``,
        ``"network unreachable"``, ``"connect timeout"`` or ``"connection failed"``;
        detail is the innermost error's text.

    Examples
    --------
    >>> connect_failure(requests.ConnectionError("Connection aborted.")) is None
    True
    """
    for link in _chain(error):
        if isinstance(link, urllib3.exceptions.NewConnectionError):  # incl. NameResolutionError
            return _new_connection_reason(link)
        if isinstance(link, urllib3.exceptions.ConnectTimeoutError):
            return "connect timeout", str(link)
    if isinstance(error, requests.ConnectTimeout):
        return "connect timeout", str(error)
    return None


def _new_connection_reason(error: BaseException) -> tuple[str, str]:
    for link in _chain(error):
        if isinstance(link, socket.gaierror):
            return "DNS lookup failed", str(link)
        if isinstance(link, (socket.timeout, TimeoutError)):
            return "connect timeout", str(link)
        if isinstance(link, OSError) and link.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[link.errno], str(link)
    return "connection failed", str(error)


def _chain(error: BaseException) -> Iterator[BaseException]:
    # the error, then its cause, context, urllib3 ``reason`` and exception args, each once
    pending, seen = [error], set()
    while pending:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        linked = [link.__cause__, link.__context__, getattr(link, "reason", None), *link.args]
        pending.extend(x for x in linked if isinstance(x, BaseException))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or None if absent/invalid.

    Parameters
    ----------
    value : str or None
        The header: delta-seconds (``"2"``) or an HTTP date
        (``"Wed, 21 Oct 2026 07:28:00 GMT"``).
    now : float
        The current wall-clock time (epoch seconds), used for the HTTP-date form.

    Returns
    -------
    float or None
        Non-negative seconds; None when the header is missing or unparseable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        logger.warning("ignoring unparseable Retry-After header %r", text)
        return None
    return max(0.0, when.timestamp() - now)


class RateLimiter:
    """Thread-safe token bucket (GCRA form): ``requests_per_minute`` with a ``burst``.

    Why a reservation and not a polling loop: each caller reserves its slot
    under the lock and sleeps outside it, so workers never spin, the order is
    fair, and a fake ``sleep`` in tests needs no cooperating clock.

    Parameters
    ----------
    requests_per_minute : float or None
        Sustained rate; None or 0 disables limiting (paid plans). The free plan
        allows 5.
    burst : int
        Requests allowed back-to-back before spacing starts.
    clock, sleep : callable
        Monotonic clock and sleep, injectable for tests.
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat: float | None = None

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        if not self.requests_per_minute:
            return 0.0
        interval = 60.0 / self.requests_per_minute
        with self._lock:
            now = self._clock()
            tat = now if self._tat is None else max(self._tat, now)
            start = max(now, tat - (max(self.burst, 1) - 1) * interval)
            self._tat = tat + interval
        wait = start - now
        if wait > 0:
            logger.debug("rate limiter: waiting %.2fs", wait)
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    The delay before retry ``k`` (0-based) is ``min(max_delay_s, base_delay_s * 2**k)``
    scaled by a random factor in [0.5, 1] ("equal jitter"), and never less than
    the server's ``Retry-After``. A ``Retry-After`` above ``max_retry_after_s``
    is not waited for: the request fails at once with :class:`RateLimitedError`.

    A failure to connect at all (DNS, refused, unreachable, connect timeout) is
    not a rate limit: it gets at most ``connect_retries`` quick retries
    (``connect_delay_s``, then doubled), none starting later than
    ``connect_window_s`` after the first attempt, and then
    :class:`~polygon.errors.PolygonUnreachable`. Those retries take no
    rate-limiter slot: the failed attempt never reached the server.
    """

    max_retries: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    connect_retries: int = 2
    connect_delay_s: float = 0.5
    connect_window_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        jittered = backoff * (0.5 + 0.5 * rng.random())
        return jittered if retry_after is None else max(retry_after, jittered)

    def connect_delay(self, retry: int) -> float:
        """Return the pause before connect retry ``retry``: ``connect_delay_s * 2**retry``."""
        return self.connect_delay_s * 2**retry


@dataclass
class _Failure:
    # a retryable outcome of one attempt
    kind: str
    status: int | None
    message: str
    request_id: str | None
    retry_after: float | None = None
    cause: BaseException | None = None
    reason: str | None = None  # why no connection could be made (kind "unreachable")


class HttpSession:
    """Owns one ``requests.Session`` shared by every worker thread.

    Parameters
    ----------
    api_key : str
        Sent as ``Authorization: Bearer <key>``; redacted from every log line and error.
    base_url : str
        Scheme and host, e.g. ``https://api.massive.com``.
    connect_timeout_s, read_timeout_s : float
        Per-request timeouts.
    retry : RetryPolicy
        Backoff for 429, 5xx, timeouts, connection resets and malformed JSON; the
        short, bounded retry of a failure to connect.
    rate_limiter : RateLimiter
        Shared limiter, acquired before every attempt (retries included).
    pool_size : int
        Connection-pool size; at least the number of worker threads.
    sleep, wall_clock, clock : callable
        Injectable for tests (backoff sleeps, Retry-After HTTP dates, the monotonic
        clock of the connect-retry window).
    seed : int or None
        Seed of the jitter generator (deterministic tests).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = _host(self.base_url)
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.retry = retry if retry is not None else RetryPolicy()
        self.rate_limiter = rate_limiter if rate_limiter is not None else RateLimiter(None)
        self._api_key = api_key
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._clock = clock
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._request_count = 0
        self._session = _make_session(api_key, pool_size)

    @property
    def request_count(self) -> int:
        """HTTP attempts sent so far (retries included)."""
        return self._request_count

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET ``base_url + path`` and return the decoded JSON object, retrying transient faults.

        Raises
        ------
        PolygonUnreachable
            No connection to the host could be made (after the short connect retries).
        AuthError, NotFoundError, RateLimitedError, ServiceError, BadResponseError, PolygonError
        """
        url = self.base_url + path
        shown = self._redact(url + (f"?{urlencode(params)}" if params else ""))
        for attempt in range(self.retry.max_retries + 1):
            failure = self._attempt(url, params, shown)
            if isinstance(failure, dict):
                return failure
            retry_after = failure.retry_after
            if retry_after is not None and retry_after > self.retry.max_retry_after_s:
                self._raise_final(failure, shown, "Retry-After exceeds max_retry_after_s")
            if attempt == self.retry.max_retries:
                self._raise_final(failure, shown, f"gave up after {attempt + 1} attempts")
            with self._rng_lock:
                delay = self.retry.delay(attempt, retry_after, self._rng)
            logger.warning(
                "polygon retry %d/%d in %.2fs (%s): status=%s message=%s request_id=%s url=%s",
                attempt + 1, self.retry.max_retries, delay, failure.kind, failure.status,
                failure.message, failure.request_id, shown,
            )
            self._sleep(delay)
        raise AssertionError("unreachable: the retry loop always returns or raises")

    def iter_pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """Yield response bodies, following ``next_url`` cursors until there is none.

        Why only the path and query of ``next_url`` are followed (as the official
        client does): the request stays on the configured host with the same
        auth header, so a cursor can never send the key elsewhere; an ``apiKey``
        query parameter in a cursor is dropped (auth is the header).
        """
        seen: set[str] = set()
        while True:
            body = self.get_json(path, params)
            yield body
            next_url = body.get("next_url")
            if not next_url:
                return
            if not isinstance(next_url, str) or next_url in seen:
                raise BadResponseError(
                    f"invalid or repeated next_url {self._redact(str(next_url))}",
                    request_id=_request_id(body, None),
                )
            seen.add(next_url)
            parts = urlsplit(next_url)
            path = parts.path
            params = {k: v for k, v in parse_qsl(parts.query) if k.lower() != "apikey"}

    def _attempt(self, url: str, params: dict | None, shown: str) -> dict | _Failure:
        # one rate-limiter slot per attempt that may reach the server; a failure to connect
        # gets its few quick retries inside that slot, then PolygonUnreachable
        self.rate_limiter.acquire()
        first = self._clock()
        retry = 0
        while True:
            outcome = self._send(url, params, shown)
            if not (isinstance(outcome, _Failure) and outcome.kind == "unreachable"):
                return outcome
            delay = self.retry.connect_delay(retry)
            elapsed = self._clock() - first
            if retry >= self.retry.connect_retries or elapsed + delay > self.retry.connect_window_s:
                self._raise_unreachable(outcome, shown, retry + 1, elapsed)
            logger.warning(
                "polygon: cannot reach %s (%s); connect retry %d/%d in %.2fs: url=%s",
                self.host, outcome.reason, retry + 1, self.retry.connect_retries, delay, shown,
            )
            self._sleep(delay)
            retry += 1

    def _send(self, url: str, params: dict | None, shown: str) -> dict | _Failure:
        with self._count_lock:
            self._request_count += 1
            number = self._request_count
        logger.debug("GET #%d %s", number, shown)
        try:
            response = self._session.get(url, params=params, timeout=self.timeout)
            content = response.content
        except _TRANSPORT_ERRORS as e:
            message = self._redact(f"{type(e).__name__}: {e}")
            unreachable = connect_failure(e)
            if unreachable is not None:
                reason, detail = unreachable
                return _Failure("unreachable", None, self._redact(detail), None, cause=e,
                                reason=reason)
            kind = "timeout" if isinstance(e, requests.Timeout) else "connection"
            return _Failure(kind, None, message, None, cause=e)
        except requests.RequestException as e:  # invalid URL, too many redirects: not transient
            failure = _Failure("request", None, self._redact(f"{type(e).__name__}: {e}"), None,
                               cause=e)
            self._raise_final(failure, shown, "not retried", PolygonError)
        return self._classify(response, content, shown)

    def _raise_unreachable(self, failure: _Failure, shown: str, attempts: int,
                           elapsed: float) -> NoReturn:
        reason = failure.reason or "connection failed"
        message = (f"cannot reach {self.host} ({reason}: {failure.message}) after {attempts} "
                   f"attempt{'s' if attempts > 1 else ''} in {elapsed:.1f}s; check the network "
                   "connection and polygon.base_url")
        logger.error("polygon request failed (PolygonUnreachable): %s url=%s", message, shown)
        error = PolygonUnreachable(message, host=self.host, reason=reason, url=shown)
        raise error from failure.cause

    def _classify(self, response: requests.Response, content: bytes, shown: str) -> dict | _Failure:
        status = response.status_code
        header_id = response.headers.get("X-Request-Id")
        try:
            body: Any = json.loads(content)
        except ValueError as e:
            if status == 200:
                message = f"malformed JSON: {e}"
                return _Failure("malformed JSON", status, message, header_id, cause=e)
            body = None
        request_id = _request_id(body, header_id)
        message = self._redact(_message(body, content))
        if status == 200:
            if not isinstance(body, dict):
                self._raise_final(
                    _Failure("bad shape", status, "JSON body is not an object", request_id),
                    shown, "unexpected response shape", error=BadResponseError,
                )
            return body
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())
        if status == 429 or status >= 500:
            kind = "rate limited" if status == 429 else "server error"
            return _Failure(kind, status, message, request_id, retry_after=retry_after)
        error: type[PolygonError] = PolygonError
        if status in (401, 403):
            error, message = AuthError, f"{message} ({_AUTH_HINT})"
        elif status == 404:
            error = NotFoundError
        self._raise_final(_Failure("client error", status, message, request_id), shown, "", error)

    def _raise_final(
        self,
        failure: _Failure,
        shown: str,
        reason: str,
        error: type[PolygonError] | None = None,
    ) -> NoReturn:
        if error is None:
            error = {
                "rate limited": RateLimitedError,
                "malformed JSON": BadResponseError,
            }.get(failure.kind, ServiceError)
        message = failure.message + (f" [{reason}]" if reason else "")
        logger.error(
            "polygon request failed (%s): status=%s message=%s request_id=%s url=%s",
            error.__name__, failure.status, message, failure.request_id, shown,
        )
        raise error(
            message, status=failure.status, request_id=failure.request_id, url=shown
        ) from failure.cause

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)


def _make_session(api_key: str, pool_size: int) -> requests.Session:
    session = requests.Session()
    # retries are ours (with Retry-After and logging); urllib3 must not retry on its own
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "User-Agent": "bma-workstation-polygon/0.1",
    })
    return session


def _host(base_url: str) -> str:
    # "name" or "name:port" of the base URL (no scheme, no credentials); the URL itself if odd
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname:
        return base_url
    return parts.hostname + (f":{port}" if port is not None else "")


def _request_id(body: Any, header_id: str | None) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("request_id"), str):
        return body["request_id"]
    return header_id


def _message(body: Any, content: bytes) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "status"):
            if isinstance(body.get(key), str):
                return body[key]
    return content[:200].decode("utf-8", errors="replace").strip() or "<empty body>"
