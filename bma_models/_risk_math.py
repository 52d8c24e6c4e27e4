"""Numerical kernels of the factor risk model: batched Huber IRLS, Ledoit-Wolf, PD projection.

Kept apart from :mod:`bma_models.risk` so the estimator module stays about the
model (factors, loadings, covariance) and these stay testable against
scikit-learn on tiny arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_TINY = 1e-300


class HuberFit(NamedTuple):
    """Result of :func:`huber_regression` (one row per asset)."""

    coef: np.ndarray  # (n_assets, n_features)
    intercept: np.ndarray  # (n_assets,)
    scale: np.ndarray  # (n_assets,)
    n_iter: int
    converged: np.ndarray  # (n_assets,) bool


def huber_objective(X, y, coef, intercept, scale, epsilon=1.35, alpha=1e-4, mask=None):
    """Value of scikit-learn's joint Huber objective for one or many assets.

    ``sum_t [scale + H(r_t / scale) * scale] + alpha * ||coef||^2`` with
    ``H(z) = z^2`` for ``|z| <= epsilon`` and ``2 epsilon |z| - epsilon^2``
    otherwise (Owen 2007), exactly the loss ``sklearn.linear_model.HuberRegressor``
    minimises. Shapes follow :func:`huber_regression`.
    """
    Xb, yb, mb, single = _as_batch(X, y, mask)
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    intercept = np.atleast_1d(np.asarray(intercept, dtype=float))
    scale = np.atleast_1d(np.asarray(scale, dtype=float))
    resid = yb - np.einsum("ntp,np->nt", Xb, coef) - intercept[:, None]
    value = _huber_loss(np.abs(resid), mb, scale, epsilon) + alpha * np.sum(coef**2, axis=1)
    return float(value[0]) if single else value


def huber_regression(X, y, mask=None, epsilon=1.35, alpha=1e-4, max_iter=200, tol=1e-10):
    """Robust Huber regression of many assets at once by alternating IRLS.

    Minimises the same objective as ``sklearn.linear_model.HuberRegressor``
    (joint in coefficients, intercept and scale ``sigma``, L2 penalty ``alpha``
    on the slopes only), for every asset in one vectorised loop.

    Parameters
    ----------
    X : ndarray, shape (T, p) or (n_assets, T, p)
        Regressors without an intercept column; a 2-D ``X`` is shared by all assets.
    y : ndarray, shape (T,) or (n_assets, T)
        Responses; NaN entries are ignored (same as ``mask=False``).
    mask : ndarray of bool, optional
        Which observations enter each asset's fit.
    epsilon, alpha : float
        Huber threshold (in units of ``sigma``) and L2 penalty, as in scikit-learn.
    max_iter, tol : int, float
        Stop when coefficients and scale move less than ``tol`` (relative).

    Returns
    -------
    HuberFit
        Coefficients, intercepts, scales, iterations used and per-asset convergence.

    Notes
    -----
    Why alternate: for a fixed ``beta`` the objective is convex and piecewise
    in ``sigma``, so the exact minimiser is found by sorting the absolute
    residuals; for a fixed ``sigma`` one reweighted least-squares step (weight 1
    for inliers, ``epsilon*sigma/|r|`` for outliers) is a majorise-minimise
    step. Both steps never increase the jointly convex objective, so the loop
    converges to scikit-learn's optimum while solving all assets with batched
    ``p x p`` systems instead of hundreds of L-BFGS fits.
    """
    Xb, yb, mb, single = _as_batch(X, y, mask)
    n_assets, _, n_features = Xb.shape
    Xa = np.concatenate([np.ones(Xb.shape[:2] + (1,)), Xb], axis=2)
    penalty = np.eye(n_features + 1)
    penalty[0, 0] = 0.0
    beta = _weighted_solve(Xa, yb, mb.astype(float), np.full(n_assets, 1e-10), penalty)
    resid = yb - np.matmul(Xa, beta[:, :, None])[:, :, 0]
    scale = _scale_step(np.abs(resid), mb, epsilon, fallback=np.ones(n_assets))
    converged = np.zeros(n_assets, dtype=bool)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        abs_resid = np.abs(resid)
        weights = np.where(abs_resid <= epsilon * scale[:, None], 1.0,
                           epsilon * scale[:, None] / np.maximum(abs_resid, _TINY))
        weights = weights * mb
        new_beta = _weighted_solve(Xa, yb, weights, alpha * scale, penalty)
        resid = yb - np.matmul(Xa, new_beta[:, :, None])[:, :, 0]
        new_scale = _scale_step(np.abs(resid), mb, epsilon, fallback=scale)
        step = np.max(np.abs(new_beta - beta), axis=1) / (1.0 + np.max(np.abs(beta), axis=1))
        scale_step = np.abs(new_scale - scale) / np.maximum(scale, _TINY)
        converged = (step < tol) & (scale_step < tol)
        beta, scale = new_beta, new_scale
        if converged.all():
            break
    fit = HuberFit(beta[:, 1:], beta[:, 0], scale, n_iter, converged)
    if single:
        return HuberFit(fit.coef[0], fit.intercept[0], fit.scale[0], n_iter, converged[:1])
    return fit


def ledoit_wolf_covariance(X: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of the columns of ``X`` (rows are observations).

    Same estimator as ``sklearn.covariance.LedoitWolf`` (centred data, biased
    sample covariance shrunk towards ``mu * I`` with the Ledoit-Wolf 2004
    intensity), written in numpy so the risk model needs no estimator objects.

    Returns
    -------
    covariance : ndarray, shape (k, k)
    shrinkage : float in [0, 1]
    """
    X = np.asarray(X, dtype=float)
    n_samples, n_features = X.shape
    Xc = X - X.mean(axis=0)
    emp_cov = Xc.T @ Xc / n_samples
    X2 = Xc**2
    emp_cov_trace = X2.sum(axis=0) / n_samples
    mu = emp_cov_trace.sum() / n_features
    beta_ = np.sum(X2.T @ X2)
    delta_ = np.sum((Xc.T @ Xc) ** 2) / n_samples**2
    beta = (beta_ / n_samples - delta_) / (n_features * n_samples)
    delta = (delta_ - 2.0 * mu * emp_cov_trace.sum() + n_features * mu**2) / n_features
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else float(beta / delta)
    covariance = (1.0 - shrinkage) * emp_cov
    covariance.flat[:: n_features + 1] += shrinkage * mu
    return covariance, shrinkage


def project_to_positive_definite(matrix: np.ndarray, min_eigenvalue_ratio: float = 1e-8):
    """Symmetrise and clip eigenvalues to at least ``ratio * max eigenvalue``.

    Returns the projected matrix and the number of eigenvalues that were raised.
    """
    sym = 0.5 * (np.asarray(matrix, dtype=float) + np.asarray(matrix, dtype=float).T)
    eigval, eigvec = np.linalg.eigh(sym)
    floor = max(float(eigval.max()) * min_eigenvalue_ratio, 1e-18)
    n_clipped = int(np.sum(eigval < floor))
    if n_clipped == 0:
        return sym, 0
    clipped = (eigvec * np.maximum(eigval, floor)) @ eigvec.T
    return 0.5 * (clipped + clipped.T), n_clipped


def _as_batch(X, y, mask):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    single = y.ndim == 1
    yb = y[None, :] if single else y
    if X.ndim == 2:
        X = np.broadcast_to(X, (yb.shape[0],) + X.shape)
    mb = np.isfinite(yb) & np.all(np.isfinite(X), axis=2)
    if mask is not None:
        mb &= np.asarray(mask, dtype=bool).reshape(yb.shape)
    yb = np.where(mb, yb, 0.0)
    X = np.where(mb[:, :, None], X, 0.0)
    return X, yb, mb, single


def _weighted_solve(Xa, y, weights, ridge, penalty):
    weighted = Xa * weights[:, :, None]
    lhs = np.matmul(weighted.transpose(0, 2, 1), Xa) + ridge[:, None, None] * penalty
    # A deterministic 1e-12 diagonal keeps assets without observations solvable.
    lhs += 1e-12 * np.eye(Xa.shape[2])
    rhs = np.matmul(weighted.transpose(0, 2, 1), y[:, :, None])[:, :, 0]
    return np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]


def _huber_loss(abs_resid, mask, scale, epsilon):
    s = scale[:, None]
    inlier = abs_resid <= epsilon * s
    per_obs = np.where(inlier, s + abs_resid**2 / s, s + 2 * epsilon * abs_resid - epsilon**2 * s)
    return np.sum(np.where(mask, per_obs, 0.0), axis=1)


def _scale_step(abs_resid, mask, epsilon, fallback):
    # Exact minimiser of the objective in sigma for fixed residuals. With the k
    # smallest residuals as inliers, stationarity gives
    # sigma_k^2 = sum_{j<=k} r_j^2 / (n - epsilon^2 (n - k)); the minimiser is the
    # k whose sigma_k keeps exactly those k residuals within epsilon * sigma_k.
    n_assets, n_obs = abs_resid.shape
    ordered = np.sort(np.where(mask, abs_resid, np.inf), axis=1)
    n_valid = mask.sum(axis=1)[:, None]
    k = np.arange(1, n_obs + 1)[None, :]
    cum_sq = np.cumsum(np.where(np.isfinite(ordered), ordered, 0.0) ** 2, axis=1)
    denom = n_valid - epsilon**2 * (n_valid - k)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.sqrt(np.where(denom > 0, cum_sq / denom, np.nan))
    nxt = np.concatenate([ordered[:, 1:], np.full((n_assets, 1), np.inf)], axis=1)
    valid = (k <= n_valid) & (ordered <= epsilon * sigma * (1 + 1e-12))
    valid &= nxt >= epsilon * sigma * (1 - 1e-12)
    has = valid.any(axis=1)
    first = np.argmax(valid, axis=1)
    chosen = sigma[np.arange(n_assets), first]
    out = np.where(has & (chosen > 0), chosen, fallback)
    return np.maximum(out, 1e-12)
