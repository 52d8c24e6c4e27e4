"""One rulebook: the trader's entry checks and research's screen refuse the same names.

Research screens a name with :meth:`Rulebook.entry_denial` built from the
configuration (``autotrader.config.trading_rules``); the trader runs its risk
chain and execution planner built from the same configuration
(``trader_settings``). For any name and any configuration the first refusal
must be the same check, so a plan never holds a name the trader will refuse.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from autotrader.config import Settings, trading_rules
from autotrader.domain.records import OrderIntent, Quote, Side
from autotrader.engine.planner import MarketStats, screen_entry
from autotrader.engine.risk import (
    PortfolioSnapshot,
    RiskContext,
    check_order,
    check_price_band,
    check_signal_threshold,
)
from autotrader.services.session import trader_settings
from bma_models.rules import Rulebook
from bma_models.schema import build

NOW = dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.timezone.utc)
BUCKETS = st.sampled_from([("low",), ("low", "medium"), ("medium", "high"),
                           ("low", "medium", "high")])


def _config(threshold, min_adv, min_alpha, buckets, min_price, max_price) -> Settings:
    return build(Settings, {
        "signals": {"acceptance_threshold": threshold},
        "execution": {"min_adv_usd": min_adv, "min_expected_alpha_bps": min_alpha,
                      "allowed_volatility_buckets": list(buckets)},
        "filters": {"min_price": min_price, "max_price": max_price}})


def _trader_refusal(config: Settings, price, adv, atr, expected_return, percentile):
    engine = trader_settings(config)
    intent = OrderIntent("AAA", Side.BUY, 10, price, expected_return=expected_return,
                         confidence=percentile)
    ctx = RiskContext(NOW, engine.risk, PortfolioSnapshot(equity=1e9, cash=1e9),
                      market_open=True)
    denial = check_order(intent, ctx, checks=(check_signal_threshold, check_price_band))
    if denial is None:  # a two-sided 2 bps quote: the spread screen (live quotes only) passes
        quote = Quote("AAA", last=price, prev_close=price, bid=price * 0.9999,
                      ask=price * 1.0001)
        denial = screen_entry(intent, quote, MarketStats("AAA", adv, atr), engine.planner)
    return None if denial is None else denial.check


@settings(max_examples=400, deadline=None, derandomize=True)
@given(price=st.floats(0.5, 1500.0), adv=st.floats(0.0, 5e7), atr_pct=st.floats(0.001, 0.12),
       expected_return=st.floats(-0.02, 0.02), percentile=st.floats(0.0, 1.0),
       threshold=st.floats(0.0, 1.0), min_adv=st.floats(0.0, 3e7),
       min_alpha=st.floats(-20.0, 50.0), buckets=BUCKETS, min_price=st.floats(0.0, 5.0),
       max_price=st.floats(100.0, 1000.0))
def test_research_refuses_exactly_what_the_trader_refuses(price, adv, atr_pct, expected_return,
                                                          percentile, threshold, min_adv,
                                                          min_alpha, buckets, min_price,
                                                          max_price):
    config = _config(threshold, min_adv, min_alpha, buckets, min_price, max_price)
    atr = price * atr_pct
    research = trading_rules(config).entry_denial(
        price=price, adv_usd=adv, atr=atr, expected_return=expected_return,
        percentile=percentile)
    trader = _trader_refusal(config, price, adv, atr, expected_return, percentile)
    assert (None if research is None else research.check) == trader


def test_the_packaged_defaults_are_the_rulebooks_defaults():
    assert trading_rules(Settings()) == Rulebook()


def test_the_trader_and_research_read_the_same_keys_for_the_shared_limits():
    config = build(Settings, {
        "capital": {"cash_reserve_pct": 0.08, "max_single_position_pct": 0.04},
        "risk_controls": {"sector_exposure_limit": 0.2, "stops": {"atr_window": 21}},
        "orders": {"min_order_value_usd": 2500.0}})
    rules, engine = trading_rules(config), trader_settings(config)
    assert (rules.cash_reserve, engine.risk.cash_reserve_pct,
            engine.sizing.cash_reserve_pct) == (0.08, 0.08, 0.08)
    assert (rules.max_position, engine.risk.max_single_position_pct,
            engine.sizing.max_position_pct_of_equity) == (0.04, 0.04, 0.04)
    assert (rules.sector_limit, engine.risk.sector_exposure_limit) == (0.2, 0.2)
    assert (rules.min_order_value_usd, engine.risk.min_order_value_usd) == (2500.0, 2500.0)
    assert rules.atr_window == 21  # the run's ATR column; the trader's stops read that column
