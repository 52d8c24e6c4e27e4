"""Polygon.io / Massive market-data adapter (HTTP client, parquet bar store, data source)."""
