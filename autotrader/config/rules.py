"""The configuration as the rulebook: one mapping for the trader and for research.

:func:`trading_rules` is the only place where the configuration sections become
a :class:`bma_models.rules.Rulebook`; the trader's engine records
(:func:`autotrader.services.session.trader_settings`) and research's
portfolio (``bma run``, the GUI's research job) both start from it, so a key
changed in the GUI's Risk tab moves the plan and the orders together.
"""

from __future__ import annotations

from typing import Any

from autotrader.config.sections import Settings
from bma_models.rules import CONFIG_KEYS, Rulebook

__all__ = ["NOT_ATTRIBUTED", "relaxed_rules", "trading_rules"]

#: Checks the rule attribution leaves alone, and why (``bma backtest --attribution``).
NOT_ATTRIBUTED = {
    "cash_reserve": "sets how much is invested, not which names: relaxing it would measure "
                    "leverage, not a rule",
}


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


def relaxed_rules(settings: Settings) -> dict[str, dict[str, Any]]:
    """Return the configuration overrides that switch off one rule each, by check name.

    Used by ``bma backtest --attribution``: each entry is applied alone on top of
    ``settings`` (through the config store, so the relaxed settings are
    validated like any others). Every check of
    :data:`bma_models.rules.CHECK_KEYS` has an entry except those in
    :data:`NOT_ATTRIBUTED`. The position cap is relaxed to the portfolio's
    maximum exposure (the validated upper bound).
    """
    k = CONFIG_KEYS
    return {
        "signal_threshold": {k["acceptance_threshold"]: 0.0},
        "price_band": {k["min_price"]: 0.0, k["max_price"]: 1e9},
        "liquidity": {k["min_adv_usd"]: 0.0},
        "volatility": {k["allowed_volatility_buckets"]: ["low", "medium", "high"]},
        "expected_alpha": {k["min_expected_alpha_bps"]: -10_000.0},
        "min_order_value": {k["min_order_value_usd"]: 0.0},
        "max_single_position": {k["max_position"]: settings.capital.max_portfolio_exposure},
        "sector_exposure": {k["sector_limit"]: 1.0},
    }

