"""Per-date metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bma_models.errors import SettingsError
from bma_models.evaluation import (
    evaluate,
    hit_rate,
    ic_summary,
    icir,
    long_short_spread,
    newey_west_lags,
    newey_west_tstat,
    paired_difference,
    per_date_ic,
    quantile_buckets,
    quantile_returns,
    rank_ic,
    top_quantile_turnover,
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


def _newey_west_reference(x, lags):
    # textbook sandwich of an OLS on a constant, written as the long-run variance matrix
    x = np.asarray(x, dtype=float)
    n = x.size
    e = x - x.mean()
    weights = np.array([1.0 if k == 0 else 1.0 - k / (lags + 1) for k in range(n)])
    lag_of = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    kernel = np.where(lag_of <= lags, weights[lag_of], 0.0)
    long_run = e @ kernel @ e / n
    return x.mean() / np.sqrt(long_run / n)


@pytest.mark.parametrize("lags", [0, 1, 5, 12])
def test_newey_west_tstat_equals_the_long_run_variance_sandwich(lags):
    x = np.random.default_rng(lags).standard_normal(300) * 0.05 + 0.01
    assert newey_west_tstat(x, lags) == pytest.approx(_newey_west_reference(x, lags), rel=1e-12)
    # lags = 0 is the iid t-statistic with the population (ddof=0) standard deviation
    if lags == 0:
        assert newey_west_tstat(x, 0) == pytest.approx(x.mean() / x.std() * np.sqrt(x.size))


def test_newey_west_tstat_corrects_the_overlap_of_multi_day_labels():
    # 5-day sums of iid daily values overlap like the ICs of 5-day labels: an MA(4) series.
    # Its naive t is inflated by about sqrt(5); Newey-West with 5 lags brings it back.
    rng = np.random.default_rng(0)
    ts_naive, ts_nw = [], []
    for _ in range(200):
        daily = rng.standard_normal(1004)
        overlapping = np.convolve(daily, np.ones(5), mode="valid")
        ts_naive.append(newey_west_tstat(overlapping, 0))
        ts_nw.append(newey_west_tstat(overlapping, 5))
    assert 1.8 < np.std(ts_naive) < 2.6          # sqrt(5) = 2.24 under the null
    assert 0.85 < np.std(ts_nw) < 1.25


def test_newey_west_lags_cover_the_horizon_and_the_automatic_rule():
    assert newey_west_lags(1000, horizon=5) == 6   # floor(4 * 10 ** (2/9)) = 6
    assert newey_west_lags(100, horizon=5) == 5
    assert newey_west_lags(100, horizon=1) == 4
    with pytest.raises(SettingsError):
        newey_west_lags(100, horizon=0)


def test_paired_difference_uses_common_dates_only():
    dates = pd.bdate_range("2024-01-01", periods=40)
    a = pd.Series(np.linspace(0.0, 0.1, 40), index=dates)
    b = pd.Series(0.02, index=dates[5:])
    result = paired_difference(a, b, lags=2)
    diff = a.iloc[5:] - 0.02
    assert result["n_dates"] == 35
    assert result["mean"] == pytest.approx(diff.mean())
    assert result["nw_t"] == pytest.approx(newey_west_tstat(diff.to_numpy(), 2))
    summary = ic_summary(a, lags=2)
    assert summary == {"mean": pytest.approx(a.mean()), "icir": pytest.approx(icir(a)),
                       "nw_t": pytest.approx(newey_west_tstat(a.to_numpy(), 2)), "n_dates": 40}
