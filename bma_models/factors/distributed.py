"""Factor computation partitioned by ticker blocks on a Dask cluster.

Every registered factor of a ticker reads only that ticker's bars (see
:mod:`bma_models.factors.engine`), so the universe is cut into blocks of
tickers, each block is sent to one worker inside its task (with its reference rows), the
worker runs the ordinary :func:`~bma_models.factors.compute_factors` on it, and
the driver puts the blocks back into the single-machine (date, ticker) order.
The per-date cross-sectional step (lag, winsorising, neutralising, labels)
needs whole cross-sections and stays on the driver.

Why a grid anchor: windows count *market* sessions, i.e. every date on which
any ticker of the input has a bar. A block whose tickers all miss a session
(say a block of names listed later) would otherwise compute on a shorter grid
and shift every window. Such a block gets one extra synthetic ticker with a
bar on every market session; its rows are dropped afterwards. With it the
result is bit-identical to ``compute_factors`` on the whole universe (tested).

The client is passed in: this module never connects or starts a cluster
(:mod:`bma_models.cluster` does) and imports nothing from dask itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from bma_models.errors import DataError, SettingsError
from bma_models.factors.engine import compute_factors, resolve_specs
from bma_models.factors.registry import FactorSpec

logger = logging.getLogger(__name__)

__all__ = ["compute_factors_by_blocks", "ticker_blocks"]

#: Name of the synthetic ticker that pins a block to the market session grid.
GRID_ANCHOR = "__market_grid__"


def ticker_blocks(tickers: Iterable[str], block_tickers: int) -> list[list[str]]:
    """Sorted tickers cut into consecutive blocks of at most ``block_tickers``.

    Examples
    --------
    >>> ticker_blocks(["C", "A", "B", "D", "E"], 2)
    [['A', 'B'], ['C', 'D'], ['E']]
    """
    if int(block_tickers) < 1:
        raise SettingsError(f"block_tickers must be >= 1, got {block_tickers}")
    ordered = sorted(set(tickers))
    return [ordered[i:i + block_tickers] for i in range(0, len(ordered), block_tickers)]


def compute_factors_by_blocks(
    bars: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    specs: Mapping[str, FactorSpec] | Iterable[FactorSpec | str] | None = None,
    *,
    client: Any,
    block_tickers: int = 500,
    n_jobs: int = 1,
    on_task: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """:func:`~bma_models.factors.compute_factors`, one Dask task per block of tickers.

    Parameters
    ----------
    bars, reference, specs
        As for :func:`~bma_models.factors.compute_factors`.
    client : distributed.Client
        A connected client (see :func:`bma_models.cluster.open_session`).
    block_tickers : int, default=500
        Tickers per task.
    n_jobs : int, default=1
        Threads of ``compute_factors`` inside each task.
    on_task : callable, optional
        ``on_task(done, total)`` after each block finished (progress).

    Returns
    -------
    DataFrame
        Equal to ``compute_factors(bars, reference, specs)``: same (date,
        ticker) index and order, same float64 columns, same values.

    Raises
    ------
    DataError
        If ``bars`` is empty, lacks ``date``/``ticker`` or holds the reserved
        ticker name :data:`GRID_ANCHOR`.
    ClusterError
        Propagated from :mod:`bma_models.cluster` when a worker is lost for good.
    """
    from dask import config as dask_config

    from bma_models.cluster import gather_with_progress

    selected = resolve_specs(specs)
    _check_bars(bars)
    started = time.perf_counter()
    dates = pd.DatetimeIndex(np.unique(bars["date"].to_numpy()), name="date")
    blocks = [_anchored(block, dates) for block in _split(bars, block_tickers)]
    # each block travels inside its task to one worker, once, with the reference rows of its
    # own tickers (one small row each). Nothing is scattered: the scheduler keeps a task's own
    # data, so a task whose worker died is re-run elsewhere, whereas scattered data whose
    # only copy was on that worker is lost for good (a broadcast made while a worker was
    # still joining reached one worker only).
    with dask_config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"}):
        futures = [client.submit(_compute_block, data, _reference_of(reference, data),
                                 selected, n_jobs, pure=False)
                   for data in blocks]
    frames = gather_with_progress(client, futures, on_task)
    out = _assemble(frames, dates)
    logger.info("factors on %d ticker blocks of <= %d in %.2fs: %d rows", len(blocks),
                block_tickers, time.perf_counter() - started, len(out))
    return out


def _reference_of(reference: pd.DataFrame | None, block: pd.DataFrame) -> pd.DataFrame | None:
    if reference is None:
        return None
    return reference[reference["ticker"].isin(block["ticker"].unique())]


def _check_bars(bars: pd.DataFrame) -> None:
    if len(bars) == 0:
        raise DataError("compute_factors_by_blocks needs bars; got an empty frame")
    missing = {"date", "ticker"} - set(bars.columns)
    if missing:
        raise DataError(f"bars lack the column(s) {sorted(missing)}")
    if (bars["ticker"] == GRID_ANCHOR).any():
        raise DataError(f"ticker name {GRID_ANCHOR!r} is reserved")


def _split(bars: pd.DataFrame, block_tickers: int) -> list[pd.DataFrame]:
    codes, tickers = pd.factorize(bars["ticker"], sort=True)
    block_of_row = codes // int(block_tickers)
    order = np.argsort(block_of_row, kind="stable")
    bounds = np.searchsorted(block_of_row[order], np.arange(1, -(-len(tickers) // block_tickers)))
    return [bars.iloc[rows] for rows in np.split(order, bounds)]


def _anchored(block: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    if np.unique(block["date"].to_numpy()).size == len(dates):
        return block
    anchor = pd.DataFrame({"date": dates, "ticker": GRID_ANCHOR})
    for column in block.columns.difference(["date", "ticker"]):
        if pd.api.types.is_numeric_dtype(block[column]):
            anchor[column] = 1.0
    return pd.concat([block, anchor[[c for c in block.columns if c in anchor]]],
                     ignore_index=True)


def _compute_block(block: pd.DataFrame, reference, specs, n_jobs: int) -> pd.DataFrame:
    return compute_factors(block, reference, specs, n_jobs=n_jobs)


def _assemble(frames: list[pd.DataFrame], dates: pd.DatetimeIndex) -> pd.DataFrame:
    # blocks hold disjoint tickers; merge them into date-major, ticker-sorted order
    frames = [f[f.index.get_level_values("ticker") != GRID_ANCHOR] for f in frames]
    tickers = pd.Index(np.concatenate([f.index.levels[1][f.index.codes[1]].unique().to_numpy()
                                       for f in frames]), name="ticker").sort_values()
    date_codes = np.concatenate([dates.get_indexer(f.index.get_level_values("date"))
                                 for f in frames])
    ticker_codes = np.concatenate([tickers.get_indexer(f.index.get_level_values("ticker"))
                                   for f in frames])
    order = np.argsort(date_codes.astype(np.int64) * len(tickers) + ticker_codes,
                       kind="stable")
    values = np.concatenate([f.to_numpy(dtype=np.float64) for f in frames])[order]
    index = pd.MultiIndex(levels=[dates, tickers],
                          codes=[date_codes[order], ticker_codes[order]],
                          names=["date", "ticker"], verify_integrity=False)
    return pd.DataFrame(values, index=index, columns=frames[0].columns)
