"""Output layout and memory helpers: in-place squeeze, fresh pages, prefaulting, panel build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.factors import compute_factors
from bma_models.factors.engine import _squeeze
from bma_models.panel import build_panel, memory
from bma_models.panel.frames import PANEL_FIELDS, long_index
from bma_models.panel.memory import Prefaulter, fresh_array


@pytest.mark.parametrize("pattern", ["random", "leading_holes", "no_holes", "one_kept"])
def test_squeeze_moves_the_kept_cells_to_the_front_in_order(pattern, monkeypatch):
    monkeypatch.setattr("bma_models.factors.engine._SQUEEZE_CHUNK", 7)
    rng = np.random.default_rng(0)
    keep = {
        "random": rng.random(100) > 0.3,
        "leading_holes": np.r_[np.zeros(20, bool), np.ones(80, bool)],
        "no_holes": np.ones(100, bool),
        "one_kept": np.eye(1, 100, 57, dtype=bool)[0],
    }[pattern]
    row = rng.normal(size=100)
    expected = row[keep].copy()
    _squeeze(row, keep)
    np.testing.assert_array_equal(row[: keep.sum()], expected)


@pytest.mark.parametrize("shape", [(3, 4), (2, 300_000)])
def test_fresh_array_is_a_writable_float64_array_of_the_shape(shape):
    array = fresh_array(shape)
    array[...] = 1.5
    assert array.shape == shape and array.dtype == np.float64
    assert float(array.sum()) == 1.5 * array.size


def test_prefaulter_never_changes_the_memory_it_maps():
    array = fresh_array((4, 100_000))
    array[0] = np.arange(100_000.0)
    with Prefaulter([(array[row], 0, 100_000) for row in range(4)]) as prefaulter:
        pass
    assert prefaulter.disabled_reason_ == "" or "madvise" in prefaulter.disabled_reason_
    np.testing.assert_array_equal(array[0], np.arange(100_000.0))


def test_prefaulter_without_madvise_records_why_and_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_load_madvise", lambda: (None, "platform test"))
    array = np.zeros(10)
    with Prefaulter([(array, 0, 10)]) as prefaulter:
        pass
    assert prefaulter.disabled_reason_ == "platform test"
    assert not array.any()


def test_panel_from_shuffled_bars_and_threads_equals_panel_from_sorted(market_with_halts):
    bars, reference = market_with_halts
    expected = build_panel(bars, reference)
    for other in (build_panel(bars.sample(frac=1.0, random_state=1), reference),
                  build_panel(bars, reference, n_jobs=2)):
        np.testing.assert_array_equal(other.has_bar, expected.has_bar)
        for name in PANEL_FIELDS:
            np.testing.assert_array_equal(getattr(other, name), getattr(expected, name))
    assert np.isnan(expected.close[~expected.has_bar]).all()


def test_long_index_lists_the_bar_cells_in_date_then_ticker_order(market_with_halts):
    bars, reference = market_with_halts
    panel = build_panel(bars, reference)
    dates, tickers = np.nonzero(panel.has_bar)
    expected = pd.MultiIndex.from_arrays([panel.dates[dates], panel.tickers[tickers]],
                                         names=["date", "ticker"])
    assert long_index(panel).equals(expected)


def test_threads_with_prefaulting_match_one_thread_without_halts(market):
    bars, reference = market  # no missing bar: the squeeze is skipped
    expected = compute_factors(bars, reference)
    out = compute_factors(bars, reference, n_jobs=2, chunk_cells=64)
    pd.testing.assert_frame_equal(out, expected, check_exact=True)
    assert len(out) == len(bars)
