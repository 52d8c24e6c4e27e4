"""Ticker-block factor computation on 2 workers equals compute_factors on one machine."""

from __future__ import annotations

import pandas as pd
import pytest

from bma_models.data.demo import demo_market
from bma_models.errors import DataError
from bma_models.factors import compute_factors
from bma_models.factors.distributed import (
    GRID_ANCHOR,
    compute_factors_by_blocks,
    ticker_blocks,
)


@pytest.fixture(scope="module")
def market():
    return demo_market(n_tickers=40, n_sessions=300, seed=5, end="2025-06-30")


def test_blocks_equal_the_single_machine_result_bit_for_bit(market, dask_local):
    calls = []
    got = compute_factors_by_blocks(market.bars, market.reference, client=dask_local.client,
                                    block_tickers=7, on_task=lambda d, t: calls.append((d, t)))
    pd.testing.assert_frame_equal(got, compute_factors(market.bars, market.reference),
                                  check_exact=True)
    assert calls == [(k, 6) for k in range(1, 7)]  # 40 tickers / 7 = 6 blocks


def test_a_block_missing_market_sessions_keeps_the_market_grid(market, dask_local):
    # the first block's tickers all miss three sessions that the other tickers trade
    bars = market.bars
    first = sorted(bars["ticker"].unique())[:5]
    dates = sorted(bars["date"].unique())
    gone = bars["ticker"].isin(first) & bars["date"].isin([dates[50], dates[120], dates[121]])
    bars = bars[~gone].reset_index(drop=True)
    got = compute_factors_by_blocks(bars, market.reference, client=dask_local.client,
                                    block_tickers=5)
    expected = compute_factors(bars, market.reference)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert GRID_ANCHOR not in got.index.get_level_values("ticker")


def test_reserved_ticker_name_and_empty_bars_are_data_errors(market, dask_local):
    with pytest.raises(DataError, match="reserved"):
        bars = market.bars.assign(ticker=market.bars["ticker"].where(
            market.bars["ticker"] != market.bars["ticker"].iloc[0], GRID_ANCHOR))
        compute_factors_by_blocks(bars, client=dask_local.client)
    with pytest.raises(DataError, match="empty"):
        compute_factors_by_blocks(market.bars.iloc[:0], client=dask_local.client)


def test_ticker_blocks_are_sorted_and_cover_every_ticker_once():
    blocks = ticker_blocks(["d", "a", "c", "b", "a"], 3)
    assert blocks == [["a", "b", "c"], ["d"]]
