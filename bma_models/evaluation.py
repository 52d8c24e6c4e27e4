"""Per-date (alphalens-style) evaluation of cross-sectional predictions.

Every metric is computed date by date and then averaged over dates, because
the workstation trades a cross-section: what matters is whether a model orders
the stocks of one day correctly, not whether it fits the level of returns.

Inputs are Series/DataFrames on the ``(date, ticker)`` MultiIndex of the
research pipeline; predictions and labels are aligned on that index and rows
missing either value are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd

from bma_models._jit import kernel
from bma_models.cv import date_groups
from bma_models.errors import DataError, SettingsError

logger = logging.getLogger(__name__)

__all__ = [
    "DateRanks",
    "PerDateScores",
    "evaluate",
    "grouped_correlation",
    "hit_rate",
    "ic_summary",
    "icir",
    "long_short_spread",
    "newey_west_lags",
    "newey_west_tstat",
    "paired_difference",
    "per_date_ic",
    "quantile_buckets",
    "quantile_returns",
    "rank_ic",
    "top_quantile_turnover",
    "within_date_ranks",
]


def grouped_correlation(x, y, codes, *, min_count: int = 3) -> np.ndarray:
    """Pearson correlation of ``x`` and ``y`` within each group code.

    Parameters
    ----------
    x, y : array-like of float, shape (n,)
    codes : array-like of int, shape (n,)
        Group number ``0 .. G-1`` of each row.
    min_count : int, default=3
        Groups with fewer rows, or with a constant ``x`` or ``y``, give NaN.

    Returns
    -------
    numpy.ndarray of shape (G,)
    """
    x = np.ascontiguousarray(x, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    codes = np.ascontiguousarray(codes, dtype=np.intp)
    n_groups = int(codes.max()) + 1 if codes.size else 0
    return _grouped_correlation(x, y, codes, n_groups, float(min_count))


@kernel
def _grouped_correlation(x, y, codes, n_groups, min_count):  # pragma: no cover - compiled
    # Two passes, each summing in row order like np.bincount(codes, weights) (the numpy
    # formulation this replaces, bit for bit): group means, then centred moments. A
    # constant column leaves rounding residue of ~1e-32 relative size: no variance.
    count = np.zeros(n_groups)
    sum_x = np.zeros(n_groups)
    sum_y = np.zeros(n_groups)
    for i in range(x.size):
        g = codes[i]
        count[g] += 1.0
        sum_x[g] += x[i]
        sum_y[g] += y[i]
    mean_x = sum_x / count
    mean_y = sum_y / count
    var_x = np.zeros(n_groups)
    var_y = np.zeros(n_groups)
    cov = np.zeros(n_groups)
    square_x = np.zeros(n_groups)
    square_y = np.zeros(n_groups)
    for i in range(x.size):
        g = codes[i]
        xc = x[i] - mean_x[g]
        yc = y[i] - mean_y[g]
        var_x[g] += xc * xc
        var_y[g] += yc * yc
        cov[g] += xc * yc
        square_x[g] += x[i] * x[i]
        square_y[g] += y[i] * y[i]
    corr = cov / np.sqrt(var_x * var_y)
    for g in range(n_groups):
        flat = var_x[g] <= 1e-20 * square_x[g] or var_y[g] <= 1e-20 * square_y[g]
        if flat or count[g] < min_count or not np.isfinite(corr[g]):
            corr[g] = np.nan
    return corr


def per_date_ic(pred: pd.Series, label: pd.Series, method: str = "pearson") -> pd.Series:
    """Information coefficient of each date: the cross-sectional correlation.

    Parameters
    ----------
    pred, label : Series on a ``(date, ticker)`` MultiIndex
    method : {"pearson", "spearman"}
        Spearman ranks both series within each date first (average ties).

    Returns
    -------
    Series indexed by date; dates with fewer than 3 names or constant values are dropped.
    """
    if method not in ("pearson", "spearman"):
        raise SettingsError(f"method must be 'pearson' or 'spearman', got {method!r}")
    scores = _one_column(pred, label)
    return scores.rank_ic("pred") if method == "spearman" else scores.ic("pred")


def _one_column(pred: pd.Series, label: pd.Series) -> PerDateScores:
    if not isinstance(pred, pd.Series) or not isinstance(label, pd.Series):
        raise DataError("pred and label must be pandas Series on a (date, ticker) index")
    return PerDateScores(pred.to_frame("pred"), label)


@overload
def within_date_ranks(
    values, codes, *, first: Literal[True] = ...
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def within_date_ranks(
    values, codes, *, first: Literal[False]
) -> tuple[np.ndarray, None, np.ndarray]: ...
@overload
def within_date_ranks(
    values, codes, *, first: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]: ...
def within_date_ranks(
    values, codes, *, first: bool = True
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """1-based ranks of ``values`` within each date code.

    Returns ``(average, first, sizes)``: ties share their mean rank in
    ``average`` and are ranked by row order in ``first`` (pandas'
    ``groupby(codes).rank(method=...)``; None when ``first=False``);
    ``sizes[c]`` counts the rows of code ``c``. ``values`` must be free of NaN.

    Why not the pandas groupby: the rows are laid out as a dates x names
    panel and sorted row by row (a 500-wide sort stays in cache), which gives
    both rankings several times faster than one groupby rank on the 500 x 1260
    panel, where every metric of every model ranks ~500k rows.
    """
    values = np.asarray(values, dtype=float)
    codes = np.asarray(codes, dtype=np.intp)
    n = values.size
    sizes = np.bincount(codes) if n else np.zeros(0, dtype=np.intp)
    if n == 0:
        return np.empty(0), (np.empty(0) if first else None), sizes
    n_codes, width = sizes.size, int(sizes.max())
    by_code = None if np.all(codes[1:] >= codes[:-1]) else np.argsort(codes, kind="stable")
    row = codes if by_code is None else codes[by_code]  # rows grouped by code, order kept
    slot = np.arange(n) - (np.cumsum(sizes) - sizes)[row]
    # pads sort last in every row: +inf when the values are finite (the SIMD sort is 2-3x
    # slower with NaN in a row), else NaN
    panel = np.full((n_codes, width), np.inf if np.isfinite(values).all() else np.nan)
    panel[row, slot] = values if by_code is None else values[by_code]
    source = np.full((n_codes, width), -1, dtype=np.intp)  # the row behind each slot
    source[row, slot] = np.arange(n) if by_code is None else by_code
    # the default (SIMD) sort is ~10x faster than a stable one; the kernel puts tie runs
    # back in slot (= row) order, which is all "first" needs from stability
    order = np.argsort(panel, axis=1)
    ordered = np.take_along_axis(panel, order, axis=1)
    average, ordinal = _ranks_from_sorted(ordered, order, sizes, source, n, first)
    return average, (ordinal if first else None), sizes


@kernel
def _ranks_from_sorted(ordered, order, sizes, source, n, first):  # pragma: no cover
    # one walk over each date's sorted values: a run of equal values gets the mean of its
    # 1-based positions, k + 1 + (run length - 1) / 2 (exact: a multiple of 1/2); with
    # `first`, the run is put in slot order (insertion sort: runs are short) and numbered
    average = np.empty(n)
    ordinal = np.empty(n if first else 0)
    for c in range(ordered.shape[0]):
        size = sizes[c]
        k = 0
        while k < size:
            j = k
            while j + 1 < size and ordered[c, j + 1] == ordered[c, k]:
                j += 1
            if first and j > k:
                for a in range(k + 1, j + 1):
                    key = order[c, a]
                    b = a - 1
                    while b >= k and order[c, b] > key:
                        order[c, b + 1] = order[c, b]
                        b -= 1
                    order[c, b + 1] = key
            rank = (k + 1.0) + (j - k) / 2.0
            for t in range(k, j + 1):
                target = source[c, order[c, t]]
                average[target] = rank
                if first:
                    ordinal[target] = t + 1.0
            k = j + 1
    return average, ordinal


@dataclass(frozen=True)
class DateRanks:
    """Average ranks of every column of a NaN-free frame within each date, computed once.

    Why: the factor-IC table and the fusion's factor composite both rank every
    feature column within each date, on the same rows; ranking them once
    (:meth:`of`) and deriving both from these ranks gives the same numbers
    for half the sorting.

    Attributes
    ----------
    ranks : ndarray of float32, shape (n_rows, n_columns)
        1-based ranks within the row's date, ties averaged (``within_date_ranks``'s
        ``average``). Stored as float32 without loss: an average rank is a
        multiple of 1/2 below 2**23.
    codes : ndarray of int, shape (n_rows,)
        Date code of each row (dates sorted).
    sizes : ndarray of int, shape (n_dates,)
        Rows of each date.
    index : MultiIndex
        The frame's ``(date, ticker)`` index.
    columns : Index
    """

    ranks: np.ndarray
    codes: np.ndarray
    sizes: np.ndarray
    index: pd.MultiIndex
    columns: pd.Index

    @classmethod
    def of(cls, frame: pd.DataFrame) -> DateRanks:
        """Rank every column of ``frame`` (on a ``(date, ticker)`` index, no NaN) per date."""
        values = frame.to_numpy(dtype=float)
        if np.isnan(values).any():
            raise DataError("DateRanks needs a frame without NaN")
        codes = pd.factorize(date_groups(frame), sort=True)[0]
        ranks = np.empty(values.shape, dtype=np.float32)
        sizes = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.intp)
        for j in range(values.shape[1]):
            ranks[:, j] = within_date_ranks(values[:, j], codes, first=False)[0]
        return cls(ranks=ranks, codes=codes, sizes=sizes, index=frame.index,
                   columns=frame.columns)

    def column(self, name) -> np.ndarray:
        """Return the float64 ranks of one column (rows in the frame's order)."""
        return self.ranks[:, self.columns.get_loc(name)].astype(float)

    def percentiles(self, index: pd.MultiIndex, signs: dict | None = None) -> pd.DataFrame:
        """``rank / size`` of every column on the rows ``index``; ``-1`` signs rank descending.

        Equal to ``(frame * signs).loc[index].groupby(date).rank(pct=True)`` when
        ``index`` holds every row of each of its dates (checked): the rank of
        ``-x`` among ``n`` values is ``n + 1 - rank(x)``, exactly, ties included.

        Raises
        ------
        DataError
            If ``index`` has a row the frame has not, or misses a row of one of its dates.
        """
        rows = self.index.get_indexer(index)
        if (rows < 0).any():
            raise DataError(f"{int((rows < 0).sum())} rows to rank are not in the ranked frame")
        codes = self.codes[rows]
        if not np.array_equal(np.bincount(codes, minlength=len(self.sizes))[codes],
                              self.sizes[codes]):
            raise DataError("percentiles need every row of each date that was ranked")
        sizes = self.sizes[codes].astype(float)
        ranks = self.ranks[rows].astype(float)
        flip = np.array([(signs or {}).get(c, 1) < 0 for c in self.columns])
        if flip.any():
            ranks[:, flip] = (sizes[:, None] + 1.0) - ranks[:, flip]
        return pd.DataFrame(ranks / sizes[:, None], index=index, columns=self.columns)


def rank_ic(pred: pd.Series, label: pd.Series) -> pd.Series:
    """Spearman rank IC of each date (see :func:`per_date_ic`)."""
    return per_date_ic(pred, label, method="spearman")


def icir(ic: pd.Series) -> float:
    """Mean IC over its standard deviation (ddof=1), per date, not annualised."""
    ic = pd.Series(ic).dropna()
    if len(ic) < 2 or ic.std() == 0:
        return float("nan")
    return float(ic.mean() / ic.std())


def newey_west_lags(n_dates: int, horizon: int = 1) -> int:
    """Lags of the Newey-West variance of a mean of ``n_dates`` daily figures.

    ``max(horizon, floor(4 * (n_dates / 100) ** (2 / 9)))``: at least the label
    horizon, because the per-date ICs of ``horizon``-session labels share up to
    ``horizon - 1`` daily returns with their neighbours (an MA(``horizon - 1``)
    overlap), and at least the usual automatic rule (Newey and West, 1994) for
    the slower persistence of a signal's quality (6 lags for 1000 dates).
    """
    if int(horizon) < 1:
        raise SettingsError(f"horizon must be >= 1, got {horizon}")
    auto = int(np.floor(4.0 * (max(int(n_dates), 0) / 100.0) ** (2.0 / 9.0)))
    return max(int(horizon), auto)


def newey_west_tstat(values, lags: int) -> float:
    """t-statistic of the mean of a daily series with a Newey-West (Bartlett) variance.

    ``t = mean / sqrt(S / n)`` with ``S = g_0 + 2 sum_{k=1..L} (1 - k / (L + 1)) g_k``
    and ``g_k = sum_t e_t e_{t-k} / n`` the autocovariances of the demeaned
    series (NaN values are dropped first; the series is taken in its order,
    i.e. consecutive OOS dates). NaN when fewer than 3 values remain or the
    variance is 0. ``lags`` = 0 is the ordinary (iid) t-statistic with ``ddof=0``.

    Examples
    --------
    >>> round(newey_west_tstat([1.0, 2.0, 3.0, 4.0], lags=0), 4)
    4.4721
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if int(lags) < 0:
        raise SettingsError(f"lags must be >= 0, got {lags}")
    if n < 3:
        return float("nan")
    e = x - x.mean()
    variance = float(e @ e) / n
    for k in range(1, min(int(lags), n - 1) + 1):
        variance += 2.0 * (1.0 - k / (int(lags) + 1.0)) * float(e[k:] @ e[:-k]) / n
    if not variance > 0:
        return float("nan")
    return float(x.mean() / np.sqrt(variance / n))


def ic_summary(ic: pd.Series, lags: int) -> dict:
    """Mean, ICIR, Newey-West t and date count of a per-date IC series.

    Returns ``{"mean", "icir", "nw_t", "n_dates"}`` (NaN figures when the
    series is too short).
    """
    ic = pd.Series(ic, dtype=float).dropna()
    return {"mean": float(ic.mean()) if len(ic) else float("nan"), "icir": icir(ic),
            "nw_t": newey_west_tstat(ic.to_numpy(), lags), "n_dates": int(len(ic))}


def paired_difference(a: pd.Series, b: pd.Series, lags: int) -> dict:
    """Mean of ``a - b`` over their common dates and its Newey-West t-statistic.

    Why paired: two scores evaluated on the same dates share the market's
    good and bad days, so the standard error of the difference of their mean
    ICs is far smaller than either IC's own (the per-date differences cancel
    the common part). Returns ``{"mean", "nw_t", "n_dates"}``.
    """
    both = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna().sort_index()
    diff = both["a"] - both["b"]
    return {"mean": float(diff.mean()) if len(diff) else float("nan"),
            "nw_t": newey_west_tstat(diff.to_numpy(), lags), "n_dates": int(len(diff))}


def hit_rate(ic: pd.Series) -> float:
    """Share of dates whose IC is strictly positive."""
    ic = pd.Series(ic).dropna()
    return float((ic > 0).mean()) if len(ic) else float("nan")


def quantile_buckets(pred: pd.Series, n_quantiles: int = 5) -> pd.Series:
    """Per-date quantile of each prediction: ``0`` = lowest, ``n_quantiles - 1`` = highest.

    Ties are broken by order of appearance so buckets have equal sizes (+-1).
    """
    if n_quantiles < 2:
        raise SettingsError(f"n_quantiles must be >= 2, got {n_quantiles}")
    pred = pred.dropna()
    codes = pd.factorize(date_groups(pred))[0]
    return pd.Series(_buckets(pred.to_numpy(dtype=float), codes, n_quantiles),
                     index=pred.index, name="quantile")


def _buckets(values: np.ndarray, codes: np.ndarray, n_quantiles: int) -> np.ndarray:
    _, first, sizes = within_date_ranks(values, codes)
    return _buckets_of(first, sizes, codes, n_quantiles)


def _buckets_of(first: np.ndarray, sizes: np.ndarray, codes: np.ndarray,
                n_quantiles: int) -> np.ndarray:
    buckets = np.ceil(first / sizes[codes] * n_quantiles).astype(np.int64) - 1
    return np.clip(buckets, 0, n_quantiles - 1)


def quantile_returns(pred: pd.Series, label: pd.Series, n_quantiles: int = 5) -> pd.DataFrame:
    """Mean forward return of each prediction quantile on each date (dates x quantiles)."""
    _check_quantiles(n_quantiles)
    return _one_column(pred, label).quantile_returns("pred", n_quantiles)


def long_short_spread(pred: pd.Series, label: pd.Series, n_quantiles: int = 5) -> pd.Series:
    """Top-quantile minus bottom-quantile mean forward return, per date."""
    _check_quantiles(n_quantiles)
    return _one_column(pred, label).long_short_spread("pred", n_quantiles)


def _top_minus_bottom(table: pd.DataFrame) -> pd.Series:
    return (table[table.columns[-1]] - table[table.columns[0]]).rename("long_short")


def top_quantile_turnover(pred: pd.Series, n_quantiles: int = 5) -> pd.Series:
    """Share of the top quantile that is new versus the previous date present.

    ``turnover_t = 1 - |top_t & top_{t-1}| / |top_t|``; the first date is dropped.
    """
    _check_quantiles(n_quantiles)
    pred = pred.dropna()
    return PerDateScores(pred.to_frame("pred"), None).top_quantile_turnover("pred", n_quantiles)


def _check_quantiles(n_quantiles: int) -> None:
    if n_quantiles < 2:
        raise SettingsError(f"n_quantiles must be >= 2, got {n_quantiles}")


class PerDateScores:
    """Per-date figures of the score columns of one frame against one label, cached.

    The one implementation of :func:`per_date_ic`, :func:`rank_ic`,
    :func:`quantile_returns`, :func:`long_short_spread` and
    :func:`top_quantile_turnover` (each of those builds one for a single
    column). A run scores the same OOS columns in its metrics, its baseline
    table and its charts: with one instance per run every column and the label
    are ranked within each date once (one sort gives the average ranks of the
    rank IC and the row-order ranks of the quantile buckets) and every figure is
    computed once, with the same numbers as the functions.

    Rows of a column are those where both the score and the label are present
    (``pd.concat(join="inner").dropna()``, in the frame's row order);
    :meth:`top_quantile_turnover` uses every row where the score is present.

    Parameters
    ----------
    scores : DataFrame on a ``(date, ticker)`` index
        One column per score.
    label : Series or None
        Forward returns, aligned to ``scores`` by index (None: turnover only).
    """

    def __init__(self, scores: pd.DataFrame, label: pd.Series | None) -> None:
        self.scores = scores
        if label is None:
            self._label = np.full(len(scores), np.nan)
        else:
            aligned = label if label.index.equals(scores.index) else label.reindex(scores.index)
            self._label = aligned.to_numpy(dtype=float)
        self._dates = date_groups(scores)
        self._groups: dict[bytes, dict] = {}  # rows of a mask: codes, dates, label ranks
        self._ranked: dict[tuple, dict] = {}  # (column, with_label): group, values, ranks
        self._cache: dict[tuple, object] = {}

    def _group(self, mask: np.ndarray) -> dict:
        key = np.packbits(mask).tobytes()
        if key not in self._groups:
            rows = np.flatnonzero(mask)
            codes, uniques = pd.factorize(self._dates[rows], sort=True)
            self._groups[key] = {"rows": rows, "codes": codes, "dates": uniques,
                                 "y": self._label[rows], "y_rank": None}
        return self._groups[key]

    def _column(self, name, with_label: bool = True) -> dict:
        """Row group, values and (lazily) ranks of one column."""
        key = (name, with_label)
        if key not in self._ranked:
            x = self.scores[name].to_numpy(dtype=float)
            present = ~np.isnan(x)
            group = self._group(present & ~np.isnan(self._label) if with_label else present)
            self._ranked[key] = {"group": group, "values": x[group["rows"]], "ranks": None}
        return self._ranked[key]

    def _ranks(self, name, with_label: bool = True) -> tuple[dict, tuple]:
        """Row group and ``within_date_ranks`` (average, first, sizes) of one column."""
        column = self._column(name, with_label)
        if column["ranks"] is None:
            column["ranks"] = within_date_ranks(column["values"], column["group"]["codes"])
        return column["group"], column["ranks"]

    def _cached(self, key: tuple, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def rank_ic(self, name) -> pd.Series:
        """Per-date Spearman rank IC of column ``name`` (see :func:`rank_ic`)."""
        def compute():
            group, (average, _, _) = self._ranks(name)
            if group["y_rank"] is None:
                group["y_rank"] = within_date_ranks(group["y"], group["codes"], first=False)[0]
            return _ic_series(average, group["y_rank"], group, "spearman")
        return self._cached(("rank_ic", name), compute)

    def ic(self, name) -> pd.Series:
        """Per-date Pearson IC of column ``name`` (see :func:`per_date_ic`)."""
        def compute():
            column = self._column(name)
            return _ic_series(column["values"], column["group"]["y"], column["group"], "pearson")
        return self._cached(("ic", name), compute)

    def quantile_returns(self, name, n_quantiles: int = 5) -> pd.DataFrame:
        """Mean label of each quantile of ``name`` per date (see :func:`quantile_returns`)."""
        def compute():
            group, (_, first, sizes) = self._ranks(name)
            codes, dates = group["codes"], group["dates"]
            key = codes * n_quantiles + _buckets_of(first, sizes, codes, n_quantiles)
            cells = len(dates) * n_quantiles
            sums = np.bincount(key, group["y"], minlength=cells)
            counts = np.bincount(key, minlength=cells)
            with np.errstate(invalid="ignore", divide="ignore"):
                table = np.where(counts > 0, sums / counts, np.nan).reshape(len(dates),
                                                                            n_quantiles)
            return pd.DataFrame(table, index=pd.Index(dates, name="date"),
                                columns=range(n_quantiles))
        return self._cached(("quantile_returns", name, n_quantiles), compute)

    def long_short_spread(self, name, n_quantiles: int = 5) -> pd.Series:
        """Top minus bottom quantile's mean label per date (see :func:`long_short_spread`)."""
        return _top_minus_bottom(self.quantile_returns(name, n_quantiles))

    def top_quantile_turnover(self, name, n_quantiles: int = 5) -> pd.Series:
        """Top-quantile turnover of column ``name`` (see :func:`top_quantile_turnover`)."""
        def compute():
            group, (_, first, sizes) = self._ranks(name, with_label=False)
            codes, dates = group["codes"], group["dates"]
            top = _buckets_of(first, sizes, codes, n_quantiles) == n_quantiles - 1
            tickers = pd.factorize(self.scores.index.get_level_values(-1)[group["rows"]])[0]
            member = np.zeros((len(dates), int(tickers.max()) + 1 if tickers.size else 0),
                              dtype=bool)
            member[codes[top], tickers[top]] = True
            kept = np.zeros(len(dates))
            kept[1:] = (member[1:] & member[:-1]).sum(axis=1)
            held = member.sum(axis=1).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                turnover = 1.0 - kept / np.where(held > 0, held, np.nan)
            return pd.Series(turnover, index=pd.Index(dates, name="date"),
                             name="top_turnover").iloc[1:]
        return self._cached(("turnover", name, n_quantiles), compute)


def _ic_series(x: np.ndarray, y: np.ndarray, group: dict, method: str) -> pd.Series:
    ic = grouped_correlation(x, y, group["codes"])
    series = pd.Series(ic, index=pd.Index(group["dates"], name="date"), name=f"{method}_ic")
    return series.dropna()


def _metrics(name, scores: PerDateScores, folds, n_quantiles: int) -> dict:
    ic = scores.ic(name)
    ric = scores.rank_ic(name)
    table = scores.quantile_returns(name, n_quantiles)
    result = {
        "n_dates": int(len(ric)),
        "ic_mean": float(ic.mean()),
        "rank_ic_mean": float(ric.mean()),
        "icir": icir(ic),
        "rank_icir": icir(ric),
        "hit_rate": hit_rate(ric),
        "quantile_mean_returns": {int(q): float(v) for q, v in table.mean().items()},
        "long_short_mean": float(_top_minus_bottom(table).mean()),
        "top_turnover_mean": float(scores.top_quantile_turnover(name, n_quantiles).mean()),
    }
    if folds is not None:
        fold_of_date = pd.Series(np.asarray(folds), index=date_groups(folds)).groupby(level=0)
        fold_of_date = fold_of_date.first().reindex(ric.index)
        result["rank_ic_by_fold"] = {
            int(k): float(v) for k, v in ric.groupby(fold_of_date.to_numpy()).mean().items()
        }
    return result


def evaluate(
    predictions: pd.DataFrame,
    label: pd.Series,
    folds: pd.Series | None = None,
    *,
    n_quantiles: int = 5,
    scores: PerDateScores | None = None,
) -> dict[str, dict]:
    """Per-date metrics for each prediction column.

    Parameters
    ----------
    predictions : DataFrame on a ``(date, ticker)`` index
        One column per model. A ``fold`` column (as returned by
        :func:`bma_models.models.oof_predictions`) is used as ``folds`` and not scored;
        columns named ``*fold`` are never scored.
    label : Series
        Forward returns on the same index.
    folds : Series, optional
        Fold number of each row; gives ``rank_ic_by_fold``.
    n_quantiles : int, default=5
    scores : PerDateScores, optional
        A :class:`PerDateScores` of these columns and this label that other
        reports of the run share (its cached figures are reused); default a new one.

    Returns
    -------
    dict
        ``{model: {"n_dates", "ic_mean", "rank_ic_mean", "icir", "rank_icir",
        "hit_rate", "quantile_mean_returns", "long_short_mean", "top_turnover_mean",
        "rank_ic_by_fold"?}}``. NaN predictions (rows a model did not score) are dropped.
    """
    _check_quantiles(n_quantiles)
    if folds is None and "fold" in predictions.columns:
        folds = predictions["fold"]
    models = [c for c in predictions.columns if not str(c).endswith("fold")]
    if not models:
        raise DataError("predictions has no model column to evaluate")
    if scores is None:
        scores = PerDateScores(predictions[models], label)
    return {str(name): _metrics(name, scores, folds, n_quantiles) for name in models}
