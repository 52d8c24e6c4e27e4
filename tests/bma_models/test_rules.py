"""The rulebook: each screen on its own, the entry order, the derived limits."""

from __future__ import annotations

import math

import pytest

from bma_models import rules
from bma_models.rules import CONFIG_KEYS, Denial, Rulebook


@pytest.mark.parametrize(("call", "check"), [
    (lambda: rules.price_band(1.99, 2.0, 800.0), "price_band"),
    (lambda: rules.price_band(800.01, 2.0, 800.0), "price_band"),
    (lambda: rules.liquidity(999_999.0, 1e6), "liquidity"),
    (lambda: rules.liquidity(math.nan, 1e6), "liquidity"),
    (lambda: rules.volatility(6.0, 100.0, 0.02, 0.05, ("low", "medium")), "volatility"),
    (lambda: rules.volatility(math.nan, 100.0, 0.02, 0.05, ("low", "medium")), "volatility"),
    (lambda: rules.expected_alpha(0.00099, 10.0), "expected_alpha"),
    (lambda: rules.expected_alpha(math.nan, 10.0), "expected_alpha"),
    (lambda: rules.signal_threshold(0.59, 0.6), "signal_threshold"),
    (lambda: rules.min_order_value(999.0, 1000.0), "min_order_value"),
    (lambda: rules.position_limit("A", 3001.0, 1e5, 0.03), "max_single_position"),
    (lambda: rules.sector_limit("Energy", 30_001.0, 1e5, 0.3), "sector_exposure"),
    (lambda: rules.cash_reserve(4_999.0, 1e5, 0.05), "cash_reserve"),
])
def test_each_screen_denies_with_its_check_name(call, check):
    denial = call()
    assert isinstance(denial, Denial) and denial.check == check and denial.reason


@pytest.mark.parametrize("call", [
    lambda: rules.price_band(2.0, 2.0, 800.0),
    lambda: rules.liquidity(1e6, 1e6),
    lambda: rules.volatility(5.0, 100.0, 0.02, 0.05, ("low", "medium")),
    lambda: rules.expected_alpha(0.001, 10.0),
    lambda: rules.signal_threshold(0.6, 0.6),
    lambda: rules.min_order_value(1000.0, 1000.0),
    lambda: rules.position_limit("A", 3000.0, 1e5, 0.03),
    lambda: rules.sector_limit("Energy", 30_000.0, 1e5, 0.3),
    lambda: rules.cash_reserve(5_000.0, 1e5, 0.05),
])
def test_each_screen_passes_at_its_boundary(call):
    assert call() is None


def test_unknown_sector_is_not_a_sector_so_no_limit_applies():
    for sector in ("Unknown", "", None, float("nan")):
        assert not rules.sector_is_capped(sector)
    assert rules.sector_limit("Unknown", 1e9, 1e5, 0.3) is None


def test_entry_denial_runs_the_screens_in_the_traders_order():
    book = Rulebook()
    everything_wrong = {"price": 1.0, "adv_usd": 0.0, "atr": 5.0, "expected_return": -1.0,
                        "percentile": 0.1}
    order = []
    for fix in ("percentile", "price", "adv_usd", "atr", "expected_return"):
        order.append(book.entry_denial(**everything_wrong).check)
        everything_wrong[fix] = {"percentile": 0.9, "price": 50.0, "adv_usd": 1e8,
                                 "atr": 1.0, "expected_return": 0.01}[fix]
    assert order == ["signal_threshold", "price_band", "liquidity", "volatility",
                     "expected_alpha"]
    assert book.entry_denial(**everything_wrong) is None


def test_derived_limits_invested_fraction_minimum_trade_and_bracket_cap():
    assert Rulebook(cash_reserve=0.02, max_exposure=0.95).invested_fraction == 0.95
    assert Rulebook(cash_reserve=0.10, max_exposure=0.95).invested_fraction == pytest.approx(0.9)
    assert Rulebook(min_order_value_usd=1000).min_trade_weight(1e6) == 0.001
    assert Rulebook(min_order_value_usd=0).min_trade_weight(1e6) == 1e-4  # one basis point
    assert Rulebook(order_type="limit").entry_cap(50.0, 2.5) == math.inf
    # 1 % of equity at risk over a 2-ATR stop: 0.01 * 50 / (2 * 2.5) = 10 % of equity
    assert Rulebook(order_type="bracket").entry_cap(50.0, 2.5) == pytest.approx(0.1)
    assert Rulebook(order_type="bracket").entry_cap(50.0, math.nan) == 0.0


def test_every_rulebook_field_names_its_config_key():
    import dataclasses

    assert [f.name for f in dataclasses.fields(Rulebook)] == list(CONFIG_KEYS)
