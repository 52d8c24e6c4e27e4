"""Final fits of the LightGBM / XGBoost regressors with their native Dask estimators.

The cross-validation folds are many independent fits of moderate size, which
joblib's Dask backend spreads over the workers as they are. The *final* fit of
each model on all labelled history is one large fit: above
``research.dask.native_fit_min_rows`` rows it is trained data-parallel with
``lightgbm.dask.DaskLGBMRegressor`` / ``xgboost.dask.DaskXGBRegressor`` (the
training rows are partitioned over the workers, which build histograms on
their part and merge them), and the result is converted back into an ordinary
``LGBMRegressor`` / ``XGBRegressor`` so prediction stays local.

Why this is not bit-identical to the single-machine fit: distributed LightGBM
bins each partition's data and bags per worker, and XGBoost merges per-worker
quantile sketches, so split points differ slightly. The models agree closely
in ranking (tested on a rank-correlation bound), not to floating-point
tolerance. That is why the default threshold is far above the demo market's
row count: runs below it stay identical to the single-machine run.

The client is passed in; this module imports dask only inside
:func:`native_final_fits`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import lightgbm as lgb
import pandas as pd
import xgboost as xgb

from bma_models.errors import BMAError

logger = logging.getLogger(__name__)

__all__ = ["NATIVE_MODELS", "native_final_fits"]

#: First-layer model name -> the plain estimator class its native Dask fit replaces.
NATIVE_MODELS: dict[str, type] = {"lightgbm": lgb.LGBMRegressor, "xgboost": xgb.XGBRegressor}


def native_final_fits(
    models: Mapping[str, Any],
    X: pd.DataFrame,
    y: pd.Series,
    *,
    client: Any,
    min_rows: int,
) -> dict[str, Any]:
    """Fit the LightGBM/XGBoost regressors of ``models`` on all of ``X`` through Dask.

    Parameters
    ----------
    models : mapping of str to estimator
        Unfitted first-layer estimators (not modified). Only entries named in
        :data:`NATIVE_MODELS` whose type is exactly the plain regressor are fitted.
    X, y : DataFrame and Series on the same index
    client : distributed.Client
    min_rows : int
        Nothing is fitted (``{}``) when ``len(X) < min_rows``.

    Returns
    -------
    dict
        ``{name: fitted LGBMRegressor / XGBRegressor}`` for the models fitted
        here; the caller fits the others as usual.

    Raises
    ------
    BMAError
        If a native fit fails; the message names the model.
    """
    chosen = {name: model for name, model in models.items()
              if type(model) is NATIVE_MODELS.get(name)}
    if len(X) < int(min_rows) or not chosen:
        return {}
    import dask.dataframe as dd

    n_parts = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    frame = X.reset_index(drop=True)
    dX = dd.from_pandas(frame, npartitions=n_parts, sort=False)
    dy = dd.from_pandas(pd.Series(y.to_numpy(), index=frame.index, name="label"),
                        npartitions=n_parts, sort=False)
    dX, dy = client.persist([dX, dy])  # the rows travel to the workers once for every fit
    fitted = {}
    for name, model in chosen.items():
        started = time.perf_counter()
        try:
            fitted[name] = _FITTERS[name](model, dX, dy, client)
        except Exception as e:
            raise BMAError(f"native Dask final fit of {name!r} failed "
                           f"({len(X)} rows, {n_parts} partitions): {e}") from e
        logger.info("final fit of %s with its Dask estimator: %d rows, %d partitions, %.2fs",
                    name, len(X), n_parts, time.perf_counter() - started)
    return fitted


def _fit_lightgbm(model: lgb.LGBMRegressor, dX, dy, client) -> lgb.LGBMRegressor:
    import lightgbm.dask as lgb_dask

    params = model.get_params()
    threads = params.pop("n_jobs", None)  # lightgbm.dask uses each worker's threads
    native = lgb_dask.DaskLGBMRegressor(client=client, **params)
    with warnings.catch_warnings():  # the sklearn layer always passes a thread count
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored", UserWarning)
        native.fit(dX, dy)
    return native.to_local().set_params(n_jobs=threads)


def _fit_xgboost(model: xgb.XGBRegressor, dX, dy, client) -> xgb.XGBRegressor:
    import xgboost.dask as xgb_dask

    params = model.get_params()
    native = xgb_dask.DaskXGBRegressor(**params)
    native.client = client
    native.fit(dX, dy, verbose=False)
    local = xgb.XGBRegressor(**params)
    local.load_model(native.get_booster().save_raw("ubj"))
    return local


#: Model name -> its native Dask fit (each takes the estimator class NATIVE_MODELS names).
_FITTERS: dict[str, Callable[[Any, Any, Any, Any], Any]] = {
    "lightgbm": _fit_lightgbm, "xgboost": _fit_xgboost}
