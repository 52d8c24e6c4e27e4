"""The market as the backtest reads it: dates x tickers arrays, pivoted once.

Every derived column at row ``t`` uses bars up to and including session ``t``
only (rolling windows end at ``t``, ``shift`` looks back), so slicing a row is
exactly "what was known at the close of ``t``". Why arrays pivoted once: a
12-year backtest visits ~3,000 sessions and ~600 rebalances; pivoting the long
bars on each of them (what a per-date pandas loop does) costs more than the
whole simulation (``python -m benchmarks.backtest`` measures both).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bma_models.data.protocol import MarketData, to_panel
from bma_models.errors import DataError
from bma_models.portfolio import ADV_WINDOW, average_true_range
from bma_models.risk import risk_inputs_from_panels, rolling_dollar_volume

logger = logging.getLogger(__name__)

__all__ = ["FILL_PRICES", "MarketPanels"]

FILL_PRICES = ("open", "close", "vwap")


@dataclass(frozen=True)
class MarketPanels:
    """Point-in-time panels of one market (rows = sessions, columns = tickers).

    Attributes
    ----------
    dates : DatetimeIndex
    tickers : Index
    close, volume : DataFrame
        Raw panels (NaN where a ticker has no bar), for the risk model's inputs.
    fill : ndarray
        The fill price of each session (``open``, ``close`` or ``vwap``; a
        missing VWAP is the typical price ``(high + low + close) / 3``).
    close_values, last_close : ndarray
        Close, and close carried forward over missing bars (the mark).
    adv : ndarray
        Mean dollar volume of the last ``adv_window`` sessions (the costs' ADV;
        :func:`bma_models.risk.rolling_dollar_volume`).
    snapshot_adv : ndarray
        The same over :data:`bma_models.portfolio.ADV_WINDOW` sessions: the
        ``adv`` of :func:`bma_models.portfolio.market_snapshot` at every row.
    atr : ndarray
        Mean true range of the last ``atr_window`` sessions (the rulebook's
        ``atr_window``; :func:`bma_models.portfolio.average_true_range`), NaN before.
    sigma : ndarray
        Standard deviation of the last ``volatility_window`` daily returns.
    benchmark_return : ndarray
        Equal-weight mean close-to-close return of the names with both closes.
    reference, sectors
        The market's reference rows and ticker -> sector (None when unknown).
    first_bar : ndarray
        Row of each ticker's first bar (``len(dates)`` for none).
    vwap_fallbacks : int
        Sessions x tickers whose VWAP fill price was the typical price.
    """

    dates: pd.DatetimeIndex
    tickers: pd.Index
    close: pd.DataFrame
    volume: pd.DataFrame
    fill: np.ndarray
    close_values: np.ndarray
    last_close: np.ndarray
    adv: np.ndarray
    snapshot_adv: np.ndarray
    atr: np.ndarray
    sigma: np.ndarray
    benchmark_return: np.ndarray
    reference: pd.DataFrame
    sectors: pd.Series | None
    first_bar: np.ndarray
    vwap_fallbacks: int = 0

    @classmethod
    def from_market(cls, market: MarketData, fill_price: str = "open", adv_window: int = 20,
                    atr_window: int = 14, volatility_window: int = 20) -> MarketPanels:
        """Pivot ``market.bars`` once and derive every point-in-time column.

        Raises
        ------
        DataError
            Unknown ``fill_price`` or no bars.
        """
        if fill_price not in FILL_PRICES:
            raise DataError(f"fill_price {fill_price!r} is not one of {FILL_PRICES}")
        bars = market.bars
        if bars.empty:
            raise DataError("the market has no bars to backtest on")
        # object tickers: pandas' Arrow strings cost ~10 ms per lookup on every rebalance
        close, volume, high, low = (_object_columns(to_panel(bars, c))
                                    for c in ("close", "volume", "high", "low"))
        fill, fallbacks = _fill_panel(bars, fill_price, close, high, low)
        atr = average_true_range(close, high, low, atr_window)
        adv = rolling_dollar_volume(close, volume, adv_window)
        snapshot_adv = adv if adv_window == ADV_WINDOW else \
            rolling_dollar_volume(close, volume, ADV_WINDOW)
        returns = close.pct_change(fill_method=None)
        sigma = returns.rolling(volatility_window, min_periods=max(2, volatility_window // 2)).std()
        bench = returns.mean(axis=1, skipna=True).fillna(0.0)
        ref = market.reference
        sectors = None
        if "sector" in ref and ref["sector"].notna().any():
            sectors = ref.drop_duplicates("ticker", keep="last").set_index("ticker")["sector"]
            sectors = pd.Series(sectors.to_numpy(dtype=object),
                                index=sectors.index.to_numpy(dtype=object), name="sector")
        return cls(dates=pd.DatetimeIndex(close.index), tickers=close.columns, close=close,
                   volume=volume, fill=fill.to_numpy(), close_values=close.to_numpy(),
                   last_close=close.ffill().to_numpy(), adv=adv.to_numpy(),
                   snapshot_adv=snapshot_adv.to_numpy(), atr=atr.to_numpy(), sigma=sigma.to_numpy(),
                   benchmark_return=bench.to_numpy(), reference=ref, sectors=sectors,
                   first_bar=_first_rows(close.to_numpy()), vwap_fallbacks=fallbacks)

    def snapshot(self, row: int) -> pd.DataFrame:
        """Return the market snapshot of the bars up to session ``row``, read off the panels.

        The snapshot is that of :func:`bma_models.portfolio.market_snapshot`:
        ``last_close``, ``adv`` and ``atr`` per ticker known at the session's close.

        Equal to calling ``market_snapshot`` on those bars (tested); a row instead of a
        pivot of the long bars on each rebalance date.
        """
        known = self.known(row)
        frame = pd.DataFrame({"last_close": self.last_close[row, known],
                              "adv": self.snapshot_adv[row, known],
                              "atr": self.atr[row, known]}, index=self.tickers[known])
        frame.index.name = "ticker"
        return frame

    def known(self, row: int) -> np.ndarray:
        """Tickers with a bar on or before session ``row`` (the universe known at its close)."""
        return self.first_bar <= row

    def risk_inputs(self, row: int, window: int, first: int | None = None) -> dict:
        """Return the risk model's inputs on the sessions ``[first, row]``.

        ``first`` defaults to the start of the last ``window`` sessions. Only the
        tickers known at ``row`` are included: nothing after ``row`` is read, not
        even which names list later (it would change the sector pooling).
        """
        start = max(0, row - window + 1) if first is None else first
        cols = self.known(row)
        return risk_inputs_from_panels(self.close.iloc[start:row + 1, cols],
                                       self.volume.iloc[start:row + 1, cols], self.reference)


def _first_rows(values: np.ndarray) -> np.ndarray:
    has = np.isfinite(values)
    return np.where(has.any(axis=0), has.argmax(axis=0), len(values))


def _object_columns(panel: pd.DataFrame) -> pd.DataFrame:
    panel.columns = pd.Index(panel.columns.to_numpy(dtype=object), dtype=object, name="ticker")
    return panel


def _fill_panel(bars, fill_price, close, high, low) -> tuple[pd.DataFrame, int]:
    if fill_price == "close":
        return close, 0
    if fill_price == "open":
        return _object_columns(to_panel(bars, "open")), 0
    vwap = _object_columns(to_panel(bars, "vwap"))
    typical = (high + low + close) / 3.0
    missing = vwap.isna() & typical.notna()
    count = int(missing.to_numpy().sum())
    if count:
        logger.warning("fill_price vwap: %d bars have no VWAP; their fill is the typical price "
                       "(high + low + close) / 3", count)
    return vwap.where(~missing, typical), count
