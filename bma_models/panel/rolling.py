"""Rolling-window kernels on dates x tickers arrays (axis 0 is time).

Every kernel uses *complete-window* semantics on the session grid: the value at
row ``t`` is computed from rows ``t - window + 1 .. t`` and is NaN when any of
those rows is NaN or when ``t < window - 1`` (warm-up). This is exactly
``pandas.Series.rolling(window, min_periods=window)`` applied per column, which
is what the pandas baseline in ``benchmarks/factors.py`` uses.

Why a sparse table instead of a cumulative sum: the kernels build the sums (or
extremes) of every block of 1, 2, 4, ... rows and combine the blocks that tile
the window (for a sum) or two overlapping blocks (for a max/min). That is
O(rows x log2(window)) additions with no subtraction, so there is no
cancellation (a cumulative sum of 2,520 sessions of dollar volume reaches 1e13
and loses the last digits of a 20-day sum), and a NaN anywhere in the window
propagates into the result by plain IEEE arithmetic, which *is* the
complete-window rule, with no separate NaN bookkeeping.
"""

from __future__ import annotations

import numpy as np


def _with_warmup(values: np.ndarray, warmup: int) -> np.ndarray:
    # an output array whose first `warmup` rows are NaN, the rest left to the caller
    out = np.empty(values.shape)
    out[:warmup] = np.nan
    return out


def shift(values: np.ndarray, periods: int) -> np.ndarray:
    """Shift rows down by ``periods`` (up if negative), filling with NaN."""
    n = values.shape[0]
    if periods == 0:
        return values.astype(np.float64, copy=True)
    if abs(periods) >= n:
        return np.full(values.shape, np.nan)
    if periods > 0:
        out = _with_warmup(values, periods)
        out[periods:] = values[:-periods]
    else:
        out = np.empty(values.shape)
        out[periods:] = np.nan
        out[:periods] = values[-periods:]
    return out


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with NaN where the denominator is zero or NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(numerator, denominator)
    out[np.isinf(out)] = np.nan
    return out


def _check_window(window: int) -> None:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


class DyadicTable:
    """Reductions of every block of 1, 2, 4, ... consecutive rows of one array.

    ``blocks[k][i]`` reduces rows ``i .. i + 2**k - 1`` with ``ufunc``
    (``np.add``, ``np.maximum`` or ``np.minimum``). Levels are built on demand
    and shared by every window asked of the same table.
    """

    def __init__(self, values: np.ndarray, ufunc: np.ufunc):
        self.ufunc = ufunc
        self.blocks = [values]

    def _levels(self, window: int) -> list[np.ndarray]:
        while 1 << len(self.blocks) <= window:
            size = 1 << (len(self.blocks) - 1)
            previous = self.blocks[-1]
            self.blocks.append(self.ufunc(previous[:-size], previous[size:]))
        return self.blocks[: window.bit_length()]

    def window_sum(self, window: int) -> np.ndarray:
        """Sum of rows ``t - window + 1 .. t`` (ufunc must be ``np.add``)."""
        _check_window(window)
        n = self.blocks[0].shape[0]
        if window > n:
            return np.full(self.blocks[0].shape, np.nan)
        out = _with_warmup(self.blocks[0], window - 1)
        target = out[window - 1 :]
        length = n - window + 1
        offset = 0
        for k, block in enumerate(self._levels(window)):
            if window >> k & 1:
                part = block[offset : offset + length]
                if offset == 0:
                    target[...] = part
                else:
                    target += part
                offset += 1 << k
        return out

    def window_extreme(self, window: int) -> np.ndarray:
        """Max or min of rows ``t - window + 1 .. t`` from two overlapping blocks."""
        _check_window(window)
        n = self.blocks[0].shape[0]
        if window > n:
            return np.full(self.blocks[0].shape, np.nan)
        top = self._levels(window)[-1]
        size = 1 << (window.bit_length() - 1)
        length = n - window + 1
        out = _with_warmup(self.blocks[0], window - 1)
        self.ufunc(top[:length], top[window - size : window - size + length],
                   out=out[window - 1 :])
        return out


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the last ``window`` rows; NaN unless all of them are finite."""
    return DyadicTable(values, np.add).window_sum(window)


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last ``window`` rows (complete windows only)."""
    total = rolling_sum(values, window)
    total /= window
    return total


def rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) over the last ``window`` rows.

    Computed from windowed sums of x and x**2, so it is meant for series whose
    mean is small against their spread (returns); never feed it price levels.
    """
    return std_from_sums(rolling_sum(values, window), rolling_sum(values * values, window),
                         window)


def std_from_sums(total: np.ndarray, total_sq: np.ndarray, window: int) -> np.ndarray:
    """Sample std (ddof=1) from windowed sums of x and x**2."""
    if window < 2:
        raise ValueError(f"a standard deviation needs window >= 2, got {window}")
    # (total_sq - total * total / window) / (window - 1), evaluated in place
    variance = np.multiply(total, total)
    variance /= window
    np.subtract(total_sq, variance, out=variance)
    variance /= window - 1
    np.maximum(variance, 0.0, out=variance)
    return np.sqrt(variance, out=variance)


def rolling_max(values: np.ndarray, window: int) -> np.ndarray:
    """Maximum over the last ``window`` rows (complete windows only)."""
    return DyadicTable(values, np.maximum).window_extreme(window)


def rolling_min(values: np.ndarray, window: int) -> np.ndarray:
    """Minimum over the last ``window`` rows (complete windows only)."""
    return DyadicTable(values, np.minimum).window_extreme(window)
