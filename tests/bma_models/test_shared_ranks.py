"""Work a run shares between stages gives the numbers each stage computed on its own.

The speed changes of #17 item 6 rank each column once and reuse the ranks
(factor ICs and fusion; metrics, baseline table and charts; the validated
stack's candidates) and rank the ranker's relevance without a pandas groupby.
Every reuse must give exactly the figures of the unshared formulation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.errors import DataError
from bma_models.evaluation import (
    DateRanks,
    PerDateScores,
    long_short_spread,
    per_date_ic,
    quantile_returns,
    rank_ic,
    top_quantile_turnover,
)
from bma_models.models import ICWeightedAverage, ValidatedStack, relevance_from_label
from bma_models.pipeline import factor_rank_ics
from bma_models.regime import RegimeFusion


def _frame(seed: int, n_dates: int = 12, n_names: int = 15, columns=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-01", periods=n_dates)
    index = pd.MultiIndex.from_product([dates, [f"T{i}" for i in range(n_names)]],
                                       names=["date", "ticker"])
    values = rng.integers(0, 5, (len(index), len(columns))).astype(float)  # many ties
    frame = pd.DataFrame(values, index=index, columns=list(columns))
    label = pd.Series(rng.normal(size=len(index)).round(1), index=index, name="label")
    return frame, label


@pytest.mark.parametrize("seed", range(5))
def test_relevance_equals_the_pandas_groupby_percentile_buckets(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, 300).astype(float)
    dates = rng.choice(pd.bdate_range("2024-01-01", periods=9).to_numpy(), 300)  # unsorted
    pct = pd.Series(y).groupby(dates).rank(pct=True).to_numpy()
    for n_levels in (2, 3, 5):
        expected = np.clip(np.ceil(pct * n_levels).astype(np.int64) - 1, 0, n_levels - 1)
        assert relevance_from_label(y, dates, n_levels).tolist() == expected.tolist()


def test_relevance_refuses_a_missing_label():
    with pytest.raises(DataError, match="without NaN"):
        relevance_from_label(np.array([1.0, np.nan]), np.zeros(2), 2)


@pytest.mark.parametrize("seed", range(5))
def test_date_ranks_percentiles_equal_the_groupby_of_the_signed_frame(seed):
    frame, _ = _frame(seed)
    ranks = DateRanks.of(frame)
    dates = frame.index.get_level_values(0).unique()
    rows = frame.index[frame.index.get_level_values(0).isin(dates[3:8])]
    rows = rows[np.random.default_rng(seed).permutation(len(rows))]  # another row order
    signs = {"b": -1}
    signed = frame * pd.Series({"a": 1.0, "b": -1.0, "c": 1.0})
    expected = signed.loc[rows].groupby(level=0).rank(pct=True)
    pd.testing.assert_frame_equal(ranks.percentiles(rows, signs), expected, rtol=0, atol=0)
    with pytest.raises(DataError, match="every row of each date"):
        ranks.percentiles(rows[1:], signs)


def test_fusion_with_shared_factor_ranks_equals_fusion_without():
    frame, label = _frame(7)
    oos = frame.index[frame.index.get_level_values(0) >= frame.index.levels[0][4]]
    pred = label.loc[oos].rename("stack")
    states = pd.Series(["Bull", "Bear", "Normal"] * 4, index=frame.index.levels[0])
    fusion = RegimeFusion(factor_categories={"a": "momentum", "b": "reversion",
                                             "c": "volatility"},
                          factor_signs={"a": 1, "b": -1, "c": 1})
    alone = fusion.fuse(pred, frame, states)
    shared = fusion.fuse(pred, frame, states, factor_ranks=DateRanks.of(frame))
    pd.testing.assert_series_equal(shared, alone, rtol=0, atol=0)


def test_factor_rank_ics_with_shared_ranks_equal_the_unshared_table():
    frame, label = _frame(3)
    frame.iloc[5, 2] = np.nan  # a column with a gap is scored by rank_ic itself
    complete = frame.drop(columns="c")
    pd.testing.assert_frame_equal(
        factor_rank_ics(complete, label, DateRanks.of(complete)),
        factor_rank_ics(complete, label), rtol=0, atol=0)
    assert factor_rank_ics(frame, label)["c"].notna().any()


def test_one_per_date_scores_for_all_columns_equals_one_per_column():
    frame, label = _frame(11)
    rng = np.random.default_rng(11)
    frame = frame.mask(rng.random(frame.shape) < 0.1)  # each column misses other rows
    label = label.mask(rng.random(len(label)) < 0.05)
    shared = PerDateScores(frame, label)
    for column in frame.columns:
        pred = frame[column]
        pd.testing.assert_series_equal(shared.rank_ic(column), rank_ic(pred, label),
                                       rtol=0, atol=0)
        pd.testing.assert_series_equal(shared.ic(column), per_date_ic(pred, label),
                                       rtol=0, atol=0)
        pd.testing.assert_frame_equal(shared.quantile_returns(column, 3),
                                      quantile_returns(pred, label, 3), rtol=0, atol=0)
        pd.testing.assert_series_equal(shared.long_short_spread(column),
                                       long_short_spread(pred, label), rtol=0, atol=0)
        pd.testing.assert_series_equal(shared.top_quantile_turnover(column),
                                       top_quantile_turnover(pred), rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(3))
def test_validated_stack_candidates_equal_their_standalone_figures(seed):
    frame, label = _frame(seed, n_dates=20)
    shuffled = np.random.default_rng(seed).permutation(len(frame))  # dates unsorted
    X, y = frame.iloc[shuffled], label.iloc[shuffled]
    dates = X.index.get_level_values(0)
    stack = ValidatedStack(temperature=0.05).fit(X.to_numpy(), y.to_numpy(), groups=dates)
    alone = ICWeightedAverage(temperature=0.05).fit(X.to_numpy(), y.to_numpy(), groups=dates)
    # the member ICs the stack computes once are the IC-weighted average's own ICs ...
    assert stack.ic_weighted_.tolist() == alone.weights_.tolist()
    # ... and each candidate's IC is the mean rank IC of its combination
    for name, weights in {"ic_weighted": alone.weights_,
                          **{f"member:{j}": np.eye(3)[j] for j in range(3)}}.items():
        combined = pd.Series(X.to_numpy() @ weights, index=X.index)
        assert stack.candidate_ic_[name] == pytest.approx(rank_ic(combined, y).mean(),
                                                          rel=1e-12, abs=1e-15), name
