"""Leakage canaries: models that must fail to predict what they cannot know.

* :func:`future_label_canary` trains on a copy of the label put through the
  pipeline's lag: if the lag or the split leaks the future, it scores well.
* :func:`shuffled_label_canary` trains on the label permuted across tickers
  within each date: no feature can carry information about it.

Both fit models through :func:`bma_models.models.oof.oof_predictions` with the
run's own splitter and score with :func:`bma_models.evaluation.rank_ic`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from bma_models.cv import date_groups
from bma_models.errors import LeakageError
from bma_models.evaluation import rank_ic
from bma_models.models.oof import oof_predictions

logger = logging.getLogger(__name__)

__all__ = [
    "FUTURE_LABEL_IC_THRESHOLD",
    "SHUFFLED_LABEL_IC_FLOOR",
    "future_label_canary",
    "shuffle_within_dates",
    "shuffled_label_canary",
]

#: A properly lagged copy of the label may not reach a mean OOS rank IC above this.
FUTURE_LABEL_IC_THRESHOLD = 0.10
#: Smallest |mean rank IC| bound of the shuffled-label canary (see its docstring).
SHUFFLED_LABEL_IC_FLOOR = 0.02


def _lag_per_ticker(label: pd.Series, sessions: int) -> pd.Series:
    tickers = label.index.get_level_values(-1)
    return label.groupby(tickers).shift(sessions)


def future_label_canary(
    X: pd.DataFrame,
    y: pd.Series,
    cv,
    *,
    horizon: int,
    lag: Callable[[pd.Series], pd.Series] | None = None,
    model=None,
    threshold: float = FUTURE_LABEL_IC_THRESHOLD,
    backend: str = "loky",
) -> dict:
    """Fail the run if a lagged copy of the label predicts the label out of sample.

    The canary feature is the label itself (the *future* return) put through the
    pipeline's normal lag -- by default a per-ticker shift of ``horizon`` sessions,
    which makes it the last fully realised return. A model trained on that one
    feature through ``cv`` must not reach a mean OOS rank IC above ``threshold``.

    Why 0.10: a correctly lagged label carries only the genuine short-term
    autocorrelation of returns (|rank IC| of a few hundredths on real and demo
    data), while a lag ``k`` sessions short of the horizon leaves ``k`` of the
    ``horizon`` daily returns shared by feature and label, a correlation of
    ``k / horizon`` (0.2 for one session of a 5-day label); an unlagged copy
    gives about 1. A lag below the horizon is a leak even when the features
    themselves are lagged less: the label is only known ``horizon`` sessions
    after its date.

    Parameters
    ----------
    X : DataFrame on a ``(date, ticker)`` index
        Only its index is used (the canary feature replaces the features).
    y : Series
        The label.
    cv : splitter
        The first-layer splitter, e.g. :class:`~bma_models.cv.PurgedGroupTimeSeriesSplit`.
    horizon : int
        Label horizon in sessions (the default lag).
    lag : callable, optional
        The pipeline's lag, ``Series -> Series`` on the same index.
    model : estimator, optional
        Default: ``Ridge(alpha=1.0)``.
    threshold : float, default=FUTURE_LABEL_IC_THRESHOLD

    Returns
    -------
    dict
        ``{"rank_ic": float, "threshold": float, "passed": True}``.

    Raises
    ------
    LeakageError
        If the OOS rank IC exceeds ``threshold``.
    """
    lagged = lag(y) if lag is not None else _lag_per_ticker(y, int(horizon))
    feature = lagged.reindex(X.index).rename("future_label_canary")
    keep = feature.notna() & y.reindex(X.index).notna()
    frame, target = feature[keep].to_frame(), y.reindex(X.index)[keep]
    oof = oof_predictions(
        {"canary": model if model is not None else Ridge(alpha=1.0)},
        frame, target, cv, backend=backend, n_jobs=1,
    )
    value = float(rank_ic(oof["canary"], target).mean())
    if not value <= threshold:
        logger.error("future-label canary FAILED: OOS rank IC %.3f > %.3f", value, threshold)
        raise LeakageError(
            f"a lagged copy of the label reached an OOS rank IC of {value:.3f} "
            f"(threshold {threshold}); the lag or the split leaks the future"
        )
    logger.info("future-label canary passed: OOS rank IC %.3f <= %.3f", value, threshold)
    return {"rank_ic": value, "threshold": float(threshold), "passed": True}


def shuffle_within_dates(y: pd.Series, seed: int = 0) -> pd.Series:
    """Return ``y`` with its values permuted across tickers within each date."""
    rng = np.random.default_rng(seed)
    codes = pd.factorize(date_groups(y))[0]
    # both orders list rows date by date; the second in random order within each date
    by_date = np.argsort(codes, kind="stable")
    shuffled_by_date = np.lexsort((rng.random(len(y)), codes))
    permuted = np.empty(len(y))
    permuted[by_date] = y.to_numpy(dtype=float)[shuffled_by_date]
    return pd.Series(permuted, index=y.index, name=y.name)


def shuffled_label_canary(
    models: Mapping[str, object],
    X: pd.DataFrame,
    y: pd.Series,
    cv,
    *,
    seed: int = 0,
    threshold: float | None = None,
    backend: str = "loky",
    n_jobs: int = 1,
) -> dict[str, dict]:
    """Fail the run if models predict a label shuffled within each date.

    With the label permuted across tickers on each date, no feature can carry
    information about it, so each model's mean OOS rank IC must be close to 0.
    A large value means a model saw its own rows (a broken split or a label
    leaking into a feature).

    Why a data-dependent bound: the mean of ``D`` per-date ICs over ``N`` names
    has a standard error near ``1/sqrt(N * D)``, so a fixed bound is either too
    loose on a big panel or flaky on a small test panel. The default bound is
    ``max(SHUFFLED_LABEL_IC_FLOOR, 4 * std(IC) / sqrt(D))``.

    Returns
    -------
    dict
        ``{model: {"rank_ic", "threshold", "passed"}}``.

    Raises
    ------
    LeakageError
        If any model's |mean rank IC| exceeds its bound.
    """
    shuffled = shuffle_within_dates(y, seed)
    oof = oof_predictions(models, X, shuffled, cv, backend=backend, n_jobs=n_jobs)
    report = {}
    for name in models:
        ic = rank_ic(oof[name], shuffled)
        bound = threshold
        if bound is None:
            bound = max(SHUFFLED_LABEL_IC_FLOOR, 4 * float(ic.std()) / np.sqrt(len(ic)))
        value = float(ic.mean())
        # a constant model scores no date (NaN IC): no evidence of leakage
        report[name] = {"rank_ic": value, "threshold": bound, "passed": not abs(value) > bound}
    failed = {k: v for k, v in report.items() if not v["passed"]}
    if failed:
        logger.error("shuffled-label canary FAILED: %s", failed)
        raise LeakageError(f"models predict a shuffled label out of sample: {failed}")
    return report
