"""One line per trading cycle that always says why orders were not sent.

A cycle that sends nothing is normal (market closed, kill switch, limits
reached), but "0 submitted, 34 intents" alone reads like a fault. The line
names the denials by plain reason, most frequent first, and when the market is
closed it says when it opens::

    34 denied: market closed; next open Mon 09:30 ET
    3 submitted; 12 denied: 8 score below threshold, 4 cash reserve; plan coverage 61.0%
    no orders: recommendations: no complete run under result

The plan's coverage after the cycle (``autotrader status``) ends the line when
the cycle recorded it.

No tkinter: the GUI's Trading tab shows it; the worker logs it.
"""

from __future__ import annotations

from collections.abc import Mapping

from autotrader.services.market_session import MarketSession
from autotrader.services.trading import CycleReport

__all__ = ["CHECK_WORDS", "cycle_summary", "denial_words"]

#: risk/planner check name -> what a trader calls it
CHECK_WORDS: dict[str, str] = {
    "trading_state": "kill switch",
    "market_hours": "market closed",
    "duplicate_intent": "order already working",
    "daily_order_limit": "daily order limit reached",
    "per_cycle_order_limit": "per-cycle order limit reached",
    "daily_loss": "daily loss limit",
    "stopped_out": "stopped out today",
    "signal_threshold": "score below threshold",
    "price_band": "price outside band",
    "min_order_value": "order below minimum value",
    "max_single_position": "position limit",
    "sector_exposure": "sector limit",
    "max_correlation": "too correlated with a holding",
    "max_portfolio_exposure": "exposure limit",
    "cash_reserve": "cash reserve",
    "exit_orders_working": "exit orders being cancelled first",
    "nothing_to_sell": "shares already being sold",
    "liquidity": "too little volume",
    "spread": "spread too wide",
    "volatility": "volatility bucket not allowed",
    "expected_alpha": "expected return too small",
    "throttle": "ordered recently",
    "no_price": "no price",
    "per_trade_risk": "stop risk too small to size",
}


def denial_words(check: str, reason: str = "") -> str:
    """Plain words for a denial (``market_hours`` outside the window: "outside trading hours").

    Examples
    --------
    >>> denial_words("market_hours", "NYSE is closed")
    'market closed'
    >>> denial_words("market_hours", "08:15 America/New_York is outside the trading window")
    'outside trading hours'
    >>> denial_words("adv")
    'adv'
    """
    if check == "market_hours" and "window" in reason:
        return "outside trading hours"
    if check == "market_hours" and "calendar" in reason:
        return "market calendar unavailable"
    return CHECK_WORDS.get(check, check.replace("_", " "))


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
        return denial_words(check, reasons.get(check, ""))
    return ", ".join(f"{count} {denial_words(check, reasons.get(check, ''))}"
                     for check, count in ranked)
