"""Data-source protocol, NYSE calendar, demo market and CSV/Parquet import."""

from bma_models.data.protocol import (
    BAR_COLUMNS,
    REFERENCE_COLUMNS,
    DataSource,
    MarketData,
    empty_bars,
    normalize_bars,
    normalize_reference,
    to_panel,
)

__all__ = [
    "BAR_COLUMNS",
    "REFERENCE_COLUMNS",
    "DataSource",
    "MarketData",
    "empty_bars",
    "normalize_bars",
    "normalize_reference",
    "to_panel",
]
