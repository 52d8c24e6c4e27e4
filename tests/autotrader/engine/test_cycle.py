"""Rebalance arithmetic, tick rounding, the execution planner and dynamic stops."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrader.domain import Order, OrderIntent, OrderStatus, OrderType, Position, Quote, Side
from autotrader.engine import (
    Denial,
    MarketStats,
    PlannerSettings,
    Recommendation,
    SizingSettings,
    StopSettings,
    plan_order,
    plan_stop_update,
    rebalance_intents,
    round_to_tick,
    target_quantities,
    trailing_stop_price,
)

NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.timezone.utc)


def _rec(rank, ticker, weight, price, sector="Tech", expected_return=0.01):
    return Recommendation(rank, ticker, sector, 1.0 - rank / 10, expected_return, weight,
                          price, 5e7)


# -- rebalance ---------------------------------------------------------------------------
def test_target_quantity_is_weight_times_equity_floored():
    sizing = SizingSettings(max_position_pct_of_equity=0.5, cash_reserve_pct=0.10)
    # the plan's weight is a fraction of equity: 0.2 * 100,000 = 20,000 / 33.0 = 606.06 -> 606
    assert target_quantities([_rec(1, "AAA", 0.2, 33.0)], 100_000.0, {"AAA": 33.0},
                             sizing) == {"AAA": 606}


def test_cash_reserve_is_kept_once_a_plan_at_the_reserve_is_not_shrunk_again():
    sizing = SizingSettings(max_position_pct_of_equity=0.5, cash_reserve_pct=0.10)
    prices = {"AAA": 10.0, "BBB": 10.0}
    at_reserve = [_rec(1, "AAA", 0.45, 10.0), _rec(2, "BBB", 0.45, 10.0)]  # sums to 1 - 0.10
    assert target_quantities(at_reserve, 100_000.0, prices, sizing) == {"AAA": 4500,
                                                                        "BBB": 4500}
    above = [_rec(1, "AAA", 0.6, 10.0), _rec(2, "BBB", 0.6, 10.0)]  # 1.2 -> scaled to 0.9
    assert target_quantities(above, 100_000.0, prices, sizing) == {"AAA": 4500, "BBB": 4500}


def test_round_lots_round_down_to_100_shares():
    sizing = SizingSettings(max_position_pct_of_equity=0.5, cash_reserve_pct=0.10,
                            notional_round_lots=True)
    assert target_quantities([_rec(1, "AAA", 0.2, 33.0)], 100_000.0, {"AAA": 33.0},
                             sizing) == {"AAA": 600}


def test_weight_is_capped_and_weights_above_one_are_scaled():
    sizing = SizingSettings(max_position_pct_of_equity=0.3, cash_reserve_pct=0.0)
    recs = [_rec(1, "AAA", 1.0, 10.0), _rec(2, "BBB", 1.0, 10.0)]  # scaled to 0.5, capped 0.3
    assert target_quantities(recs, 10_000.0, {"AAA": 10.0, "BBB": 10.0}, sizing) == \
        {"AAA": 300, "BBB": 300}


def test_symbols_without_price_get_no_target():
    sizing = SizingSettings()
    assert target_quantities([_rec(1, "AAA", 0.1, 10.0)], 1e5, {"AAA": math.nan}, sizing) == {}


def test_rebalance_sells_first_exits_unrecommended_and_nets_in_flight():
    sizing = SizingSettings(max_position_pct_of_equity=0.2, cash_reserve_pct=0.0)
    recs = [_rec(2, "BBB", 0.1, 10.0), _rec(1, "AAA", 0.1, 10.0), _rec(3, "CCC", 0.01, 10.0)]
    positions = {"AAA": Position("AAA", 1500, 9.0), "OLD": Position("OLD", 7, 5.0),
                 "CCC": Position("CCC", 100, 10.0)}
    prices = {"AAA": 10.0, "BBB": 10.0, "CCC": 10.0, "OLD": 5.0}
    intents = rebalance_intents(recs, positions, 100_000.0, prices, sizing,
                                in_flight={"BBB": 400})
    got = [(i.side.value, i.symbol, i.quantity, i.closes_position) for i in intents]
    assert got == [("SELL", "AAA", 500, False), ("SELL", "OLD", 7, True),
                   ("BUY", "BBB", 600, False)]
    assert intents[1].reason.startswith("exit")


def test_rebalance_confidence_is_the_rank_percentile():
    sizing = SizingSettings(cash_reserve_pct=0.0)
    recs = [_rec(1, "AAA", 0.05, 10.0), _rec(2, "BBB", 0.05, 10.0)]
    intents = rebalance_intents(recs, {}, 100_000.0, {"AAA": 10.0, "BBB": 10.0}, sizing)
    assert [i.confidence for i in intents] == [1.0, 0.5]


def test_rebalance_confidence_is_the_runs_score_percentile_when_given():
    # research ranks every scored name; the CSV lists only some, so the rank among the rows
    # would overstate a name's percentile (the acceptance threshold reads this number)
    recs = [dataclasses.replace(_rec(1, "AAA", 0.05, 10.0), score_percentile=0.99),
            dataclasses.replace(_rec(2, "BBB", 0.05, 10.0), score_percentile=0.35)]
    intents = rebalance_intents(recs, {}, 100_000.0, {"AAA": 10.0, "BBB": 10.0},
                                SizingSettings(cash_reserve_pct=0.0))
    assert [i.confidence for i in intents] == [0.99, 0.35]


# -- ticks -------------------------------------------------------------------------------
@pytest.mark.parametrize(("price", "direction", "expected"), [
    (10.126, "down", 10.12), (10.121, "up", 10.13), (10.125, "nearest", 10.13),
    (10.12, "down", 10.12), (10.12, "up", 10.12), (0.12345, "down", 0.1234),
    (0.12341, "up", 0.1235), (0.99999, "up", 1.0), (1.0, "down", 1.0), (0.3, "down", 0.3),
])
def test_round_to_tick(price, direction, expected):
    assert round_to_tick(price, direction) == expected


def test_round_to_tick_rejects_bad_prices():
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            round_to_tick(bad)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.floats(0.0001, 5000.0, allow_nan=False), st.sampled_from(["down", "up"]))
def test_rounded_price_is_on_the_grid_and_in_the_right_direction(price, direction):
    rounded = round_to_tick(price, direction)
    tick = 0.01 if rounded >= 1.0 else 0.0001
    assert abs(rounded / tick - round(rounded / tick)) < 1e-6
    if direction == "down":
        assert rounded <= price + 1e-9 and price - rounded < tick + 1e-9
    else:
        assert rounded >= price - 1e-9 and rounded - price < 0.01 + 1e-9


# -- planner -----------------------------------------------------------------------------
QUOTE = Quote("AAA", last=100.0, prev_close=99.0, bid=99.99, ask=100.01)
STATS = MarketStats("AAA", adv_usd=5e7, atr=2.0)


def _intent(side=Side.BUY, qty=100, confidence=1.0, expected_return=0.01):
    return OrderIntent("AAA", side, qty, 100.0, expected_return=expected_return,
                       confidence=confidence, reduces_position=side is Side.SELL)


def _plan(intent=None, quote=QUOTE, stats=STATS, last=None, **settings_kw):
    return plan_order(intent or _intent(), quote, stats, PlannerSettings(**settings_kw),
                      equity=100_000.0, now=NOW, last_order_at=last)


def test_limit_price_moves_with_confidence_and_rounds_conservatively():
    assert _plan().limit_price == 100.2
    assert _plan(_intent(confidence=0.0)).limit_price == 100.0
    assert _plan(_intent(Side.SELL, confidence=1.0)).limit_price == 99.8


def test_limit_uses_previous_close_without_last():
    plan = _plan(quote=Quote("AAA", last=0.0, prev_close=99.0))
    assert plan.limit_price == round_to_tick(99.0 * 1.002, "down")


@pytest.mark.parametrize(("kwargs", "check"), [
    ({"stats": MarketStats("AAA", adv_usd=1e5, atr=2.0)}, "liquidity"),
    ({"quote": Quote("AAA", 100.0, 99.0, bid=99.0, ask=101.0)}, "spread"),
    ({"stats": MarketStats("AAA", adv_usd=5e7, atr=9.0)}, "volatility"),
    ({"intent": _intent(expected_return=0.0005)}, "expected_alpha"),
    ({"last": {"AAA": NOW - dt.timedelta(seconds=60)}}, "throttle"),
])
def test_entry_screens_deny_with_their_reason(kwargs, check):
    result = _plan(**kwargs)
    assert isinstance(result, Denial) and result.check == check


def test_exits_are_not_screened():
    thin = MarketStats("AAA", adv_usd=1e3, atr=50.0)
    recent = {"AAA": NOW - dt.timedelta(seconds=1)}
    assert _plan(_intent(Side.SELL, expected_return=-1.0), stats=thin,
                 last=recent).order_type is OrderType.LIMIT


def test_market_order_type_has_no_limit():
    plan = _plan(order_type="market")
    assert plan.order_type is OrderType.MARKET and plan.limit_price is None


def test_bracket_prices_and_risk_capped_quantity():
    plan = _plan(order_type="bracket", per_trade_risk_pct=0.01)
    assert plan.order_type is OrderType.BRACKET
    assert plan.limit_price == 100.2
    assert plan.take_profit_price == 106.2 and plan.stop_price == 96.2
    assert plan.quantity == 100  # 1,000 USD / 4.0 stop distance = 250 >= 100
    small = _plan(_intent(qty=1000), order_type="bracket", per_trade_risk_pct=0.01)
    assert small.quantity == 250


# -- stops -------------------------------------------------------------------------------
def test_trailing_stop_rises_with_high_water_and_tightens_with_time():
    s = StopSettings(atr_multiplier=3.0, min_atr_multiplier=1.5, decay_per_day=0.1,
                     max_loss_pct=0.5)
    assert trailing_stop_price(100.0, 110.0, 2.0, 0, s) == 104.0
    assert trailing_stop_price(100.0, 110.0, 2.0, 2, s) == pytest.approx(105.2)
    assert trailing_stop_price(100.0, 110.0, 2.0, 30, s) == 107.0
    fixed = StopSettings(trailing=False, max_loss_pct=0.5)
    assert trailing_stop_price(100.0, 110.0, 2.0, 0, fixed) == 94.0


def _stop(status=OrderStatus.SUBMITTED, price=95.0, qty=10):
    return Order("stop-1", "AAA", Side.SELL, qty, OrderType.STOP, stop_price=price,
                 status=status)


@pytest.mark.parametrize(("new_stop", "qty", "live", "can_modify", "kind"), [
    (95.0, 10, None, True, "PLACE"),
    (96.0, 10, _stop(), True, "MODIFY"),
    (96.0, 10, _stop(), False, "CANCEL"),
    (94.0, 10, _stop(), True, "NONE"),  # never lowered
    (95.0, 10, _stop(), True, "NONE"),
    (95.0, 12, _stop(), True, "MODIFY"),  # resized to the position
    (96.0, 10, _stop(OrderStatus.PENDING_CANCEL), False, "WAIT"),  # cancel not yet confirmed
    (96.0, 10, _stop(OrderStatus.CANCELLED), False, "PLACE"),  # confirmed: place the new one
    (0.0, 0, _stop(), True, "CANCEL"),  # position gone
    (0.0, 0, None, True, "NONE"),
])
def test_plan_stop_update_never_leaves_two_live_stops(new_stop, qty, live, can_modify, kind):
    action = plan_stop_update(new_stop, qty, live, can_modify)
    assert action.kind == kind
    if kind == "MODIFY":
        assert action.order_ref == "stop-1" and action.stop_price >= live.stop_price


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(0.0, 0.5), st.floats(1.0, 900.0)), min_size=1, max_size=8),
       st.lists(st.integers(0, 2000), min_size=8, max_size=8),
       st.floats(1_000.0, 1e7), st.booleans())
def test_rebalance_never_oversells_and_targets_respect_the_cap(rows, held, equity, lots):
    sizing = SizingSettings(max_position_pct_of_equity=0.1, cash_reserve_pct=0.05,
                            notional_round_lots=lots)
    recs = [_rec(i + 1, f"S{i}", w, p) for i, (w, p) in enumerate(rows)]
    prices = {r.ticker: r.last_close for r in recs}
    positions = {f"S{i}": Position(f"S{i}", q, 1.0) for i, q in enumerate(held) if q and
                 f"S{i}" in prices}
    targets = target_quantities(recs, equity, prices, sizing)
    for symbol, qty in targets.items():
        assert qty >= 0 and qty * prices[symbol] <= 0.1 * equity + 1e-6
        assert qty % (100 if lots else 1) == 0
    assert sum(q * prices[s] for s, q in targets.items()) <= 0.95 * equity + 1e-6
    intents = rebalance_intents(recs, positions, equity, prices, sizing)
    sides = [i.side for i in intents]
    assert sides == sorted(sides, key=lambda s: s is Side.BUY)  # sells first
    for intent in intents:
        held_qty = positions[intent.symbol].quantity if intent.symbol in positions else 0
        after = held_qty + intent.side.sign * intent.quantity
        assert intent.quantity > 0 and after >= 0
        assert after == targets.get(intent.symbol, 0)
