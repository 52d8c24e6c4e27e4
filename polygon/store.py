"""Parquet cache of adjusted daily bars and reference data, refreshed incrementally.

Layout under ``cache_dir``::

    bars/<TICKER>.parquet        one file per ticker: date, ticker, open, high, low, close,
                                 volume, vwap; schema metadata ``polygon.coverage`` =
                                 {"start", "end"}: the NYSE sessions known to be complete
    reference/details.parquet    one row per ticker: ticker details + SIC sector + as_of

Refresh rules (:meth:`BarStore.refresh`):

* a ticker with no file (or a corrupt one, or one starting after ``start``) gets its full
  history by per-ticker aggregates;
* a cached ticker only fetches the sessions after its coverage end (NYSE calendar), plus one
  overlap session (its last cached bar). If cached and fresh adjusted bars disagree on the
  overlap, a split or dividend re-adjusted the history, and the whole history is refetched;
* the missing sessions of the cached tickers are fetched either per ticker (one request
  each) or by grouped daily (one request per distinct missing or overlap session), whichever
  makes fewer requests.

Why the coverage lives in each file's parquet metadata and not in a manifest: the bars and
the claim "these sessions are complete" are then replaced by one atomic rename, so a crash
can never leave a manifest that disagrees with the data.

Concurrency: the first request of each batch runs alone in the calling thread (an unreachable
host then fails the whole batch within seconds), the rest in a bounded ``ThreadPoolExecutor``
sharing the client's session; the progress callback is called from the calling thread. One
writer process per cache dir.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from polygon import _parquet
from polygon.client import PolygonClient
from polygon.errors import (
    CacheError,
    NotFoundError,
    PolygonError,
    PolygonUnreachable,
    RefreshError,
)
from polygon.sectors import sector_for_sic

logger = logging.getLogger(__name__)

_NOT_ATTEMPTED = object()  # a job skipped because the host was found unreachable

ProgressCallback = Callable[[int, int, str], None]
"""``progress(done, total, label)``, called once per finished unit of work."""


class Calendar(Protocol):
    """The exchange calendar the store counts sessions with (NYSE).

    ``polygon`` may not import the research core, so the composition root passes
    the product's one calendar, :mod:`bma_models.data.calendar`, which has both
    functions.
    """

    def sessions(self, start: Any, end: Any) -> pd.DatetimeIndex:
        """Sessions in [start, end] as tz-naive midnight timestamps."""

    def last_completed_session(self, now: Any = None) -> pd.Timestamp:
        """Return the latest session whose regular close is at or before ``now`` (default: now)."""

REFERENCE_COLUMNS: tuple[str, ...] = ("ticker", "sector", "market_cap", "shares_outstanding")
DETAIL_COLUMNS: tuple[str, ...] = REFERENCE_COLUMNS + (
    "name", "active", "primary_exchange", "type", "share_class_shares_outstanding",
    "weighted_shares_outstanding", "sic_code", "sic_description", "as_of",
)


@dataclass
class RefreshReport:
    """What a refresh did, per ticker; ``failures`` maps ticker/session -> error text."""

    tickers: list[str]
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    mode: str = "none"
    full_history: list[str] = field(default_factory=list)
    incremental: list[str] = field(default_factory=list)
    refetched_after_adjustment: list[str] = field(default_factory=list)
    rebuilt_corrupt: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    grouped_sessions: list[pd.Timestamp] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    @property
    def ok(self) -> bool:
        """True when no ticker or session failed."""
        return not self.failures


class _Cached(NamedTuple):
    bars: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def anchor(self) -> pd.Timestamp:
        # the overlap session: the last cached bar (or the coverage end if there is none)
        return self.bars["date"].iloc[-1] if len(self.bars) else self.end


class _Progress:
    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self.callback = total, 0, callback

    def step(self, label: str) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total, label)


class BarStore:
    """Incremental, crash-safe parquet cache of Polygon daily bars and reference data.

    Parameters
    ----------
    client : PolygonClient or None
        The facade used for every request; None opens the cache read-only (reading
        coverage and bars works, a refresh raises :class:`~polygon.errors.PolygonError`).
    cache_dir : str or Path
        Root of the cache (see the module docstring for the layout).
    calendar : Calendar
        The NYSE calendar (:mod:`bma_models.data.calendar` in the product).
    max_concurrency : int
        Worker threads for requests (keep <= the client's ``max_concurrency``).
    progress : callable or None
        ``progress(done, total, label)``; tqdm in the CLI, a queue poster in the GUI.
    raise_on_failure : bool
        True raises :class:`RefreshError` after a refresh with failed tickers;
        False only logs a warning and records them in ``RefreshReport.failures``.
        Either way an unreachable host (:class:`PolygonUnreachable`) stops the
        refresh at once and is raised.
    overlap_rtol : float
        Relative tolerance when comparing cached and fresh bars on the overlap.
    write_hook : callable or None
        ``hook(path, temp)`` between temp write and rename (crash tests only).
    """

    def __init__(
        self,
        client: PolygonClient | None,
        cache_dir: str | Path,
        *,
        calendar: Calendar,
        max_concurrency: int = 4,
        progress: ProgressCallback | None = None,
        raise_on_failure: bool = True,
        overlap_rtol: float = 1e-6,
        write_hook: _parquet.WriteHook | None = None,
    ) -> None:
        self._client = client
        self.cache_dir = Path(cache_dir)
        self.calendar = calendar
        self.max_concurrency = max_concurrency
        self.progress = progress
        self.raise_on_failure = raise_on_failure
        self.overlap_rtol = overlap_rtol
        self.write_hook = write_hook

    def __repr__(self) -> str:
        return f"BarStore(cache_dir={str(self.cache_dir)!r})"

    @property
    def client(self) -> PolygonClient:
        """The facade used for every request (a read-only store has none)."""
        if self._client is None:
            raise PolygonError(f"{self!r} was opened read-only, without a client: "
                               "it cannot download")
        return self._client

    @property
    def bars_dir(self) -> Path:
        """Directory of the per-ticker bar files (``<cache_dir>/bars``)."""
        return self.cache_dir / "bars"

    @property
    def reference_path(self) -> Path:
        """File of the cached reference rows (``<cache_dir>/reference/details.parquet``)."""
        return self.cache_dir / "reference" / "details.parquet"

    # -- reading ---------------------------------------------------------------------------
    def cached_tickers(self) -> list[str]:
        """Tickers with a bar file in the cache."""
        if not self.bars_dir.is_dir():
            return []
        return sorted(p.stem for p in self.bars_dir.glob("*.parquet"))

    def coverage(self, ticker: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """Return the sessions [start, end] the cache holds for ``ticker`` (None: not cached).

        Raises
        ------
        CacheError
            If the file is corrupt.
        """
        path = self._path(ticker)
        return _parquet.read_bars(path)[1] if path.exists() else None

    def read_bars(
        self,
        tickers: Iterable[str] | None = None,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Return cached bars in [start, end] for ``tickers`` (None: all cached), protocol layout.

        Raises
        ------
        CacheError
            If a file is corrupt (run :meth:`refresh` to rebuild it).
        """
        names = self.cached_tickers() if tickers is None else _symbols(tickers)
        frames = [_parquet.read_bars(self._path(t))[0] for t in names if self._path(t).exists()]
        if not frames:
            return _parquet.empty_bars()
        bars = pd.concat(frames, ignore_index=True)
        if start is not None:
            bars = bars[bars["date"] >= pd.Timestamp(start)]
        if end is not None:
            bars = bars[bars["date"] <= pd.Timestamp(end)]
        return bars.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)

    def read_reference(self, tickers: Iterable[str] | None = None) -> pd.DataFrame:
        """Return the cached reference rows of ``tickers`` (sector, market cap, shares, details).

        ``tickers`` None returns every cached row; the frame is sorted by ticker and is empty
        (with the detail columns) when nothing is cached yet.
        """
        if not self.reference_path.exists():
            return pd.DataFrame({c: pd.Series(dtype="object") for c in DETAIL_COLUMNS})
        frame = _parquet.read_frame(self.reference_path, DETAIL_COLUMNS)
        if tickers is not None:
            frame = frame[frame["ticker"].isin(_symbols(tickers))]
        return frame.sort_values("ticker").reset_index(drop=True)

    # -- bars refresh ----------------------------------------------------------------------
    def refresh(
        self,
        tickers: Iterable[str],
        start: pd.Timestamp | str,
        end: pd.Timestamp | str | None = None,
    ) -> RefreshReport:
        """Bring the cached bars of ``tickers`` up to date for the sessions in [start, end].

        ``end`` None means the last completed NYSE session. See the module
        docstring for the rules.

        Raises
        ------
        RefreshError
            If some tickers failed and ``raise_on_failure`` is True.
        PolygonUnreachable
            If no connection to the host could be made; the other tickers are not tried.
        """
        symbols = _symbols(tickers)
        last = end if end is not None else self.calendar.last_completed_session()
        days = self.calendar.sessions(start, last)
        report = RefreshReport(symbols)
        if len(days) == 0:
            logger.info("refresh: no NYSE session in [%s, %s]", start, end)
            return report
        report.start, report.end = days[0], days[-1]
        _parquet.remove_stale_temps(self.bars_dir)
        before = self.client.request_count
        cached = {t: self._load(t, report) for t in symbols}
        full, stale = self._plan(cached, days[0], days[-1])
        grouped_days = self._grouped_sessions(stale, days)
        use_grouped = bool(stale) and len(grouped_days) < len(stale)
        report.mode = "grouped" if use_grouped else ("per_ticker" if full or stale else "none")
        logger.info(
            "refresh %d tickers %s..%s: %d full, %d incremental, %d up to date; mode=%s "
            "(grouped would take %d requests, per-ticker %d)", len(symbols),
            days[0].date(), days[-1].date(), len(full), len(stale),
            len(symbols) - len(full) - len(stale), report.mode, len(grouped_days), len(stale),
        )
        total = len(full) + len(stale) + (len(grouped_days) if use_grouped else 0)
        progress = _Progress(total, self.progress)
        jobs: dict[str, Callable[[], Any]] = {
            t: functools.partial(self._fetch_full, t, *span) for t, span in full.items()}
        if use_grouped:
            report.grouped_sessions = list(grouped_days)
            day_bars = self._fetch_grouped(grouped_days, set(stale), report, progress)
            jobs.update({t: functools.partial(self._merge_grouped, t, c, day_bars, days[-1])
                         for t, c in stale.items()})
        else:
            jobs.update({t: functools.partial(self._update_ticker, t, c, days[-1])
                         for t, c in stale.items()})
        outcomes = self._run(jobs, report, progress)
        self._record(outcomes, report)
        report.requests = self.client.request_count - before
        return self._finish(report, "bars")

    def _plan(self, cached: dict[str, _Cached | None], first: pd.Timestamp,
              last: pd.Timestamp) -> tuple[dict, dict]:
        full: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
        stale: dict[str, _Cached] = {}
        for ticker, state in cached.items():
            if state is None or state.start > first:
                full[ticker] = (first, last if state is None else max(last, state.end))
            elif state.end < last:
                stale[ticker] = state
        return full, stale

    def _grouped_sessions(self, stale: dict[str, _Cached],
                          days: pd.DatetimeIndex) -> pd.DatetimeIndex:
        needed: set[pd.Timestamp] = set()
        for state in stale.values():
            needed.add(state.anchor)
            needed.update(days[days > state.end])
        return pd.DatetimeIndex(sorted(needed))

    def _fetch_full(self, ticker: str, first: pd.Timestamp, last: pd.Timestamp) -> str:
        bars = _parquet.bars_frame(self.client.list_daily_bars(ticker, first, last))
        if bars.empty:
            logger.warning("no bars for %s in %s..%s; nothing cached", ticker,
                           first.date(), last.date())
            return "no_bars"
        self._write(ticker, bars, first, bars["date"].iloc[-1])
        return "full"

    def _update_ticker(self, ticker: str, state: _Cached, last: pd.Timestamp) -> str:
        fresh = _parquet.bars_frame(self.client.list_daily_bars(ticker, state.anchor, last))
        if not self._overlap_agrees(state, fresh):
            logger.warning("adjusted history of %s changed (split/dividend); refetching", ticker)
            self._fetch_full(ticker, state.start, last)
            return "refetched"
        new = fresh[fresh["date"] > state.end]
        if new.empty:
            return "unchanged"
        self._write(ticker, pd.concat([state.bars, new], ignore_index=True), state.start,
                    new["date"].iloc[-1])
        return "incremental"

    def _fetch_grouped(self, days: pd.DatetimeIndex, wanted: set[str], report: RefreshReport,
                       progress: _Progress) -> dict[pd.Timestamp, pd.DataFrame | None]:
        def fetch(day: pd.Timestamp) -> pd.DataFrame:
            bars = self.client.get_grouped_daily(day)
            return _parquet.bars_frame(b for b in bars if b.ticker in wanted)

        jobs: dict[str, Callable[[], Any]] = {
            day.date().isoformat(): functools.partial(fetch, day) for day in days}
        results = self._run(jobs, report, progress)
        return {day: results.get(day.date().isoformat()) for day in days}

    def _merge_grouped(self, ticker: str, state: _Cached,
                       day_bars: dict[pd.Timestamp, pd.DataFrame | None],
                       last: pd.Timestamp) -> str:
        fresh, end = [], state.end
        for day in sorted(d for d in day_bars if d == state.anchor or d > state.end):
            frame = day_bars[day]
            if frame is None:
                raise PolygonError(f"grouped daily for {day.date()} failed; {ticker} not updated")
            if day > state.end and frame.empty:
                break  # that session is not published yet: coverage stops before it
            fresh.append(frame[frame["ticker"] == ticker])
            end = max(end, day)
        fresh_bars = pd.concat(fresh, ignore_index=True) if fresh else _parquet.empty_bars()
        if not self._overlap_agrees(state, fresh_bars):
            logger.warning("adjusted history of %s changed (split/dividend); refetching", ticker)
            self._fetch_full(ticker, state.start, last)
            return "refetched"
        new = fresh_bars[fresh_bars["date"] > state.end]
        if end == state.end:
            return "unchanged"
        self._write(ticker, pd.concat([state.bars, new], ignore_index=True), state.start, end)
        return "incremental"

    def _overlap_agrees(self, state: _Cached, fresh: pd.DataFrame) -> bool:
        # every cached bar in [anchor, coverage end] must come back identical (within rtol)
        lo, hi = state.anchor, state.end
        old = state.bars[(state.bars["date"] >= lo) & (state.bars["date"] <= hi)]
        new = fresh[(fresh["date"] >= lo) & (fresh["date"] <= hi)]
        if not np.array_equal(old["date"].to_numpy(), new["date"].to_numpy()):
            return False
        columns = list(_parquet.VALUE_COLUMNS)
        return bool(np.allclose(old[columns].to_numpy(), new[columns].to_numpy(),
                                rtol=self.overlap_rtol, atol=0.0, equal_nan=True))

    # -- reference refresh -----------------------------------------------------------------
    def refresh_reference(
        self,
        tickers: Iterable[str],
        as_of: pd.Timestamp | str | None = None,
        force: bool = False,
    ) -> RefreshReport:
        """Fetch ticker details for tickers missing from the reference cache (all if ``force``).

        A ticker the server does not know (404) is cached with unknown values
        and listed in ``report.not_found``; it is not a failure.

        Raises
        ------
        RefreshError
            If some requests failed and ``raise_on_failure`` is True.
        PolygonUnreachable
            If no connection to the host could be made; the other tickers are not tried.
        """
        symbols = _symbols(tickers)
        report = RefreshReport(symbols)
        existing = self._load_reference(report)
        known = set(existing["ticker"]) if not force else set()
        needed = [t for t in symbols if t not in known]
        before = self.client.request_count
        stamp = None if as_of is None else pd.Timestamp(as_of)
        jobs: dict[str, Callable[[], Any]] = {
            t: functools.partial(self._details_row, t, stamp) for t in needed}
        rows = self._run(jobs, report, _Progress(len(jobs), self.progress))
        report.not_found = sorted(t for t, row in rows.items() if row["name"] is None)
        report.full_history = sorted(rows)
        report.mode = "per_ticker" if jobs else "none"
        if rows:
            fresh = pd.DataFrame([rows[t] for t in sorted(rows)], columns=list(DETAIL_COLUMNS))
            keep = existing[~existing["ticker"].isin(list(rows))]
            merged = pd.concat([df for df in (keep, fresh) if len(df)], ignore_index=True)
            _parquet.write_frame(self.reference_path, merged.sort_values("ticker"),
                                 self.write_hook)
        report.requests = self.client.request_count - before
        return self._finish(report, "reference")

    def _details_row(self, ticker: str, as_of: pd.Timestamp | None) -> dict[str, Any]:
        stamp = None if as_of is None else as_of.date().isoformat()
        try:
            details = self.client.get_ticker_details(ticker, as_of)
        except NotFoundError:
            logger.warning("ticker details: %s not found; cached with unknown values", ticker)
            return dict.fromkeys(DETAIL_COLUMNS) | {"ticker": ticker, "as_of": stamp}
        return {
            "ticker": ticker, "sector": sector_for_sic(details.sic_code),
            "market_cap": details.market_cap, "shares_outstanding": details.shares_outstanding,
            "name": details.name, "active": details.active,
            "primary_exchange": details.primary_exchange, "type": details.type,
            "share_class_shares_outstanding": details.share_class_shares_outstanding,
            "weighted_shares_outstanding": details.weighted_shares_outstanding,
            "sic_code": details.sic_code, "sic_description": details.sic_description,
            "as_of": stamp,
        }

    def _load_reference(self, report: RefreshReport) -> pd.DataFrame:
        try:
            return self.read_reference()
        except CacheError as e:
            logger.error("%s; moving it aside and rebuilding", e)
            _parquet.quarantine(self.reference_path)
            report.rebuilt_corrupt.append("reference")
            return self.read_reference()

    # -- shared plumbing -------------------------------------------------------------------
    def _path(self, ticker: str) -> Path:
        return self.bars_dir / f"{ticker.upper()}.parquet"

    def _load(self, ticker: str, report: RefreshReport) -> _Cached | None:
        path = self._path(ticker)
        if not path.exists():
            return None
        try:
            bars, (start, end) = _parquet.read_bars(path)
            if len(bars) and (bars["ticker"] != ticker).any():
                raise CacheError(f"corrupt cache file {path}: holds other tickers")
        except CacheError as e:
            moved = _parquet.quarantine(path)
            logger.error("%s; moved to %s and rebuilding", e, moved)
            report.rebuilt_corrupt.append(ticker)
            return None
        return _Cached(bars, start, end)

    def _write(self, ticker: str, bars: pd.DataFrame, start: pd.Timestamp,
               end: pd.Timestamp) -> None:
        bars = bars.sort_values("date", kind="stable").reset_index(drop=True)
        _parquet.write_bars(self._path(ticker), bars, (start, end), self.write_hook)

    def _run(self, jobs: dict[str, Callable[[], Any]], report: RefreshReport,
             progress: _Progress) -> dict[str, Any]:
        """Run the jobs, the first one alone, the rest on the pool; stop at an unreachable host.

        Why the first job runs alone: with no network, every worker would otherwise
        queue behind the rate limiter (12 s apart on the free plan) before failing;
        alone, the first failure to connect ends the download within seconds.
        Why :class:`PolygonUnreachable` stops everything: the next ticker would fail
        the same way, so no job starts after the first such failure (the worker that
        meets it sets ``stop`` before anything else can be picked up), the queued
        ones are cancelled, and the error is raised once the running ones finish.
        """
        results: dict[str, Any] = {}
        if not jobs:
            return results
        (first_key, first_job), *rest = jobs.items()
        try:
            self._settle(first_key, first_job, results, report, progress)
        except PolygonUnreachable as e:
            raise self._stopped(e, results, len(jobs)) from e
        if not rest:
            return results
        workers = max(1, min(self.max_concurrency, len(rest)))
        stop = threading.Event()  # set by the worker that finds the host unreachable

        def guarded(job: Callable[[], Any]) -> Any:
            if stop.is_set():
                return _NOT_ATTEMPTED
            try:
                return job()
            except PolygonUnreachable:
                stop.set()
                raise

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="polygon") as pool:
            futures = {pool.submit(guarded, job): key for key, job in rest}
            unreachable: PolygonUnreachable | None = None
            for future in as_completed(futures):
                if future.cancelled() or (future.exception() is None
                                          and future.result() is _NOT_ATTEMPTED):
                    continue
                try:
                    self._settle(futures[future], future.result, results, report, progress)
                except PolygonUnreachable as e:
                    if unreachable is None:
                        unreachable = e
                        cancelled = sum(f.cancel() for f in futures)
                        logger.error("polygon refresh: stopping, %d queued jobs cancelled",
                                     cancelled)
        if unreachable is not None:
            raise self._stopped(unreachable, results, len(jobs)) from unreachable
        return results

    @staticmethod
    def _settle(key: str, job: Callable[[], Any], results: dict[str, Any],
                report: RefreshReport, progress: _Progress) -> None:
        # run or collect one job: a result or a recorded failure; PolygonUnreachable re-raised
        try:
            results[key] = job()
        except PolygonUnreachable as e:
            report.failures[key] = str(e)
            progress.step(key)
            raise
        except PolygonError as e:
            report.failures[key] = str(e)
            logger.error("polygon refresh: %s failed: %s", key, e)
        progress.step(key)

    @staticmethod
    def _stopped(error: PolygonUnreachable, results: dict[str, Any],
                 total: int) -> PolygonUnreachable:
        message = (f"{error.message}; download stopped after {len(results)} of {total} "
                   "tickers/sessions, the rest were not attempted")
        return PolygonUnreachable(message, host=error.host, reason=error.reason, url=error.url)

    def _record(self, outcomes: dict[str, str], report: RefreshReport) -> None:
        for ticker in sorted(outcomes):
            outcome = outcomes[ticker]
            if outcome == "full":
                report.full_history.append(ticker)
            elif outcome == "incremental":
                report.incremental.append(ticker)
            elif outcome == "refetched":
                report.refetched_after_adjustment.append(ticker)
            elif outcome == "no_bars":
                report.not_found.append(ticker)

    def _finish(self, report: RefreshReport, what: str) -> RefreshReport:
        if report.failures:
            message = (f"{what} refresh: {len(report.failures)} failed: "
                       + "; ".join(f"{k}: {v}" for k, v in sorted(report.failures.items())[:5]))
            if self.raise_on_failure:
                raise RefreshError(message, report)
            logger.warning("%s (raise_on_failure=False: see RefreshReport.failures)", message)
        return report


def _symbols(tickers: Iterable[str]) -> list[str]:
    return sorted({t.strip().upper() for t in tickers if t and t.strip()})
