"""Out-of-fold machinery: no prediction from a model that saw its row; alignment; backends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from bma_models.cv import PurgedGroupTimeSeriesSplit
from bma_models.errors import BMAError, DataError
from bma_models.models import fit_models, make_first_layer, oof_predictions, parallel_settings
from bma_models.models.oof import walk_forward


class RowMemory(RegressorMixin, BaseEstimator):
    """Predicts 1 for a row it was trained on, else 0, and remembers its last training date."""

    def fit(self, X, y):
        self.seen_ = set(X.index)
        self.last_train_date_ = X.index.get_level_values("date").max()
        return self

    def predict(self, X):
        return np.array([1.0 if key in self.seen_ else 0.0 for key in X.index])


class LastTrainDate(RowMemory):
    def predict(self, X):
        return np.full(len(X), self.last_train_date_.value, dtype=float)


class NeedsRelevance(RegressorMixin, BaseEstimator):
    def fit(self, X, y, relevance=None):
        assert relevance is not None and len(relevance) == len(X)
        assert relevance.index.equals(X.index)
        self.mean_ = float(np.mean(relevance))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


class Broken(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        raise ValueError("boom")


CV = PurgedGroupTimeSeriesSplit(n_splits=4, gap=3, embargo=2)


@pytest.mark.parametrize("backend", ["loky", "threading", "sequential"])
def test_no_oof_prediction_comes_from_a_model_that_saw_its_row(panel, backend):
    X, y = panel
    oof = oof_predictions({"memory": RowMemory()}, X, y, CV, backend=backend, n_jobs=2)
    assert len(oof) > 0
    assert (oof["memory"] == 0.0).all()


def test_each_oof_model_was_trained_gap_plus_embargo_sessions_before_its_rows(panel):
    X, y = panel
    oof = oof_predictions({"last": LastTrainDate()}, X, y, CV, backend="sequential")
    sessions = pd.Index(X.index.get_level_values("date").unique())
    row_pos = sessions.get_indexer(oof.index.get_level_values("date"))
    last_train_pos = sessions.get_indexer(pd.to_datetime(oof["last"].astype("int64")))
    assert (last_train_pos + CV.gap + CV.embargo < row_pos).all()
    assert (last_train_pos + CV.gap + CV.embargo + 1 == row_pos.min()).any()


def test_oof_frame_is_aligned_to_x_index_with_one_column_per_model_and_fold(panel):
    X, y = panel
    models = {"ridge": Ridge(), "memory": RowMemory()}
    oof = oof_predictions(models, X, y, CV, backend="sequential")
    assert list(oof.columns) == ["ridge", "memory", "fold"]
    assert oof.index.is_unique and oof.index.isin(X.index).all()
    assert oof.index.equals(X.index[X.index.isin(oof.index)])  # X's order
    test_rows = np.concatenate([test for _, test in CV.split(X)])
    assert len(oof) == test_rows.size
    assert sorted(oof["fold"].unique()) == [0, 1, 2, 3]
    # the ridge column equals a ridge fitted by hand on fold 2
    train, test = list(CV.split(X))[2]
    by_hand = Ridge().fit(X.iloc[train], y.iloc[train]).predict(X.iloc[test])
    np.testing.assert_allclose(oof.loc[X.index[test], "ridge"], by_hand)
    assert (oof.loc[X.index[test], "fold"] == 2).all()


def test_loky_and_sequential_backends_give_identical_predictions(panel):
    X, y = panel
    models = make_first_layer(["ridge", "lightgbm"], seed=3)
    loky = oof_predictions(models, X, y, CV, backend="loky", n_jobs=2)
    sequential = oof_predictions(models, X, y, CV, backend="sequential")
    pd.testing.assert_frame_equal(loky, sequential)


def test_walk_forward_batch_equals_separate_oof_and_final_fits(panel):
    # one parallel batch, costliest task first: the same numbers as the two separate calls
    X, y = panel
    models = make_first_layer(["ridge", "lightgbm"], seed=3)
    oof, fitted = walk_forward(models, X, y, CV, backend="loky", n_jobs=2)
    pd.testing.assert_frame_equal(oof, oof_predictions(models, X, y, CV, backend="sequential"))
    separate = fit_models(models, X, y, backend="sequential")
    assert list(fitted) == ["ridge", "lightgbm"]
    for name in models:
        np.testing.assert_array_equal(fitted[name].predict(X), separate[name].predict(X))
    memory, final = walk_forward({"memory": RowMemory()}, X, y, CV, backend="loky", n_jobs=2)
    assert (memory["memory"] == 0).all()  # no fold model saw its test rows
    assert final["memory"].seen_ == set(X.index)  # the final fit saw every row
    assert walk_forward(models, X, y, CV, backend="sequential", final_fit=False)[1] == {}


@pytest.mark.parametrize("backend", ["loky", "multiprocessing", "sequential"])
def test_on_task_counts_every_fit_locally_and_changes_no_number(panel, backend):
    # the GUI's and the CLI's training progress: one call per fold x model and final fit
    X, y = panel
    models = make_first_layer(["ridge", "lightgbm"], seed=3)
    calls: list[tuple[int, int]] = []
    oof, fitted = walk_forward(models, X, y, CV, backend=backend, n_jobs=2,
                               on_task=lambda done, total: calls.append((done, total)))
    total = CV.get_n_splits() * 2 + 2
    steps = [total] if backend == "multiprocessing" else range(1, total + 1)  # it cannot stream
    assert calls == [(done, total) for done in steps]
    quiet, _ = walk_forward(models, X, y, CV, backend="sequential")
    pd.testing.assert_frame_equal(oof, quiet)
    assert list(fitted) == ["ridge", "lightgbm"]


def test_per_row_fit_params_are_sliced_to_the_training_rows(panel):
    X, y = panel
    relevance = pd.Series(np.arange(len(X)) % 5, index=X.index)
    oof = oof_predictions(
        {"m": NeedsRelevance()}, X, y, CV, fit_params={"m": {"relevance": relevance}},
        backend="sequential",
    )
    assert oof["m"].notna().all()
    fitted = fit_models({"m": NeedsRelevance()}, X, y, fit_params={"m": {"relevance": relevance}},
                        backend="sequential")
    assert fitted["m"].mean_ == pytest.approx(relevance.mean())
    # a reordered Series is matched by label; one missing rows is an error
    reordered = relevance.iloc[::-1]
    again = oof_predictions({"m": NeedsRelevance()}, X, y, CV,
                            fit_params={"m": {"relevance": reordered}}, backend="sequential")
    pd.testing.assert_frame_equal(again, oof)
    with pytest.raises(DataError, match="'relevance' does not cover every row"):
        oof_predictions({"m": NeedsRelevance()}, X, y, CV,
                        fit_params={"m": {"relevance": relevance.iloc[1:]}}, backend="sequential")


def test_a_failing_model_is_named_with_its_fold(panel):
    X, y = panel
    with pytest.raises(BMAError, match=r"model 'bad' failed on fold 0 .*boom"):
        oof_predictions({"bad": Broken()}, X, y, CV, backend="sequential")


def test_loky_settings_cap_inner_threads_so_tasks_times_threads_fit_the_cores():
    settings = parallel_settings("loky", 2)
    assert settings["backend"] == "loky" and settings["n_jobs"] == 2
    assert settings["inner_max_num_threads"] >= 1
    assert "inner_max_num_threads" not in parallel_settings("threading", 2)


def test_a_single_job_runs_in_process_instead_of_a_one_worker_pool():
    assert parallel_settings("loky", 1) == {"backend": "sequential", "n_jobs": 1}
    assert parallel_settings("threading", 1)["backend"] == "threading"
