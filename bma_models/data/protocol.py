"""The data-source protocol: what every market-data source hands the research core.

Bars are a *long* DataFrame, one row per (date, ticker) session::

    date      datetime64[ns], the NYSE session date (tz-naive midnight)
    ticker    str, upper case (``BRK.B`` style class suffixes)
    open, high, low, close, vwap   float64, split/dividend adjusted
    volume    float64, adjusted shares

sorted by (date, ticker), unique on (date, ticker). Reference data is one row
per ticker: ``ticker, sector, market_cap, shares_outstanding`` (sector may be
missing, numbers may be NaN when unknown).

Sources (demo market, CSV import, the Polygon adapter) return a
:class:`MarketData`, which also says where the numbers came from so every
output can label them (demo data is always marked DEMO).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from bma_models.errors import DataError

BAR_COLUMNS: tuple[str, ...] = (
    "date", "ticker", "open", "high", "low", "close", "volume", "vwap",
)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "vwap")
REFERENCE_COLUMNS: tuple[str, ...] = ("ticker", "sector", "market_cap", "shares_outstanding")


@dataclass(frozen=True)
class MarketData:
    """Bars plus reference data, labelled with their source.

    Attributes
    ----------
    bars : DataFrame
        Long bars in the layout described in the module docstring.
    reference : DataFrame
        One row per ticker: sector, market_cap, shares_outstanding.
    source : str
        ``"demo"``, ``"csv"`` or ``"polygon"``.
    is_demo : bool
        True for synthetic data; every report built on it says DEMO.
    notes : tuple of str
        Human-readable remarks from loading (dropped rows, fallbacks).
    """

    bars: pd.DataFrame
    reference: pd.DataFrame
    source: str
    is_demo: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def tickers(self) -> list[str]:
        """Sorted tickers that have at least one bar."""
        return sorted(self.bars["ticker"].unique().tolist())

    @property
    def dates(self) -> pd.DatetimeIndex:
        """Sorted sessions that have at least one bar."""
        return pd.DatetimeIndex(np.sort(self.bars["date"].unique()))

    @property
    def label(self) -> str:
        """Name of the source as reports print it (``DEMO`` for synthetic data)."""
        return "DEMO (synthetic demo market)" if self.is_demo else self.source


@runtime_checkable
class DataSource(Protocol):
    """Anything that can load bars and reference data for a universe and date range."""

    name: str

    def load(
        self,
        tickers: list[str] | None,
        start: pd.Timestamp | str | None,
        end: pd.Timestamp | str | None,
    ) -> MarketData:
        """Return bars within [start, end] (inclusive) for ``tickers`` (None: all known)."""
        ...


def empty_bars() -> pd.DataFrame:
    """Return an empty bars frame with the protocol's columns and dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS})
    frame["date"] = pd.Series(dtype="datetime64[ns]")
    frame["ticker"] = pd.Series(dtype="str")
    return frame[list(BAR_COLUMNS)]


def require_bar_columns(bars: pd.DataFrame) -> None:
    """Raise :class:`DataError` naming the protocol columns ``bars`` lacks."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(f"bars are missing columns {missing}; expected {list(BAR_COLUMNS)}")


def normalize_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Coerce dtypes, sort by (date, ticker) and reset the index.

    Raises
    ------
    DataError
        If a protocol column is missing or duplicated (date, ticker) rows exist.
    """
    require_bar_columns(bars)
    out = bars.loc[:, list(BAR_COLUMNS)].copy()
    out["date"] = pd.to_datetime(out["date"]).dt.normalize().astype("datetime64[ns]")
    out["ticker"] = out["ticker"].astype("str").str.upper()
    for column in ("open", "high", "low", "close", "volume", "vwap"):
        out[column] = out[column].astype("float64")
    dup = out.duplicated(["date", "ticker"])
    if dup.any():
        first = out.loc[dup, ["date", "ticker"]].iloc[0]
        raise DataError(
            f"{int(dup.sum())} duplicated (date, ticker) bars, e.g. "
            f"{first['ticker']} on {first['date'].date()}"
        )
    return out.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)


def normalize_reference(reference: pd.DataFrame, tickers: list[str]) -> pd.DataFrame:
    """Return one reference row per ticker in ``tickers``, NaN/None where unknown."""
    ref = reference.copy() if reference is not None else pd.DataFrame(columns=REFERENCE_COLUMNS)
    for column in REFERENCE_COLUMNS:
        if column not in ref.columns:
            ref[column] = np.nan
    ref["ticker"] = ref["ticker"].astype("str").str.upper()
    ref = ref.drop_duplicates("ticker", keep="last").set_index("ticker")
    ref = ref.reindex(pd.Index(sorted(tickers), name="ticker"))
    out = ref.reset_index()[list(REFERENCE_COLUMNS)]
    out["sector"] = out["sector"].astype("str").where(out["sector"].notna(), None)
    for column in ("market_cap", "shares_outstanding"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out


def to_panel(bars: pd.DataFrame, column: str) -> pd.DataFrame:
    """Pivot one bar column to a dates x tickers frame (NaN where no bar)."""
    return bars.pivot(index="date", columns="ticker", values=column).sort_index()
