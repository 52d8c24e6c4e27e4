"""autotrader.gui: the Tkinter workstation (the only package that imports tkinter).

Each tab is one module with one ``ttk.Frame`` subclass and ``register(app)``;
:data:`VIEW_MODULES` is the tab order. Start it with ``python -m autotrader.app``.
"""

from autotrader.gui import (
    backtest_tab,
    data_tab,
    logs_tab,
    research_tab,
    risk_tab,
    trading_tab,
    watchlist_tab,
)
from autotrader.gui.app import AppPaths, StallMeter, Workstation, main
from autotrader.gui.bus import EventBus

VIEW_MODULES = (research_tab, trading_tab, risk_tab, data_tab, watchlist_tab, backtest_tab,
                logs_tab)

__all__ = ["AppPaths", "EventBus", "StallMeter", "VIEW_MODULES", "Workstation", "main"]
