"""Rolling kernels: complete-window semantics equal pandas rolling(min_periods=window)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.panel.rolling import (
    ratio,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    rolling_sum,
    shift,
)


@pytest.fixture
def values():
    rng = np.random.default_rng(42)
    x = rng.normal(0, 1, (80, 5))
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:3, 0] = np.nan
    return x


@pytest.mark.parametrize("window", [1, 2, 3, 5, 7, 14, 20, 33, 60, 80, 81, 200])
@pytest.mark.parametrize(
    ("ours", "how"),
    [(rolling_sum, "sum"), (rolling_mean, "mean"), (rolling_max, "max"), (rolling_min, "min")],
)
def test_kernel_matches_pandas_rolling_with_nan_windows(values, window, ours, how):
    expected = getattr(pd.DataFrame(values).rolling(window, min_periods=window), how)()
    np.testing.assert_allclose(ours(values, window), expected.to_numpy(), rtol=1e-12,
                               atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("window", [2, 5, 20, 60])
def test_rolling_std_matches_pandas_ddof1(values, window):
    expected = pd.DataFrame(values).rolling(window, min_periods=window).std()
    np.testing.assert_allclose(rolling_std(values, window), expected.to_numpy(), rtol=1e-9,
                               atol=1e-12, equal_nan=True)


def test_rolling_sum_hand_computed():
    x = np.array([[1.0], [2.0], [np.nan], [4.0], [5.0], [6.0]])
    assert np.array_equal(rolling_sum(x, 2)[:, 0], [np.nan, 3, np.nan, np.nan, 9, 11],
                          equal_nan=True)
    assert np.array_equal(rolling_max(x, 3)[:, 0], [np.nan, np.nan, np.nan, np.nan, np.nan, 6],
                          equal_nan=True)


def test_large_magnitudes_keep_precision():
    # dollar volume sized numbers: a cumulative sum would lose the small window
    x = np.full((2520, 1), 1e10)
    x[::2] += 1.0
    out = rolling_sum(x, 20)
    assert out[-1, 0] == 20 * 1e10 + 10


def test_shift_and_ratio():
    x = np.array([[1.0], [2.0], [3.0]])
    assert np.array_equal(shift(x, 1)[:, 0], [np.nan, 1, 2], equal_nan=True)
    assert np.array_equal(shift(x, -2)[:, 0], [3, np.nan, np.nan], equal_nan=True)
    assert np.isnan(shift(x, 5)).all()
    out = ratio(np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.0, 2.0]))
    assert np.array_equal(out, [np.nan, np.nan, 0.5], equal_nan=True)


def test_non_positive_window_is_rejected(values):
    with pytest.raises(ValueError, match="window"):
        rolling_sum(values, 0)
    with pytest.raises(ValueError, match="window"):
        rolling_std(values, 1)
