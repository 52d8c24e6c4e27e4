"""Second-layer (meta) learners fitted on the first layer's out-of-fold predictions.

Both take the OOF matrix -- one column per first-layer model, on the
``(date, ticker)`` index -- as ``X`` and the label as ``y``, and expose
``weights_`` (one non-negative weight per model, summing to 1 when any is
positive) so the GUI and report can show how the stack blends its models.

* :class:`NonNegativeRidgeStack` -- ridge regression with ``w >= 0``.
* :class:`ICWeightedAverage` -- ``w_m ∝ prior_m * exp(mean IC_m / T)``, the
  original system's "BMA" (an exponential-weights / softmax model average).
* :class:`ValidatedStack` -- the best, on its training rows, of a few fixed
  combinations: every member alone, the equal-weight average and the
  IC-weighted average; by construction never worse there than its best member.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, solve_triangular
from scipy.optimize import nnls
from scipy.special import softmax
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from bma_models.errors import SettingsError
from bma_models.evaluation import grouped_correlation, within_date_ranks
from bma_models.models.ranking import row_dates

logger = logging.getLogger(__name__)

__all__ = ["ICWeightedAverage", "NonNegativeRidgeStack", "ValidatedStack",
           "cross_sectional_zscore"]


def cross_sectional_zscore(frame: pd.DataFrame) -> pd.DataFrame:
    """Standardise each column within each date: ``(x - mean_d) / std_d``.

    Why: first-layer outputs live on different scales (a ridge forecast of a
    return vs. an arbitrary ranker score); the stack should blend their
    *orderings* of each day's cross-section. A date where a column is constant
    maps to 0 for that column.
    """
    dates = row_dates(frame)[0]
    grouped = frame.groupby(dates)
    std = grouped.transform("std", ddof=0)
    z = (frame - grouped.transform("mean")) / std.where(std > 0)
    return z.fillna(0.0)


def _normalised(coef: np.ndarray) -> np.ndarray:
    total = coef.sum()
    return coef / total if total > 0 else np.zeros_like(coef)


def _daily_ic(scored, scored_y, codes) -> np.ndarray:
    """Per-date correlation of two (ranked) columns, one entry per date code."""
    return grouped_correlation(scored, scored_y, codes, min_count=2)


def _mean_ic(daily: np.ndarray) -> float:
    ic = daily[np.isfinite(daily)]
    # a column with no usable date (constant) carries no evidence: IC 0
    return float(ic.mean()) if ic.size else 0.0


class NonNegativeRidgeStack(RegressorMixin, BaseEstimator):
    """Ridge regression of the label on the OOF predictions with non-negative weights.

    Solves ``min_w ||y_c - X_c w||^2 + alpha ||w||^2`` subject to ``w >= 0``
    (``_c`` = centred when ``fit_intercept``), the same objective as
    :class:`sklearn.linear_model.Ridge` plus the sign constraint. It is solved
    exactly as an NNLS problem on the Cholesky factor ``R`` of
    ``X_c'X_c + alpha I``: ``min_w ||R w - R^-T X_c'y_c||^2``, which costs
    ``O(n k^2)`` for ``n`` rows and ``k`` models.

    Why non-negative: a first-layer model that is *negatively* useful in-sample
    is almost always noise; letting the stack short it overfits (Breiman, 1996,
    "Stacked regressions").

    Parameters
    ----------
    alpha : float, default=1.0
        L2 penalty on the weights (on the sum-of-squares scale, like ``Ridge``).
    fit_intercept : bool, default=True

    Attributes
    ----------
    coef_ : ndarray of shape (n_models,)
    intercept_ : float
    weights_ : ndarray of shape (n_models,)
        ``coef_ / coef_.sum()`` (all zero when every coefficient is 0).
    """

    def __init__(self, alpha=1.0, fit_intercept=True):
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def fit(self, X, y):
        """Fit the non-negative ridge weights; returns ``self``."""
        if not self.alpha >= 0:
            raise SettingsError(f"alpha must be >= 0, got {self.alpha}")
        X, y = validate_data(self, X, y, y_numeric=True)
        X, y = X.astype(float), y.astype(float)
        x_mean = X.mean(axis=0) if self.fit_intercept else np.zeros(X.shape[1])
        y_mean = float(y.mean()) if self.fit_intercept else 0.0
        Xc, yc = X - x_mean, y - y_mean
        gram = Xc.T @ Xc
        # a 1e-12 relative jitter keeps the factorisation defined for alpha=0 and duplicate models
        gram += (self.alpha + 1e-12 * max(1.0, np.trace(gram))) * np.eye(X.shape[1])
        upper, _ = cho_factor(gram, lower=False)
        upper = np.triu(upper)
        target = solve_triangular(upper, Xc.T @ yc, trans="T", lower=False)
        self.coef_, _ = nnls(upper, target)
        self.intercept_ = y_mean - float(x_mean @ self.coef_)
        self.weights_ = _normalised(self.coef_)
        if not self.coef_.any():
            logger.warning("%r: every weight is 0; the stack predicts a constant", self)
        return self

    def predict(self, X):
        """Return ``X @ coef_ + intercept_``."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_


class ICWeightedAverage(RegressorMixin, BaseEstimator):
    """Model average with weights ``∝ prior * exp(mean per-date IC / temperature)``.

    The mean IC of each column is the average over dates of its cross-sectional
    correlation with ``y`` (Spearman by default). The dates come from the
    ``date`` level of ``X``'s index or ``groups=``; a plain array is one date.
    ``predict`` returns ``X @ weights_`` (a weighted average of the model scores).

    Why exponential weights: it is the posterior-style update of the original
    system's "BMA" -- models are compared on out-of-sample IC, and
    ``temperature`` sets how decisively: with ``T = 0.01`` a model whose mean IC
    is 0.01 higher gets ``e`` times the weight (OOF ICs of daily equity models
    are 0.01-0.05, so differences of 0.01 matter). ``T -> inf`` is an equal-weight
    average; ``T -> 0`` picks the best model.

    Parameters
    ----------
    temperature : float, default=0.01
        Must be > 0.
    prior : array-like of shape (n_models,), optional
        Non-negative prior weights; default equal.
    method : {"spearman", "pearson"}, default="spearman"

    Attributes
    ----------
    mean_ic_ : ndarray of shape (n_models,)
    weights_ : ndarray of shape (n_models,)
        Sums to 1.
    """

    def __init__(self, temperature=0.01, prior=None, method="spearman"):
        self.temperature = temperature
        self.prior = prior
        self.method = method

    def fit(self, X, y, *, groups=None):
        """Compute the mean per-date IC of each column and the weights; returns ``self``."""
        self._check_params()
        dates, self.group_source_ = row_dates(X, groups)
        X, y = validate_data(self, X, y, y_numeric=True)
        codes = pd.factorize(dates)[0]
        y = self._scored(y, codes)  # the label is ranked once for every column
        daily = [_daily_ic(self._scored(X[:, j], codes), y, codes) for j in range(X.shape[1])]
        self._set_weights(daily)
        return self

    def _check_params(self):
        if not self.temperature > 0:
            raise SettingsError(f"temperature must be > 0, got {self.temperature}")
        if self.method not in ("spearman", "pearson"):
            raise SettingsError(f"method must be 'spearman' or 'pearson', got {self.method!r}")

    def _set_weights(self, daily: list[np.ndarray]) -> None:
        """``mean_ic_`` and ``weights_`` from each column's per-date ICs (dates in row order)."""
        prior = self._prior(len(daily))
        self.mean_ic_ = np.array([_mean_ic(ic) for ic in daily])
        logits = np.where(prior > 0, np.log(np.where(prior > 0, prior, 1.0)), -np.inf)
        self.weights_ = softmax(logits + self.mean_ic_ / self.temperature)

    def _prior(self, n_models):
        if self.prior is None:
            return np.full(n_models, 1.0 / n_models)
        prior = np.asarray(self.prior, dtype=float)
        if prior.shape != (n_models,) or (prior < 0).any() or not prior.sum() > 0:
            raise SettingsError(
                f"prior must hold {n_models} non-negative weights with a positive sum, "
                f"got {self.prior!r}"
            )
        return prior / prior.sum()

    def _scored(self, values, codes):
        # spearman: average ranks within each date; NaN rows (none after validate_data) absent
        if self.method != "spearman":
            return values
        return within_date_ranks(values, codes, first=False)[0]

    def predict(self, X):
        """Return the weighted average ``X @ weights_``."""
        check_is_fitted(self, "weights_")
        X = validate_data(self, X, reset=False)
        return X @ self.weights_


class ValidatedStack(RegressorMixin, BaseEstimator):
    """The equal-weight average unless the training rows prove another combination better.

    Candidates (weight vectors over the ``k`` member columns): the equal-weight
    average (``equal``), the :class:`ICWeightedAverage` weights
    (``ic_weighted``) and every member alone (``member:<j>``). ``fit`` computes
    each candidate's per-date IC of ``X @ w`` with ``y`` on the training rows;
    a candidate replaces ``equal`` only when its mean IC is higher with a
    paired Newey-West t-statistic of at least ``min_t`` against ``equal`` (the
    highest mean among those that qualify wins). ``predict`` returns
    ``X @ weights_``.

    Why: a stack should never be clearly worse than its best member. The
    training rows of a meta-learner are the first layer's *out-of-fold*
    predictions, so each candidate's IC on them is an out-of-sample figure of
    that fixed combination, and a member that is significantly better than the
    average there is chosen. Why the bar ``min_t``: per-date ICs of 0.01-0.05
    are noisy, and on the real development data every rule that followed the
    best recent IC (fitted ridge/NNLS weights, IC-softmax weights, the best
    candidate without a bar) lost to the plain equal average out of sample,
    because the early training windows favour whatever worked in 2000-2001
    (docs/signal.md).

    Parameters
    ----------
    temperature : float, default=0.01
        Temperature of the ``ic_weighted`` candidate.
    members : bool, default=True
        Include every member alone among the candidates.
    min_t : float, default=2.0
        Paired Newey-West t a candidate needs against ``equal`` to replace it
        (0: the best mean IC wins outright; so it does with fewer than 3 dates,
        where no t-statistic exists).
    horizon : int, default=5
        Label horizon, for the Newey-West lags (labels overlap).
    method : {"spearman", "pearson"}, default="spearman"

    Attributes
    ----------
    weights_ : ndarray of shape (n_models,)
        The chosen candidate's weights (sum to 1).
    choice_ : str
        ``"equal"``, ``"ic_weighted"`` or ``"member:<column index>"``.
    candidate_ic_ : dict
        Mean per-date IC of every candidate on the training rows.
    candidate_t_ : dict
        Paired Newey-West t of every candidate against ``equal``.
    ic_weighted_ : ndarray of shape (n_models,)
        The ``ic_weighted`` candidate's weights (those of
        :class:`ICWeightedAverage` fitted on the same rows).
    """

    def __init__(self, temperature=0.01, members=True, min_t=2.0, horizon=5,
                 method="spearman"):
        self.temperature = temperature
        self.members = members
        self.min_t = min_t
        self.horizon = horizon
        self.method = method

    def fit(self, X, y, *, groups=None):
        """Score every candidate on ``(X, y)`` and keep the chosen one; returns ``self``."""
        from bma_models.evaluation import newey_west_lags, newey_west_tstat

        if not self.min_t >= 0:
            raise SettingsError(f"min_t must be >= 0, got {self.min_t}")
        dates, self.group_source_ = row_dates(X, groups)
        ic_average = ICWeightedAverage(temperature=self.temperature, method=self.method)
        ic_average._check_params()
        X, y = validate_data(self, X, y, y_numeric=True)
        k = X.shape[1]
        codes, uniques = pd.factorize(dates, sort=True)
        # every rank and per-date IC is computed once: a member alone (X @ e_j) is exactly
        # its column, and the IC-weighted average's ICs are the members' ICs, in the order
        # its own fit visits the dates (first appearance), so its weights are unchanged
        scored_y = ic_average._scored(y, codes)
        member_ic = [_daily_ic(ic_average._scored(X[:, j], codes), scored_y, codes)
                     for j in range(k)]
        appearance = codes[np.sort(np.unique(codes, return_index=True)[1])]
        ic_average._set_weights([ic[appearance] for ic in member_ic])
        self.ic_weighted_ = ic_average.weights_
        candidates = {"equal": np.full(k, 1.0 / k), "ic_weighted": self.ic_weighted_}
        daily = {name: _daily_ic(ic_average._scored(X @ w, codes), scored_y, codes)
                 for name, w in candidates.items()}
        if self.members:
            candidates.update({f"member:{j}": np.eye(k)[j] for j in range(k)})
            daily.update({f"member:{j}": member_ic[j] for j in range(k)})
        lags = newey_west_lags(len(uniques), self.horizon)
        self.candidate_ic_ = {name: float(np.nanmean(ic)) if np.isfinite(ic).any() else 0.0
                              for name, ic in daily.items()}
        self.candidate_t_ = {name: newey_west_tstat(ic - daily["equal"], lags)
                             for name, ic in daily.items() if name != "equal"}
        # fewer than 3 dates (a plain array is one date) leave no t-statistic: best IC wins
        bar = self.min_t if len(uniques) >= 3 else -np.inf
        proven = [name for name, t in self.candidate_t_.items()
                  if not t < bar and self.candidate_ic_[name] > self.candidate_ic_["equal"]]
        self.choice_ = max(proven, key=self.candidate_ic_.__getitem__) if proven else "equal"
        self.weights_ = candidates[self.choice_]
        logger.debug("%r chose %s (IC %.4f)", self, self.choice_,
                     self.candidate_ic_[self.choice_])
        return self

    def predict(self, X):
        """Return the chosen combination ``X @ weights_``."""
        check_is_fitted(self, "weights_")
        X = validate_data(self, X, reset=False)
        return X @ self.weights_
