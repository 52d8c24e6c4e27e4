"""Layered, validated, hot-reloading configuration store.

One :class:`ConfigStore` is shared by the GUI, the research pipeline and the
trader. Sources, lowest to highest precedence: built-in defaults (the packaged
``autotrader/config/default.yaml`` documents every key) < the config
directory's ``local.yaml`` < ``connection.json`` / ``risk_config.json``
(written by the GUI) < the app database's ``settings`` table <
``config.json`` (hot config) < runtime overrides (CLI/API). The config
directory is optional (:func:`resolve_config_dir`).

Components receive their own frozen section (``store.get().capital``), never
the store or a file path. Secrets come from the environment only
(:func:`polygon_api_key`).
"""

from autotrader.config.errors import ConfigError
from autotrader.config.rules import NOT_ATTRIBUTED, relaxed_rules, trading_rules
from autotrader.config.secrets import polygon_api_key, redact_secrets, register_secret
from autotrader.config.sections import (
    AppConfig,
    CapitalConfig,
    ConnectionConfig,
    FiltersConfig,
    OrdersConfig,
    PolygonConfig,
    RiskControlsConfig,
    Settings,
    SignalsConfig,
    SizingConfig,
    StopsConfig,
    TradingConfig,
)
from autotrader.config.store import (
    DEFAULT_CONFIG_DIR,
    ConfigStore,
    StoreStats,
    resolve_config_dir,
)
from bma_models.settings import ResearchSettings

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "NOT_ATTRIBUTED",
    "AppConfig",
    "CapitalConfig",
    "ConfigError",
    "ConfigStore",
    "ConnectionConfig",
    "FiltersConfig",
    "OrdersConfig",
    "PolygonConfig",
    "ResearchSettings",
    "RiskControlsConfig",
    "Settings",
    "SignalsConfig",
    "SizingConfig",
    "StopsConfig",
    "StoreStats",
    "TradingConfig",
    "polygon_api_key",
    "redact_secrets",
    "register_secret",
    "relaxed_rules",
    "trading_rules",
    "resolve_config_dir",
]
