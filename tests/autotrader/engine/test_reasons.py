"""Every denial and every gap has a trader's phrase, and the trader only ever reads phrases."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import autotrader
import bma_models
from autotrader.engine.plan_status import (
    BookPosition,
    BookSnapshot,
    Outcome,
    format_status,
    plan_vs_book,
)
from autotrader.engine.reasons import CHECK_PHRASES, GAP_PHRASES, check_phrase, denial_text

PACKAGES = (Path(autotrader.__file__).parent, Path(bma_models.__file__).parent)


def _denial_calls() -> list[tuple[str, int, ast.expr]]:
    """``(file, line, first argument)`` of every ``Denial(...)`` in the two packages."""
    calls = []
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and (
                        getattr(node.func, "id", None) == "Denial"
                        or getattr(node.func, "attr", None) == "Denial"):
                    arg = node.args[0] if node.args else next(
                        k.value for k in node.keywords if k.arg == "check")
                    calls.append((f"{path.name}:{node.lineno}", node.lineno, arg))
    return calls


def test_every_check_name_that_can_appear_has_a_phrase_and_no_phrase_is_stale():
    calls = _denial_calls()
    dynamic = [where for where, _, arg in calls if not isinstance(arg, ast.Constant)]
    assert not dynamic, f"Denial with a computed check name (give it a literal): {dynamic}"
    names = {arg.value for _, _, arg in calls}
    # the chain, the planner, the exits and the rulebook: at least these must be found
    assert {"per_cycle_order_limit", "market_hours", "volatility", "min_order_value",
            "exit_orders_working", "throttle"} <= names
    missing = sorted(names - CHECK_PHRASES.keys())
    assert not missing, f"check names without a phrase in autotrader/engine/reasons.py: {missing}"
    assert not CHECK_PHRASES.keys() - names, "phrases of checks that no longer exist"
    assert all(phrase and "_" not in phrase for phrase in CHECK_PHRASES.values())


def _status_with(outcomes: dict[str, Outcome], **kw) -> dict:
    planned = {s: 0.05 for s in outcomes} | kw.pop("planned", {})
    prices = {s: 10.0 for s in planned} | kw.pop("prices", {})
    snap = BookSnapshot("2026-03-02T15:00:00+00:00", "paper", "run-1", 100_000.0, 100_000.0,
                        kw.pop("positions", ()), planned, prices, outcomes, **kw)
    return plan_vs_book(snap)


def test_every_gap_kind_has_a_phrase_and_a_plain_reason_text():
    outcomes = {f"D{i:02d}": Outcome("denied", check, "the check's own figures")
                for i, check in enumerate(sorted(CHECK_PHRASES))}
    outcomes |= {"WRK": Outcome("working"), "SUB": Outcome("submitted"),
                 "FIL": Outcome("filled")}
    status = _status_with(outcomes, planned={"NOP": 0.05, "NPR": 0.05, "CAP": 0.05},
                          prices={"NPR": float("nan")},
                          positions=(BookPosition("CAP", 300, 10.0, 10.0),),
                          targets={"CAP": 0.03})
    gaps = {g["symbol"]: g for g in status["gaps"]}
    assert {g["kind"] for g in gaps.values()} == set(GAP_PHRASES)  # every kind walked
    for i, check in enumerate(sorted(CHECK_PHRASES)):
        gap = gaps[f"D{i:02d}"]
        assert gap["check"] == check  # the machine-readable code stays beside the words
        assert gap["reason_text"].startswith(check_phrase(check, "the check's own figures"))
        assert gap["reason_text"].endswith("the check's own figures") or \
            gap["kind"] == "order_limit"
    for gap in gaps.values():
        words = gap["reason_text"]
        assert words and not any(code in words for code in CHECK_PHRASES if "_" in code), words
    # the CLI table shows only the words, never a code
    table = format_status(status, max_rows=200)
    assert not [code for code in CHECK_PHRASES if "_" in code and code in table]
    assert "order limit per cycle reached: the check's own figures" in table


@pytest.mark.parametrize(("check", "reason", "words"), [
    ("market_hours", "NYSE is closed", "market closed: NYSE is closed"),
    ("market_hours", "08:15 America/New_York is outside the trading window 09:30-16:00",
     "outside trading hours: 08:15 America/New_York is outside the trading window 09:30-16:00"),
    ("market_hours", "market calendar unavailable (fail closed)",
     "market calendar unavailable: market calendar unavailable (fail closed)"),
    ("trading_state", "trading is HALTED (kill switch)",
     "kill switch: trading halted: trading is HALTED (kill switch)"),
    ("trading_state", "trading is REDUCING: only position-reducing orders",
     "kill switch: reduce-only: trading is REDUCING: only position-reducing orders"),
    ("min_order_value", "order value 40.00 below 500.00 USD",
     "below minimum order value: order value 40.00 below 500.00 USD"),
    ("per_cycle_order_limit", "", "order limit per cycle reached"),
])
def test_denial_text_is_the_phrase_then_the_checks_own_reason(check, reason, words):
    assert denial_text(check, reason) == words
