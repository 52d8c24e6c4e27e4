"""Per-date metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

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
