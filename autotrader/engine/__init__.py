"""Pure trading engine: rebalance, pre-trade risk chain, execution planner, dynamic stops."""

from autotrader.engine.correlation import ReturnHistory
from autotrader.engine.limits import PlannerSettings, RiskLimits, SizingSettings, StopSettings
from autotrader.engine.planner import MarketStats, OrderPlan, plan_order, screen_entry
from autotrader.engine.rebalance import Recommendation, rebalance_intents, target_quantities
from autotrader.engine.risk import (
    RISK_CHECKS,
    Denial,
    PortfolioSnapshot,
    RiskContext,
    TradingState,
    check_order,
)
from autotrader.engine.stops import StopAction, plan_stop_update, trailing_stop_price
from autotrader.engine.ticks import round_to_tick, tick_size

__all__ = [
    "RISK_CHECKS",
    "Denial",
    "MarketStats",
    "OrderPlan",
    "PlannerSettings",
    "PortfolioSnapshot",
    "Recommendation",
    "ReturnHistory",
    "RiskContext",
    "RiskLimits",
    "SizingSettings",
    "StopAction",
    "StopSettings",
    "TradingState",
    "check_order",
    "plan_order",
    "plan_stop_update",
    "rebalance_intents",
    "round_to_tick",
    "screen_entry",
    "target_quantities",
    "tick_size",
    "trailing_stop_price",
]
