"""Per-date rank IC helpers shared by the demo-market tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rank_ic(score: pd.DataFrame | np.ndarray, target: pd.DataFrame | np.ndarray) -> float:
    """Mean over rows (dates) of the Spearman correlation between two dates x tickers arrays."""
    a = np.asarray(score, dtype=float)
    b = np.asarray(target, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    a = np.where(both, a, np.nan)
    b = np.where(both, b, np.nan)
    ra = pd.DataFrame(a).rank(axis=1).to_numpy(copy=True)
    rb = pd.DataFrame(b).rank(axis=1).to_numpy(copy=True)
    ra -= np.nanmean(ra, axis=1, keepdims=True)
    rb -= np.nanmean(rb, axis=1, keepdims=True)
    num = np.nansum(ra * rb, axis=1)
    den = np.sqrt(np.nansum(ra**2, axis=1) * np.nansum(rb**2, axis=1))
    valid = both.sum(axis=1) >= 20
    return float(np.mean(num[valid] / den[valid]))


def forward_log_return(close: pd.DataFrame, horizon: int = 5) -> pd.DataFrame:
    """Log return over sessions t+1 .. t+horizon (NaN where unknown)."""
    log_close = np.log(close)
    return log_close.shift(-horizon) - log_close
