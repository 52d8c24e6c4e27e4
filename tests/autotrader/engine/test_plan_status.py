"""Plan versus book: coverage, invested, and the reason every name is off its plan."""

from __future__ import annotations

import pytest

from autotrader.engine.plan_status import (
    BookPosition,
    BookSnapshot,
    Outcome,
    format_status,
    plan_vs_book,
)


def _snapshot(positions, planned, outcomes=None, prices=None, **kw):
    held = tuple(BookPosition(s, q, p, p) for s, (q, p) in positions.items())
    value = sum(q * p for q, p in positions.values())
    return BookSnapshot("2026-03-02T15:00:00+00:00", "paper", "run-1", kw.pop("equity", 10_000.0),
                        kw.pop("cash", 10_000.0 - value), held, planned,
                        prices or {s: p for s, (_, p) in positions.items()}, outcomes or {},
                        **kw)


def test_coverage_is_the_held_part_of_the_plan_over_the_plan():
    status = plan_vs_book(_snapshot({"AAA": (30, 100.0), "BBB": (10, 100.0)},
                                    {"AAA": 0.2, "BBB": 0.2, "CCC": 0.4},
                                    prices={"AAA": 100.0, "BBB": 100.0, "CCC": 50.0}))
    # min(0.3, 0.2) + min(0.1, 0.2) + min(0, 0.4) = 0.3 of 0.8 planned
    assert status["coverage"] == pytest.approx(0.375)
    assert status["invested"] == pytest.approx(0.4) and status["planned_invested"] == 0.8
    rows = {r["symbol"]: r for r in status["positions"]}
    assert rows["AAA"] == {"symbol": "AAA", "quantity": 30, "price": 100.0,
                           "market_value": 3000.0, "weight": 0.3, "planned_weight": 0.2}
    assert rows["CCC"]["quantity"] == 0 and rows["CCC"]["planned_weight"] == 0.4
    assert [r["symbol"] for r in status["positions"]] == ["CCC", "AAA", "BBB"]


@pytest.mark.parametrize(("outcome", "kind", "text", "words"), [
    (Outcome("denied", "volatility", "ATR volatility bucket 'high' not allowed"), "denied",
     "volatility: ATR volatility bucket 'high' not allowed",
     "volatility bucket refused: ATR volatility bucket 'high' not allowed"),
    (Outcome("denied", "per_cycle_order_limit", "10 orders this cycle (limit 10)"),
     "order_limit", "waiting for the per_cycle_order_limit",
     "order limit per cycle reached: 10 orders this cycle (limit 10); waits for a later "
     "cycle"),
    (Outcome("denied", "daily_order_limit", "20 orders today (limit 20)"), "order_limit",
     "waiting for the daily_order_limit", "daily order limit reached: 20 orders today"),
    (Outcome("denied", "market_hours", "NYSE is closed"), "market_closed", "NYSE is closed",
     "market closed: NYSE is closed"),
    (Outcome("working"), "not_filled", "not yet (fully) filled", "not yet (fully) filled"),
    (Outcome("submitted"), "not_filled", "not yet (fully) filled", "not yet (fully) filled"),
    (None, "no_order", "sent no order", "sent no order"),
])
def test_every_gap_names_why_the_name_is_not_at_plan(outcome, kind, text, words):
    outcomes = {} if outcome is None else {"CCC": outcome}
    status = plan_vs_book(_snapshot({}, {"CCC": 0.4}, outcomes, prices={"CCC": 50.0}))
    (gap,) = status["gaps"]
    assert gap["symbol"] == "CCC" and gap["kind"] == kind and text in gap["reason"]
    assert words in gap["reason_text"]  # the same reason in a trader's words
    assert gap["check"] == (outcome.check if outcome is not None else "")


def test_a_difference_the_trader_would_not_trade_is_not_a_gap_but_an_exit_always_is():
    # 20 USD under plan: less than one share (25) and than the minimum order (500)
    snap = _snapshot({"AAA": (79, 25.0), "OLD": (1, 5.0)}, {"AAA": 0.2}, tolerance_usd=500.0)
    status = plan_vs_book(snap)
    assert [g["symbol"] for g in status["gaps"]] == ["OLD"]  # held, no longer planned
    # the same difference with a smaller tolerance and a cheaper share is a gap
    tight = _snapshot({"AAA": (790, 2.5)}, {"AAA": 0.2}, tolerance_usd=0.0)
    assert [g["symbol"] for g in plan_vs_book(tight)["gaps"]] == ["AAA"]


def test_the_table_shows_the_coverage_and_each_gap():
    status = plan_vs_book(_snapshot({"AAA": (20, 100.0)}, {"AAA": 0.2, "BBB": 0.2},
                                    {"BBB": Outcome("denied", "liquidity", "ADV 5 USD below 9")},
                                    prices={"AAA": 100.0, "BBB": 10.0}))
    text = format_status(status)
    assert "coverage 50.00%" in text and "1 gaps" in text
    assert "BBB" in text and "volume too low: ADV 5 USD below 9" in text
    assert "liquidity" not in text  # the trader reads words, not check names


def test_a_plan_above_the_traders_target_is_named_capped_not_a_missing_order():
    # an old run planned 5 %, the position limit is 3 %: the trader holds its target
    snap = _snapshot({"AAA": (60, 5.0)}, {"AAA": 0.05}, targets={"AAA": 0.03})
    (gap,) = plan_vs_book(snap)["gaps"]
    assert gap["kind"] == "capped" and "position limit" in gap["reason"]
