"""Factor risk model: market, size, sector and style factors with robust loadings.

``Sigma = B F B' + diag(s^2)`` is estimated from daily returns and kept in
factor form (``B_``, ``F_``, ``specific_var_``) so the optimizer never builds a
dense ``n x n`` matrix. All quantities are in *daily* return units.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from bma_models._risk_math import (
    huber_regression,
    ledoit_wolf_covariance,
    project_to_positive_definite,
)
from bma_models.data.protocol import to_panel
from bma_models.errors import DataError, SettingsError

logger = logging.getLogger(__name__)

__all__ = [
    "FactorRiskModel",
    "average_dollar_volume",
    "rolling_dollar_volume",
    "build_factor_returns",
    "risk_inputs_from_bars",
    "risk_inputs_from_panels",
]

STYLE_FACTORS: tuple[str, ...] = ("momentum", "volatility")
OTHER_SECTOR = "Other"


def risk_inputs_from_bars(bars: pd.DataFrame, reference: pd.DataFrame | None = None) -> dict:
    """Turn protocol bars + reference into the keyword inputs of :meth:`FactorRiskModel.fit`.

    Returns a dict with ``returns`` (close-to-close, dates x tickers),
    ``market_cap`` (dates x tickers or None), ``dollar_volume`` (close x volume)
    and ``sectors`` (Series ticker -> sector, may hold None); see
    :func:`risk_inputs_from_panels`, which it calls on the close and volume panels.
    """
    return risk_inputs_from_panels(to_panel(bars, "close"), to_panel(bars, "volume"), reference)


def risk_inputs_from_panels(close: pd.DataFrame, volume: pd.DataFrame,
                            reference: pd.DataFrame | None = None) -> dict:
    """:func:`risk_inputs_from_bars` from dates x tickers close and volume panels.

    Why a panel form: a backtest fits the risk model point-in-time on many
    dates; it pivots the bars once and passes the trailing window of each date
    (the last row is the date itself, nothing after it is read).

    Why a market-cap *panel*: the size factor sorts on the cap of T-1, so the
    cap must move with the price. We use ``shares_outstanding x close_t``; when
    only ``market_cap`` is known, shares are implied from the last close of the
    panel (the usual constant-shares approximation). Tickers with neither stay NaN.
    """
    returns = close.pct_change(fill_method=None)
    dollar_volume = close * volume
    market_cap = None
    sectors = pd.Series(None, index=close.columns, dtype=object)
    if reference is not None and len(reference):
        ref = reference.drop_duplicates("ticker", keep="last").set_index("ticker")
        ref = ref.reindex(index=close.columns, columns=["sector", "market_cap",
                                                        "shares_outstanding"])
        shares = pd.to_numeric(ref["shares_outstanding"], errors="coerce")
        cap = pd.to_numeric(ref["market_cap"], errors="coerce")
        last_close = close.ffill().iloc[-1]
        shares = shares.where(shares > 0, cap / last_close)
        if shares.notna().any():
            market_cap = close * shares
        sectors = ref["sector"].astype(object).where(ref["sector"].notna(), None)
    return {"returns": returns, "market_cap": market_cap, "dollar_volume": dollar_volume,
            "sectors": sectors}


def average_dollar_volume(bars: pd.DataFrame, window: int = 60) -> pd.Series:
    """Average daily dollar volume (close x volume) over the last ``window`` sessions."""
    close = to_panel(bars, "close").tail(window)
    return rolling_dollar_volume(close, to_panel(bars, "volume").reindex(close.index),
                                 window).iloc[-1].rename("adv")


def rolling_dollar_volume(close: pd.DataFrame, volume: pd.DataFrame,
                          window: int) -> pd.DataFrame:
    """Return the rolling mean dollar volume (close x volume), dates x tickers.

    Each row is the mean of the ``window`` sessions ending at it (missing bars
    skipped; NaN without any). :func:`average_dollar_volume` is its last row;
    the backtest reads every row.
    """
    return (close * volume).rolling(window, min_periods=1).mean()


def build_factor_returns(
    returns: pd.DataFrame,
    size: pd.DataFrame | None,
    sectors: pd.Series,
    style_factors: tuple[str, ...] = STYLE_FACTORS,
    quantile: float = 1 / 3,
    momentum_window: int = 126,
    momentum_skip: int = 21,
    volatility_window: int = 60,
) -> pd.DataFrame:
    """Daily factor returns: market, size (SMB), sector excess and optional style factors.

    Parameters
    ----------
    returns : DataFrame
        Dates x tickers daily returns.
    size : DataFrame or None
        Dates x tickers size measure known at each date's close (market cap or
        average dollar volume). Sorted with a one-session lag, so the size
        return of T comes from a sort on T-1 (no look-ahead). None: no size factor.
    sectors : Series
        Ticker -> sector label (every ticker must have one; see ``FactorRiskModel``).
    style_factors : tuple of str
        Subset of ``("momentum", "volatility")``.
    quantile : float
        Fraction of names in each leg of the long-short sorts (1/3: terciles).

    Returns
    -------
    DataFrame
        Dates x factors. ``market`` is the equal-weighted mean return, ``size``
        the small-minus-big return, ``sector:<name>`` the sector mean minus the
        market, ``momentum`` winners minus losers on the return from
        ``t-1-momentum_window`` to ``t-1-momentum_skip``, ``volatility``
        high minus low trailing volatility (``volatility_window`` sessions, to T-1).
    """
    unknown = set(style_factors) - set(STYLE_FACTORS)
    if unknown:
        raise SettingsError(f"unknown style factors {sorted(unknown)}; known: {STYLE_FACTORS}")
    market = returns.mean(axis=1)
    out = {"market": market}
    if size is not None:
        out["size"] = _long_short(returns, size.shift(1), quantile, low_minus_high=True)
    for sector in sorted(sectors.unique()):
        members = sectors.index[sectors == sector]
        out[f"sector:{sector}"] = returns[members].mean(axis=1) - market
    if "momentum" in style_factors:
        log_ret = np.log1p(returns)
        span = momentum_window - momentum_skip
        signal = log_ret.rolling(span, min_periods=span // 2).sum().shift(momentum_skip + 1)
        out["momentum"] = _long_short(returns, signal, quantile, low_minus_high=False)
    if "volatility" in style_factors:
        signal = returns.rolling(volatility_window, min_periods=volatility_window // 2).std()
        out["volatility"] = _long_short(returns, signal.shift(1), quantile, low_minus_high=False)
    return pd.DataFrame(out, index=returns.index)


def _long_short(returns, signal, quantile, low_minus_high):
    signal = signal.reindex(index=returns.index, columns=returns.columns)
    signal = signal.where(returns.notna())
    pct = signal.rank(axis=1, pct=True)
    low = returns.where(pct <= quantile).mean(axis=1)
    high = returns.where(pct > 1 - quantile).mean(axis=1)
    return low - high if low_minus_high else high - low


class FactorRiskModel(BaseEstimator):
    """Fundamental-style factor risk model with robust time-series loadings.

    Parameters
    ----------
    lookback : int
        Sessions of factor and asset returns used for loadings and covariances.
    huber_epsilon, huber_alpha : float
        Huber threshold and L2 penalty (scikit-learn's ``HuberRegressor`` loss).
    style_factors : tuple of str
        Optional style factors: ``"momentum"``, ``"volatility"`` (``()`` for none).
    size_adv_window : int
        Sessions of dollar volume averaged for the size sort when caps are unknown.
    min_sector_size : int
        Sectors with fewer names are pooled into ``"Other"`` (missing sectors too).
    min_obs : int
        Assets with fewer valid returns in the window get median loadings and
        specific variance (listed in ``thin_history_``).
    eigenvalue_floor : float
        Eigenvalues of ``F`` are clipped to at least this fraction of the largest.
    max_iter, tol : int, float
        Huber IRLS stopping rule.

    Attributes
    ----------
    B_ : DataFrame (n_assets x k)
        Loadings. Each asset loads on market, size, its *own* sector and the style
        factors; loadings on other sectors are zero.
    F_ : DataFrame (k x k)
        Ledoit-Wolf factor covariance projected to positive definite.
    specific_var_ : Series
        Variance of each asset's Huber residuals (ddof=1).
    factor_returns_ : DataFrame
        Factor returns of the fit window.
    sectors_ : Series
        Sector used for each asset (after pooling).
    shrinkage_, n_eigen_clipped_, size_source_, thin_history_, n_iter_

    Notes
    -----
    Why own-sector loadings only: sector excess returns sum to (almost) zero
    across sectors, so regressing every asset on all of them is collinear and
    the robust fit becomes noise. Regressing each asset on market, size, its own
    sector and the styles keeps every system well conditioned, and the batched
    IRLS handles per-asset design matrices as one ``(n, T, p)`` array.

    The size factor uses market caps when any are given, otherwise a
    ``size_adv_window``-session average dollar volume (``size_source_`` says
    which); names with unknown size stay out of the sort.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> rets = pd.DataFrame(rng.normal(0, 0.01, (300, 12)),
    ...                     columns=[f"T{i}" for i in range(12)])
    >>> sectors = pd.Series(["A"] * 6 + ["B"] * 6, index=rets.columns)
    >>> model = FactorRiskModel(lookback=200, style_factors=())
    >>> model = model.fit(rets, dollar_volume=rets.abs() * 1e6, sectors=sectors)
    >>> model.B_.shape, model.F_.shape
    ((12, 4), (4, 4))
    """

    def __init__(self, lookback=252, huber_epsilon=1.35, huber_alpha=1e-4,
                 style_factors=STYLE_FACTORS, size_adv_window=60, min_sector_size=3,
                 min_obs=60, eigenvalue_floor=1e-8, max_iter=200, tol=1e-8):
        self.lookback = lookback
        self.huber_epsilon = huber_epsilon
        self.huber_alpha = huber_alpha
        self.style_factors = style_factors
        self.size_adv_window = size_adv_window
        self.min_sector_size = min_sector_size
        self.min_obs = min_obs
        self.eigenvalue_floor = eigenvalue_floor
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, returns, y=None, market_cap=None, dollar_volume=None, sectors=None,
            factor_returns=None):
        """Estimate factor returns, loadings, factor covariance and specific risk.

        Parameters
        ----------
        returns : DataFrame
            Dates x tickers daily returns (NaN where no bar). Include extra history
            before the ``lookback`` window if style factors are used.
        y : ignored
        market_cap : DataFrame or Series, optional
            Dates x tickers caps (or a static Series per ticker).
        dollar_volume : DataFrame, optional
            Dates x tickers daily dollar volume, used for size when caps are unknown.
        sectors : Series, optional
            Ticker -> sector. Missing: everything in ``"Other"``.
        factor_returns : DataFrame, optional
            :meth:`factor_returns` of the same inputs on a span that covers the
            dates of ``returns`` (a backtest computes them once for all its fit
            dates; each row only uses data up to its date). None: computed here.

        Returns
        -------
        self

        Raises
        ------
        DataError
            Fewer than ``min_obs`` complete factor-return sessions, no size
            input, or ``factor_returns`` without this universe's sector factors.
        """
        returns = self._validate_returns(returns)
        sectors_used = self._pool_sectors(returns.columns, sectors)
        if factor_returns is None:
            factors = self._factor_returns(returns, market_cap, dollar_volume, sectors_used)
        else:
            factors = self._given_factors(factor_returns, returns.index, sectors_used)
        factors = factors.dropna(how="any").tail(self.lookback)
        if len(factors) < self.min_obs:
            raise DataError(
                f"only {len(factors)} sessions with every factor return known "
                f"(need min_obs={self.min_obs}); supply more history"
            )
        window = returns.loc[factors.index]
        self._fit_loadings(window, factors, sectors_used)
        cov, self.shrinkage_ = ledoit_wolf_covariance(factors.to_numpy())
        cov, self.n_eigen_clipped_ = project_to_positive_definite(cov, self.eigenvalue_floor)
        self.F_ = pd.DataFrame(cov, index=factors.columns, columns=factors.columns)
        self.factor_returns_ = factors
        self.sectors_ = sectors_used
        logger.info("fitted %r: %d assets, %d factors, %d sessions, shrinkage %.3f",
                    self, len(self.B_), len(self.F_), len(factors), self.shrinkage_)
        return self

    def factor_returns(self, returns, market_cap=None, dollar_volume=None,
                       sectors=None) -> pd.DataFrame:
        """Return the daily factor returns :meth:`fit` regresses on, for every date of ``returns``.

        Row ``t`` uses returns, sizes and sectors up to ``t`` only (the size and
        style sorts are lagged), so one call on a long history serves fits on
        any trailing window through ``fit(..., factor_returns=...)``, provided
        the size measure itself is known at each date (caps from share counts,
        or dollar volume). Incomplete sessions are kept (as NaN).
        """
        returns = self._validate_returns(returns)
        sectors_used = self._pool_sectors(returns.columns, sectors)
        return self._factor_returns(returns, market_cap, dollar_volume, sectors_used)

    def portfolio_variance(self, weights) -> float:
        """Daily variance ``w' (B F B' + diag(s^2)) w`` of a weight vector or Series."""
        w = self._align(weights)
        exposure = self.B_.to_numpy().T @ w
        return float(exposure @ self.F_.to_numpy() @ exposure
                     + np.sum(self.specific_var_.to_numpy() * w**2))

    def risk_contributions(self, weights) -> pd.Series:
        """Euler contributions ``w_i (Sigma w)_i`` to the portfolio variance (they sum to it)."""
        w = self._align(weights)
        sigma_w = self._sigma_times(w)
        return pd.Series(w * sigma_w, index=self.B_.index, name="risk_contribution")

    def total_volatility(self) -> pd.Series:
        """Daily total volatility of each asset, ``sqrt(diag(Sigma))``."""
        B = self.B_.to_numpy()
        systematic = np.einsum("ik,kl,il->i", B, self.F_.to_numpy(), B)
        return pd.Series(np.sqrt(systematic + self.specific_var_.to_numpy()),
                         index=self.B_.index, name="volatility")

    def covariance(self) -> pd.DataFrame:
        """Dense ``n x n`` covariance (for reports and tests; the optimizer never needs it)."""
        B = self.B_.to_numpy()
        sigma = B @ self.F_.to_numpy() @ B.T + np.diag(self.specific_var_.to_numpy())
        return pd.DataFrame(sigma, index=self.B_.index, columns=self.B_.index)

    # -- fit helpers -------------------------------------------------------------------------

    def _validate_returns(self, returns):
        if not isinstance(returns, pd.DataFrame) or returns.shape[1] == 0:
            raise DataError("returns must be a non-empty dates x tickers DataFrame")
        if self.lookback < self.min_obs:
            raise SettingsError(f"lookback={self.lookback} is below min_obs={self.min_obs}")
        return returns.sort_index().astype("float64")

    def _factor_returns(self, returns, market_cap, dollar_volume, sectors_used):
        size = self._size_measure(returns, market_cap, dollar_volume)
        return build_factor_returns(returns, size, sectors_used, tuple(self.style_factors))

    def _given_factors(self, factor_returns, dates, sectors_used):
        needed = {f"sector:{s}" for s in sectors_used.unique()}
        missing = sorted(needed - set(factor_returns.columns))
        if missing:
            raise DataError(f"factor_returns lack the sector factors {missing[:5]} of this "
                            "universe (computed with other sectors?)")
        self.size_source_ = "given factor returns"
        return factor_returns.reindex(dates)

    def _pool_sectors(self, tickers, sectors):
        if sectors is None:
            return pd.Series(OTHER_SECTOR, index=tickers, dtype=object)
        labels = pd.Series(sectors, dtype=object).reindex(tickers)
        labels = labels.where(labels.notna(), OTHER_SECTOR).astype(str)
        counts = labels.value_counts()
        small = counts.index[counts < self.min_sector_size]
        if len(small):
            logger.info("pooling small sectors %s into %r", sorted(small), OTHER_SECTOR)
        return labels.where(~labels.isin(small), OTHER_SECTOR).rename("sector")

    def _size_measure(self, returns, market_cap, dollar_volume):
        if market_cap is not None:
            caps = market_cap
            if isinstance(caps, pd.Series):
                caps = pd.DataFrame(np.tile(caps.reindex(returns.columns).to_numpy(),
                                            (len(returns), 1)),
                                    index=returns.index, columns=returns.columns)
            caps = caps.reindex(index=returns.index, columns=returns.columns)
            if caps.notna().to_numpy().any():
                self.size_source_ = "market_cap"
                return caps
        if dollar_volume is None:
            raise DataError("size factor needs market_cap or dollar_volume; got neither")
        self.size_source_ = "dollar_volume"
        dv = dollar_volume.reindex(index=returns.index, columns=returns.columns)
        window = self.size_adv_window
        return dv.rolling(window, min_periods=max(1, window // 3)).mean()

    def _fit_loadings(self, window, factors, sectors):
        names = list(factors.columns)
        sector_cols = [c for c in names if c.startswith("sector:")]
        common = [c for c in names if c not in sector_cols]
        own = np.array([names.index(f"sector:{s}") for s in sectors.to_numpy()])
        fac = factors.to_numpy()
        X = np.concatenate(
            [np.broadcast_to(fac[:, [names.index(c) for c in common]],
                             (len(own),) + (len(fac), len(common))),
             fac[:, own].T[:, :, None]], axis=2)
        y = window.to_numpy().T
        fit = huber_regression(X, y, epsilon=self.huber_epsilon, alpha=self.huber_alpha,
                               max_iter=self.max_iter, tol=self.tol)
        self.n_iter_ = fit.n_iter
        if not fit.converged.all():
            logger.warning("Huber IRLS did not converge for %d assets in %d iterations",
                           int((~fit.converged).sum()), fit.n_iter)
        resid = y - np.einsum("ntp,np->nt", X, fit.coef) - fit.intercept[:, None]
        resid = np.where(np.isfinite(y), resid, np.nan)
        n_valid = np.isfinite(y).sum(axis=1)
        # an asset with < 2 returns has no sample variance (NaN); _fill_thin_history replaces it
        spec = np.zeros(len(y)) if y.shape[1] <= 1 else np.full(len(y), np.nan)
        enough = n_valid > 1
        if y.shape[1] > 1 and enough.any():
            spec[enough] = np.nanvar(resid[enough], axis=1, ddof=1)
        B = np.zeros((len(own), len(names)))
        B[:, [names.index(c) for c in common]] = fit.coef[:, : len(common)]
        B[np.arange(len(own)), own] = fit.coef[:, -1]
        self._fill_thin_history(B, spec, n_valid, own, window.columns)
        self.B_ = pd.DataFrame(B, index=window.columns, columns=names)
        self.specific_var_ = pd.Series(np.maximum(spec, 1e-12), index=window.columns,
                                       name="specific_var")

    def _fill_thin_history(self, B, spec, n_valid, own, tickers):
        thin = n_valid < self.min_obs
        self.thin_history_ = list(tickers[thin])
        if not thin.any():
            return
        if thin.all():
            raise DataError(f"no asset has min_obs={self.min_obs} valid returns in the window")
        logger.warning("%d assets have fewer than %d returns; using median loadings: %s",
                       int(thin.sum()), self.min_obs, self.thin_history_[:10])
        median_row = np.median(B[~thin], axis=0)
        own_median = np.median(B[~thin, own[~thin]])
        for i in np.flatnonzero(thin):
            B[i] = np.where(np.arange(B.shape[1]) == own[i], own_median, 0.0)
            common = [j for j in range(B.shape[1]) if j not in set(own)]
            B[i, common] = median_row[common]
        spec[thin] = np.median(spec[~thin])

    # -- algebra helpers -----------------------------------------------------------------------

    def _align(self, weights):
        if isinstance(weights, pd.Series):
            return weights.reindex(self.B_.index).fillna(0.0).to_numpy(dtype=float)
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(self.B_),):
            raise DataError(f"weights have shape {w.shape}; expected ({len(self.B_)},)")
        return w

    def _sigma_times(self, w):
        B = self.B_.to_numpy()
        return B @ (self.F_.to_numpy() @ (B.T @ w)) + self.specific_var_.to_numpy() * w
