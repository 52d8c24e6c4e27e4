"""Every reason the trader gives for not trading a name, in a trader's words: one table.

The risk chain (:mod:`autotrader.engine.risk`), the planner
(:mod:`autotrader.engine.planner`), the cycle's exit handling
(:mod:`autotrader.engine.cycle`) and the shared rulebook (:mod:`bma_models.rules`)
name each denial by a check name such as ``per_cycle_order_limit``; the
plan-versus-book status (:mod:`autotrader.engine.plan_status`) sorts every gap
into a kind such as ``order_limit``. Those names are the machine-readable codes
(journal, health metrics, ``autotrader status --json``). What a trader reads is
the phrase of :data:`CHECK_PHRASES` and :data:`GAP_PHRASES`: the CLI's status
table, the ``reason_text`` of ``status --json``, the GUI's gaps table and the
cycle summary all take their words from here, and nowhere else.

A test walks every ``Denial("<check>", ...)`` in the engine and the rulebook and
every gap kind, and fails when one has no phrase.
"""

from __future__ import annotations

__all__ = ["CHECK_PHRASES", "GAP_PHRASES", "check_phrase", "denial_text", "gap_phrase"]

#: check name (a denial's code) -> what a trader calls it
CHECK_PHRASES: dict[str, str] = {
    # risk chain (autotrader/engine/risk.py), in chain order
    "trading_state": "kill switch",
    "market_hours": "market closed",
    "run_age": "research run too old",
    "duplicate_intent": "order already working",
    "daily_order_limit": "daily order limit reached",
    "per_cycle_order_limit": "order limit per cycle reached",
    "daily_loss": "daily loss limit hit",
    "stopped_out": "stopped out today, no re-entry",
    "signal_threshold": "score below threshold",
    "price_band": "price outside allowed band",
    "min_order_value": "below minimum order value",
    "max_single_position": "position limit reached",
    "sector_exposure": "sector limit reached",
    "max_correlation": "too correlated with a holding",
    "max_portfolio_exposure": "portfolio exposure limit reached",
    "cash_reserve": "cash reserve reached",
    # planner (autotrader/engine/planner.py, the screens of bma_models/rules.py)
    "liquidity": "volume too low",
    "spread": "spread too wide",
    "volatility": "volatility bucket refused",
    "expected_alpha": "expected return too small",
    "throttle": "ordered too recently",
    "no_price": "no price",
    "per_trade_risk": "stop too wide for the per-trade risk",
    # exits (autotrader/engine/cycle.py)
    "exit_orders_working": "exit orders being cancelled first",
    "nothing_to_sell": "shares already being sold",
}

#: gap kind of the plan-versus-book status -> what a trader calls it
GAP_PHRASES: dict[str, str] = {
    "market_closed": "waiting for the open",
    "order_limit": "waiting for order limit",
    "not_filled": "order working",
    "denied": "refused",
    "capped": "capped below plan",
    "no_price": "no price",
    "no_order": "no order sent",
}

#: a denial reason that says more than its check's phrase: (check, words in the reason) -> phrase
_REFINED: tuple[tuple[str, str, str], ...] = (
    ("market_hours", "trading window", "outside trading hours"),
    ("market_hours", "calendar", "market calendar unavailable"),
    ("market_hours", "timezone-aware", "clock without a time zone"),
    ("trading_state", "HALTED", "kill switch: trading halted"),
    ("trading_state", "REDUCING", "kill switch: reduce-only"),
)


def check_phrase(check: str, reason: str = "") -> str:
    """Plain words for the denial ``check`` (its ``reason`` may say more precisely what).

    An unknown check (never expected: a test walks every check name) keeps its
    code with spaces for underscores, so nothing is hidden.

    Examples
    --------
    >>> check_phrase("per_cycle_order_limit")
    'order limit per cycle reached'
    >>> check_phrase("market_hours", "08:15 America/New_York is outside the trading window")
    'outside trading hours'
    >>> check_phrase("trading_state", "trading is HALTED (kill switch)")
    'kill switch: trading halted'
    """
    for name, words, phrase in _REFINED:
        if check == name and words in reason:
            return phrase
    return CHECK_PHRASES.get(check, check.replace("_", " "))


def denial_text(check: str, reason: str) -> str:
    """Return the phrase of a denial followed by the check's own reason (its figures).

    Examples
    --------
    >>> denial_text("volatility", "ATR volatility bucket 'high' not allowed")
    "volatility bucket refused: ATR volatility bucket 'high' not allowed"
    """
    phrase = check_phrase(check, reason)
    return f"{phrase}: {reason}" if reason else phrase


def gap_phrase(kind: str) -> str:
    """Plain words for a gap kind of the plan-versus-book status.

    Examples
    --------
    >>> gap_phrase("order_limit")
    'waiting for order limit'
    """
    return GAP_PHRASES.get(kind, kind.replace("_", " "))
