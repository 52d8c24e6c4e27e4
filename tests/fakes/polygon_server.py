"""A fake Polygon/Massive REST server on 127.0.0.1 for tests and benchmarks.

It serves, in this order:

1. real recorded responses from ``recorded_dir`` (the tests pass
   ``tests/fixtures/polygon/client-python_test_rest_mocks``; file path = URL path; the
   first ``&`` stands for ``?``, the first ``;`` for ``:``), matched on path + query first,
   then on the path alone;
2. synthetic, deterministic-per-ticker adjusted daily bars for any other ticker, on the NYSE
   calendar, up to :attr:`FakePolygonServer.last_session` (move it forward to simulate a new day).

Scripted behaviour: ``next_url`` pagination (``page_limit``), faults per path pattern or at a
random rate (429 with Retry-After, 5xx, slow responses/timeouts, truncated JSON, connection
resets, 401), a fixed latency per request, split "adjustment events", and a request log so tests
can assert exactly which requests were made. The real client runs unchanged against it: only the
base URL differs. It checks ``Authorization: Bearer <key>`` and answers 401 otherwise.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import re
import socket
import struct
import threading
import time
import warnings
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import exchange_calendars
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "502", "503", "timeout", "truncated", "reset", "401")
TRANSIENT_FAULTS = ("429", "503", "500", "timeout", "truncated", "reset")
SIC_CODES = ("3571", "2834", "6022", "4911", "1311", "5331", "7372", "3714", "6798", "4813")
with warnings.catch_warnings():  # exchange_calendars vs pandas 3.1 (Pandas4Warning), harmless
    warnings.filterwarnings("ignore", message=".*values returning an ndarray")
    _CALENDAR = exchange_calendars.get_calendar("XNYS", start="2000-01-01")
_AGGS = re.compile(r"^/v2/aggs/ticker/([^/]+)/range/1/day/([^/]+)/([^/]+)$")
_GROUPED = re.compile(r"^/v2/aggs/grouped/locale/us/market/stocks/(\d{4}-\d{2}-\d{2})$")
_DETAILS = re.compile(r"^/v3/reference/tickers/([^/]+)$")
_PREV = re.compile(r"^/v2/aggs/ticker/([^/]+)/prev$")


@dataclass
class Fault:
    """One injected misbehaviour; ``kind`` is one of :data:`FAULT_KINDS`."""

    kind: str
    retry_after: str | None = None
    delay_s: float = 1.0


@dataclass
class _Rule:
    pattern: re.Pattern
    fault: Fault
    remaining: int


@dataclass
class RequestRecord:
    """One request as the server saw it."""

    path: str
    params: dict[str, str]
    status: int
    fault: str | None = None


class FaultScript:
    """Which requests misbehave: scripted rules first, then an optional random rate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._rate = 0.0
        self._kinds: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self._random_fault = Fault("503")

    def add(self, pattern: str, kind: str, times: int = 1, retry_after: str | None = None,
            delay_s: float = 1.0) -> None:
        """Fail the next ``times`` requests whose path matches regex ``pattern`` with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._rules.append(_Rule(re.compile(pattern), Fault(kind, retry_after, delay_s), times))

    def random_faults(self, rate: float, kinds: tuple[str, ...] = TRANSIENT_FAULTS,
                      seed: int = 0, retry_after: str = "0", delay_s: float = 0.5) -> None:
        """Fail a fraction ``rate`` of all requests with a kind drawn from ``kinds``."""
        with self._lock:
            self._rate, self._kinds, self._rng = rate, kinds, random.Random(seed)
            self._random_fault = Fault("503", retry_after, delay_s)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._rate = 0.0

    def next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.pattern.search(path):
                    rule.remaining -= 1
                    return rule.fault
            if self._rate and self._rng.random() < self._rate:
                template = self._random_fault
                return Fault(self._rng.choice(self._kinds), template.retry_after, template.delay_s)
        return None


@dataclass
class _Series:
    sessions: np.ndarray  # datetime64[D]
    stamps: np.ndarray  # epoch ms of 00:00 New York
    values: dict[str, np.ndarray] = field(default_factory=dict)


class FakePolygonServer:
    """Fake Polygon server in a background thread on ``127.0.0.1:<free port>``.

    Parameters
    ----------
    api_key : str
        The only key accepted (``Authorization: Bearer <api_key>``).
    recorded_dir : Path or None
        The recorded mocks folder; None serves synthetic data only.
    universe : sequence of str
        Tickers returned by grouped daily (per-ticker endpoints accept any ticker).
    history_start, last_session : str
        Synthetic history starts at ``history_start``; nothing after ``last_session`` exists.
    latency_s : float
        Delay before every response.
    page_limit : int or None
        Server-side cap on bars per page (forces ``next_url`` chains).
    unknown_tickers : sequence of str
        Tickers that do not exist (details 404, no bars).
    listing_dates : dict
        Ticker -> first session with bars (default: ``history_start``).
    cache_responses : bool
        Reuse serialised 200 bodies per URL (benchmarks: keeps the fake's own CPU
        cost out of the client's figures; request ids repeat).
    """

    def __init__(self, api_key: str = "test-key", recorded_dir: Path | None = None,
                 universe: tuple[str, ...] | list[str] = (), history_start: str = "2019-01-02",
                 last_session: str = "2024-12-31", latency_s: float = 0.0,
                 page_limit: int | None = None, unknown_tickers: tuple[str, ...] = (),
                 listing_dates: dict[str, str] | None = None,
                 cache_responses: bool = False) -> None:
        self.api_key = api_key
        self.recorded_dir = recorded_dir
        self.universe = [t.upper() for t in universe]
        self.history_start = pd.Timestamp(history_start)
        self.last_session = pd.Timestamp(last_session)
        self.latency_s = latency_s
        self.page_limit = page_limit
        self.unknown_tickers = {t.upper() for t in unknown_tickers}
        self.listing_dates = {k.upper(): pd.Timestamp(v) for k, v in (listing_dates or {}).items()}
        self.cache_responses = cache_responses
        self.script = FaultScript()
        self._bodies: dict[tuple, bytes] = {}
        self.requests: list[RequestRecord] = []
        self._splits: dict[str, list[tuple[pd.Timestamp, float]]] = {}
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()
        self._ids = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakePolygonServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True, name="fake-polygon")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakePolygonServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- scripting and inspection ------------------------------------------------------------
    def split(self, ticker: str, ratio: float, effective: str) -> None:
        """A split of ``ratio``:1 effective on ``effective``: earlier bars are re-adjusted."""
        with self._lock:
            self._splits.setdefault(ticker.upper(), []).append((pd.Timestamp(effective), ratio))

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def paths(self) -> list[str]:
        """Logged request paths, in arrival order."""
        with self._lock:
            return [r.path for r in self.requests]

    def expected_bars(self, ticker: str, start: str, end: str) -> pd.DataFrame:
        """The adjusted bars the server currently serves for ``ticker`` in [start, end]."""
        rows = self._bar_rows(ticker.upper(), pd.Timestamp(start), pd.Timestamp(end))
        frame = pd.DataFrame(rows, columns=["t", "o", "h", "l", "c", "v", "vw", "n"])
        dates = pd.to_datetime(frame["t"], unit="ms", utc=True).dt.tz_convert("America/New_York")
        return pd.DataFrame({
            "date": dates.dt.tz_localize(None).dt.normalize().astype("datetime64[ns]"),
            "ticker": ticker.upper(), "open": frame["o"], "high": frame["h"], "low": frame["l"],
            "close": frame["c"], "volume": frame["v"], "vwap": frame["vw"],
        })

    # -- synthetic data ----------------------------------------------------------------------
    def _series_for(self, ticker: str) -> _Series:
        with self._lock:
            series = self._series.get(ticker)
        if series is not None:
            return series
        sessions = _CALENDAR.sessions_in_range(self.history_start, _CALENDAR.last_session)
        naive = pd.DatetimeIndex(sessions).tz_localize(None)
        stamps = naive.tz_localize("America/New_York").asi8 // 1_000_000
        rng = np.random.default_rng(zlib.crc32(ticker.encode()))
        n = len(naive)
        close = (10 + zlib.crc32(ticker.encode()) % 190) * np.exp(
            np.cumsum(rng.normal(0.0003, 0.02, n)))
        open_ = close * (1 + rng.normal(0, 0.005, n))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, n)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, n)))
        values = {"o": open_, "h": high, "l": low, "c": close,
                  "v": np.round(rng.lognormal(13, 0.5, n)), "n": rng.integers(100, 50_000, n)}
        values["vw"] = (high + low + close) / 3
        series = _Series(naive.values.astype("datetime64[D]"), stamps, values)
        with self._lock:
            self._series.setdefault(ticker, series)
        return series

    def _bar_rows(self, ticker: str, start: pd.Timestamp, end: pd.Timestamp) -> list[list]:
        if ticker in self.unknown_tickers:
            return []
        first = max(start, self.listing_dates.get(ticker, self.history_start))
        end = min(end, self.last_session)
        series = self._series_for(ticker)
        lo = np.searchsorted(series.sessions, np.datetime64(first.date(), "D"), "left")
        hi = np.searchsorted(series.sessions, np.datetime64(end.date(), "D"), "right")
        factor = np.ones(hi - lo)
        for effective, ratio in self._splits.get(ticker, []):
            factor[series.sessions[lo:hi] < np.datetime64(effective.date(), "D")] /= ratio
        v = series.values
        rows = []
        for k, i in enumerate(range(lo, hi)):
            f = factor[k]
            rows.append([int(series.stamps[i]), round(v["o"][i] * f, 4), round(v["h"][i] * f, 4),
                         round(v["l"][i] * f, 4), round(v["c"][i] * f, 4), float(v["v"][i] / f),
                         round(v["vw"][i] * f, 4), int(v["n"][i])])
        return rows

    def _next_request_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"fake{self._ids:028x}"

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    # -- endpoints (return status, body) -----------------------------------------------------
    def _response(self, path: str, params: dict[str, str], raw_query: str) -> tuple[int, bytes]:
        key = (path, raw_query, self.last_session, sum(len(v) for v in self._splits.values()))
        if self.cache_responses and key in self._bodies:
            return 200, self._bodies[key]
        status, body = self._route(path, params, raw_query)
        data = json.dumps(body).encode()
        if self.cache_responses and status == 200:
            with self._lock:
                self._bodies[key] = data
        return status, data

    def _route(self, path: str, params: dict[str, str], raw_query: str) -> tuple[int, dict]:
        recorded = self._recorded(path, raw_query)
        if recorded is not None:
            return 200, recorded
        rid = self._next_request_id()
        if match := _AGGS.match(path):
            return 200, self._aggregates(match, params, rid)
        if match := _GROUPED.match(path):
            return 200, self._grouped(pd.Timestamp(match.group(1)), rid)
        if match := _PREV.match(path):
            return 200, self._previous(match.group(1).upper(), rid)
        if match := _DETAILS.match(path):
            return self._details(match.group(1).upper(), params.get("date"), rid)
        return 404, {"status": "NOT_FOUND", "request_id": rid, "message": "Data not found."}

    def _recorded(self, path: str, raw_query: str) -> dict | None:
        if self.recorded_dir is None:
            return None
        name = path.lstrip("/").replace(":", ";", 1)
        for candidate in ([f"{name}&{raw_query}.json"] if raw_query else []) + [f"{name}.json"]:
            file = self.recorded_dir / candidate
            if file.is_file():
                return json.loads(file.read_text(encoding="utf-8"))
        return None

    def _aggregates(self, match: re.Match, params: dict[str, str], rid: str) -> dict:
        ticker, raw_from, raw_to = match.group(1).upper(), match.group(2), match.group(3)
        limit = int(params.get("limit", 5000))
        if "cursor" in params:
            cursor = dict(parse_qsl(base64.urlsafe_b64decode(params["cursor"] + "==").decode()))
            limit = int(cursor["limit"])
        if self.page_limit:
            limit = min(limit, self.page_limit)
        rows = self._bar_rows(ticker, _parse_day(raw_from), _parse_day(raw_to))
        page = rows[:limit]
        keys = ("t", "o", "h", "l", "c", "v", "vw", "n")
        body: dict = {"ticker": ticker, "queryCount": len(page), "resultsCount": len(page),
                      "adjusted": True, "status": "OK", "request_id": rid, "count": len(page)}
        if page:
            body["results"] = [dict(zip(keys, row)) for row in page]
        if len(rows) > limit:
            cursor = base64.urlsafe_b64encode(f"limit={limit}&sort=asc".encode()).decode()
            body["next_url"] = (f"{self.base_url}/v2/aggs/ticker/{ticker}/range/1/day/"
                                f"{rows[limit][0]}/{raw_to}?cursor={cursor.rstrip('=')}")
        return body

    def _grouped(self, day: pd.Timestamp, rid: str) -> dict:
        results = []
        for ticker in self.universe:
            for row in self._bar_rows(ticker, day, day):
                results.append(dict(zip(("t", "o", "h", "l", "c", "v", "vw", "n"), row), T=ticker))
        body: dict = {"queryCount": len(results), "resultsCount": len(results), "adjusted": True,
                      "status": "OK", "request_id": rid, "count": len(results)}
        if results:
            body["results"] = results
        return body

    def _previous(self, ticker: str, rid: str) -> dict:
        rows = self._bar_rows(ticker, self.last_session - pd.Timedelta(days=10), self.last_session)
        results = [dict(zip(("t", "o", "h", "l", "c", "v", "vw", "n"), rows[-1]), T=ticker)]
        return {"ticker": ticker, "adjusted": True, "queryCount": 1, "resultsCount": 1,
                "results": results if rows else [], "status": "OK", "request_id": rid}

    def _details(self, ticker: str, date: str | None, rid: str) -> tuple[int, dict]:
        if ticker in self.unknown_tickers:
            return 404, {"status": "NOT_FOUND", "request_id": rid, "message": "Data not found."}
        crc = zlib.crc32(ticker.encode())
        shares = float(10_000_000 + crc % 990_000_000)
        as_of = pd.Timestamp(date) if date else self.last_session
        rows = self._bar_rows(ticker, as_of - pd.Timedelta(days=10), as_of)
        price = rows[-1][4] if rows else 10.0
        results = {"ticker": ticker, "name": f"{ticker} Synthetic Corp", "market": "stocks",
                   "locale": "us", "primary_exchange": ("XNYS", "XNAS")[crc % 2], "type": "CS",
                   "active": True, "currency_name": "usd", "market_cap": price * shares,
                   "sic_code": SIC_CODES[crc % len(SIC_CODES)],
                   "share_class_shares_outstanding": shares,
                   "weighted_shares_outstanding": shares * 1.01}
        return 200, {"results": results, "status": "OK", "request_id": rid}


def _parse_day(text: str) -> pd.Timestamp:
    if text.isdigit():
        stamp = pd.Timestamp(int(text), unit="ms", tz="UTC").tz_convert("America/New_York")
        return stamp.tz_localize(None).normalize()
    return pd.Timestamp(dt.date.fromisoformat(text))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakePolygon/1.0"

    def log_message(self, format: str, *args: object) -> None:  # stdlib signature
        logger.debug("fake polygon: " + format, *args)

    def do_GET(self) -> None:  # stdlib name
        fake: FakePolygonServer = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        if fake.latency_s:
            time.sleep(fake.latency_s)
        fault = fake.script.next_fault(parts.path)
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}" or (
                fault is not None and fault.kind == "401"):
            fake._record(RequestRecord(parts.path, params, 401, fault and fault.kind))
            self._send(401, {"status": "NOT_AUTHORIZED", "request_id": fake._next_request_id(),
                             "message": "Unknown API Key"})
            return
        if fault is not None and fault.kind != "timeout":
            fake._record(RequestRecord(parts.path, params, 0, fault.kind))
            self._send_fault(fake, fault, parts.path, params, parts.query)
            return
        if fault is not None:
            time.sleep(fault.delay_s)
        status, data = fake._response(parts.path, params, parts.query)
        fake._record(RequestRecord(parts.path, params, status, fault and fault.kind))
        self._send_bytes(status, data)

    def _send_fault(self, fake: FakePolygonServer, fault: Fault, path: str,
                    params: dict[str, str], raw_query: str) -> None:
        rid = fake._next_request_id()
        if fault.kind == "reset":
            # SO_LINGER 0 makes close() send RST: the client sees "connection reset by peer"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault.kind == "truncated":
            _, body = fake._route(path, params, raw_query)
            data = json.dumps(body).encode()
            self._send_bytes(200, data[: max(1, len(data) // 2)])
            return
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        message = ("You've exceeded the maximum requests per minute, please wait or upgrade "
                   "your subscription to continue." if fault.kind == "429" else "Service error")
        self._send(int(fault.kind), {"status": "ERROR", "request_id": rid, "error": message},
                   headers)

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            # the client gave up (timeout test): nothing left to answer
            logger.debug("fake polygon: client went away: %s", e)
