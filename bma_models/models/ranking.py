"""Learning-to-rank first-layer models wrapped as scikit-learn regressors.

A ranker learns to order the stocks of one date (one *query*). The wrappers
here look like regressors to the rest of the pipeline -- ``fit(X, y)`` and
``predict(X) -> score`` -- so OOF machinery, stacking and ``clone`` treat them
like any other first-layer model.

* **Groups** come from the ``date`` level of ``X``'s ``(date, ticker)`` index,
  or from ``groups=``. Rows are sorted by date internally, because LightGBM and
  XGBoost need each query contiguous. A plain array without ``groups`` is one
  query (``group_source_ == "single"``); that is what scikit-learn's estimator
  checks feed in.
* **Relevance** is derived from ``y`` as the per-date quantile bucket
  (``0`` = worst .. ``n_relevance_levels - 1``), or passed as ``relevance=`` (e.g.
  the ``relevance`` Series of :mod:`bma_models.labels`).
* **score** is the mean per-date Spearman rank IC, not R^2: ranker outputs are
  on an arbitrary scale, so R^2 would be meaningless.
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from bma_models.errors import DataError, SettingsError
from bma_models.evaluation import grouped_correlation, within_date_ranks

logger = logging.getLogger(__name__)

__all__ = ["LightGBMRanker", "XGBoostRanker", "relevance_from_label", "row_dates"]


def row_dates(X, groups=None) -> tuple[np.ndarray, str]:
    """Return per-row query labels and where they came from (``groups``/``index``/``single``)."""
    shape = getattr(X, "shape", None)
    n_rows = shape[0] if shape is not None else np.asarray(X).shape[0]
    if groups is not None:
        labels = np.asarray(groups)
        if labels.shape[0] != n_rows:
            raise DataError(f"groups has {labels.shape[0]} rows but X has {n_rows}")
        return labels, "groups"
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex):
        level = "date" if "date" in index.names else 0
        return np.asarray(index.get_level_values(level)), "index"
    return np.zeros(n_rows, dtype=np.int64), "single"


def relevance_from_label(y, dates, n_levels: int = 5) -> np.ndarray:
    """Per-date quantile bucket of ``y``: ``0`` (worst) .. ``n_levels - 1`` (best).

    Ties share a bucket (average ranks), so a constant label gives one level.
    """
    if n_levels < 2:
        raise SettingsError(f"n_relevance_levels must be >= 2, got {n_levels}")
    y = np.asarray(y, dtype=float)
    if np.isnan(y).any():
        raise DataError(f"relevance needs a label without NaN ({int(np.isnan(y).sum())} rows)")
    # = pandas' groupby(dates).rank(pct=True), the same numbers several times faster
    codes = pd.factorize(np.asarray(dates))[0]
    average, _, sizes = within_date_ranks(y, codes, first=False)
    buckets = np.ceil(average / sizes[codes] * n_levels).astype(np.int64) - 1
    return np.clip(buckets, 0, n_levels - 1)


class _PerDateRanker(RegressorMixin, BaseEstimator):
    def fit(self, X, y, *, groups=None, relevance=None):
        """Fit on per-date queries.

        Parameters
        ----------
        X : DataFrame on a ``(date, ticker)`` index, or array-like
        y : array-like
            Forward return (used for relevance when ``relevance`` is None).
        groups : array-like, optional
            Query (date) of each row; default from ``X``'s index.
        relevance : array-like of int, optional
            Graded relevance of each row.

        Returns
        -------
        self
        """
        dates, self.group_source_ = row_dates(X, groups)
        X_arr, y_arr = validate_data(self, X, y, y_numeric=True)
        codes = pd.factorize(dates, sort=True)[0]
        if relevance is None:
            rel = relevance_from_label(y_arr, codes, self.n_relevance_levels)
        else:
            rel = np.asarray(relevance).astype(np.int64)
            if rel.shape[0] != X_arr.shape[0] or rel.min() < 0:
                raise DataError("relevance must hold one non-negative integer per row")
        # (date, ticker) order: queries contiguous and the fit independent of input row order
        within = np.arange(len(codes))
        if self.group_source_ == "index":
            within = pd.factorize(X.index.get_level_values(-1), sort=True)[0]
        order = np.lexsort((within, codes))
        self.model_ = self._fit_sorted(X_arr[order], rel[order], codes[order])
        self.n_groups_ = int(codes.max()) + 1
        return self

    def predict(self, X):
        """Return the ranking score of each row (higher = better)."""
        check_is_fitted(self, "model_")
        X_arr = validate_data(self, X, reset=False)
        return np.asarray(self.model_.predict(X_arr), dtype=float)

    def score(self, X, y, sample_weight=None):
        """Mean per-date Spearman rank IC of the scores with ``y`` (one query if no dates)."""
        codes = pd.factorize(row_dates(X)[0])[0]
        frame = pd.DataFrame({"p": self.predict(X), "y": np.asarray(y, dtype=float)})
        ranks = frame.groupby(codes).rank()
        corr = grouped_correlation(ranks["p"], ranks["y"], codes)
        corr = corr[np.isfinite(corr)]
        return float(corr.mean()) if corr.size else float("nan")


class LightGBMRanker(_PerDateRanker):
    """LightGBM learning-to-rank on per-date queries, scored like a regressor.

    Both objectives target NDCG of each date's ordering, which weighs the top
    of the list -- the names the portfolio actually buys -- more than the
    middle. Why ``rank_xendcg`` by default: the listwise cross-entropy
    surrogate of NDCG (Bruch et al., 2019) costs time linear in the names of a
    date, while ``lambdarank`` evaluates pairs (quadratic in 500 names). On the
    500 x 1260 demo (train on the first 70 % of dates, score the last 30 %)
    15 rounds of ``rank_xendcg`` fitted in 3.1 s for an OOS rank IC of 0.004,
    ``lambdarank`` in 5.1 s for -0.0004. See the module docstring for groups,
    relevance and ``score``.

    Parameters
    ----------
    objective : {"rank_xendcg", "lambdarank"}, default="rank_xendcg"
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample,
    colsample_bytree, reg_lambda, max_bin :
        LightGBM parameters of the same names.
    n_relevance_levels : int, default=5
        Quantile buckets of the derived relevance label.
    random_state : int, optional
    n_jobs : int, default=1
        LightGBM threads (keep ``parallel tasks * n_jobs <= cores``).
    """

    def __init__(
        self,
        objective="rank_xendcg",
        n_estimators=100,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        max_bin=255,
        n_relevance_levels=5,
        random_state=None,
        n_jobs=1,
    ):
        self.objective = objective
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.n_relevance_levels = n_relevance_levels
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_sorted(self, X, relevance, codes):
        if self.objective not in ("rank_xendcg", "lambdarank"):
            raise SettingsError(
                f"objective must be 'rank_xendcg' or 'lambdarank', got {self.objective!r}"
            )
        sizes = np.bincount(codes)
        if sizes.max() > 10_000:
            raise DataError(
                f"a date has {sizes.max()} rows; LightGBM ranking allows 10000 per query"
            )
        model = lgb.LGBMRanker(
            objective=self.objective,
            max_bin=self.max_bin,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=-1,
        )
        return model.fit(X, relevance, group=sizes[sizes > 0])


class XGBoostRanker(_PerDateRanker):
    """XGBoost learning-to-rank (``rank:pairwise`` or ``rank:ndcg``, ``hist`` trees).

    Why pairwise by default: with a few coarse relevance levels and hundreds of
    names per date, pairwise loss uses every ordered pair and is less sensitive
    to the arbitrary bucket edges than NDCG's gain weighting.

    Parameters
    ----------
    objective : {"rank:pairwise", "rank:ndcg"}, default="rank:pairwise"
    n_estimators, max_depth, learning_rate, subsample, colsample_bytree,
    min_child_weight, reg_lambda :
        XGBoost parameters of the same names.
    n_relevance_levels : int, default=5
    random_state : int, optional
    n_jobs : int, default=1
    """

    def __init__(
        self,
        objective="rank:pairwise",
        n_estimators=100,
        max_depth=4,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=1.0,
        reg_lambda=1.0,
        n_relevance_levels=5,
        random_state=None,
        n_jobs=1,
    ):
        self.objective = objective
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.n_relevance_levels = n_relevance_levels
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_sorted(self, X, relevance, codes):
        if self.objective not in ("rank:pairwise", "rank:ndcg"):
            raise SettingsError(
                f"objective must be 'rank:pairwise' or 'rank:ndcg', got {self.objective!r}"
            )
        model = xgb.XGBRanker(
            objective=self.objective,
            tree_method="hist",
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        return model.fit(X, relevance, qid=codes)
