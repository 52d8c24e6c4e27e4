"""The factor functions: each maps a :class:`Panel` to a dates x tickers array.

Conventions shared by every function (the pandas baseline in
``benchmarks/factors.py`` follows the same ones):

* ``t`` counts market sessions (see :mod:`bma_models.panel.frames`); a shift by
  ``k`` is ``k`` market sessions, a missing bar is NaN.
* Rolling statistics need a complete window (``min_periods = window``): any NaN
  in the window, including the warm-up rows, gives NaN.
* A division by zero gives NaN, never inf.
* Every output is a ratio, a return or a log-scaled liquidity measure, never a
  raw price level, so cross-sections of different dates are comparable.
"""

from __future__ import annotations

import numpy as np

from bma_models.panel.frames import Panel
from bma_models.panel.rolling import ratio, rolling_mean, shift


def _minus_one(values: np.ndarray) -> np.ndarray:
    # in place: every caller passes a fresh array
    values -= 1.0
    return values

AMIHUD_SCALE = 1e6  # |return| per one million dollars traded


def ma_ratio(panel: Panel, window: int) -> np.ndarray:
    """Return ``close / mean(close over window) - 1`` (distance from the moving average)."""
    return _minus_one(ratio(panel.close, panel.rolling("close", "mean", window)))


def volatility(panel: Panel, window: int) -> np.ndarray:
    """Sample std (ddof=1) of one-session returns over ``window`` sessions."""
    return panel.rolling("returns", "std", window)


def rsi(panel: Panel, window: int) -> np.ndarray:
    """Relative strength index (simple-average form), 0..100.

    ``100 * mean(gain) / (mean(gain) + mean(loss))`` over ``window`` close-to-close
    changes; NaN when the close did not move at all in the window.

    Why simple averages instead of Wilder's exponential smoothing: a finite
    window gives exact warm-up and halt semantics (and a feature that provably
    forgets a bad print after ``window`` sessions), which the leakage property
    tests rely on.
    """
    change = panel.close - panel.prev_close
    gain = rolling_mean(np.maximum(change, 0.0), window)
    loss = rolling_mean(np.maximum(-change, 0.0), window)
    strength = ratio(gain, gain + loss)
    strength *= 100.0
    return strength


def high_low_position(panel: Panel, window: int) -> np.ndarray:
    """(close - min low) / (max high - min low) over ``window``; 0 = bottom of band."""
    lowest = panel.rolling("low", "min", window)
    highest = panel.rolling("high", "max", window)
    return ratio(panel.close - lowest, highest - lowest)


def momentum(panel: Panel, window: int) -> np.ndarray:
    """close(t) / close(t - window) - 1."""
    return _minus_one(ratio(panel.close, shift(panel.close, window)))


def momentum_skip(panel: Panel, window: int, skip: int) -> np.ndarray:
    """close(t - skip) / close(t - window) - 1: momentum without the last ``skip`` sessions."""
    if skip >= window:
        raise ValueError(f"skip ({skip}) must be smaller than window ({window})")
    return _minus_one(ratio(shift(panel.close, skip), shift(panel.close, window)))


def reversal(panel: Panel, window: int) -> np.ndarray:
    """-(close(t) / close(t - window) - 1): short-term reversal, high = recent loser."""
    values = momentum(panel, window)
    return np.negative(values, out=values)


def volume_trend(panel: Panel, window: int, short: int) -> np.ndarray:
    """mean(volume over ``short``) / mean(volume over ``window``) - 1."""
    if short >= window:
        raise ValueError(f"short ({short}) must be smaller than window ({window})")
    recent = panel.rolling("volume", "mean", short)
    return _minus_one(ratio(recent, panel.rolling("volume", "mean", window)))


def average_dollar_volume(panel: Panel, window: int) -> np.ndarray:
    """log(1 + mean(close * volume over ``window``)).

    Why the log: dollar volume spans six orders of magnitude across a universe;
    on a log scale a cross-sectional z-score is meaningful.
    """
    return np.log1p(panel.rolling("dollar_volume", "mean", window))


def amihud(panel: Panel, window: int) -> np.ndarray:
    """Amihud illiquidity: mean(|return| / dollar volume) * 1e6 over ``window``.

    A session without trading (zero dollar volume) is NaN, so is the window.
    """
    daily = ratio(np.abs(panel.returns), panel.dollar_volume) * AMIHUD_SCALE
    return rolling_mean(daily, window)


def atr_ratio(panel: Panel, window: int) -> np.ndarray:
    """mean(true range over ``window``) / close (simple-average ATR)."""
    return ratio(panel.rolling("true_range", "mean", window), panel.close)


def overnight_gap(panel: Panel) -> np.ndarray:
    """open(t) / close(t - 1) - 1."""
    return _minus_one(ratio(panel.open, panel.prev_close))


def intraday_range(panel: Panel) -> np.ndarray:
    """(high - low) / close."""
    return ratio(panel.high - panel.low, panel.close)


def close_location(panel: Panel) -> np.ndarray:
    """Close location value ((close - low) - (high - close)) / (high - low), -1..1.

    A bar with high == low (no range) has value 0, the middle of the band.
    """
    spread = panel.high - panel.low
    value = ratio((panel.close - panel.low) - (panel.high - panel.close), spread)
    value[(spread == 0) & np.isfinite(panel.close)] = 0.0
    return value


def vwap_distance(panel: Panel) -> np.ndarray:
    """Return ``close / vwap - 1`` (distance of the close from the session VWAP)."""
    return _minus_one(ratio(panel.close, panel.vwap))


def turnover(panel: Panel, window: int) -> np.ndarray:
    """mean(volume over ``window``) / shares outstanding (NaN when shares unknown)."""
    return ratio(panel.rolling("volume", "mean", window), panel.shares[np.newaxis, :])
