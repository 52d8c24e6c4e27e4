"""Frozen parameter records for the engine (risk chain, sizing, planner, stops).

Why the engine defines its own records instead of importing the config store:
the engine must stay pure and importable on its own (no files, no hot reload).
Field names are the config keys of the matching section, so mapping a
``Settings`` object onto these is one keyword call per record. Percent values
are fractions in 0..1.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class RiskLimits:
    """Pre-trade limits (config sections capital, orders, signals, risk_controls, filters).

    ``acceptance_threshold`` is a score *percentile* in 0..1 within the run
    (1 = the top-ranked name), matching ``signals.acceptance_threshold``.
    ``max_run_age_sessions`` is the oldest run (NYSE sessions completed since
    its last bar) whose plan may still open or add to positions; None = any age.
    """

    cash_reserve_pct: float = 0.05
    max_single_position_pct: float = 0.10
    max_portfolio_exposure: float = 0.95
    min_order_value_usd: float = 500.0
    daily_order_limit: int = 50
    per_cycle_order_limit: int = 20
    acceptance_threshold: float = 0.0
    max_run_age_sessions: int | None = None
    sector_exposure_limit: float = 0.35
    max_correlation: float = 0.7
    correlation_window: int = 60
    max_daily_loss_pct: float = 0.03
    min_price: float = 2.0
    max_price: float = 800.0
    trading_start: dt.time = dt.time(9, 30)
    trading_end: dt.time = dt.time(16, 0)
    timezone: str = "America/New_York"


@dataclass(frozen=True)
class SizingSettings:
    """Target sizing: round lots, the largest position and the cash reserve.

    Config keys: ``sizing.notional_round_lots``, ``capital.max_single_position_pct``
    (as ``max_position_pct_of_equity``) and ``capital.cash_reserve_pct``.
    ``notional_round_lots`` True rounds targets down to 100-share round lots;
    False rounds down to whole shares. ``per_trade_risk_pct`` is read by the
    planner (bracket orders only).
    """

    per_trade_risk_pct: float = 0.01
    max_position_pct_of_equity: float = 0.10
    notional_round_lots: bool = False
    cash_reserve_pct: float = 0.05


@dataclass(frozen=True)
class PlannerSettings:
    """Execution planner screens and pricing (config ``execution``; the risk-reward controller).

    ``volatility_buckets`` are upper ATR/price bounds of the "low" and "medium"
    buckets; above the second is "high". Entries in a bucket not listed in
    ``allowed_volatility_buckets`` are denied.
    """

    min_adv_usd: float = 1_000_000.0
    max_spread_bps: float = 50.0
    min_expected_alpha_bps: float = 10.0
    volatility_buckets: tuple[float, float] = (0.02, 0.05)
    allowed_volatility_buckets: tuple[str, ...] = ("low", "medium")
    max_limit_offset_bps: float = 20.0
    order_type: str = "limit"
    take_profit_atr_multiple: float = 3.0
    stop_atr_multiple: float = 2.0
    per_trade_risk_pct: float = 0.01
    min_seconds_between_orders: float = 300.0


@dataclass(frozen=True)
class StopSettings:
    """Dynamic stop parameters (config ``risk_controls.stops``).

    ``atr_window`` is not here: the run computes its ``atr`` column with that
    window (the rulebook's ``atr_window``) and the stops use that column.
    """

    enabled: bool = True
    atr_multiplier: float = 3.0
    trailing: bool = True
    max_loss_pct: float = 0.08
    min_atr_multiplier: float = 1.5
    decay_per_day: float = 0.1
