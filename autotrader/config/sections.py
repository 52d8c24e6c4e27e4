"""The typed, frozen sections of the workstation configuration.

Conventions (also documented at the top of ``config/default.yaml``):

* every fraction is a fraction: ``0.05`` means 5 % (keys ending in ``_pct``
  included) - never ``5``;
* money is in US dollars, durations in seconds unless the key says otherwise;
* times of day are ``"HH:MM"`` strings in ``filters.timezone``.

Components receive their own section (``settings.capital``...), never the
store, and never re-read files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Literal

from bma_models.schema import FieldError, Section, setting
from bma_models.settings import ResearchSettings

__all__ = [
    "AppConfig",
    "CapitalConfig",
    "ConnectionConfig",
    "ExecutionConfig",
    "FiltersConfig",
    "OrdersConfig",
    "PolygonConfig",
    "RiskControlsConfig",
    "Settings",
    "SignalsConfig",
    "SizingConfig",
    "StopsConfig",
    "TradingConfig",
]


@dataclasses.dataclass(frozen=True)
class AppConfig(Section):
    """Workstation-wide behaviour."""

    language: Literal["en", "zh"] = setting("en", doc="GUI label language")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting("INFO", doc="root log level")
    hot_reload_interval_s: float = setting(60.0, gt=0.0, le=86_400.0,
                                           doc="min seconds between config file checks")
    universe_source: Literal["stocks_file", "watchlist"] = setting(
        "stocks_file", doc="where the trading universe comes from")
    stocks_file: str = setting("stocks.txt", doc="one ticker per line, '#' comments")


@dataclasses.dataclass(frozen=True)
class ConnectionConfig(Section):
    """Interactive Brokers TWS / Gateway connection."""

    host: str = setting("127.0.0.1", doc="TWS/Gateway host")
    port: int = setting(7497, ge=1, le=65_535, doc="7497 TWS paper, 7496 TWS live, 4002/4001 GW")
    client_id: int = setting(1, ge=0, le=2_147_483_647, doc="API client id, unique per app")
    account_id: str = setting("", doc="account to trade; empty = the only managed account")
    use_delayed_if_no_realtime: bool = setting(True, doc="fall back to delayed market data")
    connect_timeout_s: float = setting(10.0, gt=0.0, le=300.0, doc="connect/handshake timeout")
    connect_attempts: int = setting(5, ge=1, le=100,
                                    doc="attempts per connect or reconnect before giving up")
    reconnect_base_delay_s: float = setting(0.5, ge=0.0, le=60.0,
                                            doc="wait before the 2nd attempt; doubles after")
    reconnect_max_delay_s: float = setting(30.0, ge=0.0, le=600.0,
                                           doc="longest wait between two attempts")

    def check(self) -> None:
        """Reject an empty or blank ``host``."""
        if not self.host.strip():
            raise FieldError(("host",), "must not be empty", self.host)


@dataclasses.dataclass(frozen=True)
class TradingConfig(Section):
    """Which broker the trader uses and how often it cycles.

    ``live_armed`` may only be set as a runtime override (the CLI flag or the
    GUI's arm button), never from a file or the database: a stale file must
    not arm live trading on the next start.
    """

    broker: Literal["paper", "ib"] = setting("paper", doc="paper = simulated fills")
    live_armed: bool = setting(False, doc="runtime-only: allow live orders")
    cycle_interval_s: float = setting(60.0, ge=1.0, le=86_400.0, doc="seconds between cycles")


@dataclasses.dataclass(frozen=True)
class CapitalConfig(Section):
    """How much of the account may be deployed (the trader's checks and research's plan)."""

    cash_reserve_pct: float = setting(0.05, ge=0.0, lt=1.0, doc="equity kept in cash")
    max_single_position_pct: float = setting(0.03, ge=0.0, le=1.0, doc="max equity per name")
    max_portfolio_exposure: float = setting(0.95, ge=0.0, le=2.0,
                                            doc="gross exposure / equity (1 = no leverage)")

    def check(self) -> None:
        """Reject a single-position cap above the portfolio exposure cap."""
        if self.max_single_position_pct > self.max_portfolio_exposure:
            raise FieldError(("max_single_position_pct", "max_portfolio_exposure"),
                             "a single position cannot exceed the portfolio exposure")


@dataclasses.dataclass(frozen=True)
class OrdersConfig(Section):
    """Order-count and order-size limits."""

    min_order_value_usd: float = setting(1_000.0, ge=0.0, doc="skip smaller orders")
    daily_order_limit: int = setting(20, ge=0, le=10_000, doc="orders per trading day")
    per_cycle_order_limit: int = setting(10, ge=0, le=10_000, doc="orders per trading cycle")

    def check(self) -> None:
        """Reject a per-cycle order limit above the daily one."""
        if self.per_cycle_order_limit > self.daily_order_limit:
            raise FieldError(("per_cycle_order_limit", "daily_order_limit"),
                             "per-cycle limit exceeds the daily limit")


@dataclasses.dataclass(frozen=True)
class SignalsConfig(Section):
    """Which research scores become trade candidates."""

    acceptance_threshold: float = setting(0.6, ge=0.0, le=1.0,
                                          doc="min score percentile (0..1) to trade")
    max_run_age_sessions: int | None = setting(
        2, ge=0, le=250, doc="oldest run (sessions since its last bar) that may open positions")


@dataclasses.dataclass(frozen=True)
class SizingConfig(Section):
    """Position sizing."""

    per_trade_risk_pct: float = setting(0.01, ge=0.0, le=1.0,
                                        doc="bracket orders: equity risked entry to stop")
    notional_round_lots: bool = setting(False, doc="round quantities down to 100-share lots")


@dataclasses.dataclass(frozen=True)
class StopsConfig(Section):
    """Dynamic (ATR-based, optionally trailing) stop losses."""

    enabled: bool = setting(True, doc="place protective stops")
    atr_window: int = setting(14, ge=2, le=250,
                              doc="sessions in the run's ATR (volatility screen, stops)")
    atr_multiplier: float = setting(2.0, gt=0.0, le=20.0, doc="stop distance in ATRs")
    trailing: bool = setting(True, doc="raise the stop as the price rises")
    max_loss_pct: float = setting(0.08, gt=0.0, le=1.0, doc="hard stop below entry")
    min_atr_multiplier: float = setting(1.5, gt=0.0, le=20.0,
                                        doc="the time decay never tightens below this")
    decay_per_day: float = setting(0.1, ge=0.0, le=1.0,
                                   doc="fraction of atr_multiplier lost per day held")

    def check(self) -> None:
        """Reject a decay floor (``min_atr_multiplier``) above the starting ``atr_multiplier``."""
        if self.min_atr_multiplier > self.atr_multiplier:
            raise FieldError(("min_atr_multiplier", "atr_multiplier"),
                             "the floor of the decay exceeds the starting distance")


@dataclasses.dataclass(frozen=True)
class RiskControlsConfig(Section):
    """Portfolio-level risk limits checked before every order."""

    sector_exposure_limit: float = setting(0.3, ge=0.0, le=1.0, doc="max equity per sector")
    max_correlation: float = setting(0.7, ge=0.0, le=1.0,
                                     doc="max return correlation of a new name with a held one")
    correlation_window: int = setting(60, ge=20, le=250,
                                      doc="daily returns (sessions) in that correlation")
    max_daily_loss_pct: float = setting(0.03, gt=0.0, le=1.0,
                                        doc="halt new buys after this daily loss")
    stops: StopsConfig = setting(default_factory=StopsConfig, doc="")


@dataclasses.dataclass(frozen=True)
class ExecutionConfig(Section):
    """The execution planner: entry screens, limit pricing, order type and throttle."""

    min_adv_usd: float = setting(1_000_000.0, ge=0.0, doc="min average daily dollar volume")
    max_spread_bps: float = setting(50.0, gt=0.0, le=10_000.0, doc="max bid/ask spread")
    min_expected_alpha_bps: float = setting(10.0, ge=-10_000.0, le=10_000.0,
                                            doc="min expected return of an entry")
    volatility_low_max: float = setting(0.02, gt=0.0, le=1.0,
                                        doc="ATR/price up to this is 'low'")
    volatility_medium_max: float = setting(0.05, gt=0.0, le=1.0,
                                           doc="up to this 'medium', above 'high'")
    allowed_volatility_buckets: tuple[Literal["low", "medium", "high"], ...] = setting(
        ("low", "medium"), doc="volatility buckets that may be entered")
    max_limit_offset_bps: float = setting(20.0, ge=0.0, le=1_000.0,
                                          doc="limit moved toward the market at confidence 1")
    order_type: Literal["limit", "market", "bracket"] = setting(
        "limit", doc="entries: limit, market or bracket (limit + take profit + stop)")
    take_profit_atr_multiple: float = setting(3.0, gt=0.0, le=50.0,
                                              doc="bracket take profit above entry, in ATRs")
    stop_atr_multiple: float = setting(2.0, gt=0.0, le=50.0,
                                       doc="bracket stop below entry, in ATRs")
    min_seconds_between_orders: float = setting(300.0, ge=0.0, le=86_400.0,
                                                doc="no new order on a symbol within this")

    def check(self) -> None:
        """Reject unordered volatility buckets and an empty list of allowed buckets."""
        if self.volatility_low_max >= self.volatility_medium_max:
            raise FieldError(("volatility_low_max", "volatility_medium_max"),
                             "the low bucket must end below the medium one")
        if not self.allowed_volatility_buckets:
            raise FieldError(("allowed_volatility_buckets",), "needs at least one bucket "
                             "(no entry could pass otherwise)")


@dataclasses.dataclass(frozen=True)
class FiltersConfig(Section):
    """Tradable-universe filters and trading hours."""

    min_price: float = setting(2.0, ge=0.0, doc="USD")
    max_price: float = setting(800.0, gt=0.0, doc="USD")
    trading_start: dt.time = setting(dt.time(9, 30), doc="HH:MM local to timezone")
    trading_end: dt.time = setting(dt.time(16, 0), doc="HH:MM local to timezone")
    timezone: str = setting("America/New_York", doc="IANA zone of the trading hours")

    def check(self) -> None:
        """Reject an empty price band or trading window and an unknown IANA time zone."""
        if self.min_price >= self.max_price:
            raise FieldError(("min_price", "max_price"), "min_price must be below max_price")
        if self.trading_start >= self.trading_end:
            raise FieldError(("trading_start", "trading_end"),
                             "trading_start must be before trading_end")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
            raise FieldError(("timezone",), "is not an IANA time zone", self.timezone) from e


@dataclasses.dataclass(frozen=True)
class PolygonConfig(Section):
    """Polygon.io (Massive) market-data adapter. The API key comes from the environment."""

    base_url: str = setting("https://api.massive.com", doc="REST base URL")
    requests_per_minute: int = setting(5, ge=1, le=100_000, doc="client-side rate limit")
    timeout_s: float = setting(30.0, gt=0.0, le=600.0, doc="HTTP read timeout")
    max_retries: int = setting(5, ge=0, le=20, doc="retries on 429/5xx with backoff")
    cache_dir: str = setting("data_cache/polygon", doc="parquet bar cache")

    def check(self) -> None:
        """Reject a ``base_url`` that is not an http(s) URL."""
        if not self.base_url.startswith(("https://", "http://")):
            raise FieldError(("base_url",), "must start with https://", self.base_url)


@dataclasses.dataclass(frozen=True)
class Settings(Section):
    """The whole configuration: one immutable object, swapped whole on reload."""

    app: AppConfig = setting(default_factory=AppConfig, doc="")
    connection: ConnectionConfig = setting(default_factory=ConnectionConfig, doc="")
    trading: TradingConfig = setting(default_factory=TradingConfig, doc="")
    capital: CapitalConfig = setting(default_factory=CapitalConfig, doc="")
    orders: OrdersConfig = setting(default_factory=OrdersConfig, doc="")
    signals: SignalsConfig = setting(default_factory=SignalsConfig, doc="")
    sizing: SizingConfig = setting(default_factory=SizingConfig, doc="")
    risk_controls: RiskControlsConfig = setting(default_factory=RiskControlsConfig, doc="")
    execution: ExecutionConfig = setting(default_factory=ExecutionConfig, doc="")
    filters: FiltersConfig = setting(default_factory=FiltersConfig, doc="")
    polygon: PolygonConfig = setting(default_factory=PolygonConfig, doc="")
    research: ResearchSettings = setting(default_factory=ResearchSettings, doc="")

    def check(self) -> None:
        """Reject a portfolio that cannot be invested.

        ``research.portfolio.top_n * capital.max_single_position_pct`` must reach
        the invested fraction, ``min(1 - cash_reserve_pct, max_portfolio_exposure)``.
        """
        invested = min(1.0 - self.capital.cash_reserve_pct, self.capital.max_portfolio_exposure)
        top_n, cap = self.research.portfolio.top_n, self.capital.max_single_position_pct
        if top_n * cap < invested - 1e-12:
            raise FieldError(
                ("research.portfolio.top_n", "capital.max_single_position_pct"),
                f"top_n * max_single_position_pct = {top_n * cap:g} < the invested fraction "
                f"{invested:g} (1 - capital.cash_reserve_pct, at most "
                "capital.max_portfolio_exposure), so no portfolio can be invested: raise "
                "research.portfolio.top_n or capital.max_single_position_pct")


SECTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))
