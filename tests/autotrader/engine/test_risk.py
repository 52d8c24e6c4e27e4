"""Each pre-trade risk check on hand-built contexts, and the chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from autotrader.domain import OrderIntent, Side
from autotrader.engine import (
    PortfolioSnapshot,
    RiskContext,
    RiskLimits,
    TradingState,
    check_order,
    risk,
)

NOON_NY = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.timezone.utc)  # 12:00 EST
LIMITS = RiskLimits(cash_reserve_pct=0.05, max_single_position_pct=0.10,
                    max_portfolio_exposure=0.90, min_order_value_usd=500.0, daily_order_limit=5,
                    per_cycle_order_limit=3, acceptance_threshold=0.5,
                    sector_exposure_limit=0.30, max_daily_loss_pct=0.03)


def _ctx(**changes) -> RiskContext:
    base = RiskContext(now=NOON_NY, limits=LIMITS,
                       portfolio=PortfolioSnapshot(equity=100_000.0, cash=100_000.0),
                       market_open=True)
    return replace(base, **changes)


def _buy(qty: int = 100, price: float = 50.0, **kw) -> OrderIntent:
    kw.setdefault("confidence", 0.9)
    return OrderIntent("AAA", Side.BUY, qty, price, sector="Tech", **kw)


def _sell(qty: int = 100, price: float = 50.0, closes: bool = False) -> OrderIntent:
    return OrderIntent("AAA", Side.SELL, qty, price, sector="Tech", reduces_position=True,
                       closes_position=closes)


def _book(values: dict[str, float], sectors: dict[str, float], cash: float = 100_000.0,
          pending: float = 0.0) -> PortfolioSnapshot:
    return PortfolioSnapshot(equity=100_000.0, cash=cash, position_values=values,
                             sector_values=sectors, pending_buy_value=pending)


def test_a_plain_buy_passes_the_whole_chain():
    assert check_order(_buy(), _ctx()) is None


@pytest.mark.parametrize(("state", "intent", "denied"), [
    (TradingState.ACTIVE, _buy(), False),
    (TradingState.REDUCING, _buy(), True),
    (TradingState.REDUCING, _sell(), False),
    (TradingState.HALTED, _sell(), True),
    (TradingState.HALTED, _buy(), True),
])
def test_trading_state_kill_switch(state, intent, denied):
    result = risk.check_trading_state(intent, _ctx(trading_state=state))
    assert (result is not None) == denied
    if denied:
        assert result.check == "trading_state"


@pytest.mark.parametrize(("market_open", "now", "denied"), [
    (True, NOON_NY, False),
    (None, NOON_NY, True),  # calendar unknown: fail closed
    (False, NOON_NY, True),
    (True, dt.datetime(2026, 3, 2, 14, 29, tzinfo=dt.timezone.utc), True),  # 09:29 NY
    (True, dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.timezone.utc), False),  # 09:30 NY
    (True, dt.datetime(2026, 3, 2, 21, 0, tzinfo=dt.timezone.utc), True),  # 16:00 NY
    (True, dt.datetime(2026, 3, 2, 12, 0), True),  # naive clock: fail closed
])
def test_market_hours_fail_closed(market_open, now, denied):
    result = risk.check_market_hours(_buy(), _ctx(market_open=market_open, now=now))
    assert (result is not None) == denied


@pytest.mark.parametrize(("price", "intent_side", "denied"), [
    (2.0, Side.BUY, False), (800.0, Side.BUY, False), (1.99, Side.BUY, True),
    (800.01, Side.BUY, True), (1.0, Side.SELL, False),
])
def test_price_band_applies_to_entries_only(price, intent_side, denied):
    intent = _buy(10, price) if intent_side is Side.BUY else _sell(10, price)
    assert (risk.check_price_band(intent, _ctx()) is not None) == denied


def test_min_order_value_denies_small_orders_but_not_full_exits():
    assert risk.check_min_order_value(_buy(9, 50.0), _ctx()).check == "min_order_value"
    assert risk.check_min_order_value(_buy(10, 50.0), _ctx()) is None
    assert risk.check_min_order_value(_sell(2, 50.0), _ctx()) is not None
    assert risk.check_min_order_value(_sell(2, 50.0, closes=True), _ctx()) is None


def test_max_single_position_counts_the_existing_position():
    book = _book({"AAA": 6_000.0}, {"Tech": 6_000.0})
    assert risk.check_max_single_position(_buy(80), _ctx(portfolio=book)) is None  # 10,000
    denial = risk.check_max_single_position(_buy(81), _ctx(portfolio=book))
    assert denial.check == "max_single_position"
    assert risk.check_max_single_position(_sell(500), _ctx(portfolio=book)) is None


def test_max_portfolio_exposure_includes_working_buys():
    book = _book({"X": 80_000.0}, {"Other": 80_000.0}, pending=5_000.0)
    assert risk.check_max_portfolio_exposure(_buy(100), _ctx(portfolio=book)) is None
    assert risk.check_max_portfolio_exposure(_buy(101), _ctx(portfolio=book)) is not None


def test_cash_reserve_keeps_five_percent():
    book = _book({}, {}, cash=10_000.0, pending=0.0)
    assert risk.check_cash_reserve(_buy(100), _ctx(portfolio=book)) is None  # 5,000 left
    assert risk.check_cash_reserve(_buy(101), _ctx(portfolio=book)).check == "cash_reserve"
    assert risk.check_cash_reserve(_sell(1000), _ctx(portfolio=book)) is None


def test_sector_exposure_limit():
    book = _book({"BBB": 25_000.0}, {"Tech": 25_000.0})
    assert risk.check_sector_exposure(_buy(100), _ctx(portfolio=book)) is None  # 30,000
    assert risk.check_sector_exposure(_buy(101), _ctx(portfolio=book)).check == "sector_exposure"


def test_daily_and_per_cycle_order_limits():
    assert risk.check_daily_order_limit(_buy(), _ctx(daily_orders=4)) is None
    assert risk.check_daily_order_limit(_buy(), _ctx(daily_orders=5)) is not None
    assert risk.check_per_cycle_limit(_buy(), _ctx(cycle_orders=2)) is None
    assert risk.check_per_cycle_limit(_buy(), _ctx(cycle_orders=3)) is not None


def test_signal_threshold_uses_the_score_percentile_for_entries():
    assert risk.check_signal_threshold(_buy(confidence=0.5), _ctx()) is None
    assert risk.check_signal_threshold(_buy(confidence=0.49), _ctx()).check == "signal_threshold"
    assert risk.check_signal_threshold(_sell(), _ctx()) is None


def test_duplicate_intent_guard():
    keys = frozenset({("AAA", "BUY")})
    assert risk.check_duplicate_intent(_buy(), _ctx(open_order_keys=keys)) is not None
    assert risk.check_duplicate_intent(_sell(), _ctx(open_order_keys=keys)) is None


def test_daily_loss_halts_entries():
    book = replace(_book({}, {}), equity=96_900.0, day_start_equity=100_000.0)
    assert risk.check_daily_loss(_buy(), _ctx(portfolio=book)).check == "daily_loss"
    assert risk.check_daily_loss(_sell(), _ctx(portfolio=book)) is None
    book = replace(book, equity=97_100.0)
    assert risk.check_daily_loss(_buy(), _ctx(portfolio=book)) is None


def test_chain_returns_the_first_denial_in_order():
    ctx = _ctx(trading_state=TradingState.HALTED, market_open=False)
    assert check_order(_buy(), ctx).check == "trading_state"
    assert check_order(_buy(), _ctx(market_open=False)).check == "market_hours"


def test_with_order_adds_buys_and_does_not_fund_unfilled_sells():
    book = _book({"AAA": 1_000.0}, {"Tech": 1_000.0}, cash=10_000.0)
    after = book.with_order(_buy(10, 50.0)).with_order(_sell(4, 50.0))
    assert after.position_values["AAA"] == pytest.approx(1_300.0)
    assert after.sector_values["Tech"] == pytest.approx(1_300.0)
    assert after.cash == pytest.approx(9_500.0)


def test_no_reentry_after_a_stop_out_today():
    ctx = _ctx(stopped_out=frozenset({"AAA"}))
    assert risk.check_stopped_out(_buy(), ctx).check == "stopped_out"
    assert risk.check_stopped_out(_sell(), ctx) is None
    assert risk.check_stopped_out(_buy(), _ctx()) is None


def test_run_age_blocks_entries_of_an_old_run_but_never_an_exit():
    limits = replace(LIMITS, max_run_age_sessions=2)
    assert risk.check_run_age(_buy(), _ctx(limits=limits, run_age_sessions=2)) is None
    old = _ctx(limits=limits, run_age_sessions=3)
    assert risk.check_run_age(_buy(), old).reason == (
        "the run's data are 3 sessions old (limit 2): no new buys until research runs again")
    assert risk.check_run_age(_sell(), old) is None
    assert check_order(_buy(), old).check == "run_age"
    unknown = _ctx(limits=limits, run_age_sessions=None)  # fails closed
    assert "unknown" in risk.check_run_age(_buy(), unknown).reason
    assert risk.check_run_age(_buy(), replace(unknown, limits=LIMITS)) is None  # no limit
