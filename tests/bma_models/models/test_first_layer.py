"""First-layer factory, learning-to-rank wrappers and scikit-learn estimator checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from bma_models.errors import DataError, SettingsError
from bma_models.evaluation import rank_ic
from bma_models.models import (
    DEFAULT_ENABLED,
    DEFAULT_PARAMS,
    MODEL_NAMES,
    ICWeightedAverage,
    LightGBMRanker,
    NonNegativeRidgeStack,
    XGBoostRanker,
    make_first_layer,
    relevance_from_label,
    threads_per_model,
)
from bma_models.models.stacking import ValidatedStack


@parametrize_with_checks(
    [
        LightGBMRanker(n_estimators=3, min_child_samples=1, random_state=0),
        XGBoostRanker(n_estimators=3, random_state=0),
        NonNegativeRidgeStack(),
        ICWeightedAverage(),
        ValidatedStack(),
    ],
)
def test_estimators_pass_sklearn_checks(estimator, check):
    check(estimator)


def test_factory_builds_every_known_model_seeded_and_thread_limited():
    assert make_first_layer().keys() == set(DEFAULT_ENABLED)
    models = make_first_layer(MODEL_NAMES, seed=7, n_jobs_per_model=2)
    assert list(models) == list(MODEL_NAMES)
    for name, model in models.items():
        params = model.get_params()
        if "random_state" in params:
            assert params["random_state"] == 7, name
        if "n_jobs" in params:
            assert params["n_jobs"] == 2, name
    assert models["xgboost"].get_params()["tree_method"] == "hist"
    assert models["xgb_ranker"].objective == "rank:pairwise"


def test_factory_merges_overrides_onto_defaults():
    models = make_first_layer(["ridge", "lightgbm"], params={"lightgbm": {"num_leaves": 7}})
    assert list(models) == ["ridge", "lightgbm"]
    assert models["lightgbm"].get_params()["num_leaves"] == 7
    assert models["lightgbm"].get_params()["learning_rate"] == \
        DEFAULT_PARAMS["lightgbm"]["learning_rate"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"enabled": ["ridge", "svm"]}, r"unknown first-layer model\(s\) \['svm'\]"),
        ({"enabled": ["ridge"], "params": {"lightgbm": {}}}, "not enabled"),
        ({"enabled": ["ridge"], "params": {"ridge": {"depth": 3}}}, "bad parameter .*'ridge'"),
        ({"n_jobs_per_model": 0}, "n_jobs_per_model must be >= 1"),
    ],
)
def test_factory_rejects_bad_settings(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        make_first_layer(**kwargs)


@pytest.mark.parametrize(
    "tasks, cores, expected", [(1, 2, 2), (2, 2, 1), (4, 2, 1), (2, 8, 4), (3, 8, 2)]
)
def test_threads_per_model_never_oversubscribes(tasks, cores, expected):
    threads = threads_per_model(tasks, cores)
    assert threads == expected
    assert tasks * threads <= cores or threads == 1


def test_relevance_is_the_per_date_quantile_bucket():
    y = np.array([0.1, 0.3, 0.2, 0.4, 5.0, 1.0, 3.0, 2.0])
    dates = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert relevance_from_label(y, dates, n_levels=2).tolist() == [0, 1, 0, 1, 1, 0, 1, 0]
    assert relevance_from_label(y, dates, n_levels=4).tolist() == [0, 2, 1, 3, 3, 0, 2, 1]
    # ties share the average rank: pct 2.5 / 4 -> bucket ceil(2.5) - 1 = 2
    assert relevance_from_label(np.ones(4), np.zeros(4), 4).tolist() == [2, 2, 2, 2]


RANKERS = [
    LightGBMRanker(n_estimators=30, random_state=0),
    XGBoostRanker(n_estimators=30, random_state=0),
]


@pytest.mark.parametrize("ranker", RANKERS)
def test_rankers_learn_the_planted_order_from_date_groups(panel, ranker):
    X, y = panel
    train = X.index.get_level_values("date") < X.index.get_level_values("date")[6000]
    model = clone(ranker).fit(X[train], y[train])
    assert model.group_source_ == "index"
    assert model.n_groups_ == 100
    scores = pd.Series(model.predict(X[~train]), index=X.index[~train])
    assert rank_ic(scores, y[~train]).mean() > 0.15
    assert model.score(X[~train], y[~train]) == pytest.approx(rank_ic(scores, y[~train]).mean())


@pytest.mark.parametrize("ranker", RANKERS)
def test_ranker_fit_does_not_depend_on_row_order(panel, ranker):
    X, y = panel
    X, y = X.iloc[:1200], y.iloc[:1200]
    shuffled = np.random.default_rng(0).permutation(len(X))
    a = clone(ranker).fit(X, y).predict(X)
    b = clone(ranker).fit(X.iloc[shuffled], y.iloc[shuffled]).predict(X)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_ranker_uses_given_relevance_and_rejects_bad_relevance(panel):
    X, y = panel
    X, y = X.iloc[:3000], y.iloc[:3000]
    inverted = 4 - relevance_from_label(y, X.index.get_level_values("date"), 5)
    model = LightGBMRanker(n_estimators=30, random_state=0).fit(X, y, relevance=inverted)
    scores = pd.Series(model.predict(X), index=X.index)
    assert rank_ic(scores, y).mean() < -0.15
    with pytest.raises(DataError, match="relevance"):
        LightGBMRanker().fit(X, y, relevance=-np.ones(len(X)))


def test_xgboost_ranker_rejects_an_unknown_objective(panel):
    X, y = panel
    with pytest.raises(SettingsError, match="rank:pairwise"):
        XGBoostRanker(objective="reg:squarederror").fit(X.iloc[:600], y.iloc[:600])
