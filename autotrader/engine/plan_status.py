"""Plan versus book (pure): how much of the run's plan the account holds, and why not the rest.

The runner records a :class:`BookSnapshot` after every cycle (the account, its
positions at the cycle's prices, the plan it traded and what the cycle did for
each name); :func:`plan_vs_book` turns it into the status ``autotrader status``
prints and the runner logs::

    coverage = sum_i min(held_i, planned_i) / sum_i planned_i

with ``held_i`` = market value / equity and ``planned_i`` the run's weight.
Every name off its plan by more than the trader acts on (one share or lot, and
the minimum order value ``tolerance_usd``: a smaller difference is never
traded) gets a *gap* with the reason: ``denied`` (by which check, with the
check's reason), ``capped`` (the trader's target is below the plan: a run made
under other limits), ``order_limit`` (waiting for the per-cycle or daily order
limit), ``market_closed``, ``not_filled`` (an order is working), ``no_price``
or ``no_order`` (the last cycle sent nothing for it). An exit of a name no
longer planned is a gap until it is sold, whatever its size.

A gap carries machine-readable codes (``kind``, the denying ``check`` or ``""``,
and ``reason``, the check name with its own reason) and ``reason_text``, the
same in a trader's words from :mod:`autotrader.engine.reasons` (e.g. "order
limit per cycle reached: 10 orders this cycle (limit 10); waits for a later
cycle"), which the CLI table and the GUI show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autotrader.engine.reasons import denial_text, gap_phrase

__all__ = ["BookPosition", "BookSnapshot", "Outcome", "format_status", "plan_vs_book"]

#: checks that mean "the order waits for a later cycle", not "the name was refused"
ORDER_LIMIT_CHECKS = frozenset({"per_cycle_order_limit", "daily_order_limit"})


@dataclass(frozen=True)
class BookPosition:
    """One held name at the cycle's price (``price`` is the average cost when unpriced)."""

    symbol: str
    quantity: int
    price: float
    avg_cost: float

    @property
    def market_value(self) -> float:
        """Return ``quantity * price``."""
        return self.quantity * self.price


@dataclass(frozen=True)
class Outcome:
    """What the last cycle did for one symbol: ``submitted``, ``denied``, ``working``, ``filled``.

    ``check`` and ``reason`` are the denial's (empty otherwise).
    """

    status: str
    check: str = ""
    reason: str = ""


@dataclass(frozen=True)
class BookSnapshot:
    """The account after a cycle, the plan it traded and the cycle's outcome per symbol.

    ``lot`` is the share rounding of the targets (1 or 100); ``targets`` the
    trader's target weight per planned name (the plan's weight scaled to the
    cash reserve and capped at the position limit: below the plan only for a
    run made under other limits); ``prices`` the cycle's prices of every
    planned or held name; ``tolerance_usd`` the
    minimum order value (a difference below it is at plan: the trader would
    not send such an order); ``run_last_date`` the session of the run's last
    bar (ISO date, "" when unknown) and ``run_age_sessions`` the NYSE sessions
    closed since then at the cycle (None: unknown); ``run_beats_baselines``
    the run's signal check (None: the run has none) and ``run_beaten_by`` the
    baselines that beat its fused score.
    """

    as_of: str
    broker: str
    run_id: str
    equity: float
    cash: float
    positions: tuple[BookPosition, ...]
    planned: Mapping[str, float] = field(default_factory=dict)
    prices: Mapping[str, float] = field(default_factory=dict)
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    lot: int = 1
    tolerance_usd: float = 0.0
    targets: Mapping[str, float] = field(default_factory=dict)
    run_last_date: str = ""
    run_age_sessions: int | None = None
    run_beats_baselines: bool | None = None
    run_beaten_by: tuple[str, ...] = ()


def plan_vs_book(snapshot: BookSnapshot) -> dict[str, Any]:
    """Build the status document: run, equity, cash, positions, coverage, invested and gaps.

    Examples
    --------
    >>> snap = BookSnapshot("2026-03-02T15:00:00+00:00", "paper", "run1", 1000.0, 500.0,
    ...                     (BookPosition("AAA", 5, 100.0, 99.0),),
    ...                     planned={"AAA": 0.5, "BBB": 0.4}, prices={"AAA": 100, "BBB": 10},
    ...                     outcomes={"BBB": Outcome("denied", "volatility", "bucket 'high'")})
    >>> status = plan_vs_book(snap)
    >>> status["coverage"], status["invested"], status["gaps"][0]["kind"]
    (0.5556, 0.5, 'denied')
    """
    equity = snapshot.equity if snapshot.equity > 0 else float("nan")
    held = {p.symbol: p for p in snapshot.positions}
    planned = {s: w for s, w in snapshot.planned.items() if w > 0}
    symbols = sorted(set(held) | set(planned),
                     key=lambda s: (-planned.get(s, 0.0), -_value(held, s), s))
    rows, gaps = [], []
    covered = 0.0
    for symbol in symbols:
        position = held.get(symbol)
        weight = _value(held, symbol) / equity
        plan = planned.get(symbol, 0.0)
        covered += min(weight, plan)
        rows.append({"symbol": symbol, "quantity": position.quantity if position else 0,
                     "price": _round(_price(snapshot, held, symbol), 4),
                     "market_value": _round(_value(held, symbol), 2),
                     "weight": _round(weight, 6), "planned_weight": _round(plan, 6)})
        gap = _gap(snapshot, held, symbol, weight, plan, equity)
        if gap is not None:
            gaps.append(gap)
    total_plan = sum(planned.values())
    invested = sum(p.market_value for p in snapshot.positions) / equity
    return {"run_id": snapshot.run_id, "run_last_date": snapshot.run_last_date or None,
            "run_age_sessions": snapshot.run_age_sessions,
            "run_beats_baselines": snapshot.run_beats_baselines,
            "run_beaten_by": list(snapshot.run_beaten_by),
            "as_of": snapshot.as_of, "broker": snapshot.broker,
            "equity": _round(snapshot.equity, 2), "cash": _round(snapshot.cash, 2),
            "invested": _round(invested, 4), "planned_invested": _round(total_plan, 4),
            "coverage": _round(covered / total_plan, 4) if total_plan > 0 else None,
            "positions": rows, "gaps": gaps}


def _value(held: Mapping[str, BookPosition], symbol: str) -> float:
    return held[symbol].market_value if symbol in held else 0.0


def _price(snapshot: BookSnapshot, held: Mapping[str, BookPosition], symbol: str) -> float:
    if symbol in held:
        return held[symbol].price
    return float(snapshot.prices.get(symbol, float("nan")))


def _gap(snapshot: BookSnapshot, held: Mapping[str, BookPosition], symbol: str, weight: float,
         plan: float, equity: float) -> dict[str, Any] | None:
    price = _price(snapshot, held, symbol)
    step = max(snapshot.lot * price if price > 0 else 0.0, snapshot.tolerance_usd) / equity
    if abs(weight - plan) <= step + 1e-12 and not (plan == 0.0 and weight > 0.0):
        return None  # at plan up to what the trader would act on (a share, the minimum order)
    target = snapshot.targets.get(symbol, plan)
    if target < plan - step and abs(weight - target) <= step + 1e-12:
        reason = (f"the trader's target is {target:.2%}: the plan is scaled to the cash reserve "
                  "or capped at the position limit (a run made under other limits)")
        return _gap_row(symbol, weight, plan, "capped", "", reason,
                        f"{gap_phrase('capped')}: {reason}")
    kind, check, reason, text = _reason(snapshot.outcomes.get(symbol), price)
    return _gap_row(symbol, weight, plan, kind, check, reason, text)


def _gap_row(symbol: str, weight: float, plan: float, kind: str, check: str, reason: str,
             text: str) -> dict[str, Any]:
    # kind, check and reason are the codes consumers parse; reason_text is the trader's words
    return {"symbol": symbol, "weight": _round(weight, 6), "planned_weight": _round(plan, 6),
            "kind": kind, "reason": reason, "check": check, "reason_text": text}


def _reason(outcome: Outcome | None, price: float) -> tuple[str, str, str, str]:
    """``(kind, check, reason, reason_text)`` of a name off its plan."""
    if outcome is None:
        if not price > 0:
            return "no_price", "", "no price in the last cycle", "no price in the last cycle"
        return ("no_order", "", "the last cycle sent no order for it",
                "the last cycle sent no order for it")
    if outcome.status == "denied":
        check, text = outcome.check, denial_text(outcome.check, outcome.reason)
        if check == "market_hours":
            return "market_closed", check, outcome.reason, text
        if check in ORDER_LIMIT_CHECKS:
            return ("order_limit", check, f"waiting for the {check}: {outcome.reason}",
                    f"{text}; waits for a later cycle")
        return "denied", check, f"{check}: {outcome.reason}", text
    if outcome.status in ("submitted", "working"):
        return ("not_filled", "", "an order is working, not yet (fully) filled",
                "an order is working, not yet (fully) filled")
    return ("no_order", "", f"last cycle: {outcome.status}",
            f"last cycle: order {outcome.status}, the name is still off its plan")


def _round(value: float, digits: int) -> float | None:
    return None if value != value else round(float(value), digits)


def signal_text(beats: bool | None, beaten_by: Sequence[str]) -> str:
    """``"signal beats every baseline"``, ``"signal LOSES to ..."`` or "" (no check).

    The words of the status table and the GUI's status strip.

    Examples
    --------
    >>> signal_text(False, ["reversal_5"]), signal_text(None, [])
    ('signal LOSES to reversal_5', '')
    """
    if beats is None:
        return ""
    if beats:
        return "signal beats every baseline"
    return f"signal LOSES to {', '.join(beaten_by) or 'a baseline'}"


def format_status(status: Mapping[str, Any], max_rows: int = 60) -> str:
    """Format the status as a fixed-width table (the CLI prints it; the runner logs it)."""
    coverage = status["coverage"]
    data = ""
    if status.get("run_last_date"):
        age = status.get("run_age_sessions")
        data = f", data to {status['run_last_date']}" + (
            "" if age is None else f", {age} sessions old")
    signal = signal_text(status.get("run_beats_baselines"), status.get("run_beaten_by") or ())
    data += f", {signal}" if signal else ""
    head = (f"PLAN vs BOOK run {status['run_id']} ({status['broker']}, {status['as_of']}{data}): "
            f"equity {status['equity']:,.2f} cash {status['cash']:,.2f} invested "
            f"{status['invested']:.2%} of planned {status['planned_invested']:.2%}, coverage "
            + ("n/a" if coverage is None else f"{coverage:.2%}")
            + f", {len(status['gaps'])} gaps")
    gaps = {g["symbol"]: g for g in status["gaps"]}
    lines = [head, f"{'symbol':<8} {'qty':>8} {'value':>14} {'weight':>8} {'plan':>8}  "
                   "off plan because"]
    for row in status["positions"][:max_rows]:
        gap = gaps.get(row["symbol"])
        lines.append(f"{row['symbol']:<8} {row['quantity']:>8} {row['market_value'] or 0:>14,.2f} "
                     f"{row['weight'] or 0:>8.2%} {row['planned_weight']:>8.2%}  "
                     + (gap["reason_text"] if gap else ""))
    if len(status["positions"]) > max_rows:
        lines.append(f"... {len(status['positions']) - max_rows} more (autotrader status --json)")
    return "\n".join(lines)
