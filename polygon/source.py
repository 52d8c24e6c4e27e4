"""The ``polygon`` data source: cached Polygon bars in the research protocol's layout.

``polygon`` may not import ``bma_models`` (import-linter contract), so
:meth:`PolygonSource.load` returns a :class:`LoadedData` whose fields are
exactly those of ``bma_models.data.protocol.MarketData`` (bars in
``BAR_COLUMNS``, reference in ``REFERENCE_COLUMNS``); the composition root
wraps it: ``MarketData(**source.load(...)._asdict())``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from polygon._parquet import BAR_COLUMNS
from polygon.client import DEFAULT_BASE_URL, PolygonClient
from polygon.errors import PolygonError
from polygon.store import (
    REFERENCE_COLUMNS,
    BarStore,
    Calendar,
    ProgressCallback,
    RefreshReport,
)

logger = logging.getLogger(__name__)


class LoadedData(NamedTuple):
    """Bars + reference in the protocol layout, with the ``MarketData`` field names."""

    bars: pd.DataFrame
    reference: pd.DataFrame
    source: str
    is_demo: bool
    notes: tuple[str, ...]


class TqdmProgress:
    """A progress callback drawing a tqdm bar (the CLI's choice; the GUI posts to its queue)."""

    def __init__(self, desc: str = "polygon") -> None:
        self.desc = desc
        self._bar: Any = None  # a tqdm bar while one is drawn

    def __call__(self, done: int, total: int, label: str) -> None:
        """Show ``done`` of ``total`` with ``label``; a new ``total`` starts a new bar.

        The bar is closed once ``done`` reaches ``total``.
        """
        from tqdm import tqdm

        if self._bar is None or self._bar.total != total:
            self.close()
            self._bar = tqdm(total=total, desc=self.desc, unit="req")
        self._bar.n = done
        self._bar.set_postfix_str(label, refresh=False)
        self._bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        """Close the current bar, if any (safe to call twice)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class PolygonSource:
    """Load adjusted daily bars and reference data through the parquet cache.

    Parameters
    ----------
    store : BarStore
        The cache (and, through it, the client).
    history_years : float
        History loaded when ``start`` is None.
    refresh : bool
        True fetches missing sessions/reference rows before reading; False
        reads the cache only (offline).

    Examples
    --------
    >>> from bma_models.data import calendar  # doctest: +SKIP
    >>> source = PolygonSource.from_config(api_key="k", cache_dir="/tmp/polygon-cache",
    ...                                    calendar=calendar)  # doctest: +SKIP
    >>> source.name  # doctest: +SKIP
    'polygon'
    """

    name = "polygon"

    def __init__(self, store: BarStore, history_years: float = 5.0, refresh: bool = True) -> None:
        self.store = store
        self.history_years = history_years
        self.refresh = refresh

    @classmethod
    def from_config(
        cls,
        *,
        calendar: Calendar,
        base_url: str = DEFAULT_BASE_URL,
        rate_limit_per_min: float | None = None,
        cache_dir: str | Path = "data/polygon",
        max_concurrency: int = 4,
        timeout_s: float = 30.0,
        api_key: str | None = None,
        progress: ProgressCallback | None = None,
        refresh: bool = True,
        max_retries: int = 5,
    ) -> PolygonSource:
        """Build client, store and source from the ``polygon`` config section's values.

        ``calendar`` is the NYSE calendar the store counts sessions with
        (:mod:`bma_models.data.calendar` in the product).
        """
        client = PolygonClient(base_url=base_url, api_key=api_key,
                               rate_limit_per_min=rate_limit_per_min, timeout_s=timeout_s,
                               max_concurrency=max_concurrency, max_retries=max_retries)
        store = BarStore(client, cache_dir, calendar=calendar, max_concurrency=max_concurrency,
                         progress=progress)
        return cls(store, refresh=refresh)

    def load(
        self,
        tickers: Iterable[str] | None,
        start: pd.Timestamp | str | None,
        end: pd.Timestamp | str | None,
    ) -> LoadedData:
        """Bars in [start, end] (inclusive) and reference rows for ``tickers``.

        ``tickers`` None means every cached ticker; ``end`` None the last
        completed NYSE session; ``start`` None ``history_years`` before ``end``.

        Raises
        ------
        PolygonUnreachable
            If the refresh cannot connect to the host (DNS, refused, unreachable,
            connect timeout): raised within seconds, no other ticker is tried.
        PolygonError
            If no tickers are given and the cache is empty, or a refresh fails
            (see ``BarStore.raise_on_failure``).
        """
        names = sorted({t.upper() for t in tickers}) if tickers is not None else None
        names = names if names is not None else self.store.cached_tickers()
        if not names:
            raise PolygonError("no tickers given and the polygon cache is empty")
        last = (pd.Timestamp(end) if end is not None
                else self.store.calendar.last_completed_session())
        first = (pd.Timestamp(start) if start is not None
                 else last - pd.DateOffset(days=round(365.25 * self.history_years)))
        notes: list[str] = []
        if self.refresh:
            notes.append(_describe(self.store.refresh(names, first, last), "bars"))
            notes.append(_describe(self.store.refresh_reference(names), "reference"))
        bars = self.store.read_bars(names, first, last).loc[:, list(BAR_COLUMNS)]
        reference = self.store.read_reference(names).loc[:, list(REFERENCE_COLUMNS)]
        missing = sorted(set(names) - set(bars["ticker"].unique()))
        if missing:
            notes.append(f"no polygon bars for {len(missing)} tickers: {', '.join(missing[:10])}")
        logger.info("polygon source: %d bars, %d tickers, %s..%s", len(bars),
                    bars["ticker"].nunique(), first.date(), last.date())
        return LoadedData(bars, reference.reset_index(drop=True), "polygon", False, tuple(notes))


def _describe(report: RefreshReport, what: str) -> str:
    text = (f"polygon {what} refresh ({report.mode}): {len(report.full_history)} full, "
            f"{len(report.incremental)} incremental, {len(report.refetched_after_adjustment)} "
            f"re-adjusted, {report.requests} requests")
    if report.rebuilt_corrupt:
        text += f"; rebuilt corrupt: {', '.join(report.rebuilt_corrupt)}"
    if report.failures:
        text += f"; FAILED: {', '.join(sorted(report.failures))}"
    return text
