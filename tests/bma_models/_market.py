"""A small seeded random-walk market generator for the factor and label tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_walk_bars(
    n_tickers: int = 6, n_sessions: int = 90, seed: int = 42, missing: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars with valid OHLC ordering; ``missing`` is the fraction of bars removed."""
    rng = np.random.default_rng(seed)
    shape = (n_sessions, n_tickers)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, shape), axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.005, shape))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, shape))
    volume = np.round(rng.lognormal(12, 0.5, shape))
    vwap = (high + low + close) / 3
    dates = pd.bdate_range("2023-01-02", periods=n_sessions)
    tickers = [f"T{i:02d}" for i in range(n_tickers)]
    keep = rng.random(shape) >= missing
    d, t = np.nonzero(keep)
    bars = pd.DataFrame({
        "date": dates.to_numpy()[d], "ticker": np.array(tickers)[t],
        "open": open_[keep], "high": high[keep], "low": low[keep], "close": close[keep],
        "volume": volume[keep], "vwap": vwap[keep],
    })
    bars["ticker"] = bars["ticker"].astype("str")
    reference = pd.DataFrame({
        "ticker": tickers,
        "sector": ["Tech", "Tech", "Energy", "Energy", "Health", None][:n_tickers]
        + ["Tech"] * max(0, n_tickers - 6),
        "market_cap": np.nan,
        "shares_outstanding": rng.uniform(1e7, 1e8, n_tickers),
    })
    return bars, reference
