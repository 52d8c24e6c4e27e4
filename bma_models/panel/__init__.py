"""Dates x tickers arrays of bars and the rolling-window kernels over them.

The layer between the bar protocol (:mod:`bma_models.data`) and the two
consumers that must not depend on each other: the factor library
(:mod:`bma_models.factors`) and the labels (:mod:`bma_models.labels`). Both
count windows and lags in *market sessions* on the same grid, so both build it
here.
"""

from bma_models.panel.frames import (
    PANEL_FIELDS,
    BarGrid,
    Panel,
    bar_grid,
    build_panel,
    long_index,
    panel_from_frame,
    shares_per_ticker,
)

__all__ = [
    "PANEL_FIELDS",
    "BarGrid",
    "Panel",
    "bar_grid",
    "build_panel",
    "long_index",
    "panel_from_frame",
    "shares_per_ticker",
]
