"""One line per trading cycle that always says why orders were not sent.

A cycle that sends nothing is normal (market closed, kill switch, limits
reached), but "0 submitted, 34 intents" alone reads like a fault. The line
names the denials by plain reason (the phrases of
:mod:`autotrader.engine.reasons`), most frequent first, and when the market is
closed it says when it opens::

    34 denied: market closed; next open Mon 09:30 ET
    3 submitted; 12 denied: 8 score below threshold, 4 cash reserve reached; plan coverage 61.0%
    no orders: recommendations: no complete run under result

The plan's coverage after the cycle (``autotrader status``) ends the line when
the cycle recorded it.

No tkinter: the GUI's Trading tab shows it; the worker logs it.
"""

from __future__ import annotations

from collections.abc import Mapping

from autotrader.engine.reasons import check_phrase
from autotrader.services.cycle_records import CycleReport
from autotrader.services.market_session import MarketSession

__all__ = ["cycle_summary"]


def cycle_summary(report: CycleReport, session: MarketSession | None = None) -> str:
    """Summarise the cycle's outcome in one line, with the reason of every denial.

    Examples
    --------
    >>> import datetime as dt
    >>> from collections import Counter
    >>> at = dt.datetime(2026, 3, 7, 15, 0, tzinfo=dt.timezone.utc)
    >>> report = CycleReport(at, intents=34, denials=Counter(market_hours=34),
    ...                      denial_reasons={"market_hours": "NYSE is closed"})
    >>> closed = MarketSession(at, False, dt.datetime(2026, 3, 9, 13, 30, tzinfo=dt.timezone.utc),
    ...                        dt.datetime(2026, 3, 9, 20, 0, tzinfo=dt.timezone.utc))
    >>> cycle_summary(report, closed)
    '34 denied: market closed; next open Mon 09:30 ET'
    """
    parts: list[str] = []
    if report.submitted:
        parts.append(f"{len(report.submitted)} submitted")
    denied = sum(report.denials.values())
    if denied:
        parts.append(f"{denied} denied: " + _reasons(report.denials, report.denial_reasons))
        if "market_hours" in report.denials and session is not None:
            opens = session.next_open_text()
            if opens:
                parts.append(opens)
    if report.failures:
        parts.append(f"{len(report.failures)} failure{'s' if len(report.failures) > 1 else ''}:"
                     f" {report.failures[0]}")
    coverage = (report.status or {}).get("coverage")
    if not parts:
        line = "no orders needed: the book matches the plan" if report.run_id else \
            "no orders: no recommendations"
        return line + (f"; plan coverage {coverage:.1%}" if coverage is not None else "")
    if not report.submitted and not denied and report.failures:
        parts[0] = "no orders; " + parts[0]
    if coverage is not None:  # the plan-versus-book status of this cycle
        parts.append(f"plan coverage {coverage:.1%}")
    return "; ".join(parts)


def _reasons(denials: Mapping[str, int], reasons: Mapping[str, str]) -> str:
    ranked = sorted(denials.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) == 1:
        check = ranked[0][0]
        return check_phrase(check, reasons.get(check, ""))
    return ", ".join(f"{count} {check_phrase(check, reasons.get(check, ''))}"
                     for check, count in ranked)
