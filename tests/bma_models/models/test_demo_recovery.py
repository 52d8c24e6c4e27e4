"""End to end on the demo market: the stack recovers the planted signal out of sample."""

from __future__ import annotations

import pytest

from bma_models.data.demo import demo_market, planted_score
from bma_models.dataset import build_dataset
from bma_models.evaluation import evaluate, rank_ic
from bma_models.models import ICWeightedAverage, StackedModel, make_first_layer

#: Documented band of the stack's mean OOS rank IC on demo_market(200, 750, seed=42).
#: The planted score itself reaches ~0.04 on the same rows; a first layer trained on
#: 2-3 years of 200 names recovers a fraction of it.
DEMO_STACK_RANK_IC_BAND = (0.005, 0.06)


@pytest.mark.slow
def test_stack_recovers_the_planted_signal_on_a_small_demo_market():
    market = demo_market(n_tickers=200, n_sessions=750, seed=42)
    X, y, relevance, _ = build_dataset(market.bars, market.reference, horizon=5)
    model = StackedModel(
        make_first_layer(["ridge", "lightgbm", "lgbm_ranker"], seed=0),
        ICWeightedAverage(),
        label_horizon=5,
        n_jobs=2,
    ).fit(X, y, fit_params={"lgbm_ranker": {"relevance": relevance}})
    assert model.canary_["passed"]
    report = evaluate(model.oos_predictions(), y)
    low, high = DEMO_STACK_RANK_IC_BAND
    assert low < report["stack"]["rank_ic_mean"] < high
    planted = planted_score(market).stack().reindex(model.stack_oof_.index)
    assert report["stack"]["rank_ic_mean"] < rank_ic(planted, y).mean()
