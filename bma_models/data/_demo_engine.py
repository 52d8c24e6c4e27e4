"""Simulation core of the demo market: regimes, factor returns and the planted signal.

Arrays are time-major, shape (n_sessions, n_tickers). Only recursions that are
inherently sequential (the regime chain and the two AR(1) states) loop over
time, each step being a vector operation over all tickers; nothing loops over
tickers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGIMES: tuple[str, ...] = ("normal", "bull", "bear", "high_vol")
# per-session market drift and volatility, and the scale of idiosyncratic noise, per regime
_REGIME_DRIFT = np.array([0.0003, 0.0008, -0.0010, -0.0005])
_REGIME_VOL = np.array([0.0085, 0.0070, 0.0150, 0.0260])
_REGIME_IDIO_SCALE = np.array([1.0, 0.9, 1.2, 1.6])
# row = today's regime, column = tomorrow's; mean spell lengths ~40/55/35/15 sessions
_TRANSITIONS = np.array([
    [0.975, 0.013, 0.007, 0.005],
    [0.014, 0.982, 0.003, 0.001],
    [0.016, 0.002, 0.971, 0.011],
    [0.030, 0.002, 0.033, 0.935],
])

SECTORS: tuple[str, ...] = (
    "Communication Services", "Consumer Discretionary", "Consumer Staples", "Energy",
    "Financials", "Health Care", "Industrials", "Information Technology", "Materials",
    "Real Estate", "Utilities",
)
_SECTOR_WEIGHTS = np.array([0.06, 0.11, 0.07, 0.05, 0.14, 0.13, 0.14, 0.15, 0.05, 0.05, 0.05])
_SECTOR_BETA = np.array([1.05, 1.15, 0.65, 1.10, 1.10, 0.85, 1.05, 1.25, 1.05, 0.90, 0.55])
_SECTOR_VOL = 0.0055


@dataclass(frozen=True)
class SignalParams:
    """Constants of the planted signal (documented in :mod:`bma_models.data.demo`)."""

    alpha_persistence: float = 0.985
    alpha_drift: float = 0.00036
    flow_strength: float = 1.5
    shock_persistence: float = 0.85
    shock_scale: float = 0.03
    horizon: int = 5

    def alpha_weight(self) -> float:
        """Return the expected alpha drift summed over the next ``horizon`` sessions, per alpha."""
        phi = self.alpha_persistence
        return self.alpha_drift * (1.0 - phi**self.horizon) / (1.0 - phi)

    def displacement_weight(self) -> float:
        """Return the expected next-``horizon`` return per unit of current price displacement."""
        return self.shock_persistence**self.horizon - 1.0


@dataclass(frozen=True)
class Universe:
    """Per-ticker constants drawn once."""

    sector: np.ndarray  # int index into SECTORS
    beta: np.ndarray
    idio_vol: np.ndarray  # per-session
    start_price: np.ndarray
    shares: np.ndarray
    turnover: np.ndarray  # mean daily turnover (fraction of shares)


@dataclass(frozen=True)
class Simulation:
    """Everything the bar builder and :func:`planted_score` need."""

    regimes: np.ndarray  # (T,) int index into REGIMES
    returns: np.ndarray  # (T, N) close-to-close log returns
    overnight: np.ndarray  # (T, N) close-to-open part of ``returns``
    alpha: np.ndarray  # (T, N) latent alpha state at the close of each session
    displacement: np.ndarray  # (T, N) transitory liquidity displacement of the log price
    shock: np.ndarray  # (T, N) liquidity shock of each session
    idio_noise: np.ndarray  # (T, N) idiosyncratic noise in units of its own volatility
    idio_scale: np.ndarray  # (T, N) per-session idiosyncratic volatility


def student_t(rng: np.random.Generator, df: float, size) -> np.ndarray:
    """Student-t draws rescaled to unit variance (fat tails, same volatility)."""
    return rng.standard_t(df, size=size) * np.sqrt((df - 2.0) / df)


def draw_universe(rng: np.random.Generator, n_tickers: int) -> Universe:
    sector = rng.choice(len(SECTORS), size=n_tickers, p=_SECTOR_WEIGHTS)
    log_cap = np.clip(rng.normal(np.log(12e9), 1.25, n_tickers), np.log(3e8), np.log(3e12))
    cap = np.exp(log_cap)
    beta = np.clip(_SECTOR_BETA[sector] * rng.normal(1.0, 0.2, n_tickers), 0.2, 2.5)
    idio_vol = 0.016 * (cap / 12e9) ** -0.10 * rng.lognormal(0.0, 0.22, n_tickers)
    start_price = np.clip(rng.lognormal(np.log(55.0), 0.8, n_tickers), 4.0, 900.0)
    turnover = np.clip(rng.lognormal(np.log(0.008), 0.45, n_tickers), 0.001, 0.06)
    return Universe(
        sector=sector,
        beta=beta,
        idio_vol=np.clip(idio_vol, 0.007, 0.05),
        start_price=start_price,
        shares=np.round(cap / start_price, 0),
        turnover=turnover,
    )


def regime_path(rng: np.random.Generator, n_sessions: int) -> np.ndarray:
    cumulative = np.cumsum(_TRANSITIONS, axis=1)
    uniforms = rng.random(n_sessions)
    states = np.empty(n_sessions, dtype=np.int64)
    state = 0
    for t in range(n_sessions):
        state = int(np.searchsorted(cumulative[state], uniforms[t], side="right"))
        state = min(state, len(REGIMES) - 1)
        states[t] = state
    return states


def ar1(innovations: np.ndarray, persistence: float, initial: np.ndarray) -> np.ndarray:
    out = np.empty_like(innovations)
    previous = initial
    for t in range(innovations.shape[0]):
        previous = persistence * previous + innovations[t]
        out[t] = previous
    return out


def simulate(
    rng: np.random.Generator, universe: Universe, n_sessions: int, params: SignalParams
) -> Simulation:
    n: int = universe.beta.shape[0]
    shape = (n_sessions, n)
    regimes = regime_path(rng, n_sessions)
    market = _REGIME_DRIFT[regimes] + _REGIME_VOL[regimes] * student_t(rng, 5.0, n_sessions)
    scale_t = _REGIME_IDIO_SCALE[regimes]
    sector_returns = _SECTOR_VOL * scale_t[:, None] * student_t(rng, 5.0, (n_sessions, 11))

    phi = params.alpha_persistence
    alpha = ar1(
        np.sqrt(1.0 - phi**2) * rng.standard_normal(shape), phi, rng.standard_normal(n)
    )
    idio_scale = scale_t[:, None] * universe.idio_vol[None, :]
    rho = params.shock_persistence
    shock = params.shock_scale * idio_scale * student_t(rng, 4.0, shape)
    start_sd = params.shock_scale * universe.idio_vol / np.sqrt(1 - rho**2)
    initial_disp = start_sd * rng.standard_normal(n)
    displacement = ar1(shock, rho, initial_disp)
    previous_disp = np.vstack([initial_disp[None, :], displacement[:-1]])
    previous_alpha = np.vstack([alpha[:1], alpha[:-1]])

    idio_noise = student_t(rng, 4.0, shape)
    returns = (
        universe.beta[None, :] * market[:, None]
        + sector_returns[:, universe.sector]
        + idio_scale * idio_noise
        + params.alpha_drift * previous_alpha
        + (displacement - previous_disp)
    )
    # the overnight gap carries a third of the systematic move plus some noise of its own
    overnight = 0.3 * (returns - idio_scale * idio_noise) + 0.35 * idio_scale * (
        0.6 * idio_noise + 0.8 * rng.standard_normal(shape)
    )
    return Simulation(
        regimes=regimes,
        returns=returns,
        overnight=overnight,
        alpha=alpha,
        displacement=displacement,
        shock=shock,
        idio_noise=idio_noise,
        idio_scale=idio_scale,
    )


def planted_component(simulation: Simulation, params: SignalParams) -> np.ndarray:
    """Return the expected idiosyncratic return over the next ``horizon`` sessions, given t."""
    return (
        params.alpha_weight() * simulation.alpha
        + params.displacement_weight() * simulation.displacement
    )
