"""Two-layer walk-forward model: first-layer OOF -> purged meta-learner -> final fit.

:class:`StackedModel` is the one orchestration point of the modelling stage;
the research pipeline calls ``fit`` on all labelled history and then
``predict_latest`` on the recommendation date, whose label is not yet known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from bma_models.cv import PurgedGroupTimeSeriesSplit, check_purge_covers_horizon
from bma_models.errors import DataError, SettingsError
from bma_models.models.canaries import (
    FUTURE_LABEL_IC_THRESHOLD,
    future_label_canary,
    shuffled_label_canary,
)
from bma_models.models.first_layer import make_first_layer, threads_per_model
from bma_models.models.oof import oof_predictions, walk_forward
from bma_models.models.stacking import ICWeightedAverage, cross_sectional_zscore

logger = logging.getLogger(__name__)

__all__ = ["StackedModel"]


class StackedModel(BaseEstimator):
    """First-layer models stacked by a meta-learner, with honest walk-forward predictions.

    ``fit(X, y)`` runs three steps:

    1. ``oof_`` -- out-of-fold predictions of every first-layer model over
       ``cv`` (first-layer purge/embargo, e.g. gap 5 / embargo 3 sessions).
    2. ``stack_oof_`` -- the meta-learner walked forward over those OOF rows
       with its own, wider split ``meta_cv`` (e.g. gap 10 / embargo 5). Each
       stack prediction on date ``d`` uses only first-layer predictions and
       labels from dates purged away from ``d``; these are the honest OOS
       predictions to evaluate.
    3. The final fit: every first-layer model on all of ``X`` (``first_layer_``)
       and the meta-learner on all of the OOF matrix (``meta_``, ``weights_``).

    Why the meta split is wider: the meta-learner's inputs are themselves
    predictions whose training windows end ``gap + embargo`` sessions earlier,
    so the same purge is not enough to keep the second layer's training labels
    clear of its test period.

    Parameters
    ----------
    first_layer : mapping of str to estimator, optional
        Default: :func:`~bma_models.models.make_first_layer` with seed 0.
    meta : estimator, optional
        Default: :class:`ICWeightedAverage`; or :class:`NonNegativeRidgeStack`.
    cv, meta_cv : PurgedGroupTimeSeriesSplit, optional
        Defaults: ``(n_splits=5, gap=5, embargo=3)`` and ``(5, gap=10, embargo=5)``.
        ``meta_cv`` must have gap and embargo at least those of ``cv`` and a larger sum.
    standardize : bool, default=True
        Z-score first-layer predictions within each date before the meta-learner.
    target : {"zscore", "raw"}, default="zscore"
        What the models are trained on: the label z-scored within each date, or
        the raw label. Why z-score by default: the stack is used and judged on
        each date's ordering; the date-wide market move is common to all names,
        so in a raw-return loss it is pure noise that the tree models chase (on
        the demo market the z-scored target lifts their OOS rank IC). Evaluation
        always uses the raw label.
    label_horizon : int, optional
        Label horizon in sessions. When given, both purges are checked against
        it and the future-label canary runs on every ``fit`` (``canary_``).
    canary_threshold : float, default=FUTURE_LABEL_IC_THRESHOLD
    backend : str, default="loky"
        joblib backend of the first layer's fold fits and final fits (one batch,
        see :func:`~bma_models.models.oof.walk_forward`); the meta-learner runs in-process.
    n_jobs : int, default=1
        Parallel joblib tasks.
    final_fitter : callable, optional
        ``final_fitter(models, X, y) -> {name: fitted}`` fits some first-layer
        models on all rows another way (e.g.
        :func:`bma_models.models.distributed.native_final_fits` on a Dask
        cluster); the models it returns are left out of the joblib final fits.
    on_task : callable, optional
        ``on_task(done, total)`` after each first-layer task (progress).
    reference_models : mapping of str to estimator, optional
        Models walked through ``cv`` in the same joblib batch as the first layer,
        on the same features and training target, but neither stacked nor
        final-fitted: their OOF predictions (``reference_oof_``) are the run's
        model baselines (e.g. one plain LightGBM).
    canary_model : estimator, optional
        The cheap model of the shuffled-label canary; default ``Ridge(alpha=1)``.

    Attributes
    ----------
    oof_ : DataFrame
        First-layer OOF predictions (one column per model) and ``fold``.
    stack_oof_ : DataFrame
        Columns ``stack`` and ``fold`` (meta fold), on the rows the meta split tested.
    first_layer_ : dict of fitted estimators
    meta_ : fitted meta-learner
    weights_ : Series
        Meta weight of each first-layer model (the meta-learner's ``weights_``;
        NaN for a meta-learner that has none).
    canary_ : dict or None
        Result of the future-label canary.
    canaries_ : dict
        ``{"future_label": ..., "shuffled_label": ...}`` (both run on every
        ``fit`` when ``label_horizon`` is given; each raises
        :class:`~bma_models.errors.LeakageError` when it fails).
    reference_oof_ : DataFrame
        OOF predictions of ``reference_models`` on the rows of ``oof_``.
    """

    def __init__(
        self,
        first_layer=None,
        meta=None,
        cv=None,
        meta_cv=None,
        *,
        standardize=True,
        target="zscore",
        label_horizon=None,
        canary_threshold=FUTURE_LABEL_IC_THRESHOLD,
        backend="loky",
        n_jobs=1,
        final_fitter=None,
        on_task=None,
        reference_models=None,
        canary_model=None,
    ):
        self.first_layer = first_layer
        self.meta = meta
        self.cv = cv
        self.meta_cv = meta_cv
        self.standardize = standardize
        self.target = target
        self.label_horizon = label_horizon
        self.canary_threshold = canary_threshold
        self.backend = backend
        self.n_jobs = n_jobs
        self.final_fitter = final_fitter
        self.on_task = on_task
        self.reference_models = reference_models
        self.canary_model = canary_model

    def fit(self, X: pd.DataFrame, y: pd.Series, *, fit_params: Mapping | None = None):
        """Walk forward, stack, and fit the final models on all labelled rows.

        Parameters
        ----------
        X : DataFrame on a unique ``(date, ticker)`` MultiIndex
        y : Series on the same index, no NaN
        fit_params : mapping, optional
            ``{model name: {fit kwarg: per-row values}}``, e.g. a ranker's ``relevance``.

        Returns
        -------
        self

        Raises
        ------
        DataError, SettingsError, LeakageError, BMAError
        """
        _check_inputs(X, y)
        first_layer, meta, cv, meta_cv = self._components()
        _check_splits(cv, meta_cv, self.label_horizon)
        reference = dict(self.reference_models or {})
        clash = sorted(set(reference) & set(first_layer))
        if clash:
            raise SettingsError(f"reference model names {clash} are first-layer names too")
        raw_y, y = y, self._training_target(y)
        self.canaries_ = self._run_canaries(X, raw_y, cv)
        self.canary_ = self.canaries_.get("future_label")
        native = {} if self.final_fitter is None else self.final_fitter(
            {n: m for n, m in first_layer.items() if not (fit_params or {}).get(n)}, X, y)
        oof, local = walk_forward(
            {**first_layer, **reference}, X, y, cv, fit_params=fit_params,
            backend=self.backend, n_jobs=self.n_jobs,
            final_fit=[n for n in first_layer if n not in native], on_task=self.on_task)
        self.oof_ = oof.drop(columns=list(reference))
        self.reference_oof_ = oof[list(reference)]
        # fitted estimators, used through their duck-typed ``predict``
        self.first_layer_: dict[str, Any] = {
            n: native[n] if n in native else local[n] for n in first_layer}
        self.model_names_ = list(first_layer)
        meta_X = self._meta_features(self.oof_[self.model_names_])
        meta_y = y.reindex(self.oof_.index)
        # the meta-learners are cheap (k columns): in-process, no pickling of the OOF matrix
        self.stack_oof_ = oof_predictions({"stack": meta}, meta_X, meta_y, meta_cv,
                                          backend="sequential")
        self.meta_ = clone(meta).fit(meta_X, meta_y)
        # a custom meta-learner without weights_ gets NaN weights (nothing to show)
        weights = getattr(self.meta_, "weights_", np.full(len(self.model_names_), np.nan))
        self.weights_ = pd.Series(weights, index=self.model_names_, name="weight")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        logger.info(
            "fitted %s with %s; meta weights %s", type(self).__name__,
            type(self.meta_).__name__, self.weights_.round(3).to_dict(),
        )
        return self

    def _training_target(self, y: pd.Series) -> pd.Series:
        if self.target == "raw":
            return y
        if self.target != "zscore":
            raise SettingsError(f"target must be 'zscore' or 'raw', got {self.target!r}")
        return cross_sectional_zscore(y.to_frame("label"))["label"].rename(y.name)

    def _components(self):
        first_layer = self.first_layer
        if first_layer is None:
            first_layer = make_first_layer(n_jobs_per_model=threads_per_model(self.n_jobs))
        if not first_layer:
            raise SettingsError("the first layer has no model")
        meta = ICWeightedAverage() if self.meta is None else self.meta
        cv = self.cv
        if cv is None:
            cv = PurgedGroupTimeSeriesSplit(n_splits=5, gap=5, embargo=3)
        meta_cv = self.meta_cv
        if meta_cv is None:
            meta_cv = PurgedGroupTimeSeriesSplit(n_splits=5, gap=10, embargo=5)
        return dict(first_layer), meta, cv, meta_cv

    def _run_canaries(self, X, y, cv) -> dict:
        if self.label_horizon is None:
            logger.warning("StackedModel: no label_horizon, so the canaries are skipped")
            return {}
        future = future_label_canary(
            X, y, cv, horizon=self.label_horizon, threshold=self.canary_threshold,
            backend=self.backend,
        )
        model = self.canary_model
        if model is None:
            from sklearn.linear_model import Ridge

            model = Ridge(alpha=1.0)
        name = type(model).__name__.lower()
        shuffled = shuffled_label_canary({name: model}, X, y, cv, backend=self.backend)[name]
        logger.info("shuffled-label canary passed: %s OOS rank IC %.4f, bound %.4f", name,
                    shuffled["rank_ic"], shuffled["threshold"])
        return {"future_label": future, "shuffled_label": {"model": name, **shuffled}}

    def _meta_features(self, predictions: pd.DataFrame) -> pd.DataFrame:
        return cross_sectional_zscore(predictions) if self.standardize else predictions

    def predict_first_layer(self, X: pd.DataFrame) -> pd.DataFrame:
        """Predictions of each final first-layer model on ``X`` (one column per model)."""
        check_is_fitted(self, "first_layer_")
        _check_features(X, self.feature_names_in_)
        return pd.DataFrame(
            {name: np.asarray(m.predict(X), dtype=float) for name, m in self.first_layer_.items()},
            index=X.index,
        )

    def predict(self, X: pd.DataFrame) -> pd.Series:
        """Stack score of each row of ``X`` (higher = expected to outperform that date)."""
        meta_X = self._meta_features(self.predict_first_layer(X))
        return pd.Series(self.meta_.predict(meta_X), index=X.index, name="stack")

    def predict_latest(self, X: pd.DataFrame) -> pd.Series:
        """Score the most recent cross-section of ``X`` (the recommendation date).

        ``X`` may run past the labelled history; only rows of its last date are
        scored, with the final models. Returns a Series indexed by ticker,
        sorted best first, with the date in ``attrs["date"]``.
        """
        dates = X.index.get_level_values("date")
        latest = X[dates == dates.max()]
        scores = self.predict(latest).droplevel("date").sort_values(ascending=False)
        scores.attrs["date"] = dates.max()
        return scores

    def oos_predictions(self) -> pd.DataFrame:
        """First-layer OOF columns, ``stack`` (NaN where the meta split did not test), folds.

        Pass it to :func:`bma_models.evaluation.evaluate` with the label.
        """
        check_is_fitted(self, "stack_oof_")
        frame = self.oof_.copy()
        frame["stack"] = self.stack_oof_["stack"].reindex(frame.index)
        frame["meta_fold"] = self.stack_oof_["fold"].reindex(frame.index)
        return frame


def _check_inputs(X, y) -> None:
    if not isinstance(X, pd.DataFrame) or not isinstance(X.index, pd.MultiIndex):
        raise DataError("X must be a DataFrame on a (date, ticker) MultiIndex")
    if "date" not in X.index.names:
        raise DataError(f"X's index needs a 'date' level, has {list(X.index.names)}")
    if not isinstance(y, pd.Series) or not y.index.equals(X.index):
        raise DataError("y must be a Series on exactly X's index")
    if not X.index.is_unique:
        raise DataError("X's (date, ticker) index has duplicate rows")
    if not np.isfinite(y.to_numpy(dtype=float)).all():
        raise DataError(f"y has {int((~np.isfinite(y.to_numpy(dtype=float))).sum())} "
                        "non-finite labels; pass labelled rows only")


def _check_splits(cv, meta_cv, horizon) -> None:
    for name, split in (("cv", cv), ("meta_cv", meta_cv)):
        if not (hasattr(split, "gap") and hasattr(split, "embargo")):
            raise SettingsError(f"{name} must have gap and embargo (a PurgedGroupTimeSeriesSplit)")
        if horizon is not None:
            check_purge_covers_horizon(split, horizon)
    wider = meta_cv.gap >= cv.gap and meta_cv.embargo >= cv.embargo
    if not (wider and meta_cv.gap + meta_cv.embargo > cv.gap + cv.embargo):
        raise SettingsError(
            f"meta_cv (gap {meta_cv.gap}, embargo {meta_cv.embargo}) must be wider than "
            f"cv (gap {cv.gap}, embargo {cv.embargo})"
        )


def _check_features(X, expected) -> None:
    if not isinstance(X, pd.DataFrame):
        raise DataError("X must be a DataFrame on a (date, ticker) MultiIndex")
    if list(X.columns) != list(expected):
        raise DataError(
            f"feature columns differ from the fit: got {list(X.columns)}, "
            f"expected {list(expected)}"
        )
