"""The one adapter between the trader's plan-versus-book and the GUI's positions and gaps.

The Trading tab shows, per name, the weight the plan wants (``planned``) and,
for every name off its plan, the gap and its reason. It never computes that
itself: this module turns what the trader provides into a :class:`PlanView`.

Until the plan-versus-book status of ``autotrader status`` (issue #18) exists
in this build, :func:`plan_view` reads the planned weights of the run being
traded (its ``weight`` column) and reports no gaps, saying so in
:attr:`PlanView.note`; switching to the status document is one change here.
No tkinter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autotrader.domain.errors import RecommendationsError
from autotrader.services.recommendations import RecommendationSet

logger = logging.getLogger(__name__)

__all__ = ["Gap", "PlanView", "plan_view"]

NO_GAPS_YET = ("gaps with reasons come from `autotrader status` (plan versus book), "
               "not in this build yet")


@dataclass(frozen=True)
class Gap:
    """One name off its plan: ``kind`` (denied, market_closed, ...) and the reason in words."""

    symbol: str
    weight: float | None
    planned_weight: float | None
    kind: str
    reason: str


@dataclass(frozen=True)
class PlanView:
    """Planned weight per name, the gaps and the coverage of the plan (None: unknown)."""

    run_id: str
    planned: Mapping[str, float]
    gaps: tuple[Gap, ...] = ()
    coverage: float | None = None
    note: str = ""


def plan_view(recommendations: Callable[[], RecommendationSet],
              status: Mapping[str, Any] | None = None) -> PlanView | None:
    """The plan of the run being traded; ``status`` is the plan-versus-book document if any.

    Returns None when there is no run to trade (the reason is logged).
    """
    if status is not None:
        return _from_status(status)
    try:
        run = recommendations()
    except RecommendationsError as e:
        logger.info("no plan to show: %s", e)
        return None
    planned = {r.ticker: r.weight for r in run.rows if r.weight > 0}
    return PlanView(run.run_id, planned, note=NO_GAPS_YET)


def _from_status(status: Mapping[str, Any]) -> PlanView:
    # the document of autotrader.engine.plan_status.plan_vs_book (``autotrader status --json``)
    planned = {row["symbol"]: float(row["planned_weight"]) for row in status["positions"]
               if row.get("planned_weight")}
    gaps = tuple(Gap(g["symbol"], g.get("weight"), g.get("planned_weight"), g["kind"],
                     g["reason"]) for g in status.get("gaps", ()))
    return PlanView(str(status.get("run_id", "")), planned, gaps, status.get("coverage"))
