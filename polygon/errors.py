"""Domain exceptions of the Polygon/Massive adapter.

Every HTTP error carries the HTTP ``status``, the server's ``message`` and its
``request_id`` so a log line or a support ticket can name the exact request.
Messages are redacted before they are stored: an API key never reaches an
exception text.
"""

from __future__ import annotations


class PolygonError(Exception):
    """Base class of every error raised by :mod:`polygon`.

    Parameters
    ----------
    message : str
        Human-readable description (already redacted).
    status : int or None
        HTTP status code when the error came from a response.
    request_id : str or None
        Polygon's ``request_id`` from the response body, when there was one.
    url : str or None
        The redacted request URL.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.url = url

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        if self.url:
            parts.append(f"url={self.url}")
        return " ".join(parts)


class AuthError(PolygonError):
    """401/403, or no API key configured; the message says how to fix it."""


class NotFoundError(PolygonError):
    """404: the ticker, date or resource does not exist on the server."""


class RateLimitedError(PolygonError):
    """429 responses persisted after every allowed retry (or Retry-After was too long)."""


class ServiceError(PolygonError):
    """5xx responses, timeouts or connection resets persisted after every allowed retry."""


class PolygonUnreachable(PolygonError):
    """No connection to the host could be made: DNS failure, refused, unreachable, connect timeout.

    Not a rate limit and not a server fault: the request never reached the
    server, so it is retried only a couple of times within a few seconds (see
    :class:`~polygon._http.RetryPolicy`), and a bulk download stops at the first
    one instead of trying every other ticker.

    Parameters
    ----------
    message : str
        Human-readable description (already redacted); names the host.
    host : str
        The host (``name`` or ``name:port`` when the URL gives a port) that could not be reached.
    reason : str
        ``"DNS lookup failed"``, ``"connection refused"``, ``"network unreachable"``,
        ``"connect timeout"`` or ``"connection failed"``.
    url : str or None
        The redacted request URL.
    """

    def __init__(self, message: str, *, host: str, reason: str, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.host = host
        self.reason = reason


class BadResponseError(PolygonError):
    """The server answered with malformed JSON or a body of an unexpected shape."""


class CacheError(PolygonError):
    """The parquet bar cache cannot be read or written (e.g. a corrupt file)."""


class RefreshError(PolygonError):
    """A cache refresh finished with failed tickers; ``report`` says which and why.

    Tickers that succeeded were written (each file is self-consistent), so a
    retry only re-fetches what failed.
    """

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report
