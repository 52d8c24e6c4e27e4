"""The cost model: IBKR Fixed commission, half spread by liquidity, square-root impact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bma_models.backtest.costs import commission, half_spread_bps, market_impact, order_costs
from bma_models.settings import CostSettings


def test_commission_matches_the_ibkr_fixed_examples():
    # interactivebrokers.com, "Commissions Stocks", Fixed pricing examples (docs/backtest.md)
    fees = commission([100, 1000, 1000], [25.0, 25.0, 0.25], 0.005, 1.0, 0.01)
    assert fees.tolist() == pytest.approx([1.00, 5.00, 2.50])


def test_commission_is_per_order_and_signless():
    assert commission([-400], [50.0], 0.005, 1.0, 0.01).tolist() == [2.0]
    assert commission([0], [50.0], 0.005, 1.0, 0.01).tolist() == [0.0]


def test_half_spread_follows_the_adv_buckets():
    costs = CostSettings()
    bps = half_spread_bps([5e5, 1e6, 3e6, 2e7, 9e7, 4e8, 6e8, np.nan], costs.spread_adv_breaks,
                          costs.half_spread_bps)
    assert bps.tolist() == [50.0, 25.0, 25.0, 12.0, 6.0, 3.0, 1.5, 50.0]


def test_impact_grows_with_the_square_root_of_participation():
    per_dollar = market_impact([1e4, 4e4], [1e7, 1e7], [0.02, 0.02], 1.0) / [1e4, 4e4]
    assert per_dollar[1] == pytest.approx(2 * per_dollar[0])
    assert per_dollar[0] == pytest.approx(0.02 * np.sqrt(1e4 / 1e7))


def _doubled(costs: CostSettings) -> CostSettings:
    return dataclasses.replace(
        costs, commission_per_share=2 * costs.commission_per_share,
        commission_min=2 * costs.commission_min, commission_max_pct=2 * costs.commission_max_pct,
        half_spread_bps=tuple(2 * b for b in costs.half_spread_bps),
        impact_coefficient=2 * costs.impact_coefficient)


def test_doubling_every_cost_parameter_doubles_every_orders_cost():
    rng = np.random.default_rng(0)
    shares = rng.integers(-5000, 5000, 200)
    price = rng.uniform(0.5, 400.0, 200)
    adv = 10 ** rng.uniform(5, 9.5, 200)
    sigma = rng.uniform(0.005, 0.06, 200)
    base = order_costs(shares, price, adv, sigma, CostSettings())
    double = order_costs(shares, price, adv, sigma, _doubled(CostSettings()))
    assert np.allclose(double.total, 2 * base.total, rtol=1e-12)
    assert (base.total[shares != 0] > 0).all()


def test_zero_quantity_costs_nothing():
    cost = order_costs([0, 0], [10.0, 20.0], [1e6, np.nan], [0.02, np.nan], CostSettings())
    assert cost.total.tolist() == [0.0, 0.0]
