"""Out-of-fold predictions and parallel fitting through joblib.

Each (model, fold) pair is one joblib task. The backend is a parameter
(``"loky"`` processes by default, ``"threading"``, ``"sequential"``, or
``"dask"`` once a ``distributed.Client`` exists), so a cluster can take over
without touching the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone

from bma_models.cv import date_groups
from bma_models.errors import BMAError, DataError
from bma_models.models.first_layer import threads_per_model

logger = logging.getLogger(__name__)

__all__ = ["fit_models", "oof_predictions", "parallel_settings", "walk_forward"]

#: Fold number of a final fit on all rows in :func:`walk_forward`'s task list.
FINAL = -1


def parallel_settings(backend: str, n_jobs: int) -> dict:
    """Keyword arguments for :func:`joblib.parallel_config`.

    For ``loky`` the workers' BLAS/OpenMP pools are capped with
    ``inner_max_num_threads`` so ``n_jobs * threads <= cores``.
    """
    if int(n_jobs) == 1 and backend in ("loky", "multiprocessing", "dask"):
        # One worker process buys nothing but pickling, and a loky pool created
        # with other thread limits than the previous call forces the reusable
        # executor to shut down and respawn (slow, and the path where loky's
        # rare shutdown deadlocks live). Run in-process instead (on a Dask
        # cluster too: one task at a time over the network is pure overhead).
        return {"backend": "sequential", "n_jobs": 1}
    settings = {"backend": backend, "n_jobs": int(n_jobs)}
    if backend == "loky":
        settings["inner_max_num_threads"] = threads_per_model(n_jobs)
    return settings


def _take(value, rows: np.ndarray):
    if isinstance(value, (pd.Series, pd.DataFrame)):
        return value.iloc[rows]
    return np.asarray(value)[rows]


def _aligned_fit_params(fit_params: Mapping, X) -> dict:
    # pandas per-row params are matched to X by label, so a reordered Series cannot misalign
    aligned = {}
    for key, value in fit_params.items():
        if isinstance(value, (pd.Series, pd.DataFrame)) and not value.index.equals(X.index):
            value = value.reindex(X.index)
            if value.isna().to_numpy().any():
                raise DataError(f"fit parameter {key!r} does not cover every row of X")
        aligned[key] = value
    return aligned


def _slice_fit_params(fit_params: Mapping, rows: np.ndarray, n_rows: int) -> dict:
    # per-row arrays (relevance, sample_weight, groups) follow the training rows
    return {
        key: _take(value, rows) if hasattr(value, "__len__") and len(value) == n_rows else value
        for key, value in fit_params.items()
    }


def _fit_predict_fold(name, fold, estimator, X, y, train, test, fit_params):
    """Fit on ``train`` and predict ``test``; a final fit (``test`` None) returns the model."""
    if test is None:
        return name, fold, None, _fit_one(name, estimator, X, y, fit_params)
    try:
        estimator.fit(
            _take(X, train), _take(y, train), **_slice_fit_params(fit_params, train, len(X))
        )
        prediction = np.asarray(estimator.predict(_take(X, test)), dtype=float).ravel()
    except Exception as e:
        raise BMAError(
            f"first-layer model {name!r} failed on fold {fold} "
            f"({len(train)} train rows, {len(test)} test rows): {e}"
        ) from e
    return name, fold, test, prediction


def oof_predictions(
    models: Mapping[str, object],
    X,
    y,
    cv,
    *,
    groups=None,
    fit_params: Mapping[str, Mapping] | None = None,
    backend: str = "loky",
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Strictly out-of-fold predictions of each model, aligned to ``X``'s index.

    For each fold of ``cv`` a fresh clone of every model is fitted on the
    training rows only and predicts the test rows. Because test folds are
    disjoint, every returned row has exactly one prediction per model, made by
    a model that never saw that row.

    Parameters
    ----------
    models : mapping of str to estimator
        Unfitted estimators (cloned, never modified).
    X : DataFrame on a ``(date, ticker)`` index
    y : Series on the same index
    cv : splitter
        Any object with ``split(X, y, groups)``; the dates are passed as groups.
    groups : array-like, optional
        Per-row dates; default from ``X``'s index.
    fit_params : mapping, optional
        ``{model name: {fit kwarg: value}}``; values with one entry per row of
        ``X`` (``relevance``, ``sample_weight``) are sliced to the training rows.
    backend : str, default="loky"
        joblib backend.
    n_jobs : int, default=1
        Parallel tasks.

    Returns
    -------
    DataFrame
        Index: the rows of ``X`` that fell in a test fold, in ``X``'s order.
        Columns: one float column per model, then ``fold`` (int).

    Raises
    ------
    DataError
        If ``X`` and ``y`` differ in length or test folds overlap.
    BMAError
        If a model fails; the message names the model and the fold.
    """
    oof, _ = walk_forward(models, X, y, cv, groups=groups, fit_params=fit_params,
                          backend=backend, n_jobs=n_jobs, final_fit=False)
    return oof


def walk_forward(
    models: Mapping[str, object],
    X,
    y,
    cv,
    *,
    groups=None,
    fit_params: Mapping[str, Mapping] | None = None,
    backend: str = "loky",
    n_jobs: int = 1,
    final_fit: bool | Collection[str] = True,
    on_task: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Out-of-fold predictions and the final fits on all rows, as one parallel batch.

    Same contract as :func:`oof_predictions` (first element) and
    :func:`fit_models` (second element, ``{}`` when ``final_fit`` is False;
    a collection of model names final-fits only those). ``on_task(done,
    total)`` is called as each task finishes (results then arrive unordered;
    with the ``multiprocessing`` backend, once when all are done). With ``backend="dask"`` ``X``,
    ``y`` and the fold indices are broadcast to every worker once, before the first task.

    Why one batch: the fold fits and the final fits are independent, so they
    share one pool with no barrier between them, and the tasks are dispatched
    one at a time, costliest first (estimated as training rows x a per-model
    weight: linear models are ~50x cheaper than boosted trees). That greedy
    "longest task first" order keeps both workers busy to the end; joblib's
    default (auto-growing batches in submission order) put several of the
    largest tree fits on one worker while the other idled.
    """
    if len(X) != len(y):
        raise DataError(f"X has {len(X)} rows but y has {len(y)}")
    dates = date_groups(X, groups)
    folds = list(cv.split(X, y, groups=dates))
    fit_params = {name: _aligned_fit_params(p, X) for name, p in (fit_params or {}).items()}
    everything = np.arange(len(X))
    tasks = [(name, k, train, test) for name in models for k, (train, test) in enumerate(folds)]
    if final_fit:
        tasks += [(name, FINAL, everything, None) for name in models
                  if final_fit is True or name in final_fit]
    settings = parallel_settings(backend, n_jobs)
    if settings["backend"] == "dask":
        # broadcast once to every worker, fold indices included: replicas survive a lost
        # worker (a task's own arguments would be scattered to one worker and die with it)
        settings["scatter"] = [X, y, everything, *(rows for fold in folds for rows in fold)]
    if settings["n_jobs"] != 1:  # in-process, fold order fails fastest on a broken model
        tasks.sort(key=lambda t: -len(t[2]) * _relative_cost(models[t[0]]))
    calls = (
        joblib.delayed(_fit_predict_fold)(
            name, k, clone(models[name]), X, y, train, test, fit_params.get(name, {})
        )
        for name, k, train, test in tasks
    )
    with joblib.parallel_config(**settings):
        if on_task is None or settings["backend"] == "multiprocessing":
            # (the multiprocessing backend cannot yield results as they finish)
            results = joblib.Parallel(batch_size=1)(calls)
            if on_task is not None:
                on_task(len(results), len(tasks))
        else:
            unordered = joblib.Parallel(batch_size=1, return_as="generator_unordered")(calls)
            results = []
            for result in unordered:
                results.append(result)
                on_task(len(results), len(tasks))
    fitted = {name: estimator for name, k, _, estimator in results if k == FINAL}
    oof = _assemble([r for r in results if r[1] != FINAL], list(models), folds, X)
    return oof, {name: fitted[name] for name in models if name in fitted}


def _relative_cost(estimator) -> float:
    """Rough CPU cost of one fit per training row, relative to a boosted-tree model."""
    module = type(estimator).__module__
    return 0.02 if module.startswith("sklearn.linear_model") else 1.0


def _assemble(results, names, folds, X) -> pd.DataFrame:
    tested = np.concatenate([test for _, test in folds])
    if tested.size and np.bincount(tested, minlength=len(X)).max() > 1:
        raise DataError("test folds overlap: a row would get two out-of-fold predictions")
    rows = np.sort(tested)
    position = np.full(len(X), -1)
    position[rows] = np.arange(rows.size)
    values = np.full((rows.size, len(names)), np.nan)
    fold_of_row = np.full(rows.size, -1, dtype=np.int64)
    column = {name: j for j, name in enumerate(names)}
    for name, fold, test, prediction in results:
        values[position[test], column[name]] = prediction
        fold_of_row[position[test]] = fold
    index = X.index[rows] if hasattr(X, "index") else pd.RangeIndex(len(X))[rows]
    frame = pd.DataFrame(values, index=index, columns=names)
    frame["fold"] = fold_of_row
    logger.info("OOF predictions: %d rows, %d folds, models %s", rows.size, len(folds), names)
    return frame


def fit_models(
    models: Mapping[str, object],
    X,
    y,
    *,
    fit_params: Mapping[str, Mapping] | None = None,
    backend: str = "loky",
    n_jobs: int = 1,
) -> dict[str, object]:
    """Fit a clone of every model on all of ``X``, in parallel; returns ``{name: fitted}``."""
    fit_params = {name: _aligned_fit_params(p, X) for name, p in (fit_params or {}).items()}
    tasks = (
        joblib.delayed(_fit_one)(name, clone(model), X, y, fit_params.get(name, {}))
        for name, model in models.items()
    )
    with joblib.parallel_config(**parallel_settings(backend, n_jobs)):
        fitted = joblib.Parallel(batch_size=1)(tasks)
    return dict(zip(models, fitted))


def _fit_one(name, estimator, X, y, fit_params):
    try:
        return estimator.fit(X, y, **fit_params)
    except Exception as e:
        raise BMAError(f"first-layer model {name!r} failed on the final fit: {e}") from e
