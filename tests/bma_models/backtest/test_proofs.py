"""The machine sees money when it is there, and only then (statistical proofs, demo market)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from bma_models.backtest import backtest_metrics
from tests.bma_models.backtest.conftest import (
    SETTINGS,
    WholeShares,
    foresight_scores,
    random_scores,
    run,
)
from tests.bma_models.backtest.test_costs import _doubled


def _excess(result):
    """Daily return minus the benchmark's times the invested fraction (cash earns nothing)."""
    daily = result.daily
    exposure = daily["gross_exposure"].shift(1)
    return (daily["equity"].pct_change() - exposure * daily["benchmark_equity"].pct_change()
            ).iloc[1:]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_random_score_loses_about_its_costs(bt_market, bt_scores, bt_result, seed):
    result = bt_result if seed == 1 else run(bt_market, random_scores(bt_market, seed))
    excess = _excess(result)
    drag = (result.daily["costs"] / result.daily["equity"].shift(1)).iloc[1:]
    se = excess.std(ddof=1) / math.sqrt(len(excess))
    assert abs(excess.mean() + drag.mean()) < 2 * se
    assert drag.mean() > 0


def test_perfect_foresight_makes_far_more_than_a_random_score(bt_market, bt_result):
    foresight = run(bt_market, foresight_scores(bt_market))
    seen, blind = backtest_metrics(foresight), backtest_metrics(bt_result)
    assert seen["annual_return"] > blind["annual_return"] + 0.5
    assert seen["sharpe"] > 3 and seen["sharpe"] > blind["sharpe"] + 2


def test_doubling_every_cost_parameter_doubles_the_cost_drag(bt_market, bt_scores, bt_result):
    settings = dataclasses.replace(SETTINGS, costs=_doubled(SETTINGS.costs))
    double = run(bt_market, bt_scores, settings)
    base, twice = backtest_metrics(bt_result), backtest_metrics(double)
    # the orders are the same but for the equity they are sized on (it shrinks by the costs)
    assert twice["cost_drag_annual"] / base["cost_drag_annual"] == pytest.approx(2.0, rel=0.02)
    assert twice["turnover_annual"] == pytest.approx(base["turnover_annual"], rel=0.02)


def test_zero_turnover_gives_zero_cost(bt_market, bt_scores):
    idle = run(bt_market, bt_scores, rule=WholeShares(min_order_value=math.inf))
    daily = idle.daily
    assert (daily["turnover"] == 0).all() and (daily["costs"] == 0).all()
    assert (daily["equity"] == idle.initial_capital).all()
    stats = backtest_metrics(idle)
    assert stats["cost_drag_annual"] == 0.0 and stats["turnover_annual"] == 0.0
    assert np.isfinite(stats["benchmark"]["sharpe"])
