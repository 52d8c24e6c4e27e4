"""Recommendations + positions + equity -> target quantities -> buy/sell intents (pure).

The arithmetic, per recommended symbol with weight ``w`` and price ``p``::

    target_value = min(w * scale, max_position_pct_of_equity) * equity
    target_qty   = floor(target_value / p / lot) * lot      (lot = 100 or 1)
    delta        = target_qty - (held + in_flight)

The weights are fractions of equity: the plan's weights times the account's
equity, the one capital. ``scale = min(1, (1 - cash_reserve_pct) / sum(w))``
shrinks a plan that would invest more than the cash reserve allows (a run made
under another reserve); a plan made under the same rulebook already sums to
``1 - cash_reserve_pct`` and is not scaled, so the reserve is kept once, not
twice. Held symbols that are no longer recommended get a target of 0 (a full
exit). Sells come first so the cash they free is visible to the buys' risk
checks in the same cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autotrader.domain.records import OrderIntent, Position, Side
from autotrader.engine.limits import SizingSettings

ROUND_LOT = 100


@dataclass(frozen=True)
class Recommendation:
    """One row of ``recommendations.csv``."""

    rank: int
    ticker: str
    sector: str
    score: float
    expected_return: float
    weight: float
    last_close: float
    adv: float
    atr: float = float("nan")
    score_percentile: float = float("nan")

    def confidence(self, n: int) -> float:
        """Return the score percentile in the run (1 = best).

        That is the research's ``score_percentile``, or ``1 - (rank - 1) / n`` for a
        run without it (``n`` = the run's rows).
        """
        if self.score_percentile >= 0:
            return self.score_percentile
        return 1.0 - (self.rank - 1) / max(n, 1)


def target_quantities(
    recommendations: Sequence[Recommendation],
    equity: float,
    prices: Mapping[str, float],
    sizing: SizingSettings,
) -> dict[str, int]:
    """Target share counts for the recommended symbols that have a positive price.

    Parameters
    ----------
    recommendations : the newest run's rows (weights are fractions of equity).
    equity : account net liquidation value in USD.
    prices : symbol -> current price; symbols without one are left out.
    sizing : rounding and caps.

    Examples
    --------
    >>> rec = Recommendation(1, "AAA", "Tech", 1.0, 0.01, 0.5, 10.0, 1e7)
    >>> target_quantities([rec], 10_000.0, {"AAA": 10.0}, SizingSettings(
    ...     max_position_pct_of_equity=0.2, cash_reserve_pct=0.05))
    {'AAA': 200}
    """
    lot = ROUND_LOT if sizing.notional_round_lots else 1
    total_weight = sum(max(r.weight, 0.0) for r in recommendations)
    investable_fraction = 1.0 - sizing.cash_reserve_pct
    scale = investable_fraction / total_weight if total_weight > investable_fraction else 1.0
    investable = max(equity, 0.0)
    targets: dict[str, int] = {}
    for rec in recommendations:
        price = prices.get(rec.ticker, float("nan"))
        if not (price > 0):
            continue
        weight = min(max(rec.weight, 0.0) * scale, sizing.max_position_pct_of_equity)
        shares = weight * investable / price
        targets[rec.ticker] = int(math.floor(shares / lot + 1e-9)) * lot
    return targets


def rebalance_intents(
    recommendations: Sequence[Recommendation],
    positions: Mapping[str, Position],
    equity: float,
    prices: Mapping[str, float],
    sizing: SizingSettings,
    in_flight: Mapping[str, int] | None = None,
) -> list[OrderIntent]:
    """Buy/sell deltas that move the book to the targets, sells first.

    ``in_flight`` is symbol -> signed quantity of working orders (buys positive)
    so a cycle never re-orders what an earlier cycle already sent. Held symbols
    without a price are left alone (no blind exits).

    Examples
    --------
    >>> rec = Recommendation(1, "AAA", "Tech", 1.0, 0.01, 0.1, 10.0, 1e7)
    >>> held = {"OLD": Position("OLD", 5, 20.0)}
    >>> intents = rebalance_intents([rec], held, 10_000.0, {"AAA": 10.0, "OLD": 21.0},
    ...                             SizingSettings(cash_reserve_pct=0.0))
    >>> [(i.side.value, i.symbol, i.quantity) for i in intents]
    [('SELL', 'OLD', 5), ('BUY', 'AAA', 100)]
    """
    in_flight = in_flight or {}
    targets = target_quantities(recommendations, equity, prices, sizing)
    by_symbol = {r.ticker: r for r in recommendations}
    n = max(len(recommendations), 1)
    sells: list[OrderIntent] = []
    buys: list[OrderIntent] = []
    for symbol in sorted(set(targets) | set(positions)):
        price = prices.get(symbol, float("nan"))
        if not (price > 0):
            continue
        held = positions[symbol].quantity if symbol in positions else 0
        delta = targets.get(symbol, 0) - held - in_flight.get(symbol, 0)
        if delta == 0:
            continue
        rec = by_symbol.get(symbol)
        side = Side.BUY if delta > 0 else Side.SELL
        quantity = abs(delta) if delta > 0 else min(-delta, held)
        if quantity <= 0:
            continue
        intent = OrderIntent(
            symbol=symbol,
            side=side,
            quantity=quantity,
            reference_price=price,
            sector=rec.sector if rec else "Unknown",
            score=rec.score if rec else 0.0,
            expected_return=rec.expected_return if rec else 0.0,
            confidence=rec.confidence(n) if rec else 1.0,
            reduces_position=side is Side.SELL,
            closes_position=side is Side.SELL and quantity == held,
            reason="rebalance" if rec else "exit: no longer recommended",
        )
        (sells if side is Side.SELL else buys).append(intent)
    buys.sort(key=lambda i: by_symbol[i.symbol].rank)
    return sells + buys
