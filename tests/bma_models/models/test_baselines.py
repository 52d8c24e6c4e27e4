"""The run's baselines: price scores at the run's lag, and the comparison table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.baselines import (
    BASELINE_COLUMNS,
    baseline_report,
    baseline_scores,
    describe_verdict,
)
from bma_models.data.demo import demo_market
from bma_models.errors import SettingsError
from bma_models.evaluation import (
    newey_west_lags,
    newey_west_tstat,
    paired_difference,
    rank_ic,
)


@pytest.fixture(scope="module")
def market():
    return demo_market(n_tickers=30, n_sessions=140, seed=11)


def _per_ticker_reference(bars, lag):
    # independent formulation: each ticker's own rows reindexed to the market's sessions
    sessions = pd.DatetimeIndex(sorted(bars["date"].unique()))
    out = []
    for ticker, rows in bars.groupby("ticker"):
        close = rows.set_index("date")["close"].reindex(sessions)
        ret = close / close.shift(1) - 1
        frame = pd.DataFrame({
            "reversal_5": -(close / close.shift(5) - 1),
            "momentum_20": close / close.shift(20) - 1,
            "low_vol_60": -ret.rolling(60).std(ddof=1),
        }).shift(lag)
        frame["ticker"] = ticker
        out.append(frame.loc[rows["date"].to_numpy()])
    ref = pd.concat(out).rename_axis("date").reset_index().set_index(["date", "ticker"])
    return ref.sort_index()


@pytest.mark.parametrize("lag", [0, 1, 4])
def test_price_baselines_equal_a_per_ticker_computation_at_the_runs_lag(market, lag):
    scores = baseline_scores(market.bars, lag).sort_index()
    expected = _per_ticker_reference(market.bars, lag)
    pd.testing.assert_frame_equal(scores.reindex(expected.index), expected, rtol=1e-10,
                                  check_names=False)
    # every bar has a row; warm-up rows are NaN, later rows are not (halts aside)
    assert len(scores) == len(market.bars)
    assert scores["low_vol_60"].notna().sum() > 0.4 * len(scores)


def test_price_baselines_never_see_closes_after_t_minus_lag(market):
    lag, cut = 2, market.dates[100]
    later = market.bars["date"] > market.dates[100 - lag]
    shocked = market.bars.copy()
    shocked.loc[later, "close"] *= np.random.default_rng(0).uniform(0.5, 2.0, later.sum())
    before = baseline_scores(market.bars, lag)
    after = baseline_scores(shocked, lag)
    upto = before.index.get_level_values("date") <= cut
    pd.testing.assert_frame_equal(before[upto], after[upto])
    assert not before[~upto].equals(after[~upto])


def test_baseline_scores_reject_a_bad_lag(market):
    with pytest.raises(SettingsError):
        baseline_scores(market.bars, -1)


def _scores_frame(seed=0, n_dates=300, n_names=50):
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2022-01-03", periods=n_dates), [f"N{i}" for i in range(n_names)]],
        names=["date", "ticker"])
    label = pd.Series(rng.standard_normal(len(index)), index=index)
    strong = label + 3.0 * rng.standard_normal(len(index))
    weak = label + 12.0 * rng.standard_normal(len(index))
    noise = pd.Series(rng.standard_normal(len(index)), index=index)
    return label, strong, weak, noise


def test_report_says_fused_beats_every_baseline_with_paired_t_stats():
    label, strong, weak, noise = _scores_frame()
    frame = pd.DataFrame({"ridge": weak, "lightgbm": noise, "stack": weak, "fused": strong,
                          BASELINE_COLUMNS["reversal_5"]: noise,
                          BASELINE_COLUMNS["lightgbm_plain"]: weak})
    report = baseline_report(frame, label, horizon=5, members=["ridge", "lightgbm"])
    assert report["beats_all_baselines"] and report["beaten_by"] == []
    assert report["best_member"] == "ridge"
    assert list(report["scores"]) == ["fused", "stack", "best_member", "reversal_5",
                                      "lightgbm_plain"]
    lags = newey_west_lags(300, 5)
    assert report["nw_lags"] == lags
    fused_ic, plain_ic = rank_ic(strong, label), rank_ic(weak, label)
    row = report["scores"]["lightgbm_plain"]
    assert row["rank_ic"] == pytest.approx(plain_ic.mean())
    assert row["nw_t"] == pytest.approx(newey_west_tstat(plain_ic.to_numpy(), lags))
    assert row["vs_reference"]["mean"] == pytest.approx((fused_ic - plain_ic).mean())
    assert row["vs_reference"]["nw_t"] > 5
    assert report["scores"]["fused"]["vs_reference"] is None


def test_report_names_the_baselines_that_the_fused_score_does_not_beat():
    label, strong, weak, noise = _scores_frame(seed=1)
    frame = pd.DataFrame({"ridge": weak, "stack": weak, "fused": weak,
                          BASELINE_COLUMNS["reversal_5"]: strong,
                          BASELINE_COLUMNS["momentum_20"]: noise})
    report = baseline_report(frame, label, horizon=5, members=["ridge"])
    assert not report["beats_all_baselines"]
    assert report["beaten_by"] == ["reversal_5"]
    assert report["scores"]["reversal_5"]["vs_reference"]["nw_t"] < -5


def test_by_year_repeats_the_comparison_in_every_calendar_year():
    label, strong, weak, noise = _scores_frame(seed=2, n_dates=600)
    # fused is the strong score in the first year only, noise afterwards
    first_year = label.index.get_level_values("date").year == 2022
    fused = strong.where(first_year, noise)
    frame = pd.DataFrame({"ridge": weak, "stack": weak, "fused": fused,
                          BASELINE_COLUMNS["lightgbm_plain"]: weak})
    report = baseline_report(frame, label, horizon=5, members=["ridge"])
    years = [entry["year"] for entry in report["by_year"]]
    assert years == [2022, 2023, 2024]
    fused_ic, plain_ic = rank_ic(fused, label), rank_ic(weak, label)
    for entry in report["by_year"]:
        in_year = fused_ic.index.year == entry["year"]
        assert entry["n_dates"] == in_year.sum()
        assert entry["rank_ic"]["fused"] == pytest.approx(fused_ic[in_year].mean())
        assert entry["rank_ic"]["lightgbm_plain"] == pytest.approx(plain_ic[in_year].mean())
        expected = paired_difference(fused_ic[in_year], plain_ic[in_year],
                                     newey_west_lags(int(in_year.sum()), 5))
        assert entry["vs_reference"]["lightgbm_plain"] == pytest.approx(expected)
    # pooled, fused beats the plain score; by year only in 2022
    assert report["scores"]["lightgbm_plain"]["vs_reference"]["mean"] > 0
    assert report["years_won"]["lightgbm_plain"] == {"won": 1, "years": 3}
    assert "beats lightgbm_plain in 1 of 3 years" in describe_verdict(report)
