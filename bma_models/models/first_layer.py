"""The first layer: a named set of seeded, thread-limited scikit-learn estimators.

The defaults were chosen on real US daily data (docs/signal.md): shallow,
strongly regularised trees with subsampling, which is also what keeps the
walk-forward (five folds plus a final fit of every default model) cheap.
Runs override them through ``params``; the pipeline passes the config keys
``research.models.enabled`` / ``research.models.params`` and ``research.seed`` to
:func:`make_first_layer`.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterable, Mapping

import lightgbm as lgb
import xgboost as xgb
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import ElasticNet, Ridge

from bma_models.errors import SettingsError
from bma_models.models.ranking import LightGBMRanker, XGBoostRanker

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENABLED",
    "DEFAULT_PARAMS",
    "MODEL_NAMES",
    "available_cores",
    "make_first_layer",
    "threads_per_model",
]

#: Default hyperparameters per model name (override any key through ``params``).
DEFAULT_PARAMS: dict[str, dict] = {
    "ridge": {"alpha": 1.0},
    # alpha * l1_ratio = 5e-5 only zeroes features whose covariance with the label is below
    # it: useless ones for a z-scored label (covariances ~1e-2) and for raw ~1e-2 returns
    # (~1e-3). precompute: the 27 x 27 Gram matrix makes coordinate descent ~20x faster
    # on 600k rows.
    "elastic_net": {
        "alpha": 1e-4, "l1_ratio": 0.5, "max_iter": 2000, "tol": 1e-4, "precompute": True,
    },
    "random_forest": {
        "n_estimators": 30, "max_depth": 5, "min_samples_leaf": 100,
        "max_features": 0.3, "max_samples": 0.05,
    },
    "xgboost": {
        "n_estimators": 60, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.7,
        "colsample_bytree": 0.8, "min_child_weight": 50.0, "reg_lambda": 1.0,
        "tree_method": "hist", "max_bin": 64,
    },
    # regularised for noisy daily returns (docs/signal.md, E3/E6/E8/E9): large leaves (1000
    # rows), 60 % of the features per tree, L2 10; 60 rounds at lr 0.1, 120 at 0.05 and 300
    # at 0.02 score alike; 31 bins are cheaper than 63 and not worse. force_col_wise: the
    # same model (predictions identical) without LightGBM's per-fit test of both histogram
    # layouts, 11 % less CPU per fit on the demo (docs/signal.md, "Fourth look")
    "lightgbm": {
        "n_estimators": 60, "num_leaves": 15, "learning_rate": 0.1,
        "min_child_samples": 1000, "subsample": 0.7, "subsample_freq": 1,
        "colsample_bytree": 0.6, "reg_lambda": 10.0, "max_bin": 31, "verbose": -1,
        "force_col_wise": True,
    },
    # 40 rounds at lr 0.12 of the linear-time listwise objective (see LightGBMRanker; as good
    # as 100 at 0.05 for half the CPU): on real data its good years are the regressors' bad
    # ones, which is what an average needs
    "lgbm_ranker": {
        "objective": "rank_xendcg", "n_estimators": 40, "num_leaves": 15,
        "learning_rate": 0.12, "min_child_samples": 100, "subsample": 0.7, "max_bin": 63,
        "n_relevance_levels": 5,
    },
    "xgb_ranker": {
        "objective": "rank:pairwise", "n_estimators": 40, "max_depth": 3,
        "learning_rate": 0.05, "subsample": 0.7, "min_child_weight": 20.0,
        "n_relevance_levels": 5,
    },
}

#: Known first-layer model names, in display order.
MODEL_NAMES: tuple[str, ...] = tuple(DEFAULT_PARAMS)
#: Models built when ``enabled`` is None (see :data:`bma_models.settings.DEFAULT_ENABLED`).
DEFAULT_ENABLED: tuple[str, ...] = ("ridge", "lightgbm", "lgbm_ranker")

_SEED_KEY = {
    "ridge": "random_state", "elastic_net": "random_state", "random_forest": "random_state",
    "xgboost": "random_state", "lightgbm": "random_state",
    "lgbm_ranker": "random_state", "xgb_ranker": "random_state",
}
_THREADS_KEY = {
    "ridge": None, "elastic_net": None, "random_forest": "n_jobs", "xgboost": "n_jobs",
    "lightgbm": "n_jobs", "lgbm_ranker": "n_jobs", "xgb_ranker": "n_jobs",
}
_CLASSES = {
    "ridge": Ridge, "elastic_net": ElasticNet, "random_forest": RandomForestRegressor,
    "xgboost": xgb.XGBRegressor, "lightgbm": lgb.LGBMRegressor,
    "lgbm_ranker": LightGBMRanker, "xgb_ranker": XGBoostRanker,
}


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_model(n_parallel_tasks: int, cores: int | None = None) -> int:
    """Threads each model may use so ``n_parallel_tasks * threads <= cores`` (at least 1).

    Why: joblib runs folds in parallel processes while LightGBM/XGBoost/OpenMP
    start their own thread pools; without this cap, 2 folds x 2 threads on 2 cores
    oversubscribe the machine and run slower than one fold at a time.
    """
    cores = available_cores() if cores is None else int(cores)
    return max(1, cores // max(1, int(n_parallel_tasks)))


def make_first_layer(
    enabled: Iterable[str] | None = None,
    params: Mapping[str, Mapping] | None = None,
    seed: int = 0,
    n_jobs_per_model: int = 1,
) -> dict[str, object]:
    """Build the unfitted first-layer estimators.

    Parameters
    ----------
    enabled : iterable of str, optional
        Model names from :data:`MODEL_NAMES`; default :data:`DEFAULT_ENABLED`.
    params : mapping, optional
        ``{model name: {parameter: value}}`` overrides merged onto
        :data:`DEFAULT_PARAMS`.
    seed : int, default=0
        ``random_state`` of every stochastic model (Ridge has none).
    n_jobs_per_model : int, default=1
        Thread count of each model; use :func:`threads_per_model`.

    Returns
    -------
    dict
        ``{name: estimator}`` in the order of ``enabled``.

    Raises
    ------
    SettingsError
        On an unknown model name, an override for a model that is not enabled,
        or a parameter the estimator does not have.
    """
    names = list(DEFAULT_ENABLED if enabled is None else enabled)
    params = dict(params or {})
    unknown = [n for n in [*names, *params] if n not in _CLASSES]
    if unknown:
        raise SettingsError(f"unknown first-layer model(s) {unknown}; known: {list(MODEL_NAMES)}")
    stray = [n for n in params if n not in names]
    if stray:
        raise SettingsError(f"params given for models that are not enabled: {stray}")
    if int(n_jobs_per_model) < 1:
        raise SettingsError(f"n_jobs_per_model must be >= 1, got {n_jobs_per_model}")
    models = {}
    for name in names:
        merged = copy.deepcopy(DEFAULT_PARAMS[name])
        if _SEED_KEY[name]:
            merged[_SEED_KEY[name]] = int(seed)
        if _THREADS_KEY[name]:
            merged[_THREADS_KEY[name]] = int(n_jobs_per_model)
        merged.update(params.get(name, {}))
        estimator = _CLASSES[name]()
        try:
            estimator.set_params(**merged)
        except ValueError as e:
            raise SettingsError(f"bad parameter for first-layer model {name!r}: {e}") from e
        models[name] = estimator
    logger.debug("first layer %s (seed %d, %d thread(s) each)", names, seed, n_jobs_per_model)
    return models
