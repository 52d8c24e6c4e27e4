"""The records of the trading runner: its settings, a cycle's report, a preview, health totals.

:class:`TraderSettings` is what the runner passes to the pure engine;
:class:`CycleReport` what one cycle did (also what the GUI and the cycle summary
show); :class:`OrderPreview` what the next cycle would do; :class:`ManualResult`
what a trader's blotter action did; :class:`HealthMetrics` running totals; and
:func:`book_snapshot` the account after a cycle next to the run's plan, which
the runner writes as ``book.json``. Plain data, no I/O: the runner
(:mod:`autotrader.services.trading`) fills them in.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from autotrader.domain.records import Account, OrderType, Position, Side
from autotrader.engine.cycle import Decision
from autotrader.engine.limits import PlannerSettings, RiskLimits, SizingSettings, StopSettings
from autotrader.engine.plan_status import BookPosition, BookSnapshot, Outcome
from autotrader.engine.rebalance import target_quantities
from autotrader.engine.risk import Denial
from autotrader.services.recommendations import RecommendationSet

__all__ = ["CycleReport", "HealthMetrics", "ManualResult", "OrderPreview", "PreviewLine",
           "TraderSettings", "book_snapshot"]


@dataclass(frozen=True)
class TraderSettings:
    """Everything the runner passes to the engine, plus its own fallback parameters."""

    risk: RiskLimits = field(default_factory=RiskLimits)
    sizing: SizingSettings = field(default_factory=SizingSettings)
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    stops: StopSettings = field(default_factory=StopSettings)
    default_atr_pct: float = 0.02
    order_ref_prefix: str = "bma"


@dataclass
class CycleReport:
    """What one cycle did; also what the GUI shows per cycle."""

    started_at: dt.datetime
    cycle_time_s: float = 0.0
    run_id: str = ""
    intents: int = 0
    submitted: list[str] = field(default_factory=list)
    denials: Counter[str] = field(default_factory=Counter)
    #: the first reason of each check in :attr:`denials` (the GUI's one-line summary)
    denial_reasons: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop_actions: list[str] = field(default_factory=list)
    events: int = 0
    exiting: set[str] = field(default_factory=set)
    decisions: list[Decision] = field(default_factory=list)
    prices: dict[str, float] = field(default_factory=dict)
    status: dict | None = None
    #: NYSE sessions closed since the run's last bar (None: unknown or not traded)
    run_age_sessions: int | None = None


@dataclass(frozen=True)
class PreviewLine:
    """One intent of a previewed cycle: target vs book and what the engine would do with it.

    ``quantity``/``order_type``/``limit_price`` are the planner's order when the
    intent passed every check; for a denied intent ``quantity`` is the intent's
    and ``order_type``/``limit_price`` are None.
    """

    symbol: str
    side: Side
    quantity: int
    current: int
    order_type: OrderType | None
    limit_price: float | None
    denial: Denial | None

    @property
    def sends(self) -> bool:
        """True when the next cycle would submit this order (at unchanged prices)."""
        return self.denial is None

    @property
    def outcome(self) -> str:
        """``"SEND"`` or ``"DENY <check>: <reason>"``, as the decision log line says."""
        if self.denial is None:
            return "SEND"
        return f"DENY {self.denial.check}: {self.denial.reason}"


@dataclass(frozen=True)
class OrderPreview:
    """What :meth:`TradingRunner.preview` computed; ``failures`` as in :class:`CycleReport`."""

    run_id: str
    at: dt.datetime
    lines: tuple[PreviewLine, ...]
    failures: tuple[str, ...] = ()
    fallbacks: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ManualResult:
    """What a trader's order action from the blotter did (cancel, cancel all, flatten).

    ``ok`` is False when nothing was sent (refused, denied or failed);
    ``message`` says what happened and why in one line.
    """

    action: str
    ok: bool
    message: str
    refs: tuple[str, ...] = ()


@dataclass
class HealthMetrics:
    """Running totals over the runner's life: cycle time, denials, fallbacks, failures."""

    cycles: int = 0
    last_cycle_s: float = 0.0
    max_cycle_s: float = 0.0
    total_cycle_s: float = 0.0
    orders_submitted: int = 0
    denials: Counter[str] = field(default_factory=Counter)
    fallbacks: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    def record(self, report: CycleReport) -> None:
        """Add one cycle's report to the totals."""
        self.cycles += 1
        self.last_cycle_s = report.cycle_time_s
        self.max_cycle_s = max(self.max_cycle_s, report.cycle_time_s)
        self.total_cycle_s += report.cycle_time_s
        self.orders_submitted += len(report.submitted)
        self.denials.update(report.denials)
        self.fallbacks.update(report.fallbacks)
        self.failures.update(f.split(":", 1)[0] for f in report.failures)



def book_snapshot(account: Account, positions: dict[str, Position],
                  recs: RecommendationSet | None, report: CycleReport, working: set[str],
                  now: dt.datetime, *, broker: str, sizing: SizingSettings | None = None,
                  tolerance_usd: float = 0.0) -> BookSnapshot:
    """Build the snapshot of the account after a cycle, its plan and each symbol's outcome."""
    prices = report.prices
    outcomes: dict[str, Outcome] = {}
    for decision in report.decisions:
        symbol = decision.intent.symbol
        if decision.denial is not None:
            outcomes[symbol] = Outcome("denied", decision.denial.check, decision.denial.reason)
        else:
            outcomes[symbol] = Outcome("working" if symbol in working else "filled")
    for symbol in working:
        outcomes.setdefault(symbol, Outcome("working"))
    held = tuple(BookPosition(s, p.quantity, prices.get(s, p.avg_cost), p.avg_cost)
                 for s, p in sorted(positions.items()))
    planned = {r.ticker: r.weight for r in recs.rows if r.weight > 0} if recs else {}
    sizing = sizing or SizingSettings()
    targets = target_quantities([r for r in recs.rows if r.weight > 0], account.equity, prices,
                                sizing) if recs else {}
    return BookSnapshot(
        as_of=now.isoformat(), broker=broker, run_id=recs.run_id if recs else "",
        equity=account.equity, cash=account.cash, positions=held, planned=planned,
        prices={s: prices[s] for s in set(planned) | set(positions) if s in prices},
        outcomes=outcomes, lot=100 if sizing.notional_round_lots else 1,
        tolerance_usd=tolerance_usd,
        targets={s: q * prices[s] / account.equity for s, q in targets.items()
                 if account.equity > 0},
        run_last_date=recs.last_date.isoformat() if recs and recs.last_date else "",
        run_age_sessions=report.run_age_sessions,
        run_beats_baselines=recs.signal.beats_all_baselines if recs and recs.signal else None,
        run_beaten_by=recs.signal.beaten_by if recs and recs.signal else ())
