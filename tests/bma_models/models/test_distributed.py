"""Native lightgbm.dask / xgboost.dask final fits: close to, not identical with, local fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from bma_models.models import make_first_layer
from bma_models.models.distributed import native_final_fits


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    X = pd.DataFrame(rng.normal(size=(12_000, 5)), columns=[f"f{i}" for i in range(5)])
    y = pd.Series(0.5 * X["f0"] - 0.3 * X["f1"] + 0.2 * X["f2"] ** 2 + rng.normal(size=len(X)))
    X_test = pd.DataFrame(rng.normal(size=(2_000, 5)), columns=X.columns)
    return X, y, X_test


def test_below_the_threshold_nothing_is_fitted_natively(data, dask_local):
    X, y, _ = data
    models = make_first_layer(["lightgbm", "xgboost"], seed=1)
    assert native_final_fits(models, X, y, client=dask_local.client, min_rows=len(X) + 1) == {}


@pytest.mark.slow
def test_native_fits_rank_like_the_local_fits_and_predict_locally(data, dask_local):
    # distributed histograms/sketches move split points: agreement is asserted on rankings
    X, y, X_test = data
    models = make_first_layer(["ridge", "lightgbm", "xgboost"], seed=1)
    fitted = native_final_fits(models, X, y, client=dask_local.client, min_rows=1000)
    assert set(fitted) == {"lightgbm", "xgboost"}  # ridge is left to the ordinary path
    for name, model in fitted.items():
        assert type(model) is type(models[name])
        local = clone(models[name]).fit(X, y).predict(X_test)
        assert spearmanr(local, model.predict(X_test))[0] > 0.97, name
    assert fitted["lightgbm"].get_params()["n_jobs"] == models["lightgbm"].get_params()["n_jobs"]
