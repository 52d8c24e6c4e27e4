"""Dates x tickers arrays built from long protocol bars, and the way back.

The session grid of a panel is the *market* grid: every date on which at least
one ticker of the input has a bar. A ticker without a bar on a grid date
(halt, not yet listed, delisted) is NaN there, so every rolling window and every
lag in this package counts market sessions, never a ticker's own bars.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np
import pandas as pd

from bma_models.data.protocol import require_bar_columns
from bma_models.errors import DataError
from bma_models.panel import _grid
from bma_models.panel.memory import fresh_array
from bma_models.panel.rolling import DyadicTable, ratio, shift, std_from_sums

PANEL_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")


class Panel:
    """Bars as float64 arrays of shape (n_dates, n_tickers), plus shares per ticker.

    Parameters
    ----------
    dates : DatetimeIndex
        The market session grid (sorted, unique).
    tickers : Index
        Tickers (sorted, unique).
    fields : dict of str to ndarray
        ``open high low close volume vwap`` arrays, NaN where no bar.
    shares : ndarray
        Shares outstanding per ticker (NaN when unknown).
    has_bar : ndarray of bool
        True where the input had a bar; these cells become the output rows.

    Notes
    -----
    Derived arrays used by several factors (returns, dollar volume, true range)
    are cached properties, so a factor set computes each of them once.
    """

    def __init__(self, dates, tickers, fields, shares, has_bar):
        self.dates = dates
        self.tickers = tickers
        self.open = fields["open"]
        self.high = fields["high"]
        self.low = fields["low"]
        self.close = fields["close"]
        self.volume = fields["volume"]
        self.vwap = fields["vwap"]
        self.shares = shares
        self.has_bar = has_bar
        self._tables: dict[tuple[str, str], DyadicTable] = {}

    def __repr__(self) -> str:
        return f"Panel({len(self.dates)} sessions x {len(self.tickers)} tickers)"

    @property
    def shape(self) -> tuple[int, int]:
        """``(sessions, tickers)``."""
        return self.close.shape

    def columns(self, start: int, stop: int) -> Panel:
        """Return the tickers ``start:stop`` as a new panel of contiguous arrays."""
        fields = {name: np.ascontiguousarray(getattr(self, name)[:, start:stop])
                  for name in PANEL_FIELDS}
        return Panel(self.dates, self.tickers[start:stop], fields, self.shares[start:stop],
                     self.has_bar[:, start:stop])

    def rows(self, start: int, stop: int) -> Panel:
        """Return the sessions ``start:stop`` as a new panel (row slices are contiguous views)."""
        fields = {name: getattr(self, name)[start:stop] for name in PANEL_FIELDS}
        return Panel(self.dates[start:stop], self.tickers, fields, self.shares,
                     self.has_bar[start:stop])

    def rolling(self, field: str, how: str, window: int) -> np.ndarray:
        """Return the rolling ``sum``, ``mean``, ``max``, ``min`` or ``std`` of a named array.

        ``field`` is a bar field or a derived array (``returns``,
        ``dollar_volume``, ``true_range``). The block sums behind the windows
        are cached, so ``close`` over 5, 10, 20 and 60 sessions shares its work.
        """
        if how in ("sum", "mean"):
            total = self._table(field, "sum").window_sum(window)
            if how == "mean":
                total /= window  # a fresh array from window_sum
            return total
        if how in ("max", "min"):
            return self._table(field, how).window_extreme(window)
        if how == "std":
            return std_from_sums(self._table(field, "sum").window_sum(window),
                                 self._table(field, "sum_sq").window_sum(window), window)
        raise ValueError(f"unknown rolling statistic {how!r}")

    def _table(self, field: str, kind: str) -> DyadicTable:
        key = (field, kind)
        if key not in self._tables:
            values = getattr(self, field)
            if kind == "sum_sq":
                values = values * values
            ufunc = {"sum": np.add, "sum_sq": np.add, "max": np.maximum, "min": np.minimum}[kind]
            self._tables[key] = DyadicTable(values, ufunc)
        return self._tables[key]

    @cached_property
    def prev_close(self) -> np.ndarray:
        """Close of the previous market session (NaN if that bar is missing)."""
        return shift(self.close, 1)

    @cached_property
    def returns(self) -> np.ndarray:
        """Close-to-close simple return over one market session."""
        values = ratio(self.close, self.prev_close)
        values -= 1.0
        return values

    @cached_property
    def dollar_volume(self) -> np.ndarray:
        """Close times volume."""
        return self.close * self.volume

    @cached_property
    def true_range(self) -> np.ndarray:
        """max(high - low, |high - prev close|, |low - prev close|); NaN if any is NaN."""
        prev = self.prev_close
        return np.maximum(
            self.high - self.low,
            np.maximum(np.abs(self.high - prev), np.abs(self.low - prev)),
        )


class BarGrid:
    """Where each bar sits on the (market session, ticker) grid.

    Parameters
    ----------
    dates : DatetimeIndex
        The market session grid (sorted, unique).
    tickers : Index
        Tickers (sorted, unique).
    has_bar : ndarray of bool
        Shape (n_dates, n_tickers); True where the input had a bar.
    cells : ndarray or None
        Flat grid cell of every input row, or None when the rows already are in
        (date, ticker) order.
    """

    def __init__(self, dates, tickers, has_bar, cells):
        self.dates = dates
        self.tickers = tickers
        self.has_bar = has_bar
        self.cells = cells

    def __repr__(self) -> str:
        return f"BarGrid({len(self.dates)} sessions x {len(self.tickers)} tickers)"

    @property
    def shape(self) -> tuple[int, int]:
        """``(sessions, tickers)``."""
        return self.has_bar.shape

    @cached_property
    def order(self) -> np.ndarray | None:
        """Row permutation into (date, ticker) order (None: rows already in order)."""
        return None if self.cells is None else np.argsort(self.cells, kind="stable")

    def sorted_values(self, column: pd.Series) -> np.ndarray:
        """Return a bar column as float64 in (date, ticker) order (no copy when possible)."""
        values = column.to_numpy(dtype=np.float64)
        return values if self.order is None else values[self.order]


def bar_grid(bars: pd.DataFrame, *, n_jobs: int = 1) -> BarGrid:
    """Locate protocol bars on the market session grid (see :func:`build_panel`).

    Raises
    ------
    DataError
        If a protocol column is missing or a (date, ticker) pair repeats.
    """
    require_bar_columns(bars)
    keys = [bars["date"], bars["ticker"]]
    if n_jobs > 1:  # the ticker strings are hashed by pyarrow, without the GIL
        with ThreadPoolExecutor(max_workers=2) as pool:
            (date_codes, dates), (ticker_codes, tickers) = pool.map(_factorize, keys)
    else:
        (date_codes, dates), (ticker_codes, tickers) = map(_factorize, keys)
    shape = (len(dates), len(tickers))
    has_bar = np.zeros(shape, dtype=bool)
    # rows already in (date, ticker) order: strictly increasing cells, hence unique
    ordered = bool(_grid.mark_cells(date_codes, ticker_codes, has_bar))
    # each row's flat cell, None when the rows are in cell order
    flat = None if ordered else date_codes.astype(np.int64) * shape[1] + ticker_codes
    if flat is not None and int(np.count_nonzero(has_bar)) != len(bars):
        _, first, counts = np.unique(flat, return_index=True, return_counts=True)
        row = bars.iloc[first[np.argmax(counts > 1)]]
        raise DataError(
            f"{len(bars) - int(np.count_nonzero(has_bar))} duplicated (date, ticker) bars, "
            f"e.g. {row['ticker']} on {pd.Timestamp(row['date']).date()}"
        )
    return BarGrid(pd.DatetimeIndex(dates, name="date"),
                   pd.Index(tickers, name="ticker", dtype="str"), has_bar, flat)


def build_panel(
    bars: pd.DataFrame, reference: pd.DataFrame | None = None, *, n_jobs: int = 1
) -> Panel:
    """Pivot long protocol bars into a :class:`Panel`.

    Parameters
    ----------
    bars : DataFrame
        Protocol bars (``date, ticker, open, high, low, close, volume, vwap``),
        unique on (date, ticker). Row order does not matter.
    reference : DataFrame, optional
        Reference rows with ``ticker`` and ``shares_outstanding``; tickers not
        listed get NaN shares (turnover is then NaN for them).
    n_jobs : int
        Threads scattering the bar columns (the result does not depend on it).

    Returns
    -------
    Panel

    Raises
    ------
    DataError
        If a protocol column is missing or a (date, ticker) pair repeats.

    Notes
    -----
    Why not ``DataFrame.pivot``: factorising the two key columns and scattering
    each value column into a preallocated array is several times faster on
    millions of rows and checks uniqueness at the same time.
    """
    grid = bar_grid(bars, n_jobs=n_jobs)
    has_bar = grid.has_bar
    columns = [bars[name] for name in PANEL_FIELDS]
    if n_jobs > 1:  # numpy releases the GIL while scattering
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            arrays = list(pool.map(lambda column: _scatter(column, grid.cells, has_bar),
                                   columns))
    else:
        arrays = [_scatter(column, grid.cells, has_bar) for column in columns]
    fields = dict(zip(PANEL_FIELDS, arrays, strict=True))
    shares = shares_per_ticker(reference, grid.tickers)
    return Panel(grid.dates, grid.tickers, fields, shares, has_bar)


def _factorize(column: pd.Series) -> tuple[np.ndarray, pd.Index | np.ndarray]:
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "M":
        # sorted dates (the usual layout): one compiled pass instead of a hash table
        values = column.to_numpy()
        codes, uniques = _grid.sorted_codes(values.view(np.int64))
        if codes is not None:
            return codes, uniques.view(values.dtype)
    return pd.factorize(column, sort=True)


def _scatter(column: pd.Series, cells: np.ndarray | None, has_bar: np.ndarray) -> np.ndarray:
    # one bar column into a dates x tickers array; cells=None: rows in cell order
    out = fresh_array(has_bar.shape)
    flat = out.reshape(-1)
    values = column.to_numpy(dtype=np.float64)
    keep = has_bar.reshape(-1)
    if values.size < flat.size:
        flat[~keep] = np.nan
    if cells is None:
        flat[keep] = values
    else:
        flat[cells] = values
    return out


def shares_per_ticker(reference: pd.DataFrame | None, tickers: pd.Index) -> np.ndarray:
    """Shares outstanding per ticker from reference rows (NaN: unknown or not positive)."""
    if reference is None or "shares_outstanding" not in getattr(reference, "columns", ()):
        return np.full(len(tickers), np.nan)
    ref = reference.drop_duplicates("ticker", keep="last").set_index("ticker")
    shares = pd.to_numeric(ref["shares_outstanding"], errors="coerce")
    out = shares.reindex(tickers).to_numpy(dtype=np.float64, copy=True)
    out[out <= 0] = np.nan
    return out


def long_index(panel: Panel | BarGrid) -> pd.MultiIndex:
    """Return the (date, ticker) MultiIndex of the cells that had a bar, date-major order."""
    n_dates, n_tickers = panel.shape
    # codes built in the small integer types pandas stores them in
    date_codes = np.repeat(np.arange(n_dates, dtype=_code_dtype(n_dates)),
                           np.count_nonzero(panel.has_bar, axis=1))
    ticker_codes = np.tile(np.arange(n_tickers, dtype=_code_dtype(n_tickers)), n_dates)
    ticker_codes = ticker_codes[panel.has_bar.reshape(-1)]
    return pd.MultiIndex(
        levels=[panel.dates, panel.tickers],
        codes=[date_codes, ticker_codes],
        names=["date", "ticker"],
        verify_integrity=False,
    )


def _code_dtype(n: int) -> type[np.signedinteger]:
    for dtype in (np.int8, np.int16, np.int32):
        if n < np.iinfo(dtype).max:
            return dtype
    return np.int64


def panel_from_frame(
    frame: pd.DataFrame, dates: pd.DatetimeIndex | None = None
) -> tuple[pd.DatetimeIndex, pd.Index, np.ndarray, np.ndarray]:
    """Scatter a (date, ticker)-indexed frame into a (dates, tickers, columns) array.

    Returns ``(dates, tickers, values, has_row)`` where ``values`` has shape
    (n_dates, n_tickers, n_columns) and NaN where a row is absent. ``dates``
    defaults to the dates present in the index (the market grid).
    """
    date_values = frame.index.get_level_values(0)
    ticker_codes, tickers = pd.factorize(frame.index.get_level_values(1), sort=True)
    if dates is None:
        date_codes, dates = pd.factorize(date_values, sort=True)
        dates = pd.DatetimeIndex(dates, name="date")
    else:
        dates = pd.DatetimeIndex(dates, name="date")
        date_codes = dates.get_indexer(date_values)
        if (date_codes < 0).any():
            bad = date_values[date_codes < 0][0]
            raise DataError(f"index date {pd.Timestamp(bad).date()} is not on the session grid")
    shape = (len(dates), len(tickers))
    has_row = np.zeros(shape, dtype=bool)
    has_row[date_codes, ticker_codes] = True
    if int(has_row.sum()) != len(frame):
        raise DataError("the (date, ticker) index has duplicated rows")
    values = np.full(shape + (frame.shape[1],), np.nan)
    values[date_codes, ticker_codes] = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    return dates, pd.Index(tickers, name="ticker", dtype="str"), values, has_row
