"""Compute a set of registered factors from long bars."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from bma_models.errors import SettingsError
from bma_models.factors._memory import Prefaulter, fresh_array
from bma_models.factors.panel import Panel, build_panel, long_index
from bma_models.factors.registry import FACTORS, FactorSpec

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
        Threads computing tiles in parallel (numpy releases the GIL inside its
        loops); with ``n_jobs > 1`` the bar columns are also scattered in
        parallel and one more helper thread maps the output's pages ahead of
        the tiles (see :mod:`bma_models.factors._memory`). The result is
        bit-identical for every value.
    chunk_cells : int
        Target dates x tickers cells per tile (a tile spans at least twice the
        factors' lookback in sessions, plus the lookback itself).

    Returns
    -------
    DataFrame
        MultiIndex ``(date, ticker)`` sorted by date then ticker, one float64
        column per factor, one row per input bar. Warm-up and halt-affected
        values are NaN (see :mod:`bma_models.factors.library`).

    Notes
    -----
    Why arrays instead of ``groupby("ticker").rolling``: the bars are pivoted
    once to dates x tickers arrays and every factor is a handful of whole-array
    numpy operations, so there is no per-ticker Python work; the value of a
    factor at date ``t`` only reads rows ``<= t`` of the arrays.

    Why tiles: the value of a registered factor at ``t`` reads at most
    ``spec.lookback`` sessions before ``t`` and nothing of other tickers, so the
    panel is cut into blocks of consecutive sessions (each computed with
    ``lookback`` sessions of history in front, its output one contiguous slice
    of the result) and each block into groups of tickers. Tiles of a few hundred
    kilobytes stay in the CPU cache and the allocator's reusable heap, whereas
    whole 60 MB temporaries (3,000 tickers x 2,520 sessions) each are a fresh
    ``mmap`` paying page faults (whole-array code measured several times slower).

    Why the output is written dense and then squeezed: the result has one
    column per factor, each contiguous (the frame's single block is the
    transposed ``(n_factors, n_cells)`` array, no copy). Every tile writes its
    values straight into their cells of that grid-shaped buffer, then each
    column drops the cells without a bar by moving the kept values forward in
    place, in cache-sized chunks; since the dense date-major grid order *is*
    the (date, ticker) order, what remains is the result. The frame's index is
    built from integer codes, never from tuples.

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
    panel = build_panel(bars, reference, n_jobs=n_jobs)
    values = _tiled_values(panel, selected, n_jobs, chunk_cells)
    logger.debug(
        "computed %d factors on %r in %.2f s (n_jobs=%d)", len(selected), panel,
        time.perf_counter() - started, n_jobs,
    )
    return pd.DataFrame(values.T, index=long_index(panel),
                        columns=[s.name for s in selected], copy=False)


def _tiled_values(
    panel: Panel, selected: list[FactorSpec], n_jobs: int, chunk_cells: int
) -> np.ndarray:
    # (n_factors, n_bars) view in (date, ticker) order; see compute_factors' notes on tiles
    n_dates, n_tickers = panel.shape
    lookbacks = [spec.lookback for spec in selected]
    halo = n_dates if None in lookbacks else max(lookbacks)
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
