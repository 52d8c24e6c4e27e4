"""Market regimes from a composite index, and regime-weighted fusion with the ML score.

Regime states are decided at each date's close from data up to that date only:
the volatility and trend thresholds are quantiles over an expanding (or
rolling) window that *ends* at the date, never over the full sample.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bma_models.data.protocol import to_panel
from bma_models.errors import DataError, SettingsError
from bma_models.evaluation import DateRanks, within_date_ranks
from bma_models.settings import CATEGORIES, DEFAULT_REGIME_WEIGHTS, REGIMES, regime_row_problem

logger = logging.getLogger(__name__)

__all__ = [
    "CATEGORIES",
    "DEFAULT_REGIME_WEIGHTS",
    "REGIMES",
    "RegimeFusion",
    "detect_regimes",
    "regime_row_problem",
    "market_index",
]

def market_index(bars: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.Series:
    """Daily return of a composite index of the universe.

    Cap-weighted with T-1 caps (``shares_outstanding x close``, shares implied
    from ``market_cap / last close`` when only the cap is known) when any cap
    is known; names without a cap get the median cap of those with one.
    Equal-weighted when no cap is known at all.

    Returns
    -------
    Series
        ``market_return`` indexed by date; the first date (no prior close) is dropped.
    """
    close = to_panel(bars, "close")
    if close.shape[0] < 2:
        raise DataError("market_index needs at least two sessions of bars")
    returns = close.pct_change(fill_method=None).iloc[1:]
    shares = _implied_shares(close, reference)
    if shares is None:
        weights = pd.DataFrame(1.0, index=close.index, columns=close.columns)
        logger.info("no market caps known: equal-weighted market index")
    else:
        caps = close.ffill() * shares
        median_cap = caps.median(axis=1)
        weights = caps.apply(lambda col: col.fillna(median_cap))
    weights = weights.shift(1).iloc[1:].where(returns.notna())
    total = weights.sum(axis=1)
    index_return = (weights * returns).sum(axis=1) / total.where(total > 0)
    return index_return.dropna().rename("market_return")


def _implied_shares(close, reference):
    if reference is None or len(reference) == 0:
        return None
    ref = reference.drop_duplicates("ticker", keep="last").set_index("ticker")
    ref = ref.reindex(index=close.columns, columns=["market_cap", "shares_outstanding"])
    shares = pd.to_numeric(ref["shares_outstanding"], errors="coerce")
    caps = pd.to_numeric(ref["market_cap"], errors="coerce")
    shares = shares.where(shares > 0, caps / close.ffill().iloc[-1])
    return shares if shares.notna().any() else None


def detect_regimes(index_returns: pd.Series, vol_window: int = 21, trend_window: int = 21,
                   threshold_window: int | None = None, min_history: int = 63,
                   low_quantile: float = 1 / 3, high_quantile: float = 2 / 3) -> pd.DataFrame:
    """Classify each date into Bull, Bear, High-vol, Low-vol or Normal.

    Parameters
    ----------
    index_returns : Series
        Daily market returns indexed by date (e.g. :func:`market_index`).
    vol_window, trend_window : int
        Sessions for the rolling volatility (annualised std) and the trend
        (sum of log returns).
    threshold_window : int or None
        None: thresholds are quantiles over all dates up to and including ``t``
        (expanding); an int: over the last ``threshold_window`` dates.
    min_history : int
        Observations of vol/trend needed before thresholds exist; earlier
        dates are labelled ``Normal`` and have NaN thresholds.
    low_quantile, high_quantile : float
        Threshold quantiles (33rd and 67th percentiles by default).

    Returns
    -------
    DataFrame
        Indexed by ``date`` with columns ``vol, trend, vol_lo, vol_hi,
        trend_lo, trend_hi, state``.

    Notes
    -----
    Rules, first match wins: ``vol > vol_hi`` -> High-vol; ``trend > trend_hi``
    -> Bull; ``trend < trend_lo`` -> Bear; ``vol < vol_lo`` -> Low-vol; else
    Normal. High volatility is checked first because it changes which factors
    work regardless of direction. Every column at ``t`` depends only on returns
    up to ``t``, so changing later returns never changes an earlier state.

    Examples
    --------
    >>> rets = pd.Series(np.r_[np.tile([0.01, -0.01], 40), np.full(20, 0.004)],
    ...                  index=pd.bdate_range("2024-01-01", periods=100))
    >>> detect_regimes(rets, min_history=20)["state"].iloc[-1]
    'Bull'
    """
    if not 0 < low_quantile < high_quantile < 1:
        raise SettingsError(f"need 0 < low_quantile < high_quantile < 1; got "
                            f"{low_quantile}, {high_quantile}")
    returns = pd.Series(index_returns, dtype="float64").sort_index()
    vol = returns.rolling(vol_window, min_periods=vol_window).std() * np.sqrt(252)
    trend = np.log1p(returns).rolling(trend_window, min_periods=trend_window).sum()
    out = pd.DataFrame({"vol": vol, "trend": trend})
    for name, series in (("vol", vol), ("trend", trend)):
        if threshold_window is None:
            window = series.expanding(min_periods=min_history)
        else:
            window = series.rolling(threshold_window, min_periods=min(min_history,
                                                                      threshold_window))
        out[f"{name}_lo"] = window.quantile(low_quantile)
        out[f"{name}_hi"] = window.quantile(high_quantile)
    out["state"] = _states(out)
    out.index.name = "date"
    return out[["vol", "trend", "vol_lo", "vol_hi", "trend_lo", "trend_hi", "state"]]


def _states(frame):
    conditions = [frame["vol"] > frame["vol_hi"], frame["trend"] > frame["trend_hi"],
                  frame["trend"] < frame["trend_lo"], frame["vol"] < frame["vol_lo"]]
    labels = np.select([c.to_numpy() for c in conditions],
                       ["High-vol", "Bull", "Bear", "Low-vol"], default="Normal")
    return pd.Series(labels, index=frame.index, dtype=object)


class RegimeFusion:
    """Fuse the stack's prediction with regime-weighted alpha-factor ranks.

    ``fused = w_ml * rank(prediction) + (1 - w_ml) * composite`` per date, where
    ranks are cross-sectional percentiles in (0, 1] and ``composite`` is the
    regime's category-weighted mean of the category scores (each category
    score is the mean rank of its factors, signed so higher is better).

    Parameters
    ----------
    w_ml : float
        Weight of the ML prediction rank (0.7 by default).
    regime_weights : dict, optional
        ``{regime: {category: relative weight}}`` (the ``research.regime.weights``
        key); default :data:`DEFAULT_REGIME_WEIGHTS`.
    factor_categories : dict
        ``{factor column: category}`` for every factor column passed to
        :meth:`fuse`; categories are those of :data:`CATEGORIES`.
    factor_signs : dict, optional
        ``{factor column: +1 or -1}``. ``+1`` (the default for unlisted factors)
        means *higher value is better*; use ``-1`` for e.g. a raw short-term
        return feeding the reversion category or a volatility level when low
        volatility is preferred.

    Notes
    -----
    Why ranks: the stack prediction and each factor live on different scales;
    percentile ranks per date make them commensurable and robust to outliers.
    Categories missing on a date (all their factors NaN) drop out and the
    remaining regime weights are renormalised; a row with no factor value at
    all gets the ML rank alone. The fusion has no fitted
    parameters, so with out-of-sample predictions the fused score is itself
    out of sample and is evaluated like any model's prediction.

    Examples
    --------
    >>> idx = pd.MultiIndex.from_product([pd.to_datetime(["2024-01-02"]), ["A", "B"]],
    ...                                  names=["date", "ticker"])
    >>> pred = pd.Series([0.1, 0.2], index=idx)
    >>> facs = pd.DataFrame({"mom_20": [2.0, 1.0]}, index=idx)
    >>> states = pd.Series(["Bull"], index=pd.to_datetime(["2024-01-02"]))
    >>> fusion = RegimeFusion(factor_categories={"mom_20": "momentum"})
    >>> fusion.fuse(pred, facs, states).round(2).tolist()
    [0.65, 0.85]
    """

    def __init__(self, w_ml=0.7, regime_weights=None, factor_categories=None,
                 factor_signs=None):
        self.w_ml = w_ml
        self.regime_weights = regime_weights
        self.factor_categories = factor_categories
        self.factor_signs = factor_signs

    def fuse(self, predictions, factors: pd.DataFrame, regimes, *,
             factor_ranks: DateRanks | None = None) -> pd.Series:
        """Fused score on the ``(date, ticker)`` index of ``predictions``.

        Parameters
        ----------
        predictions : Series or single-column DataFrame
            Stack prediction on a ``(date, ticker)`` MultiIndex.
        factors : DataFrame
            Factor values on the same kind of index, one column per factor.
        regimes : Series or DataFrame
            State per date (a ``state`` column of :func:`detect_regimes` or a Series).
            Dates without a state use ``Normal``.
        factor_ranks : DateRanks, optional
            ``DateRanks.of(factors)``, when the caller has it anyway: the
            factors' ranks are then taken from it instead of being recomputed
            (same numbers). ``predictions`` must then cover every row of
            ``factors`` on each of its dates (a :class:`DataError` otherwise).

        Returns
        -------
        Series named ``fused_score``; NaN where the prediction is NaN.
        """
        weights = self._validated_weights()
        pred = predictions.iloc[:, 0] if isinstance(predictions, pd.DataFrame) else predictions
        _require_multiindex(pred, "predictions")
        _require_multiindex(factors, "factors")
        categories = self._factor_categories(factors.columns)
        ml_rank = _percentile_ranks_by_date(pred)
        if factor_ranks is None:
            scores = self.category_scores(factors.reindex(pred.index))
        else:
            if not (factor_ranks.index.equals(factors.index)
                    and factor_ranks.columns.equals(factors.columns)):
                raise DataError("factor_ranks were not computed on these factors")
            scores = self._category_means(
                factor_ranks.percentiles(pred.index, self.factor_signs), categories)
        composite = self._composite(scores, regimes, weights)
        fused = self.w_ml * ml_rank + (1.0 - self.w_ml) * composite.fillna(ml_rank)
        return fused.where(pred.notna()).rename("fused_score")

    def category_scores(self, factors: pd.DataFrame) -> pd.DataFrame:
        """Per-date mean signed rank of the factors of each category (dates x tickers rows)."""
        _require_multiindex(factors, "factors")
        categories = self._factor_categories(factors.columns)
        signs = self.factor_signs or {}
        signed = factors * pd.Series({c: float(signs.get(c, 1.0)) for c in factors.columns})
        return self._category_means(_percentile_ranks_by_date(signed), categories)

    @staticmethod
    def _category_means(ranks: pd.DataFrame, categories: dict) -> pd.DataFrame:
        scores = {cat: ranks[[c for c in ranks.columns if categories[c] == cat]].mean(axis=1)
                  for cat in CATEGORIES if cat in categories.values()}
        return pd.DataFrame(scores, index=ranks.index)

    def _composite(self, scores, regimes, weights):
        state = _state_series(regimes)
        dates = scores.index.get_level_values(0)
        row_state = state.reindex(dates).fillna("Normal").to_numpy()
        per_regime = np.array([[weights[r].get(c, 0.0) for c in scores.columns]
                               for r in REGIMES]).reshape(len(REGIMES), len(scores.columns))
        codes = pd.Categorical(row_state, categories=list(REGIMES)).codes
        weight_matrix = per_regime[codes]
        values = scores.to_numpy()
        present = np.isfinite(values)
        w = np.where(present, weight_matrix, 0.0)
        total = w.sum(axis=1)
        combined = np.where(present, values, 0.0) * w
        with np.errstate(invalid="ignore", divide="ignore"):
            composite = np.where(total > 0, combined.sum(axis=1) / total, np.nan)
        return pd.Series(composite, index=scores.index)

    def _validated_weights(self):
        if not 0.0 <= self.w_ml <= 1.0:
            raise SettingsError(f"w_ml must be in [0, 1]; got {self.w_ml}")
        weights = self.regime_weights or DEFAULT_REGIME_WEIGHTS
        unknown = set(weights) - set(REGIMES)
        missing = set(REGIMES) - set(weights)
        if unknown or missing:
            raise SettingsError(f"regime_weights must cover exactly {REGIMES}; unknown "
                                f"{sorted(unknown)}, missing {sorted(missing)}")
        for regime, row in weights.items():
            problem = regime_row_problem(row)
            if problem:
                raise SettingsError(f"regime_weights[{regime!r}] = {dict(row)}: {problem}")
        return weights

    def _factor_categories(self, columns):
        mapping: Mapping[str, str] = self.factor_categories or {}
        unmapped = [c for c in columns if c not in mapping]
        if unmapped:
            raise SettingsError(f"factors without a category: {unmapped}; pass "
                                f"factor_categories={{name: one of {CATEGORIES}}}")
        bad = {c: mapping[c] for c in columns if mapping[c] not in CATEGORIES}
        if bad:
            raise SettingsError(f"unknown categories {bad}; known: {CATEGORIES}")
        return {c: mapping[c] for c in columns}


def _percentile_ranks_by_date(frame: pd.DataFrame | pd.Series):
    """``frame.groupby(level=0).rank(pct=True)``: average ties, NaN kept, per column.

    Why not the groupby: :func:`~bma_models.evaluation.within_date_ranks` sorts
    each date's names as one row of a dense panel, several times faster on the
    27 factor columns of a 500 x 1260 panel, with the same numbers.
    """
    codes = pd.factorize(frame.index.get_level_values(0))[0]
    values = frame.to_numpy(dtype=float)
    columns = values.reshape(len(values), -1)
    out = np.full(columns.shape, np.nan)
    for j in range(columns.shape[1]):
        present = ~np.isnan(columns[:, j])
        average, _, sizes = within_date_ranks(columns[present, j], codes[present],
                                              first=False)
        out[present, j] = average / sizes[codes[present]]
    if isinstance(frame, pd.Series):
        return pd.Series(out[:, 0], index=frame.index, name=frame.name)
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _require_multiindex(obj, name):
    if not isinstance(obj.index, pd.MultiIndex) or obj.index.nlevels != 2:
        raise DataError(f"{name} must be indexed by a (date, ticker) MultiIndex")


def _state_series(regimes):
    if isinstance(regimes, pd.DataFrame):
        if "state" not in regimes.columns:
            raise DataError("regimes frame has no 'state' column (see detect_regimes)")
        regimes = regimes["state"]
    unknown = set(pd.unique(regimes.dropna())) - set(REGIMES)
    if unknown:
        raise DataError(f"unknown regime states {sorted(unknown)}; known: {REGIMES}")
    return regimes
