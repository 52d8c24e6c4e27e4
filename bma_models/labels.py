"""Forward-return labels, relevance labels, feature lags and the alignment checker.

Time conventions (all counts are *market sessions*: the sorted dates on which
any ticker has a bar; a ticker without a bar on such a date is missing there):

* the label at session ``T`` is what a position entered at the label's entry
  price and closed at ``close(T + horizon)`` earns: ``entry="next_open"``
  buys at ``open(T + 1)`` (the score is known after the close of ``T`` and
  traded from ``T + 1``), ``entry="close"`` (the seed's label) at ``close(T)``
  (tradable only when the features are lagged at least one session). Either
  way it is realised over the window ``T+1 .. T+horizon`` and known at the
  close of ``T + horizon``;
* a lagged feature at ``T`` carries the value computed at ``T - lag`` from data
  up to and including ``T - lag``; :func:`lag_features` records that source date
  per row (``feature_asof``);
* :func:`check_alignment` proves, row by row, ``asof <= T - lag < T + 1``, so no
  feature value could have seen any part of its label window.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import pandas as pd

from bma_models.errors import LeakageError, SettingsError
from bma_models.panel.frames import build_panel, long_index, panel_from_frame
from bma_models.panel.rolling import ratio, shift

logger = logging.getLogger(__name__)

_EXAMPLES = 5


class LaggedFeatures(NamedTuple):
    """Lagged features plus the source date of every row.

    Attributes
    ----------
    features : DataFrame
        Same index and columns as the input; the row at ``T`` holds the input
        row at ``T - lag`` (NaN when that row did not exist).
    asof : Series
        ``feature_asof``: datetime64 source date per row, NaT when no source.
    """

    features: pd.DataFrame
    asof: pd.Series


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SettingsError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


#: Entry prices of the label (see :func:`forward_returns`).
ENTRIES: tuple[str, ...] = ("next_open", "close")


def forward_returns(bars: pd.DataFrame, horizon: int = 5, entry: str = "close") -> pd.Series:
    """Forward return per bar: ``close(T + horizon) / entry price - 1``.

    Parameters
    ----------
    bars : DataFrame
        Protocol bars.
    horizon : int
        Sessions ahead (>= 1), counted on the market session grid.
    entry : {"close", "next_open"}
        ``"close"``: ``close(T + horizon) / close(T) - 1``, a position bought at
        the close of ``T``. ``"next_open"``: ``close(T + horizon) / open(T + 1)
        - 1``, a position bought at the next session's open -- what a score
        known after the close of ``T`` earns when it is traded from ``T + 1``
        (the overnight move into ``T + 1`` is not part of it).

    Returns
    -------
    Series
        Named ``label``, MultiIndex ``(date, ticker)``, one row per bar. NaN for
        the last ``horizon`` sessions and where a price it needs is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> bars = pd.DataFrame({"date": pd.bdate_range("2024-01-01", periods=4),
    ...     "ticker": "AAA", "open": [10.0, 10.0, 11.5, 9.5], "high": 13.0, "low": 9.0,
    ...     "close": [10.0, 11.0, 12.0, 9.0], "volume": 1.0, "vwap": 1.0})
    >>> forward_returns(bars, horizon=2).round(3).tolist()
    [0.2, -0.182, nan, nan]
    >>> forward_returns(bars, horizon=2, entry="next_open").round(3).tolist()
    [0.2, -0.217, nan, nan]
    """
    horizon = _check_int(horizon, "horizon", 1)
    if entry not in ENTRIES:
        raise SettingsError(f"entry must be one of {ENTRIES}, got {entry!r}")
    panel = build_panel(bars)
    price = panel.close if entry == "close" else shift(panel.open, -1)
    label = ratio(shift(panel.close, -horizon), price) - 1.0
    return pd.Series(label[panel.has_bar], index=long_index(panel), name="label")


def relevance_labels(label: pd.Series, n_buckets: int = 5) -> pd.Series:
    """Per-date quantile bucket of the label, 0 = worst, ``n_buckets - 1`` = best.

    Rows with a NaN label are dropped. Ties share their average rank; with
    ``r`` the zero-based average rank among ``n`` labels of the date, the bucket
    is ``floor(r * n_buckets / n)``.

    Returns
    -------
    Series
        int64, named ``relevance``, on the non-NaN rows of ``label``.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.MultiIndex.from_product([[pd.Timestamp("2024-01-02")], list("ABCD")],
    ...                                  names=["date", "ticker"])
    >>> relevance_labels(pd.Series([0.3, -0.1, 0.0, 0.2], index=idx), 2).tolist()
    [1, 0, 0, 1]
    """
    n_buckets = _check_int(n_buckets, "n_buckets", 1)
    valid = label.dropna()
    by_date = valid.groupby(level=0, sort=False)
    rank = by_date.rank(method="average").to_numpy() - 1.0
    count = by_date.transform("count").to_numpy()
    bucket = np.floor(rank * n_buckets / count).astype(np.int64)
    return pd.Series(np.clip(bucket, 0, n_buckets - 1), index=valid.index, name="relevance")


def lag_features(
    features: pd.DataFrame, lag: int, market_dates: pd.DatetimeIndex | None = None
) -> LaggedFeatures:
    """Shift every ticker's features ``lag`` market sessions into the future.

    Parameters
    ----------
    features : DataFrame
        MultiIndex ``(date, ticker)``.
    lag : int
        Sessions (>= 0). 0 returns the features unchanged (asof = own date).
    market_dates : DatetimeIndex, optional
        The session grid the lag counts on. Defaults to the dates present in
        ``features`` (for :func:`~bma_models.factors.compute_factors` output, the
        market grid of the bars). It must contain every index date.

    Returns
    -------
    LaggedFeatures
        ``(features, asof)`` on the input index.

    Notes
    -----
    Why the market grid and not each ticker's own bars: the market grid is what
    the trading calendar means by "4 sessions ago". On a ticker's own bar
    sequence a halt would make "4 bars ago" reach further into the past, which
    is harmless but makes lags differ across tickers of one cross-section.
    """
    lag = _check_int(lag, "lag", 0)
    dates, tickers, values, has_row = panel_from_frame(features, market_dates)
    shifted = shift(values, lag)
    source_exists = shift(has_row.astype(np.float64), lag) == 1.0
    asof = np.full(has_row.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    if lag < len(dates):
        source_dates = dates.to_numpy()[: len(dates) - lag]
        asof[lag:] = source_dates[:, np.newaxis]
    asof[~source_exists] = np.datetime64("NaT")
    index = _index_from_mask(dates, tickers, has_row, features.index.names)
    lagged = pd.DataFrame(shifted[has_row], index=index, columns=features.columns)
    asof_series = pd.Series(asof[has_row], index=index, name="feature_asof")
    if not index.equals(features.index):
        lagged = lagged.reindex(features.index)
        asof_series = asof_series.reindex(features.index)
    return LaggedFeatures(lagged, asof_series)


def _index_from_mask(dates, tickers, mask, names) -> pd.MultiIndex:
    date_codes, ticker_codes = np.nonzero(mask)
    return pd.MultiIndex(levels=[dates, tickers], codes=[date_codes, ticker_codes],
                         names=names, verify_integrity=False)


def _describe(frame: pd.DataFrame, grid: pd.DatetimeIndex, horizon: int) -> str:
    lines = []
    for row in frame.head(_EXAMPLES).itertuples(index=False):
        start = row.pos + 1
        end = row.pos + horizon
        first = str(grid[start].date()) if start < len(grid) else "after data"
        last = str(grid[end].date()) if end < len(grid) else "(beyond data)"
        window = f"{first}..{last}"
        asof = "unknown" if pd.isna(row.asof) else str(pd.Timestamp(row.asof).date())
        lines.append(f"{row.ticker} on {pd.Timestamp(row.date).date()}: feature as of {asof}, "
                     f"label window {window}")
    return "; ".join(lines)


def _raise(problem: str, rows: pd.DataFrame, grid, horizon) -> None:
    raise LeakageError(f"{len(rows)} rows {problem}, e.g. {_describe(rows, grid, horizon)}")


def check_alignment(
    features_lagged: pd.DataFrame,
    label: pd.Series,
    lag: int,
    horizon: int,
    raw_dates: pd.DatetimeIndex,
    *,
    feature_asof: pd.Series,
    raw_features: pd.DataFrame | None = None,
) -> None:
    """Raise :class:`LeakageError` if any feature could have seen its label window.

    Checks, for every row ``(T, ticker)`` of ``features_lagged`` with a value:

    1. it has a source date (``feature_asof``) on the ``raw_dates`` grid;
    2. that source date is at least ``lag`` sessions before ``T``, hence before
       the label window ``T+1 .. T+horizon``;
    3. if ``raw_features`` (the unlagged frame) is given, the row's values equal
       the raw values of the same ticker at the source date, which proves the
       lag was applied to the numbers and not only to the bookkeeping;

    and for every non-NaN label at ``T``: ``T + horizon`` is on the grid.

    Parameters
    ----------
    features_lagged : DataFrame
        Features after :func:`lag_features`, MultiIndex ``(date, ticker)``.
    label : Series
        Forward-return labels on ``(date, ticker)``.
    lag : int
        The lag the pipeline intends (``base_lag + safety_gap``).
    horizon : int
        Label horizon in sessions.
    raw_dates : DatetimeIndex
        The market session grid of the raw bars.
    feature_asof : Series
        Source date per row, as returned by :func:`lag_features`.
    raw_features : DataFrame, optional
        The unlagged features, for check 3.

    Raises
    ------
    LeakageError
        Naming the number of offending rows and the first tickers and dates.
    """
    lag = _check_int(lag, "lag", 0)
    horizon = _check_int(horizon, "horizon", 1)
    grid = pd.DatetimeIndex(raw_dates).unique().sort_values()
    rows = _feature_rows(features_lagged, feature_asof, grid)
    has_value = features_lagged.notna().to_numpy().any(axis=1)
    unknown = has_value & (rows["asof_pos"].to_numpy() < 0)
    if unknown.any():
        _raise("carry feature values without a source date on the session grid",
               rows[unknown], grid, horizon)
    late = has_value & (rows["asof_pos"].to_numpy() > rows["pos"].to_numpy() - lag)
    if late.any():
        _raise(f"use data less than lag={lag} sessions old (could see the label window)",
               rows[late], grid, horizon)
    if raw_features is not None:
        _check_values(features_lagged, raw_features, rows, has_value, grid, horizon)
    _check_labels(label, grid, horizon)
    logger.debug("alignment check passed: %d rows, lag=%d, horizon=%d",
                 len(rows), lag, horizon)


def _feature_rows(features, feature_asof, grid) -> pd.DataFrame:
    dates = features.index.get_level_values(0)
    pos = grid.get_indexer(dates)
    if (pos < 0).any():
        bad = dates[pos < 0][0]
        raise LeakageError(f"feature date {pd.Timestamp(bad).date()} is not a session of the "
                           "raw data; cannot verify alignment")
    asof = feature_asof.reindex(features.index) if not feature_asof.index.equals(
        features.index) else feature_asof
    asof_values = pd.DatetimeIndex(asof.to_numpy())
    return pd.DataFrame({
        "date": dates, "ticker": features.index.get_level_values(1),
        "pos": pos, "asof": asof_values, "asof_pos": grid.get_indexer(asof_values),
    })


def _check_values(lagged, raw, rows, has_value, grid, horizon) -> None:
    missing = sorted(set(lagged.columns) - set(raw.columns))
    if missing:
        raise LeakageError(f"raw features lack columns {missing}; cannot verify values")
    _, raw_tickers, raw_values, _ = panel_from_frame(raw[list(lagged.columns)], grid)
    ticker_pos = raw_tickers.get_indexer(rows["ticker"])
    check = has_value & (ticker_pos >= 0) & (rows["asof_pos"].to_numpy() >= 0)
    expected = raw_values[rows["asof_pos"].to_numpy()[check], ticker_pos[check]]
    actual = lagged.to_numpy(dtype=np.float64, na_value=np.nan)[check]
    same = (expected == actual) | (np.isnan(expected) & np.isnan(actual))
    bad_rows = ~same.all(axis=1)
    unmatched = has_value & (ticker_pos < 0)
    if unmatched.any():
        _raise("have a ticker absent from the raw features", rows[unmatched], grid, horizon)
    if bad_rows.any():
        _raise("differ from the raw features at their declared source date",
               rows[check][bad_rows], grid, horizon)


def _check_labels(label: pd.Series, grid: pd.DatetimeIndex, horizon: int) -> None:
    known = label.dropna()
    pos = grid.get_indexer(known.index.get_level_values(0))
    beyond = (pos < 0) | (pos + horizon >= len(grid))
    if beyond.any():
        first = known.index[np.argmax(beyond)]
        raise LeakageError(
            f"{int(beyond.sum())} labels are known although their window T+1..T+{horizon} is "
            f"not in the data, e.g. {first[1]} on {pd.Timestamp(first[0]).date()}"
        )
