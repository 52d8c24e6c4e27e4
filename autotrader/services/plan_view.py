"""The plan-versus-book status of ``autotrader status`` as the Trading tab shows it.

The Trading tab shows, per name, the weight the plan wants (planned weight),
the plan's coverage and the invested fraction, and every name off its plan
with the reason. It computes none of it: :func:`load_plan_view` reads the
same document ``autotrader status --json`` prints
(:func:`autotrader.services.book.read_status`: ``plan_vs_book`` of the
``book.json`` the runner writes after every cycle) and :func:`plan_view`
turns it into a :class:`PlanView`. No tkinter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotrader.engine.reasons import gap_phrase
from autotrader.services.book import BOOK_FILE, BookError, read_status

logger = logging.getLogger(__name__)

__all__ = ["Gap", "PlanView", "load_plan_view", "plan_view"]


@dataclass(frozen=True)
class Gap:
    """One name off its plan: ``kind`` and ``reason`` (codes) and the same in a trader's words.

    ``kind_text`` and ``reason_text`` are the phrases of
    :mod:`autotrader.engine.reasons` (the ``reason_text`` of ``autotrader
    status --json``); the Trading tab shows them.
    """

    symbol: str
    weight: float | None
    planned_weight: float | None
    kind: str
    reason: str
    reason_text: str

    @property
    def kind_text(self) -> str:
        """The gap's kind in words ("waiting for the open", "refused", ...)."""
        return gap_phrase(self.kind)


@dataclass(frozen=True)
class PlanView:
    """Planned weight per name, the gaps, coverage and invested fraction (None: unknown).

    ``as_of`` is the time of the cycle the status describes; ``note`` says why
    there is nothing to show (no cycle yet, unreadable snapshot).
    """

    run_id: str
    planned: Mapping[str, float]
    gaps: tuple[Gap, ...] = ()
    coverage: float | None = None
    invested: float | None = None
    planned_invested: float | None = None
    as_of: str = ""
    note: str = ""


def plan_view(status: Mapping[str, Any]) -> PlanView:
    """Build the view of one plan-versus-book document (``autotrader status --json``).

    Examples
    --------
    >>> view = plan_view({"run_id": "r1", "as_of": "t", "coverage": 0.5, "invested": 0.5,
    ...                   "planned_invested": 0.9,
    ...                   "positions": [{"symbol": "AAA", "planned_weight": 0.5},
    ...                                 {"symbol": "OLD", "planned_weight": 0.0}],
    ...                   "gaps": [{"symbol": "BBB", "weight": 0.0, "planned_weight": 0.4,
    ...                             "kind": "denied", "reason": "volatility: high",
    ...                             "reason_text": "volatility bucket refused: high"}]})
    >>> dict(view.planned), view.gaps[0].kind_text, view.gaps[0].reason_text
    ({'AAA': 0.5}, 'refused', 'volatility bucket refused: high')
    """
    planned = {row["symbol"]: float(row["planned_weight"]) for row in status["positions"]
               if row.get("planned_weight")}
    gaps = tuple(Gap(g["symbol"], g.get("weight"), g.get("planned_weight"), g["kind"],
                     g["reason"], g["reason_text"])
                 for g in status.get("gaps", ()))
    return PlanView(str(status.get("run_id", "")), planned, gaps, status.get("coverage"),
                    status.get("invested"), status.get("planned_invested"),
                    str(status.get("as_of", "")))


def load_plan_view(state_dir: str | Path) -> PlanView:
    """Load the plan versus the book after the last cycle run with ``state_dir``.

    Without a snapshot (no cycle yet) or with an unreadable one the view is
    empty and its ``note`` says why (logged too).
    """
    path = Path(state_dir) / BOOK_FILE
    if not path.is_file():
        return PlanView("", {}, note=f"no plan-versus-book yet: {BOOK_FILE} is written after "
                                     "the first cycle (autotrader status)")
    try:
        return plan_view(read_status(state_dir))
    except BookError as e:
        logger.warning("plan versus book not shown: %s", e)
        return PlanView("", {}, note=f"plan versus book unreadable: {e}")
