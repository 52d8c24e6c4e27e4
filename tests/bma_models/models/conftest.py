"""Small seeded panels with a planted linear signal for the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

#: True coefficients of the planted signal on features f0, f1 (the rest is noise).
PLANTED = (0.6, -0.4)


def make_panel(n_tickers=60, n_dates=200, n_features=5, noise=1.0, seed=42):
    """Return ``(X, y)`` on a sorted (date, ticker) index; ``y = 0.01 * (0.6 f0 - 0.4 f1 + e)``."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_dates)
    tickers = [f"T{i:03d}" for i in range(n_tickers)]
    index = pd.MultiIndex.from_product([dates, tickers], names=["date", "ticker"])
    values = rng.standard_normal((len(index), n_features))
    X = pd.DataFrame(values, index=index, columns=[f"f{j}" for j in range(n_features)])
    signal = PLANTED[0] * values[:, 0] + PLANTED[1] * values[:, 1]
    y = pd.Series(0.01 * (signal + noise * rng.standard_normal(len(index))), index=index,
                  name="label")
    return X, y


@pytest.fixture(scope="session")
def panel():
    return make_panel()
