"""OHLCV + VWAP construction and listing/halt masks for the demo market.

Inputs are the time-major arrays of :mod:`bma_models.data._demo_engine`;
outputs are (n_sessions, n_tickers) float arrays plus a boolean "has a bar" mask.
"""

from __future__ import annotations

import numpy as np

from bma_models.data._demo_engine import REGIMES, SignalParams, Simulation, Universe, ar1

_VOLUME_REGIME_BUMP = {"normal": 0.0, "bull": -0.05, "bear": 0.15, "high_vol": 0.35}


def build_ohlcv(
    rng: np.random.Generator, universe: Universe, sim: Simulation, params: SignalParams
) -> dict[str, np.ndarray]:
    log_close = np.log(universe.start_price)[None, :] + np.cumsum(sim.returns, axis=0)
    close = np.exp(log_close)
    previous_close = np.vstack([universe.start_price[None, :], close[:-1]])
    open_ = previous_close * np.exp(sim.overnight)
    high, low = _range(rng, open_, close, sim, params)
    return {
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "vwap": _vwap(rng, open_, high, low, close, sim, params),
        "volume": _volume(rng, universe, sim, params),
    }


def _range(rng, open_, close, sim: Simulation, params: SignalParams):
    # Order flow of the planted alpha: buyers of high-alpha names press the close towards
    # the high (short upper wick, long lower wick); sellers do the opposite.
    tilt = np.exp(params.flow_strength * np.tanh(sim.alpha))
    wick = 0.45 * sim.idio_scale
    upper = wick * rng.standard_exponential(close.shape) / tilt
    lower = wick * rng.standard_exponential(close.shape) * tilt
    high = np.maximum(open_, close) * np.exp(upper)
    low = np.minimum(open_, close) * np.exp(-lower)
    return high, low


def _vwap(rng, open_, high, low, close, sim: Simulation, params: SignalParams):
    span = high - low
    typical = (open_ + high + low + close) / 4.0
    position = (typical - low) / np.where(span > 0, span, 1.0)
    # accumulation: for high-alpha names the volume-weighted price sits below the close
    position = position - 0.12 * params.flow_strength * np.tanh(sim.alpha)
    position = np.clip(position + 0.05 * rng.standard_normal(close.shape), 0.02, 0.98)
    return low + position * span


def _volume(rng, universe: Universe, sim: Simulation, params: SignalParams):
    n_sessions, n = sim.returns.shape
    base = np.log(universe.shares * universe.turnover)[None, :]
    liquidity_cycle = ar1(
        0.25 * np.sqrt(1 - 0.95**2) * rng.standard_normal((n_sessions, n)),
        0.95,
        0.25 * rng.standard_normal(n),
    )
    bump = np.array([_VOLUME_REGIME_BUMP[name] for name in REGIMES])[sim.regimes]
    shock_size = np.abs(sim.shock) / (params.shock_scale * sim.idio_scale)
    log_volume = (
        base
        + liquidity_cycle
        + bump[:, None]
        + 0.30 * (np.abs(sim.idio_noise) - 0.75)
        + 0.35 * (shock_size - 0.75)
        + 0.30 * rng.standard_normal((n_sessions, n))
        - 0.1
    )
    return np.round(np.exp(log_volume), 0)


def bar_mask(rng: np.random.Generator, n_sessions: int, n_tickers: int) -> tuple[np.ndarray, dict]:
    """Draw which cells have a bar: late listings, delistings, halts and missing days.

    Returns the ``(n_sessions, n_tickers)`` mask (True where a ticker has a bar) and
    the drawn events by kind.
    """
    mask = np.ones((n_sessions, n_tickers), dtype=bool)
    events: dict[str, list[int]] = {
        "late_listing": [], "delisting": [], "halt": [], "missing_day": []
    }
    if n_tickers < 50 or n_sessions < 60:
        return mask, events
    counts = {
        "late_listing": max(1, round(0.02 * n_tickers)),
        "delisting": max(1, round(0.01 * n_tickers)),
        "halt": max(1, round(0.02 * n_tickers)),
        "missing_day": max(1, round(0.01 * n_tickers)),
    }
    for kind, count in counts.items():
        for i in rng.choice(n_tickers, size=count, replace=False):
            if kind == "late_listing":
                start = int(rng.integers(n_sessions // 10, n_sessions // 2))
                mask[:start, i] = False
            elif kind == "delisting":
                start = int(rng.integers(n_sessions // 2, n_sessions - n_sessions // 10))
                mask[start:, i] = False
            elif kind == "halt":
                start = int(rng.integers(n_sessions // 10, n_sessions - 10))
                mask[start : start + int(rng.integers(1, 6)), i] = False
            else:
                days = rng.choice(np.arange(1, n_sessions - 1), size=3, replace=False)
                mask[days, i] = False
            events[kind].append(int(i))
    return mask, events
