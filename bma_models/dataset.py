"""Bars -> (features, label, relevance) for training, plus the inference cross-section."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bma_models import labels
from bma_models.errors import DataError, SettingsError
from bma_models.factors import FactorSpec, compute_factors, cross_sectional_process

logger = logging.getLogger(__name__)

DEFAULT_BASE_LAG = 1
DEFAULT_SAFETY_GAP = 3


@dataclass(frozen=True)
class DatasetMeta:
    """Everything :func:`build_dataset` knows besides the training rows.

    Attributes
    ----------
    X_infer : DataFrame
        Processed features of the prediction date (one row per ticker).
    prediction_date : Timestamp
        The last market session of the bars.
    unlabelled : DataFrame
        Processed features of every row whose label is not known yet (the last
        ``horizon`` sessions, including the prediction date).
    feature_asof : Series
        Source date of the training rows' features.
    lag, horizon : int
        Total feature lag and label horizon, in market sessions.
    factor_names : tuple of str
    market_dates : DatetimeIndex
        The session grid every count refers to.
    dropped_rows : int
        Labelled rows dropped because a feature was still NaN after imputation
        (warm-up dates on which a factor is NaN for the whole cross-section).
    """

    X_infer: pd.DataFrame
    prediction_date: pd.Timestamp
    unlabelled: pd.DataFrame
    feature_asof: pd.Series
    lag: int
    horizon: int
    factor_names: tuple[str, ...]
    market_dates: pd.DatetimeIndex
    dropped_rows: int


def _sectors(reference: pd.DataFrame | None) -> pd.Series | None:
    if reference is None or "sector" not in reference.columns:
        return None
    sectors = reference.drop_duplicates("ticker", keep="last").set_index("ticker")["sector"]
    return sectors if sectors.notna().any() else None


def build_dataset(
    bars: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    specs: Mapping[str, FactorSpec] | Iterable[FactorSpec | str] | None = None,
    horizon: int = 5,
    base_lag: int = DEFAULT_BASE_LAG,
    safety_gap: int = DEFAULT_SAFETY_GAP,
    n_buckets: int = 5,
    lower: float = 0.01,
    upper: float = 0.99,
    sector_neutral: bool = True,
    n_jobs: int = 1,
    factors: pd.DataFrame | None = None,
    entry: str = "close",
) -> tuple[pd.DataFrame, pd.Series, pd.Series, DatasetMeta]:
    """Run factors -> lag -> cross-section -> labels -> alignment check.

    Parameters
    ----------
    bars, reference : DataFrame
        Protocol bars and reference data (sectors for de-meaning, shares for
        turnover).
    specs : optional
        Factor selection, see :func:`~bma_models.factors.compute_factors`.
    horizon : int
        Label horizon in sessions (window ``T+1 .. T+horizon``).
    entry : {"close", "next_open"}
        Entry price of the label (:func:`~bma_models.labels.forward_returns`).
        ``"close"`` needs ``base_lag + safety_gap >= 1``: with lag 0 the
        features would see the very close the label buys at.
    base_lag, safety_gap : int
        The features at ``T`` are those computed at ``T - (base_lag +
        safety_gap)``; the defaults (1 + 3 = 4) reproduce the original design.
        Both may be 0.
    n_buckets : int
        Relevance buckets per date.
    lower, upper, sector_neutral
        Passed to :func:`~bma_models.factors.cross_sectional_process`.
    n_jobs : int
        Threads of the factor engine (results are bit-identical for any count).
    factors : DataFrame, optional
        ``compute_factors(bars, reference, specs)`` computed elsewhere (by
        ticker blocks on a Dask cluster, :mod:`bma_models.factors.distributed`);
        None computes it here.

    Returns
    -------
    X : DataFrame
        Processed features of the rows whose label is known.
    y : Series
        ``label`` on X's index.
    relevance : Series
        int ``relevance`` bucket on X's index.
    meta : DatasetMeta
        Inference cross-section, prediction date, provenance and counts.

    Raises
    ------
    SettingsError
        If a lag is negative or not an integer.
    DataError
        If ``bars`` is empty or malformed.
    LeakageError
        If the alignment check finds a feature that could have seen its label
        window (it always runs; there is no switch to skip it).

    Notes
    -----
    The alignment check runs on the lagged, *unprocessed* features with the
    raw features as witness; cross-sectional processing afterwards only mixes
    tickers of the same date, so it does not change any row's source date.
    """
    for name, value in (("base_lag", base_lag), ("safety_gap", safety_gap)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SettingsError(f"{name} must be an integer >= 0, got {value!r}")
    lag = base_lag + safety_gap
    if entry == "close" and lag == 0:
        raise SettingsError("a label bought at close(T) needs features lagged >= 1 session "
                            "(base_lag + safety_gap = 0 would see that close); use "
                            "entry='next_open' for lag 0")
    if len(bars) == 0:
        raise DataError("build_dataset needs bars; got an empty frame")
    raw = compute_factors(bars, reference, specs, n_jobs=n_jobs) if factors is None else factors
    market_dates = pd.DatetimeIndex(raw.index.levels[0], name="date")
    lagged = labels.lag_features(raw, lag, market_dates)
    label = labels.forward_returns(bars, horizon, entry).reindex(raw.index)
    labels.check_alignment(lagged.features, label, lag, horizon, market_dates,
                    feature_asof=lagged.asof, raw_features=raw)
    processed = cross_sectional_process(lagged.features, _sectors(reference), lower=lower,
                                        upper=upper, sector_neutral=sector_neutral)
    X, y, meta = _split(processed, label, lagged.asof, market_dates, lag, horizon)
    relevance = labels.relevance_labels(y, n_buckets).reindex(X.index)
    logger.info(
        "dataset: %d training rows, %d dropped (warm-up), %d unlabelled, prediction date %s, "
        "lag=%d, horizon=%d", len(X), meta.dropped_rows, len(meta.unlabelled),
        meta.prediction_date.date(), lag, horizon,
    )
    return X, y, relevance, meta


def _split(processed, label, asof, market_dates, lag, horizon):
    # training rows: label known and every feature present; the rest is metadata
    known = label.notna().to_numpy()
    complete = processed.notna().to_numpy().all(axis=1)
    train = known & complete
    prediction_date = market_dates[-1]
    dates = processed.index.get_level_values(0)
    meta = DatasetMeta(
        X_infer=processed[dates == prediction_date],
        prediction_date=prediction_date,
        unlabelled=processed[~known],
        feature_asof=asof[train],
        lag=lag,
        horizon=horizon,
        factor_names=tuple(processed.columns),
        market_dates=market_dates,
        dropped_rows=int(np.sum(known & ~complete)),
    )
    return processed[train], label[train], meta
