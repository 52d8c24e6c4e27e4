"""Per-date cross-sectional processing of a feature frame.

Every step uses only the cross-section of one date, so it may run at inference
exactly as in training (qlib's ``is_for_infer = True``): it learns nothing across
dates and cannot leak a label.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bma_models.errors import SettingsError
from bma_models.panel.frames import panel_from_frame

logger = logging.getLogger(__name__)

IS_FOR_INFER = True


def row_quantiles(values: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Per-row quantiles of a 2-D array, ignoring NaN (linear interpolation).

    Same definition as ``numpy.nanquantile(values, q, axis=1)`` and
    ``pandas.Series.quantile``: position ``q * (n - 1)`` among the ``n`` sorted
    finite values of the row. Rows without finite values give NaN.

    Returns
    -------
    ndarray of shape (n_rows, len(quantiles))
    """
    ordered = np.sort(values, axis=1)  # NaN sorts last
    counts = np.sum(~np.isnan(values), axis=1)
    out = np.full((values.shape[0], len(quantiles)), np.nan)
    rows = np.nonzero(counts > 0)[0]
    last = counts[rows] - 1
    for k, q in enumerate(quantiles):
        position = q * last
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, last)
        fraction = position - below
        low = ordered[rows, below]
        high = ordered[rows, above]
        out[rows, k] = low + (high - low) * fraction
    return out


def _zscore(values: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    counts = valid.sum(axis=1, keepdims=True)
    filled = np.where(valid, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1, keepdims=True) / counts
        centred = np.where(valid, values - mean, 0.0)
        std = np.sqrt((centred * centred).sum(axis=1, keepdims=True) / counts)
        z = np.where(std > 0, centred / std, 0.0)
    return np.where(valid, z, np.nan)


def _sector_demean(values: np.ndarray, sector_codes: np.ndarray, n_sectors: int) -> np.ndarray:
    known = sector_codes >= 0
    onehot = np.zeros((len(sector_codes), n_sectors))
    onehot[np.nonzero(known)[0], sector_codes[known]] = 1.0
    valid = ~np.isnan(values)
    sums = np.where(valid, values, 0.0) @ onehot
    counts = valid.astype(np.float64) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, 0.0)
    offsets = np.zeros_like(values)
    offsets[:, known] = means[:, sector_codes[known]]
    return values - offsets


def _sector_codes(sectors, tickers: pd.Index) -> tuple[np.ndarray, int]:
    series = pd.Series(sectors) if isinstance(sectors, Mapping) else sectors
    if not isinstance(series, pd.Series):
        raise SettingsError("sectors must be a Series or mapping ticker -> sector")
    aligned = series.reindex(tickers)
    aligned = aligned.where(aligned.notna() & (aligned.astype("str") != ""))
    codes, uniques = pd.factorize(aligned, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), len(uniques)


def cross_sectional_process(
    features: pd.DataFrame,
    sectors: pd.Series | Mapping[str, str] | None = None,
    lower: float = 0.01,
    upper: float = 0.99,
    sector_neutral: bool = True,
) -> pd.DataFrame:
    """Winsorise, z-score, sector de-mean and median-impute each date's cross-section.

    Steps, per date and per column, in this order:

    1. clip to the ``lower`` / ``upper`` quantiles of the date's non-NaN values;
    2. z-score with that date's mean and population std (ddof=0); a constant
       cross-section becomes 0;
    3. if ``sector_neutral`` and ``sectors`` are given, subtract each sector's
       mean z-score (tickers without a known sector are left as they are);
    4. fill NaN with the date's median of the processed values. A date on which
       the column is NaN for every ticker (warm-up) stays NaN.

    Parameters
    ----------
    features : DataFrame
        MultiIndex ``(date, ticker)``, float columns.
    sectors : Series or mapping, optional
        Ticker -> sector name; missing or empty means unknown.
    lower, upper : float
        Winsorisation quantiles, ``0 <= lower < upper <= 1``.
    sector_neutral : bool
        Apply step 3 when sectors are given.

    Returns
    -------
    DataFrame
        Same index (same order) and columns as ``features``.

    Raises
    ------
    SettingsError
        If the quantiles are out of range.

    Notes
    -----
    Why the median is taken *after* sector de-meaning: imputation should place a
    missing ticker at the centre of the distribution the model sees, which is
    the processed one. The steps run on dates x tickers arrays, one column at a
    time, with no loop over dates or tickers.
    """
    if not 0.0 <= lower < upper <= 1.0:
        raise SettingsError(f"need 0 <= lower < upper <= 1, got lower={lower}, upper={upper}")
    if features.empty:
        return features.copy()
    dates, tickers, values, has_row = panel_from_frame(features)
    codes = None
    if sectors is not None and sector_neutral:
        codes, n_sectors = _sector_codes(sectors, tickers)
    for column in range(values.shape[2]):
        x = values[:, :, column]
        bounds = row_quantiles(x, (lower, upper))
        x = np.clip(x, bounds[:, :1], bounds[:, 1:])
        x = _zscore(x)
        if codes is not None and n_sectors > 0:
            x = _sector_demean(x, codes, n_sectors)
        median = row_quantiles(x, (0.5,))
        x = np.where(np.isnan(x), median, x)
        values[:, :, column] = x
    date_codes, ticker_codes = np.nonzero(has_row)
    index = pd.MultiIndex(
        levels=[dates, tickers], codes=[date_codes, ticker_codes],
        names=features.index.names, verify_integrity=False,
    )
    out = pd.DataFrame(values[has_row], index=index, columns=features.columns)
    if not out.index.equals(features.index):
        out = out.reindex(features.index)
    logger.debug("cross-sectional processing of %d rows x %d columns", *out.shape)
    return out
