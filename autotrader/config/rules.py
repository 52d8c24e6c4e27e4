"""The configuration as the rulebook: one mapping for the trader and for research.

:func:`trading_rules` is the only place where the configuration sections become
a :class:`bma_models.rules.Rulebook`; the trader's engine records
(:func:`autotrader.services.session.trader_settings`) and research's
portfolio (``bma run``, the GUI's research job) both start from it, so a key
changed in the GUI's Risk tab moves the plan and the orders together.
"""

from __future__ import annotations

from autotrader.config.sections import Settings
from bma_models.rules import Rulebook

__all__ = ["trading_rules"]


def trading_rules(settings: Settings) -> Rulebook:
    """Build the rulebook of ``settings`` (every field from the key named in ``CONFIG_KEYS``)."""
    capital, execution, filters = settings.capital, settings.execution, settings.filters
    return Rulebook(
        min_price=filters.min_price, max_price=filters.max_price,
        min_adv_usd=execution.min_adv_usd,
        volatility_low_max=execution.volatility_low_max,
        volatility_medium_max=execution.volatility_medium_max,
        allowed_volatility_buckets=tuple(execution.allowed_volatility_buckets),
        min_expected_alpha_bps=execution.min_expected_alpha_bps,
        acceptance_threshold=settings.signals.acceptance_threshold,
        min_order_value_usd=settings.orders.min_order_value_usd,
        max_position=capital.max_single_position_pct,
        sector_limit=settings.risk_controls.sector_exposure_limit,
        cash_reserve=capital.cash_reserve_pct, max_exposure=capital.max_portfolio_exposure,
        atr_window=settings.risk_controls.stops.atr_window, order_type=execution.order_type,
        per_trade_risk_pct=settings.sizing.per_trade_risk_pct,
        stop_atr_multiple=execution.stop_atr_multiple)
