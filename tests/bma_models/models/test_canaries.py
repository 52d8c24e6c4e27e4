"""Leakage canaries: a lagged label must not predict, a shuffled label must not be learned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from bma_models.cv import PurgedGroupTimeSeriesSplit
from bma_models.errors import LeakageError
from bma_models.models.canaries import (
    future_label_canary,
    shuffle_within_dates,
    shuffled_label_canary,
)


@pytest.fixture(scope="module")
def horizon_panel():
    """iid daily returns; label = sum of the next 5 returns (T+1..T+5) per ticker."""
    rng = np.random.default_rng(7)
    n_dates, n_tickers, horizon = 160, 50, 5
    returns = rng.standard_normal((n_dates, n_tickers)) * 0.01
    forward = np.full_like(returns, np.nan)
    for t in range(n_dates - horizon):
        forward[t] = returns[t + 1 : t + 1 + horizon].sum(axis=0)
    dates = pd.bdate_range("2023-01-02", periods=n_dates)
    index = pd.MultiIndex.from_product([dates, [f"T{i}" for i in range(n_tickers)]],
                                       names=["date", "ticker"])
    y = pd.Series(forward.ravel(), index=index, name="label").dropna()
    X = pd.DataFrame({"noise": rng.standard_normal(len(y))}, index=y.index)
    return X, y, horizon


CANARY_CV = PurgedGroupTimeSeriesSplit(n_splits=4, gap=5, embargo=2)


def test_future_label_canary_passes_with_the_correct_lag(horizon_panel):
    X, y, horizon = horizon_panel
    result = future_label_canary(X, y, CANARY_CV, horizon=horizon, backend="sequential")
    assert result["passed"] and abs(result["rank_ic"]) < 0.1


@pytest.mark.parametrize("lag_sessions", [0, 4])
def test_future_label_canary_fails_loudly_when_the_lag_is_short(horizon_panel, lag_sessions):
    X, y, horizon = horizon_panel

    def short_lag(label):
        return label.groupby(level="ticker").shift(lag_sessions)

    with pytest.raises(LeakageError, match="lagged copy of the label reached an OOS rank IC"):
        future_label_canary(X, y, CANARY_CV, horizon=horizon, lag=short_lag,
                            backend="sequential")


class LabelMemory(RegressorMixin, BaseEstimator):
    """Predicts the training label of a row it has seen, else 0 (a leak if rows repeat)."""

    def fit(self, X, y):
        self.labels_ = dict(zip(X.index, y))
        return self

    def predict(self, X):
        return np.array([self.labels_.get(key, 0.0) for key in X.index])


class OverlappingSplit:
    """A broken splitter whose training set contains the test rows."""

    def split(self, X, y=None, groups=None):
        rows = np.arange(len(X))
        yield rows, rows[len(X) // 2 :]


def test_shuffled_label_canary_passes_honest_models(panel):
    X, y = panel
    report = shuffled_label_canary({"ridge": Ridge()}, X, y, CANARY_CV, backend="sequential")
    assert report["ridge"]["passed"]
    assert abs(report["ridge"]["rank_ic"]) <= report["ridge"]["threshold"]


def test_shuffled_label_canary_catches_a_split_that_shows_models_their_rows(panel):
    X, y = panel
    with pytest.raises(LeakageError, match="shuffled label"):
        shuffled_label_canary({"memory": LabelMemory()}, X, y, OverlappingSplit(),
                              backend="sequential")


def test_shuffle_within_dates_permutes_labels_only_inside_each_date(panel):
    _, y = panel
    shuffled = shuffle_within_dates(y, seed=3)
    assert shuffled.index.equals(y.index)
    assert not np.allclose(shuffled.to_numpy(), y.to_numpy())
    by_date = zip(shuffled.groupby(level="date"), y.groupby(level="date"))
    for (_, a), (_, b) in by_date:
        np.testing.assert_array_equal(np.sort(a.to_numpy()), np.sort(b.to_numpy()))
    # unsorted input: same multiset per date
    reordered = y.sample(frac=1.0, random_state=0)
    mixed = shuffle_within_dates(reordered, seed=3)
    assert mixed.index.equals(reordered.index)
    pd.testing.assert_series_equal(
        mixed.groupby(level="date").sum(), reordered.groupby(level="date").sum()
    )

