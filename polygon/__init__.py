"""Polygon.io / Massive market-data adapter (HTTP client, parquet bar store, data source).

``PolygonClient`` is the facade of the REST API; ``BarStore`` caches its bars
in parquet; ``PolygonSource`` hands them to the research core in the
data-source protocol's layout.
"""

from polygon.client import DEFAULT_BASE_URL, PolygonClient, api_key_from_env
from polygon.errors import (
    AuthError,
    BadResponseError,
    CacheError,
    NotFoundError,
    PolygonError,
    PolygonUnreachable,
    RateLimitedError,
    RefreshError,
    ServiceError,
)
from polygon.models import DailyBar, TickerDetails, session_date
from polygon.sectors import sector_for_sic
from polygon.source import LoadedData, PolygonSource, TqdmProgress
from polygon.store import BarStore, Calendar, RefreshReport

__all__ = [
    "DEFAULT_BASE_URL",
    "AuthError",
    "BadResponseError",
    "BarStore",
    "CacheError",
    "Calendar",
    "DailyBar",
    "LoadedData",
    "NotFoundError",
    "PolygonClient",
    "PolygonError",
    "PolygonSource",
    "PolygonUnreachable",
    "RateLimitedError",
    "RefreshError",
    "RefreshReport",
    "ServiceError",
    "TickerDetails",
    "TqdmProgress",
    "api_key_from_env",
    "sector_for_sic",
    "session_date",
]
