"""Composition helpers shared by the headless CLI and the GUI trader session.

Moved out of :mod:`autotrader.cli` so that the GUI (which must not depend on the
CLI module, see the import contracts) builds its trader exactly as the CLI does:
:func:`trader_settings` is the one mapping from config sections to the engine
records, :func:`simulated_quotes` the paper/sim price source and
:class:`SimClock` the replay clock. ``autotrader.cli`` re-exports all three.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import zlib
from collections.abc import Callable

from autotrader.config import Settings
from autotrader.domain.records import Quote
from autotrader.engine.limits import PlannerSettings, RiskLimits, SizingSettings, StopSettings
from autotrader.services.trading import TraderSettings

logger = logging.getLogger(__name__)

__all__ = ["SimClock", "simulated_quotes", "trader_settings"]


def trader_settings(settings: Settings) -> TraderSettings:
    """Map the configuration sections onto the engine's parameter records."""
    capital, orders, sizing = settings.capital, settings.orders, settings.sizing
    controls, filters = settings.risk_controls, settings.filters
    stops = controls.stops
    return TraderSettings(
        risk=RiskLimits(
            cash_reserve_pct=capital.cash_reserve_pct,
            max_single_position_pct=capital.max_single_position_pct,
            max_portfolio_exposure=capital.max_portfolio_exposure,
            min_order_value_usd=orders.min_order_value_usd,
            daily_order_limit=orders.daily_order_limit,
            per_cycle_order_limit=orders.per_cycle_order_limit,
            acceptance_threshold=settings.signals.acceptance_threshold,
            sector_exposure_limit=controls.sector_exposure_limit,
            max_correlation=controls.max_correlation,
            correlation_window=controls.correlation_window,
            max_daily_loss_pct=controls.max_daily_loss_pct,
            min_price=filters.min_price, max_price=filters.max_price,
            trading_start=filters.trading_start, trading_end=filters.trading_end,
            timezone=filters.timezone),
        sizing=SizingSettings(
            per_trade_risk_pct=sizing.per_trade_risk_pct,
            max_position_pct_of_equity=sizing.max_position_pct_of_equity,
            notional_round_lots=sizing.notional_round_lots,
            cash_reserve_pct=capital.cash_reserve_pct),
        planner=planner_settings(settings),
        stops=StopSettings(enabled=stops.enabled, atr_multiplier=stops.atr_multiplier,
                           trailing=stops.trailing, max_loss_pct=stops.max_loss_pct,
                           min_atr_multiplier=stops.min_atr_multiplier,
                           decay_per_day=stops.decay_per_day),
    )


def planner_settings(settings: Settings) -> PlannerSettings:
    """The ``execution`` section (plus ``sizing.per_trade_risk_pct``) as the planner's record."""
    execution = settings.execution
    return PlannerSettings(
        min_adv_usd=execution.min_adv_usd, max_spread_bps=execution.max_spread_bps,
        min_expected_alpha_bps=execution.min_expected_alpha_bps,
        volatility_buckets=(execution.volatility_low_max, execution.volatility_medium_max),
        allowed_volatility_buckets=tuple(execution.allowed_volatility_buckets),
        max_limit_offset_bps=execution.max_limit_offset_bps, order_type=execution.order_type,
        take_profit_atr_multiple=execution.take_profit_atr_multiple,
        stop_atr_multiple=execution.stop_atr_multiple,
        per_trade_risk_pct=settings.sizing.per_trade_risk_pct,
        min_seconds_between_orders=execution.min_seconds_between_orders)


class SimClock:
    """A clock that starts at ``start`` and moves only when :meth:`advance` is called."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def simulated_quotes(closes: Callable[[], dict[str, float]]) -> Callable[[str, dt.datetime],
                                                                        Quote | None]:
    """Paper/sim price provider: ``last_close`` with a deterministic +-0.5% intraday wave.

    The phase comes from a CRC of the symbol, so every run and every restart
    sees the same prices at the same instant; bid/ask are 2 bps either side.
    """

    def provider(symbol: str, now: dt.datetime) -> Quote | None:
        close = closes().get(symbol)
        if close is None or not close > 0:
            return None
        phase = zlib.crc32(symbol.encode()) % 360 / 57.29578
        minutes = now.timestamp() / 60.0
        last = round(close * (1.0 + 0.005 * math.sin(minutes / 60.0 + phase)), 4)
        return Quote(symbol, last=last, prev_close=close, bid=last * 0.9998, ask=last * 1.0002,
                     time=now)

    return provider


def prev_close_source(settings: Settings,
                       closes: Callable[[], dict[str, float]]) -> Callable[[str], float | None]:
    """IB's last-resort price: Polygon's previous close (with a key), else the run's close."""
    from autotrader.config.secrets import polygon_api_key

    key = polygon_api_key()
    client = None
    if key:  # the Polygon package (and its parquet stack) loads only when it can be used
        from polygon.client import PolygonClient

        client = PolygonClient(base_url=settings.polygon.base_url, api_key=key)

    def prev_close(symbol: str) -> float | None:
        if client is not None:
            from polygon.errors import PolygonError

            try:
                bar = client.get_previous_close(symbol)
            except PolygonError as e:
                logger.warning("Polygon previous close of %s failed: %s", symbol, e)
            else:
                if bar is not None:
                    return bar.close
        price = closes().get(symbol)
        if price is not None:
            logger.warning("previous close of %s taken from the run's last_close", symbol)
        return price

    return prev_close
