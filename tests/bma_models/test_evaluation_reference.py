"""The vectorised per-date metrics equal straightforward pandas groupby implementations.

The references below are the pandas formulations the metrics were first written
in (groupby rank / mean / unstack); random panels with ties, NaN, unequal and
tiny dates must give the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.evaluation import (
    per_date_ic,
    quantile_buckets,
    quantile_returns,
    rank_ic,
    top_quantile_turnover,
    within_date_ranks,
)


def _reference_rank_ic(pred, label):
    frame = pd.concat({"pred": pred, "label": label}, axis=1, join="inner").dropna()
    dates = frame.index.get_level_values(0)
    ranks = frame.groupby(dates).rank()
    out = {}
    for day, block in ranks.groupby(dates):
        if len(block) >= 3 and block["pred"].nunique() > 1 and block["label"].nunique() > 1:
            out[day] = np.corrcoef(block["pred"], block["label"])[0, 1]
    return pd.Series(out, dtype=float)


def _reference_buckets(pred, n):
    pred = pred.dropna()
    pct = pred.groupby(pred.index.get_level_values(0)).rank(method="first", pct=True)
    return np.clip(np.ceil(pct.to_numpy() * n).astype(int) - 1, 0, n - 1)


def _reference_quantile_returns(pred, label, n):
    frame = pd.concat({"pred": pred, "label": label}, axis=1, join="inner").dropna()
    keys = [pd.Index(frame.index.get_level_values(0), name="date"),
            pd.Index(_reference_buckets(frame["pred"], n), name="quantile")]
    return frame["label"].groupby(keys).mean().unstack("quantile").reindex(columns=range(n))


def _reference_turnover(pred, n):
    pred = pred.dropna()
    top = pd.Series(_reference_buckets(pred, n) == n - 1, index=pred.index)
    keys = [pd.Index(pred.index.get_level_values(0), name="date"),
            pd.Index(pred.index.get_level_values(-1), name="ticker")]
    member = top.groupby(keys).max().unstack("ticker", fill_value=False).astype(bool)
    kept = (member & member.shift(1, fill_value=False)).sum(axis=1)
    return (1.0 - kept / member.sum(axis=1).replace(0, np.nan)).iloc[1:]


def _random_panel(seed):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-01", periods=int(rng.integers(2, 12)))
    rows = [(d, f"T{t}") for d in dates for t in range(int(rng.integers(1, 15)))]
    index = pd.MultiIndex.from_tuples(rows, names=["date", "ticker"])
    pred = pd.Series(rng.integers(0, 4, len(index)).astype(float), index=index)  # many ties
    label = pd.Series(rng.normal(size=len(index)).round(1), index=index)
    pred[rng.random(len(index)) < 0.15] = np.nan
    label[rng.random(len(index)) < 0.1] = np.nan
    return pred, label.iloc[rng.permutation(len(label))]  # label in another row order


@pytest.mark.parametrize("seed", range(40))
def test_metrics_equal_the_pandas_groupby_formulations(seed):
    pred, label = _random_panel(seed)
    ours = rank_ic(pred, label)
    reference = _reference_rank_ic(pred, label)
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=1e-12, atol=1e-12)
    for n in (2, 3, 5):
        assert quantile_buckets(pred, n).tolist() == _reference_buckets(pred, n).tolist()
        pd.testing.assert_frame_equal(quantile_returns(pred, label, n),
                                      _reference_quantile_returns(pred, label, n),
                                      check_names=False, check_dtype=False,
                                      check_column_type=False, rtol=1e-12)
        np.testing.assert_allclose(top_quantile_turnover(pred, n).to_numpy(),
                                   _reference_turnover(pred, n).to_numpy(), rtol=1e-12)
    assert per_date_ic(pred, label).index.name == "date"


def test_within_date_ranks_equal_pandas_average_and_first():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, 500).astype(float)
    codes = rng.integers(0, 7, 500)
    average, first, sizes = within_date_ranks(values, codes)
    grouped = pd.Series(values).groupby(codes)
    np.testing.assert_array_equal(average, grouped.rank(method="average").to_numpy())
    np.testing.assert_array_equal(first, grouped.rank(method="first").to_numpy())
    np.testing.assert_array_equal(sizes, np.bincount(codes))


def test_within_date_ranks_with_infinite_values_and_unequal_dates():
    values = np.array([np.inf, 1.0, -np.inf, 1.0, 2.0, np.inf, 0.5, 3.0, 3.0])
    codes = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    average, first, sizes = within_date_ranks(values, codes)
    grouped = pd.Series(values).groupby(codes)
    np.testing.assert_array_equal(average, grouped.rank(method="average").to_numpy())
    np.testing.assert_array_equal(first, grouped.rank(method="first").to_numpy())
    assert sizes.tolist() == [4, 2, 3]


@pytest.mark.parametrize("sort_codes", [True, False])
def test_within_date_ranks_without_ties_sorted_or_not(sort_codes):
    rng = np.random.default_rng(5)
    values = rng.normal(size=700)  # no ties: the fast path
    codes = rng.integers(0, 9, 700)
    if sort_codes:
        codes = np.sort(codes)
    average, first, _ = within_date_ranks(values, codes)
    expected = pd.Series(values).groupby(codes).rank().to_numpy()
    np.testing.assert_array_equal(average, expected)
    np.testing.assert_array_equal(first, expected)
    assert within_date_ranks(values, codes, first=False)[1] is None
