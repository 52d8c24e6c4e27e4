"""The embedded demo market: a deterministic synthetic US-equity universe with a planted signal.

Everything built on it is labelled DEMO (``MarketData.is_demo`` is True).

What is simulated
-----------------
* **Calendar**: the last ``n_sessions`` real NYSE sessions ending at ``end``
  (exchange_calendars ``XNYS``).
* **Regimes**: a four-state Markov chain (``normal``, ``bull``, ``bear``,
  ``high_vol``; mean spells of roughly 40/55/35/15 sessions) sets the market's
  drift and volatility and scales idiosyncratic noise (x1.6 in ``high_vol``).
* **Returns**: ``beta * market + sector factor + idiosyncratic + planted``;
  market, sector and idiosyncratic shocks are Student-t (df 5, 5 and 4: fat
  tails); 11 GICS sectors with their own market betas; per-ticker betas and
  volatilities (small caps are more volatile).
* **Reference**: log-normal market caps ($0.3bn-$3tn, median ~$12bn); shares
  outstanding fixed per ticker, so ``market_cap = shares * last close``.
* **Bars**: prices compound the returns; the open carries part of the day's
  move plus its own overnight noise; ``low <= min(open, close)``,
  ``max(open, close) <= high`` and VWAP inside ``[low, high]``. Volume is
  log-normal around ``shares * turnover``, with a slow liquidity cycle, higher in
  bear/high-vol regimes and on days with large idiosyncratic moves.
* **Gaps**: with 50+ tickers, ~2% list late, ~1% delist, ~2% have a 1-5 session
  halt and ~1% miss three single days (no bar on those sessions).

The planted signal
------------------
Two latent states per ticker drive the *idiosyncratic expected return*:

1. **Alpha** ``a`` (unit-variance AR(1), persistence 0.985 per session, half-life
   ~46 sessions) adds a drift of ``0.00036 * a`` to the next session's return.
   Besides the drift itself (which shows up, weakly, as 20-60 session momentum:
   correlation ~0.1 with ``a``) it leaves an *order-flow* trace: for high-alpha
   names the close sits high in the day's range (short upper wick, long lower
   wick) and above VWAP, the reverse for low-alpha names. The daily close
   location value ``(2C - H - L) / (H - L)`` and close-to-VWAP distance
   ``C / VWAP - 1`` correlate ~0.6 and ~0.67 with ``a`` cross-sectionally; their
   10-session means ~0.86 and ~0.89.
2. **Displacement** ``D`` (Student-t liquidity shocks of 3% of the ticker's
   idiosyncratic volatility, reverting with persistence 0.85) moves the price away
   from value temporarily: a small short-term reversal component, barely
   observable (through 5-20 session returns and volume spikes).

The planted component, :func:`planted_score`, is the exact expected
idiosyncratic log return over the next 5 sessions given the state at the close
of session ``t``::

    score = 0.00036 * (1 - 0.985**5) / (1 - 0.985) * a  +  (0.85**5 - 1) * D

Measured (seed 42): its population rank IC against the realised
next-5-session log return (T+1..T+5), averaged over dates, is **0.044** on 2000
tickers x 2520 sessions (alpha part alone 0.042, displacement part 0.013) and
0.046 on the default 500 x 1260; a score shuffled across tickers has IC ~0.
A least-squares fit on three cross-sectionally ranked OHLCV features lagged by 4
sessions (10-session close location, 10-session VWAP distance, 20-session
momentum), trained on the first 60% of dates, reaches an out-of-sample IC of
0.038 (seed 42; 0.028 for seed 1) on 500 x 1260, and ~0 on shuffled labels.
Single-day close location / VWAP distance lagged 4 sessions have ICs of ~0.025.

Why plant the signal in intraday order flow as well as in returns: a drift weak
enough to give a realistic IC is almost invisible in past returns (60-session
momentum correlates about 0.1 with the alpha), so a pipeline could never recover it and a
test of "the pipeline finds the signal" would be meaningless. Order flow is a
plausible, documented channel that OHLCV factors (close location value,
distance to VWAP) can see.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from bma_models.data import calendar
from bma_models.data._demo_bars import bar_mask, build_ohlcv
from bma_models.data._demo_engine import (
    REGIMES,
    SECTORS,
    SignalParams,
    draw_universe,
    planted_component,
    simulate,
)
from bma_models.data.protocol import BAR_COLUMNS, MarketData, normalize_reference
from bma_models.data.universe import normalize_ticker
from bma_models.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["DemoSource", "REGIMES", "SECTORS", "demo_market", "demo_regimes", "planted_score"]

_SPEC_PREFIX = "demo-spec: "
SIGNAL_NOTE = (
    "DEMO planted signal: latent alpha (AR(1), persistence 0.985) adds drift and shows as "
    "close-location/close-above-VWAP order flow and 20-60 session momentum; a small "
    "liquidity displacement (persistence 0.85) reverts; planted_score() is the expected "
    "next-5-session idiosyncratic return (population rank IC ~0.04)."
)


@dataclass(frozen=True)
class _Generated:
    dates: pd.DatetimeIndex
    names: list[str]
    regimes: np.ndarray
    score: np.ndarray  # planted component, (n_sessions, n_tickers)
    fields: dict[str, np.ndarray]
    mask: np.ndarray
    events: dict[str, list[int]]
    sector: np.ndarray
    shares: np.ndarray


def demo_market(
    n_tickers: int = 500,
    n_sessions: int = 1260,
    seed: int = 42,
    end: str | pd.Timestamp = "2025-12-31",
    tickers: list[str] | None = None,
) -> MarketData:
    """Generate the demo market (deterministic for a seed).

    Parameters
    ----------
    n_tickers : int, default 500
        Number of synthetic tickers (``DM0001`` ...); ignored when ``tickers`` is given.
    n_sessions : int, default 1260
        Number of NYSE sessions (1260 is about five years).
    seed : int, default 42
        Seed of the only random generator used; same seed, same frames.
    end : str or Timestamp, default "2025-12-31"
        Last calendar day; the last bar is the last NYSE session on or before it.
    tickers : list of str, optional
        Give the synthetic series these names instead (e.g. a real universe, so the
        demo can stand in for real data in the GUI). The data stay synthetic.

    Returns
    -------
    MarketData
        ``source="demo"``, ``is_demo=True``; ``notes`` describe the planted signal,
        the regime mix, the listing/halt events and (last) the generation spec that
        :func:`planted_score` uses.

    Raises
    ------
    DataError
        If sizes are not positive, a ticker is invalid, or the calendar has too few
        sessions before ``end``.

    Examples
    --------
    >>> market = demo_market(n_tickers=5, n_sessions=30, seed=1)
    >>> market.is_demo, len(market.tickers), len(market.dates)
    (True, 5, 30)
    """
    names = _ticker_names(n_tickers, tickers)
    spec = {
        "names": None if tickers is None else names,
        "n_tickers": len(names),
        "n_sessions": int(n_sessions),
        "seed": int(seed),
        "end": str(pd.Timestamp(end).date()),
    }
    generated = _generate(json.dumps(spec, sort_keys=True))
    bars = _long_bars(generated)
    last_close = np.where(generated.mask, generated.fields["close"], np.nan)
    last_close = pd.DataFrame(last_close).ffill().to_numpy()[-1]
    reference = pd.DataFrame({
        "ticker": generated.names,
        "sector": [SECTORS[i] for i in generated.sector],
        "market_cap": generated.shares * last_close,
        "shares_outstanding": generated.shares,
    })
    notes = (
        "DEMO: synthetic market data, not real prices",
        SIGNAL_NOTE,
        _regime_note(generated.regimes),
        _events_note(generated),
        _SPEC_PREFIX + json.dumps(spec, sort_keys=True),
    )
    logger.info("generated demo market %s", {k: v for k, v in spec.items() if k != "names"})
    return MarketData(
        bars=bars,
        reference=normalize_reference(reference, generated.names),
        source="demo",
        is_demo=True,
        notes=notes,
    )


def planted_score(market: MarketData) -> pd.DataFrame:
    """Return the true planted expected-return component, dates x tickers.

    ``score[t, i]`` is the expected idiosyncratic log return of ticker ``i`` over
    sessions ``t+1 .. t+5`` given the latent state at the close of ``t`` (see the
    module docstring). Cells without a bar in ``market`` are NaN, so a market
    filtered by :class:`DemoSource` (dates or tickers) gets the matching slice.

    Raises
    ------
    DataError
        If ``market`` was not produced by :func:`demo_market` / :class:`DemoSource`.
    """
    generated = _generate(_spec_of(market))
    score = np.where(generated.mask, generated.score, np.nan)
    full = pd.DataFrame(score, index=generated.dates, columns=pd.Index(generated.names))
    full.index.name, full.columns.name = "date", "ticker"
    present = market.bars.pivot(index="date", columns="ticker", values="close").notna()
    aligned = full.reindex(index=present.index, columns=present.columns)
    return aligned.where(present)


def demo_regimes(market: MarketData) -> pd.Series:
    """Return the regime (``normal``, ``bull``, ``bear``, ``high_vol``) of each demo session.

    Raises
    ------
    DataError
        If ``market`` was not produced by :func:`demo_market` / :class:`DemoSource`.
    """
    generated = _generate(_spec_of(market))
    names = np.array(REGIMES, dtype=object)[generated.regimes]
    series = pd.Series(names, index=generated.dates, name="regime").astype("str")
    return series.loc[series.index.isin(market.dates)]


class DemoSource:
    """The demo market as a :class:`~bma_models.data.protocol.DataSource`.

    Parameters
    ----------
    n_tickers, n_sessions, seed, end
        As in :func:`demo_market`.

    Notes
    -----
    ``load(tickers=None, ...)`` returns the synthetic ``DM0001`` ... universe;
    ``load(["AAPL", ...])`` returns synthetic series *named* after the requested
    tickers (a different draw per universe), so the GUI can run end to end on a
    real watchlist without market data. Either way the result says DEMO.
    """

    name = "demo"

    def __init__(self, n_tickers=500, n_sessions=1260, seed=42, end="2025-12-31"):
        self.n_tickers = n_tickers
        self.n_sessions = n_sessions
        self.seed = seed
        self.end = end

    def __repr__(self) -> str:
        return (
            f"DemoSource(n_tickers={self.n_tickers}, n_sessions={self.n_sessions}, "
            f"seed={self.seed}, end={self.end!r})"
        )

    def load(self, tickers=None, start=None, end=None) -> MarketData:
        """Generate and return bars within ``[start, end]`` (inclusive)."""
        defaults = set(_ticker_names(self.n_tickers, None))
        requested = None if tickers is None else _ticker_names(0, tickers)
        subset = requested is not None and set(requested) <= defaults
        names = None if requested is None or subset else requested
        market = demo_market(self.n_tickers, self.n_sessions, self.seed, self.end, names)
        bars = market.bars
        keep = np.ones(len(bars), dtype=bool)
        if subset:
            keep &= bars["ticker"].isin(requested).to_numpy()
        if start is not None:
            keep &= (bars["date"] >= pd.Timestamp(start)).to_numpy()
        if end is not None:
            keep &= (bars["date"] <= pd.Timestamp(end)).to_numpy()
        if keep.all():
            return market
        if not keep.any():
            raise DataError(f"demo market has no sessions between {start} and {end}")
        filtered = bars.loc[keep].reset_index(drop=True)
        names = sorted(filtered["ticker"].unique().tolist())
        return MarketData(
            bars=filtered,
            reference=normalize_reference(market.reference, names),
            source=market.source,
            is_demo=True,
            notes=market.notes,
        )


def _ticker_names(n_tickers: int, tickers: list[str] | None) -> list[str]:
    if tickers is None:
        if int(n_tickers) < 1:
            raise DataError(f"n_tickers must be at least 1, got {n_tickers}")
        return [f"DM{i:04d}" for i in range(1, int(n_tickers) + 1)]
    names = []
    for raw in tickers:
        ticker = normalize_ticker(raw)
        if ticker is None:
            raise DataError(f"demo market: {raw!r} is not a valid ticker")
        names.append(ticker)
    if not names:
        raise DataError("demo market: the ticker list is empty")
    return sorted(set(names))


def _demo_sessions(n_sessions: int, end: str) -> pd.DatetimeIndex:
    if n_sessions < 1:
        raise DataError(f"n_sessions must be at least 1, got {n_sessions}")
    end_ts = pd.Timestamp(end)
    days = int(n_sessions * 366 / 250) + 30
    dates = calendar.sessions(end_ts - pd.Timedelta(days=days), end_ts)
    if len(dates) < n_sessions:
        raise DataError(
            f"the NYSE calendar has only {len(dates)} sessions before {end_ts.date()}, "
            f"{n_sessions} requested"
        )
    return dates[-n_sessions:]


@lru_cache(maxsize=1)
def _generate(spec_json: str) -> _Generated:
    # cached so planted_score() right after demo_market() does not simulate twice; only the
    # arrays needed later are kept (the full simulation of 2000 x 2520 is ~0.5 GB)
    spec = json.loads(spec_json)
    names = spec["names"] or _ticker_names(spec["n_tickers"], None)
    dates = _demo_sessions(spec["n_sessions"], spec["end"])
    params = SignalParams()
    rng = np.random.default_rng(spec["seed"])
    universe = draw_universe(rng, len(names))
    simulation = simulate(rng, universe, len(dates), params)
    fields = build_ohlcv(rng, universe, simulation, params)
    mask, events = bar_mask(rng, len(dates), len(names))
    return _Generated(
        dates=dates,
        names=list(names),
        regimes=simulation.regimes,
        score=planted_component(simulation, params),
        fields=fields,
        mask=mask,
        events=events,
        sector=universe.sector,
        shares=universe.shares,
    )


def _long_bars(generated: _Generated) -> pd.DataFrame:
    # Built directly in protocol form (time-major order is (date, ticker) order because the
    # names are sorted, and cells are unique by construction): normalize_bars() would
    # re-sort and re-check 600k rows, a third of the generation time. A test checks that
    # normalize_bars() leaves the result unchanged.
    mask = generated.mask.ravel()
    n_sessions, n_tickers = generated.mask.shape
    codes = np.tile(np.arange(n_tickers), n_sessions)[mask]
    columns = {
        "date": np.repeat(generated.dates.to_numpy(), n_tickers)[mask],
        "ticker": pd.array(np.array(generated.names, dtype=object)[codes], dtype="str"),
    }
    for name in ("open", "high", "low", "close", "volume", "vwap"):
        columns[name] = generated.fields[name].ravel()[mask].astype("float64")
    return pd.DataFrame(columns)[list(BAR_COLUMNS)]


def _spec_of(market: MarketData) -> str:
    for note in market.notes:
        if note.startswith(_SPEC_PREFIX):
            return json.dumps(json.loads(note[len(_SPEC_PREFIX) :]), sort_keys=True)
    raise DataError(
        f"planted_score needs a demo market (source={market.source!r} has no demo spec note)"
    )


def _regime_note(regimes: np.ndarray) -> str:
    shares = np.bincount(regimes, minlength=len(REGIMES)) / max(len(regimes), 1)
    parts = ", ".join(f"{name} {share:.0%}" for name, share in zip(REGIMES, shares))
    return f"DEMO regimes (share of sessions): {parts}"


def _events_note(generated: _Generated) -> str:
    parts = []
    for kind, indices in generated.events.items():
        names = [generated.names[i] for i in indices]
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        parts.append(f"{kind.replace('_', ' ')}: {len(names)} ({shown})" if names else
                     f"{kind.replace('_', ' ')}: 0")
    return "DEMO listing events: " + "; ".join(parts)
