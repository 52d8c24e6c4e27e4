"""The backtest's order rule is the trader's sizing: lots, position cap, reserve, minimum order."""

from __future__ import annotations

import pandas as pd

from autotrader.config import Settings
from autotrader.engine.limits import RiskLimits, SizingSettings
from autotrader.engine.rebalance import Recommendation, target_quantities
from autotrader.services.backtest_orders import TraderOrderRule, trader_order_rule

PRICES = pd.Series({"AAA": 10.0, "BBB": 37.0, "CCC": 250.0, "OLD": 20.0})


def _rule(**sizing) -> TraderOrderRule:
    return TraderOrderRule(SizingSettings(**{"max_position_pct_of_equity": 0.2,
                                             "cash_reserve_pct": 0.0, **sizing}),
                           RiskLimits(min_order_value_usd=1000.0))


def test_orders_move_the_book_to_the_traders_target_quantities():
    weights = pd.Series({"AAA": 0.1, "BBB": 0.15, "CCC": 0.05})
    held = pd.Series({"AAA": 300, "OLD": 7})
    orders = _rule()(weights, 100_000.0, PRICES, held)
    recs = [Recommendation(i + 1, t, "", 0.0, 0.0, w, PRICES[t], 0.0)
            for i, (t, w) in enumerate(weights.items())]
    targets = target_quantities(recs, 100_000.0, PRICES.to_dict(),
                                SizingSettings(max_position_pct_of_equity=0.2,
                                               cash_reserve_pct=0.0))
    after = held.reindex(orders.index.union(held.index)).fillna(0) + orders.reindex(
        orders.index.union(held.index)).fillna(0)
    assert after[after != 0].to_dict() == {t: q for t, q in targets.items() if q}
    assert orders["OLD"] == -7  # a full exit is made although it is below the minimum order


def test_round_lots_and_the_minimum_order_value_are_the_traders():
    weights = pd.Series({"AAA": 0.1, "BBB": 0.005})
    orders = _rule(notional_round_lots=True)(weights, 100_000.0, PRICES, pd.Series(dtype=int))
    assert orders.to_dict() == {"AAA": 1000}  # BBB: 13 shares = 481 USD < 1000, and 0 lots


def test_the_rule_of_the_packaged_config_reads_the_trader_sections():
    rule = trader_order_rule(Settings())
    settings = Settings()
    assert rule.limits.min_order_value_usd == settings.orders.min_order_value_usd
    assert rule.sizing.notional_round_lots == settings.sizing.notional_round_lots
    assert rule.sizing.cash_reserve_pct == settings.capital.cash_reserve_pct
    assert rule.sizing.max_position_pct_of_equity == settings.capital.max_single_position_pct


def test_a_plan_under_the_same_reserve_is_invested_once_not_twice():
    """The rulebook's plan already keeps capital.cash_reserve_pct in cash: the trader's
    sizing does not take a second reserve off it (95 % invested, not 90.25 %)."""
    weights = pd.Series({"AAA": 0.5, "CCC": 0.45})  # sums to 1 - 5 %
    rule = _rule(max_position_pct_of_equity=0.6, cash_reserve_pct=0.05)
    orders = rule(weights, 100_000.0, PRICES, pd.Series(dtype=int))
    invested = float((orders * PRICES.reindex(orders.index)).sum())
    assert invested == 95_000.0  # twice the reserve would be 47,500 + 42,750 = 90,250
