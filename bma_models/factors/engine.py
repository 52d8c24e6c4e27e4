"""Compute a set of registered factors from long bars."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from bma_models.errors import SettingsError
from bma_models.factors import _fused
from bma_models.factors.registry import FACTORS, FactorSpec
from bma_models.panel.frames import (
    BarGrid,
    Panel,
    bar_grid,
    build_panel,
    long_index,
    shares_per_ticker,
)
from bma_models.panel.memory import Prefaulter, fresh_array, populate

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_CELLS = 1 << 15
_BLOCK_HALOS = 4  # a block of sessions spans this many lookbacks (plus one in front)
_SQUEEZE_CHUNK = 1 << 16  # cells per step of the in-place compaction


def resolve_specs(
    specs: Mapping[str, FactorSpec] | Iterable[FactorSpec | str] | None,
) -> list[FactorSpec]:
    """Normalise ``specs`` (None, a mapping, specs or registered names) to a list.

    Raises
    ------
    SettingsError
        On an unregistered name, a duplicated column name or an empty selection.
    """
    if specs is None:
        return list(FACTORS.values())
    items = specs.values() if isinstance(specs, Mapping) else specs
    out: list[FactorSpec] = []
    for item in items:
        if isinstance(item, str):
            if item not in FACTORS:
                raise SettingsError(f"unknown factor {item!r}; registered: {sorted(FACTORS)}")
            item = FACTORS[item]
        out.append(item)
    names = [spec.name for spec in out]
    if not names:
        raise SettingsError("no factors selected")
    if len(set(names)) != len(names):
        raise SettingsError(f"duplicated factor columns in {names}")
    return out


def compute_factors(
    bars: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    specs: Mapping[str, FactorSpec] | Iterable[FactorSpec | str] | None = None,
    *,
    n_jobs: int = 1,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
) -> pd.DataFrame:
    """Compute factors for every (date, ticker) bar.

    Parameters
    ----------
    bars : DataFrame
        Protocol bars (see :mod:`bma_models.data.protocol`).
    reference : DataFrame, optional
        Reference data; only ``shares_outstanding`` is used (turnover).
    specs : mapping, iterable or None
        Factor specs (or registered column names); None computes every
        registered default factor in :data:`~bma_models.factors.FACTORS`.
    n_jobs : int
        Threads computing blocks of tickers in parallel (the compiled kernel and
        numpy release the GIL); with ``n_jobs > 1`` the two key columns are also
        factorised in parallel. The result is bit-identical for every value.
    chunk_cells : int
        Working-set size per block: about ``chunk_cells`` ring-buffer values per
        derived series for the fused kernel, dates x tickers cells per tile for
        the numpy path. Results do not depend on it.

    Returns
    -------
    DataFrame
        MultiIndex ``(date, ticker)`` sorted by date then ticker, one float64
        column per factor, one row per input bar. Warm-up and halt-affected
        values are NaN (see :mod:`bma_models.factors.library`).

    Raises
    ------
    SettingsError
        On an unknown or duplicated factor, or ``n_jobs`` / ``chunk_cells`` < 1.
    DataError
        If a protocol column is missing or a (date, ticker) pair repeats.

    Notes
    -----
    Why a fused compiled kernel (:mod:`bma_models.factors._fused`): every
    registered factor is a handful of rolling sums, running extremes and shifts
    of a few per-bar series. One pass over the sessions, per block of tickers,
    keeps those states in a small ring buffer and writes every factor straight
    into its final cell of the result, so there is no panel of the bars, no
    temporary array per formula and no long <-> wide round trip: the inputs are
    the bar columns themselves and the output buffer *is* the frame's single
    block (each factor column contiguous, no copy). The numpy engine before it
    made several whole-tile passes per formula step and spent its time on that
    memory traffic, not on arithmetic. The value at ``t`` only reads sessions
    ``<= t``.

    Specs whose function is not a registered family (user-defined
    :class:`FactorSpec`) run on the numpy path instead: the bars pivoted to a
    dates x tickers :class:`Panel`, cut into cache-sized tiles of sessions x
    tickers (each with ``spec.lookback`` sessions of history in front), every
    tile written into its cells of a dense grid, then the cells without a bar
    squeezed out in place. Both paths follow the conventions of
    :mod:`bma_models.factors.library`, and a test holds them equal.

    Examples
    --------
    >>> import pandas as pd
    >>> bars = pd.DataFrame({
    ...     "date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]),
    ...     "ticker": "AAA", "open": [10.0, 11.0, 12.0], "high": [11.0, 12.0, 13.0],
    ...     "low": [9.0, 10.0, 11.0], "close": [10.0, 11.0, 12.1],
    ...     "volume": 1e6, "vwap": [10.0, 11.0, 12.0]})
    >>> compute_factors(bars, specs=["mom_5", "overnight_gap"]).round(4)["overnight_gap"].tolist()
    [nan, 0.1, 0.0909]
    """
    selected = resolve_specs(specs)
    if n_jobs < 1 or chunk_cells < 1:
        raise SettingsError(f"n_jobs and chunk_cells must be >= 1, got {n_jobs}, {chunk_cells}")
    started = time.perf_counter()
    plan = _fused.plan_specs(selected)
    grid: Panel | BarGrid
    if plan is None:  # a spec outside the registered families: generic numpy tiles
        grid = panel = build_panel(bars, reference, n_jobs=n_jobs)
        values = _tiled_values(panel, selected, n_jobs, chunk_cells)
    else:
        grid = bar_grid(bars, n_jobs=n_jobs)
        values = _fused_values(grid, bars, reference, plan, n_jobs, chunk_cells)
    logger.debug(
        "computed %d factors on %r in %.2f s (n_jobs=%d, %s)", len(selected), grid,
        time.perf_counter() - started, n_jobs, "numpy tiles" if plan is None else "fused",
    )
    return pd.DataFrame(values.T, index=long_index(grid),
                        columns=[s.name for s in selected], copy=False)


_FUSED_INPUTS = ("open", "high", "low", "close", "vwap", "volume")


def _fused_values(
    grid: BarGrid, bars: pd.DataFrame, reference: pd.DataFrame | None, plan: _fused.Plan,
    n_jobs: int, chunk_cells: int,
) -> np.ndarray:
    # (n_factors, n_bars) in (date, ticker) order, written in place by the kernel
    n_tickers = grid.shape[1]
    # blocks of about chunk_cells ring values per series, at least one per thread
    n_blocks = max(-(-n_tickers // max(1, chunk_cells // plan.ring)), n_jobs)
    n_blocks = min(n_tickers, -(-n_blocks // n_jobs) * n_jobs)
    edges = np.linspace(0, n_tickers, n_blocks + 1).round().astype(np.int64)
    starts = _fused.block_starts(grid.has_bar, edges)
    n_bars = int(np.count_nonzero(grid.has_bar))
    columns = tuple(_read_only(grid.sorted_values(bars[name])) for name in _FUSED_INPUTS)
    shares = shares_per_ticker(reference, grid.tickers)
    out = fresh_array((plan.size, n_bars))
    # map the result's pages up front, one system call per thread: cheaper than
    # the kernel taking 400k page faults one by one (1.6 GB at 3,000 x 2,520)
    _run(populate, np.array_split(out.reshape(-1), n_jobs), n_jobs)

    def block(k: int) -> None:
        _fused.run_block(columns, grid.has_bar, shares, np.ascontiguousarray(starts[:, k]),
                         int(edges[k]), int(edges[k + 1]), plan, out)

    _run(block, range(len(edges) - 1), n_jobs)
    # numpy's SIMD log1p is several times faster than numba's scalar libm call
    _run(lambda row: np.log1p(out[row], out=out[row]), plan.log_rows, n_jobs)
    return out


def _read_only(values: np.ndarray) -> np.ndarray:
    # one array type for the compiled kernel whatever the column's flags
    view = values.view()
    view.flags.writeable = False
    return view


def _tiled_values(
    panel: Panel, selected: list[FactorSpec], n_jobs: int, chunk_cells: int
) -> np.ndarray:
    # (n_factors, n_bars) view in (date, ticker) order; see compute_factors' notes on tiles
    n_dates, n_tickers = panel.shape
    lookbacks = [spec.lookback for spec in selected]
    bounded = [lookback for lookback in lookbacks if lookback is not None]
    halo = n_dates if len(bounded) < len(lookbacks) else max(bounded)
    step = max(_BLOCK_HALOS * halo, 64)
    width = max(16, chunk_cells // (step + halo))
    # one row per grid cell: tiles write straight into their final place, and the
    # cells without a bar are squeezed out afterwards, in place
    dense = fresh_array((len(selected), n_dates * n_tickers))
    grid = dense.reshape(len(selected), n_dates, n_tickers)

    def fill(tile: tuple[int, int]) -> None:
        first, left = tile
        stop = min(first + step, n_dates)
        start = max(0, first - halo)
        right = min(left + width, n_tickers)
        window = panel.rows(start, stop).columns(left, right)
        for column, spec in enumerate(selected):
            grid[column, first:stop, left:right] = spec.compute(window)[first - start :]

    firsts = range(0, n_dates, step)
    tiles = [(first, left) for first in firsts for left in range(0, n_tickers, width)]
    if n_jobs > 1:
        # page faults of the output on a helper thread, block by block ahead of the tiles
        ranges = ((dense[column], first * n_tickers, min(first + step, n_dates) * n_tickers)
                  for first in firsts for column in range(len(selected)))
        with Prefaulter(ranges):
            _run(fill, tiles, n_jobs)
    else:
        _run(fill, tiles, 1)
    keep = panel.has_bar.reshape(-1)
    n_bars = int(np.count_nonzero(keep))
    if n_bars < keep.size:
        _run(lambda column: _squeeze(dense[column], keep), range(len(selected)), n_jobs)
    return dense[:, :n_bars]


def _run(function, items, n_jobs: int) -> None:
    if n_jobs == 1 or len(items) <= 1:
        for item in items:
            function(item)
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            for _ in pool.map(function, items):
                pass


def _squeeze(row: np.ndarray, keep: np.ndarray) -> None:
    # move row[keep] to the front of row, in order, one cache-sized chunk at a time
    # (writes never pass the chunk being read, and row[mask] copies before writing)
    first = int(np.argmin(keep))  # everything before the first hole is in place
    written = first
    for lo in range(first, keep.size, _SQUEEZE_CHUNK):
        mask = keep[lo : lo + _SQUEEZE_CHUNK]
        kept = row[lo : lo + _SQUEEZE_CHUNK][mask]
        row[written : written + kept.size] = kept
        written += kept.size
