"""Per-date metrics against hand computations, and the leakage canaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from bma_models.cv import PurgedGroupTimeSeriesSplit
from bma_models.errors import LeakageError
from bma_models.evaluation import (
    evaluate,
    hit_rate,
    icir,
    long_short_spread,
    per_date_ic,
    quantile_buckets,
    quantile_returns,
    rank_ic,
    top_quantile_turnover,
)
from bma_models.models.canaries import (
    future_label_canary,
    shuffle_within_dates,
    shuffled_label_canary,
)


def _series(values, dates, tickers):
    index = pd.MultiIndex.from_arrays([dates, tickers], names=["date", "ticker"])
    return pd.Series(np.asarray(values, dtype=float), index=index)


@pytest.fixture
def two_dates():
    dates = np.repeat(pd.to_datetime(["2024-01-02", "2024-01-03"]), 4)
    tickers = ["A", "B", "C", "D"] * 2
    pred = _series([1, 2, 3, 4, 4, 3, 2, 1], dates, tickers)
    label = _series([0.1, 0.5, 0.2, 0.9, 0.3, 0.4, -0.1, 0.0], dates, tickers)
    return pred, label


def test_per_date_ic_matches_scipy_on_each_date(two_dates):
    pred, label = two_dates
    pearson, spearman = per_date_ic(pred, label), rank_ic(pred, label)
    for k, day in enumerate(pearson.index):
        p, y = pred.xs(day, level="date"), label.xs(day, level="date")
        assert pearson.iloc[k] == pytest.approx(stats.pearsonr(p, y)[0])
        assert spearman.iloc[k] == pytest.approx(stats.spearmanr(p, y)[0])
    assert spearman.tolist() == pytest.approx([0.8, 0.6])


def test_ic_drops_constant_and_tiny_dates_and_unmatched_rows(two_dates):
    pred, label = two_dates
    flat = pred.copy()
    flat.iloc[:4] = 0.3  # constant prediction on the first date
    assert len(per_date_ic(flat, label)) == 1
    assert len(per_date_ic(pred.iloc[:6], label)) == 1  # date 2 has 2 names only
    assert per_date_ic(pred.iloc[:4], label).index.tolist() == [pd.Timestamp("2024-01-02")]


def test_icir_and_hit_rate_follow_their_definitions():
    ic = pd.Series([0.1, -0.05, 0.2, 0.05])
    assert icir(ic) == pytest.approx(ic.mean() / ic.std(ddof=1))
    assert hit_rate(ic) == 0.75
    assert np.isnan(icir(pd.Series([0.1])))


def test_quantiles_returns_spread_by_hand(two_dates):
    pred, label = two_dates
    buckets = quantile_buckets(pred, 2)
    assert buckets.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    table = quantile_returns(pred, label, 2)
    assert table.loc[pd.Timestamp("2024-01-02")].tolist() == pytest.approx([0.3, 0.55])
    assert table.loc[pd.Timestamp("2024-01-03")].tolist() == pytest.approx([-0.05, 0.35])
    assert long_short_spread(pred, label, 2).tolist() == pytest.approx([0.25, 0.4])


def test_top_quantile_turnover_by_hand():
    dates = np.repeat(pd.bdate_range("2024-01-01", periods=3), 4)
    tickers = ["A", "B", "C", "D"] * 3
    # top half: {C, D}, then {B, D}, then {B, D}
    pred = _series([1, 2, 3, 4, 1, 3, 2, 4, 0, 5, 1, 9], dates, tickers)
    assert top_quantile_turnover(pred, 2).tolist() == pytest.approx([0.5, 0.0])


def test_evaluate_reports_every_metric_per_model_and_fold(two_dates):
    pred, label = two_dates
    frame = pd.DataFrame({"good": pred, "bad": -pred, "fold": [0] * 4 + [1] * 4})
    report = evaluate(frame, label, n_quantiles=2)
    assert set(report) == {"good", "bad"}
    good = report["good"]
    assert good["rank_ic_mean"] == pytest.approx(0.7)
    assert good["rank_ic_by_fold"] == pytest.approx({0: 0.8, 1: 0.6})
    assert good["hit_rate"] == 1.0
    assert good["quantile_mean_returns"] == pytest.approx({0: 0.125, 1: 0.45})
    assert good["long_short_mean"] == pytest.approx(0.325)
    assert good["n_dates"] == 2
    assert report["bad"]["rank_ic_mean"] == pytest.approx(-0.7)
    assert report["bad"]["hit_rate"] == 0.0


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
