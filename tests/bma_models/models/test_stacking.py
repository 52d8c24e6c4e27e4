"""Meta-learners and the StackedModel walk-forward."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, RegressorMixin

from bma_models.cv import PurgedGroupTimeSeriesSplit
from bma_models.errors import DataError, LeakageError, SettingsError
from bma_models.evaluation import evaluate, rank_ic
from bma_models.models import (
    ICWeightedAverage,
    NonNegativeRidgeStack,
    StackedModel,
    ValidatedStack,
    cross_sectional_zscore,
    make_first_layer,
)

CV = PurgedGroupTimeSeriesSplit(n_splits=4, gap=5, embargo=3)
META_CV = PurgedGroupTimeSeriesSplit(n_splits=3, gap=10, embargo=5)


def _small_first_layer():
    return make_first_layer(
        ["ridge", "lightgbm", "lgbm_ranker"],
        params={"lightgbm": {"n_estimators": 20}, "lgbm_ranker": {"n_estimators": 20}},
        seed=0,
    )


@pytest.fixture(scope="module")
def fitted(panel):
    X, y = panel
    model = StackedModel(
        _small_first_layer(), NonNegativeRidgeStack(), CV, META_CV, label_horizon=5,
        backend="loky", n_jobs=2,
    )
    return model.fit(X, y)


def test_nonnegative_ridge_matches_a_bounded_solver_and_zeroes_a_harmful_model():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 3))
    y = 2.0 * X[:, 0] - 1.0 * X[:, 1] + 0.5 * X[:, 2] + 0.3 * rng.standard_normal(400) + 4.0
    model = NonNegativeRidgeStack(alpha=5.0).fit(X, y)
    Xc, yc = X - X.mean(axis=0), y - y.mean()

    def objective(w):
        return np.sum((yc - Xc @ w) ** 2) + 5.0 * np.sum(w**2)

    reference = minimize(objective, np.ones(3), bounds=[(0, None)] * 3, method="L-BFGS-B").x
    np.testing.assert_allclose(model.coef_, reference, atol=1e-4)
    assert model.coef_[1] == 0.0 and model.coef_[0] > 1.5
    assert model.weights_.sum() == pytest.approx(1.0)
    assert model.intercept_ == pytest.approx(y.mean() - X.mean(axis=0) @ model.coef_)
    np.testing.assert_allclose(model.predict(X), X @ model.coef_ + model.intercept_)


def test_nonnegative_ridge_with_only_harmful_models_predicts_a_constant():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 2))
    model = NonNegativeRidgeStack().fit(X, -X.sum(axis=1))
    assert not model.coef_.any() and not model.weights_.any()
    assert np.ptp(model.predict(X)) == 0.0


def test_ic_weighted_average_weights_are_prior_times_exp_ic_over_temperature(panel):
    X, y = panel
    frame = X[["f0", "f1", "f2"]]
    model = ICWeightedAverage(temperature=0.05, prior=[1.0, 1.0, 2.0]).fit(frame, y)
    ics = np.array([rank_ic(frame[c], y).mean() for c in frame])
    expected = np.array([1.0, 1.0, 2.0]) * np.exp(ics / 0.05)
    np.testing.assert_allclose(model.mean_ic_, ics, atol=1e-12)
    np.testing.assert_allclose(model.weights_, expected / expected.sum())
    assert model.weights_[0] > 0.99  # f0 carries the planted signal
    np.testing.assert_allclose(model.predict(frame), frame.to_numpy() @ model.weights_)


def test_ic_weighted_average_respects_a_zero_prior_and_rejects_bad_settings(panel):
    X, y = panel
    model = ICWeightedAverage(prior=[0.0, 1.0]).fit(X[["f0", "f1"]], y)
    assert model.weights_.tolist() == [0.0, 1.0]
    with pytest.raises(SettingsError, match="temperature"):
        ICWeightedAverage(temperature=0.0).fit(X, y)
    with pytest.raises(SettingsError, match="prior must hold 5"):
        ICWeightedAverage(prior=[1.0]).fit(X, y)


def test_cross_sectional_zscore_standardises_each_date_and_zeroes_constants(panel):
    X, _ = panel
    frame = X[["f0", "f1"]].copy()
    frame["flat"] = 3.0
    z = cross_sectional_zscore(frame)
    by_date = z.groupby(level="date")
    np.testing.assert_allclose(by_date.mean()[["f0", "f1"]], 0.0, atol=1e-12)
    np.testing.assert_allclose(by_date.std(ddof=0)[["f0", "f1"]], 1.0)
    assert (z["flat"] == 0.0).all()


def test_stacked_model_exposes_oof_stack_oof_weights_and_canary(fitted, panel):
    X, y = panel
    assert list(fitted.oof_.columns) == ["ridge", "lightgbm", "lgbm_ranker", "fold"]
    assert list(fitted.stack_oof_.columns) == ["stack", "fold"]
    assert fitted.stack_oof_.index.isin(fitted.oof_.index).all()
    assert len(fitted.stack_oof_) < len(fitted.oof_)
    assert fitted.weights_.index.tolist() == ["ridge", "lightgbm", "lgbm_ranker"]
    assert (fitted.weights_ >= 0).all() and fitted.weights_.sum() == pytest.approx(1.0)
    assert fitted.canary_["passed"] and fitted.canary_["rank_ic"] < 0.1


def test_stacked_model_recovers_the_planted_signal_out_of_sample(fitted, panel):
    # planted: y ~ 0.6 f0 - 0.4 f1 + e, corr 0.585 -> population rank IC 0.567
    X, y = panel
    report = evaluate(fitted.oos_predictions(), y)
    assert 0.45 < report["stack"]["rank_ic_mean"] < 0.62
    assert report["stack"]["long_short_mean"] > 0
    for name in ("ridge", "lightgbm", "lgbm_ranker"):
        assert report[name]["rank_ic_mean"] > 0.3


class LastTrainDate(RegressorMixin, BaseEstimator):
    """A meta-learner that predicts the last date it was trained on."""

    def fit(self, X, y):
        self.last_ = X.index.get_level_values("date").max()
        self.weights_ = np.full(X.shape[1], 1.0 / X.shape[1])
        return self

    def predict(self, X):
        return np.full(len(X), float(self.last_.value))


def test_stack_oos_predictions_are_purged_walk_forward(panel):
    X, y = panel
    model = StackedModel(make_first_layer(["ridge"]), LastTrainDate(), CV, META_CV,
                         backend="sequential").fit(X, y)
    sessions = pd.Index(X.index.get_level_values("date").unique())
    row_pos = sessions.get_indexer(model.stack_oof_.index.get_level_values("date"))
    trained_until = sessions.get_indexer(pd.to_datetime(model.stack_oof_["stack"].astype("int64")))
    assert (trained_until + META_CV.gap + META_CV.embargo < row_pos).all()


def test_predict_latest_scores_only_the_unlabelled_recommendation_date(fitted, panel):
    X, _ = panel
    latest_date = X.index.get_level_values("date").max() + pd.offsets.BDay(1)
    latest = X.xs(X.index.get_level_values("date").max(), level="date")
    latest.index = pd.MultiIndex.from_product([[latest_date], latest.index],
                                              names=["date", "ticker"])
    scores = fitted.predict_latest(pd.concat([X.iloc[-600:], latest]))
    assert scores.attrs["date"] == latest_date
    assert scores.index.tolist() == sorted(scores.index, key=lambda t: -scores[t])
    assert len(scores) == 60
    by_hand = fitted.predict(latest).droplevel("date")
    pd.testing.assert_series_equal(scores, by_hand.loc[scores.index])
    first = fitted.predict_first_layer(latest)
    expected = fitted.meta_.predict(cross_sectional_zscore(first))
    np.testing.assert_allclose(fitted.predict(latest), expected)


def test_stacked_model_rejects_a_meta_split_that_is_not_wider(panel):
    X, y = panel
    model = StackedModel(make_first_layer(["ridge"]), cv=CV, meta_cv=CV, backend="sequential")
    with pytest.raises(SettingsError, match="meta_cv .* must be wider"):
        model.fit(X, y)


def test_stacked_model_refuses_a_purge_shorter_than_the_label_horizon(panel):
    X, y = panel
    model = StackedModel(make_first_layer(["ridge"]), cv=CV, meta_cv=META_CV, label_horizon=10,
                         backend="sequential")
    with pytest.raises(LeakageError, match="gap of 5 sessions is shorter"):
        model.fit(X, y)


def test_stacked_model_requires_finite_labels_on_the_same_index(panel):
    X, y = panel
    model = StackedModel(make_first_layer(["ridge"]), cv=CV, meta_cv=META_CV)
    broken = y.copy()
    broken.iloc[5] = np.nan
    with pytest.raises(DataError, match="1 non-finite labels"):
        model.fit(X, broken)
    with pytest.raises(DataError, match="exactly X's index"):
        model.fit(X, y.iloc[1:])
    with pytest.raises(DataError, match=r"\(date, ticker\) MultiIndex"):
        model.fit(X.reset_index(drop=True), y.reset_index(drop=True))


class MeanLabel(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        self.spread_ = float(np.std(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.spread_)


def test_models_train_on_the_per_date_zscored_label_unless_raw_is_asked(panel):
    X, y = panel
    shifted = y + np.repeat(np.arange(200) * 0.1, 60)  # a large date-wide move
    zscored = StackedModel({"m": MeanLabel()}, cv=CV, meta_cv=META_CV,
                           backend="sequential").fit(X, shifted)
    assert zscored.first_layer_["m"].mean_ == pytest.approx(0.0, abs=1e-12)
    assert zscored.first_layer_["m"].spread_ == pytest.approx(1.0)
    raw = StackedModel({"m": MeanLabel()}, cv=CV, meta_cv=META_CV, target="raw",
                       backend="sequential").fit(X, shifted)
    assert raw.first_layer_["m"].mean_ == pytest.approx(shifted.mean())
    with pytest.raises(SettingsError, match="target must be"):
        StackedModel({"m": MeanLabel()}, cv=CV, meta_cv=META_CV, target="rank").fit(X, y)


def test_reference_models_walk_forward_beside_the_first_layer_but_are_not_stacked(panel):
    from sklearn.linear_model import Ridge

    from bma_models.models import oof_predictions

    X, y = panel
    model = StackedModel(make_first_layer(["ridge"]), cv=CV, meta_cv=META_CV, label_horizon=5,
                         backend="sequential",
                         reference_models={"plain": Ridge(alpha=10.0)}).fit(X, y)
    assert list(model.oof_.columns) == ["ridge", "fold"]
    assert list(model.reference_oof_.columns) == ["plain"]
    assert model.weights_.index.tolist() == ["ridge"] and "plain" not in model.first_layer_
    # the same OOF as the reference model walked alone on the training target (z-scored)
    target = cross_sectional_zscore(y.to_frame())["label"]
    alone = oof_predictions({"plain": Ridge(alpha=10.0)}, X, target, CV, backend="sequential")
    np.testing.assert_allclose(model.reference_oof_["plain"], alone["plain"], rtol=1e-10)
    with pytest.raises(SettingsError, match="first-layer names"):
        StackedModel(make_first_layer(["ridge"]), cv=CV, meta_cv=META_CV,
                     reference_models={"ridge": Ridge()}).fit(X, y)


def test_both_canaries_run_on_every_fit_and_are_reported(fitted):
    assert set(fitted.canaries_) == {"future_label", "shuffled_label"}
    assert fitted.canaries_["future_label"] is fitted.canary_
    shuffled = fitted.canaries_["shuffled_label"]
    assert shuffled["model"] == "ridge" and shuffled["passed"]
    assert abs(shuffled["rank_ic"]) <= shuffled["threshold"]


def _members(seed, n_dates=400, n_names=60, noise=(3.0, 3.0, 3.0)):
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2021-01-04", periods=n_dates), [f"N{i}" for i in range(n_names)]],
        names=["date", "ticker"])
    y = pd.Series(rng.standard_normal(len(index)), index=index)
    X = pd.DataFrame({f"m{j}": y + s * rng.standard_normal(len(index))
                      for j, s in enumerate(noise)}, index=index)
    return cross_sectional_zscore(X), y


def test_validated_stack_keeps_the_equal_average_of_comparable_members():
    X, y = _members(0)
    stack = ValidatedStack().fit(X, y)
    assert stack.choice_ == "equal"
    np.testing.assert_allclose(stack.weights_, 1 / 3)
    np.testing.assert_allclose(stack.predict(X), X.mean(axis=1))
    # the average of three equally noisy members beats each of them
    assert stack.candidate_ic_["equal"] > max(stack.candidate_ic_[f"member:{j}"]
                                              for j in range(3))


def test_validated_stack_takes_a_member_that_is_proven_better_than_the_average():
    X, y = _members(1, noise=(1.0, 30.0, 30.0))  # one good member, two nearly pure noise
    stack = ValidatedStack().fit(X, y)
    # member 0 alone, or the IC-softmax weights that put (almost) all weight on it
    assert stack.choice_ in ("member:0", "ic_weighted")
    np.testing.assert_allclose(stack.weights_, [1.0, 0.0, 0.0], atol=1e-6)
    assert stack.candidate_t_["member:0"] >= 2.0
    # it is never worse than its best member on the rows it was fitted on
    assert stack.candidate_ic_[stack.choice_] == max(stack.candidate_ic_.values())
    with pytest.raises(SettingsError, match="min_t"):
        ValidatedStack(min_t=-1).fit(X, y)


def test_validated_stack_without_a_bar_follows_the_best_training_ic():
    X, y = _members(2, noise=(2.5, 3.0, 3.5))
    stack = ValidatedStack(min_t=0.0).fit(X, y)
    assert stack.choice_ == max(stack.candidate_ic_, key=stack.candidate_ic_.get)
