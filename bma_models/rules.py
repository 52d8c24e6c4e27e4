"""The rulebook: the trader's tradability screens, written once for both halves of the product.

The research optimizer and the trader's pre-trade checks call the *same*
functions of this module, so the two can never disagree about which name may be
bought, how large a position or a sector may grow and how much cash stays in
the account:

* the trader (:mod:`autotrader.engine.risk`, :mod:`autotrader.engine.planner`)
  calls :func:`price_band`, :func:`liquidity`, :func:`volatility`,
  :func:`expected_alpha`, :func:`signal_threshold`, :func:`min_order_value`,
  :func:`position_limit`, :func:`sector_limit` and :func:`cash_reserve` on each
  order it is about to send;
* research (:mod:`bma_models.portfolio`) calls :meth:`Rulebook.entry_denial`
  (the first five, in the trader's order) on every scored name, gives a name
  the trader would refuse zero weight (or, when it is held, no more than it
  holds: the trader screens entries, never exits) with the reason in the
  workbook, and turns the rest into optimizer constraints: the per-name cap
  :meth:`Rulebook.position_cap`, the sector cap (:func:`sector_is_capped`),
  the invested fraction :attr:`Rulebook.invested_fraction` (one cash reserve)
  and the smallest trade :meth:`Rulebook.min_trade_weight` (one minimum order).

Every field of :class:`Rulebook` is read from one configuration key
(:data:`CONFIG_KEYS`); the composition roots build it with
``autotrader.config.trading_rules(settings)``. Fractions are fractions of the
account's equity (``0.05`` = 5 %). Pure: no I/O, no pandas, importable by the
trader's engine.

What stays on one side only, and why: the bid/ask spread and the market-hours,
order-count, daily-loss, stopped-out and correlation checks depend on live
quotes or on the trading day, which research does not see; the trader applies
them and ``autotrader status`` names them when they keep a name off its plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "CHECK_KEYS",
    "CONFIG_KEYS",
    "UNKNOWN_SECTOR",
    "VOLATILITY_BUCKETS",
    "Denial",
    "Rulebook",
    "cash_reserve",
    "expected_alpha",
    "liquidity",
    "min_order_value",
    "position_limit",
    "price_band",
    "sector_is_capped",
    "sector_limit",
    "signal_threshold",
    "volatility",
    "volatility_bucket",
]

#: The sector of a name whose sector is not known. It is not a sector: no sector limit
#: applies to it (grouping every unknown name into one capped "sector" would make a
#: portfolio without sector data infeasible, or cap unrelated names together).
UNKNOWN_SECTOR = "Unknown"
VOLATILITY_BUCKETS = ("low", "medium", "high")

#: Rulebook field -> the one configuration key it is read from.
CONFIG_KEYS: dict[str, str] = {
    "min_price": "filters.min_price",
    "max_price": "filters.max_price",
    "min_adv_usd": "execution.min_adv_usd",
    "volatility_low_max": "execution.volatility_low_max",
    "volatility_medium_max": "execution.volatility_medium_max",
    "allowed_volatility_buckets": "execution.allowed_volatility_buckets",
    "min_expected_alpha_bps": "execution.min_expected_alpha_bps",
    "acceptance_threshold": "signals.acceptance_threshold",
    "min_order_value_usd": "orders.min_order_value_usd",
    "max_position": "capital.max_single_position_pct",
    "sector_limit": "risk_controls.sector_exposure_limit",
    "cash_reserve": "capital.cash_reserve_pct",
    "max_exposure": "capital.max_portfolio_exposure",
    "atr_window": "risk_controls.stops.atr_window",
    "order_type": "execution.order_type",
    "per_trade_risk_pct": "sizing.per_trade_risk_pct",
    "stop_atr_multiple": "execution.stop_atr_multiple",
}

#: A denial's check name -> the configuration keys that set it (named in advice).
CHECK_KEYS: dict[str, str] = {
    "signal_threshold": CONFIG_KEYS["acceptance_threshold"],
    "price_band": f"{CONFIG_KEYS['min_price']} / {CONFIG_KEYS['max_price']}",
    "liquidity": CONFIG_KEYS["min_adv_usd"],
    "volatility": CONFIG_KEYS["allowed_volatility_buckets"],
    "expected_alpha": CONFIG_KEYS["min_expected_alpha_bps"],
    "min_order_value": CONFIG_KEYS["min_order_value_usd"],
    "max_single_position": CONFIG_KEYS["max_position"],
    "sector_exposure": CONFIG_KEYS["sector_limit"],
    "cash_reserve": CONFIG_KEYS["cash_reserve"],
}

#: Weights below one basis point are zero: no plan holds, and no trade moves, less.
MIN_WEIGHT = 1e-4


@dataclass(frozen=True)
class Denial:
    """Why a name or an order was refused: the ``check`` name and a readable reason."""

    check: str
    reason: str

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


# -- the screens, one function each (the trader and research call these) ----------------------

def price_band(price: float, min_price: float, max_price: float) -> Denial | None:
    """Refuse an entry whose price lies outside ``[min_price, max_price]``.

    Examples
    --------
    >>> price_band(1.5, 2.0, 800.0).reason
    'price 1.5000 outside [2.0, 800.0]'
    """
    if not min_price <= price <= max_price:
        return Denial("price_band", f"price {price:.4f} outside [{min_price}, {max_price}]")
    return None


def liquidity(adv_usd: float, min_adv_usd: float) -> Denial | None:
    """Refuse an entry below ``min_adv_usd`` average daily dollar volume (NaN fails)."""
    if not adv_usd >= min_adv_usd:
        return Denial("liquidity", f"ADV {adv_usd:,.0f} USD below {min_adv_usd:,.0f}")
    return None


def volatility_bucket(atr: float, price: float, low_max: float, medium_max: float) -> str:
    """``'low'``, ``'medium'`` or ``'high'`` from ATR / price; ``'unknown'`` without both.

    Examples
    --------
    >>> volatility_bucket(1.0, 100.0, 0.02, 0.05), volatility_bucket(6.0, 100.0, 0.02, 0.05)
    ('low', 'high')
    """
    if not (atr > 0 and price > 0):
        return "unknown"
    ratio = atr / price
    return "low" if ratio <= low_max else "medium" if ratio <= medium_max else "high"


def volatility(atr: float, price: float, low_max: float, medium_max: float,
               allowed: tuple[str, ...]) -> Denial | None:
    """Refuse an entry whose ATR volatility bucket is not one of ``allowed``."""
    bucket = volatility_bucket(atr, price, low_max, medium_max)
    if bucket not in allowed:
        return Denial("volatility", f"ATR volatility bucket {bucket!r} not allowed")
    return None


def expected_alpha(expected_return: float, min_bps: float) -> Denial | None:
    """Refuse an entry whose expected return over the label horizon is below ``min_bps``."""
    alpha_bps = expected_return * 1e4
    if not alpha_bps >= min_bps:
        return Denial("expected_alpha", f"expected alpha {alpha_bps:.1f} bps below {min_bps}")
    return None


def signal_threshold(percentile: float, threshold: float) -> Denial | None:
    """Refuse an entry whose score percentile in its run (1 = best) is below ``threshold``."""
    if not percentile >= threshold:
        return Denial("signal_threshold", f"score percentile {percentile:.3f} below {threshold}")
    return None


def min_order_value(notional: float, min_usd: float) -> Denial | None:
    """Refuse an order worth less than ``min_usd`` (a full exit is exempt, see the trader)."""
    if notional < min_usd:
        return Denial("min_order_value", f"order value {notional:.2f} below {min_usd:.2f} USD")
    return None


def position_limit(symbol: str, value_after: float, equity: float,
                   max_fraction: float) -> Denial | None:
    """Refuse an entry that would take a position above ``max_fraction`` of equity."""
    cap = max_fraction * equity
    if value_after > cap + 1e-9:
        return Denial("max_single_position", f"{symbol} would be {value_after:.0f} USD "
                                             f"> {max_fraction:.1%} of equity ({cap:.0f})")
    return None


def sector_is_capped(sector: object) -> bool:
    """Return True for a known sector; the limit does not apply to :data:`UNKNOWN_SECTOR`.

    Examples
    --------
    >>> sector_is_capped("Energy"), sector_is_capped("Unknown"), sector_is_capped(None)
    (True, False, False)
    """
    return isinstance(sector, str) and sector.strip() not in ("", UNKNOWN_SECTOR)


def sector_limit(sector: str, value_after: float, equity: float,
                 limit: float) -> Denial | None:
    """Refuse an entry that would take a known sector above ``limit`` of equity."""
    if not sector_is_capped(sector):
        return None
    cap = limit * equity
    if value_after > cap + 1e-9:
        return Denial("sector_exposure", f"sector {sector} would be {value_after:.0f} USD "
                                         f"> {cap:.0f}")
    return None


def cash_reserve(cash_after: float, equity: float, reserve: float) -> Denial | None:
    """Cash after a buy may not fall below ``reserve`` of equity."""
    floor = reserve * equity
    if cash_after < floor - 1e-9:
        return Denial("cash_reserve", f"cash after order {cash_after:.0f} USD below the "
                                      f"reserve {floor:.0f}")
    return None


# -- the rulebook: the screens' parameters, and what research derives from them ---------------

@dataclass(frozen=True)
class Rulebook:
    """The screens' parameters, one configuration key each (:data:`CONFIG_KEYS`).

    The defaults equal the packaged defaults (``autotrader/config/default.yaml``).

    Examples
    --------
    >>> rules = Rulebook()
    >>> rules.entry_denial(price=50.0, adv_usd=5e6, atr=3.5, expected_return=0.002,
    ...                    percentile=0.9).check
    'volatility'
    >>> round(rules.invested_fraction, 4), rules.min_trade_weight(1e6)
    (0.95, 0.001)
    """

    min_price: float = 2.0
    max_price: float = 800.0
    min_adv_usd: float = 1_000_000.0
    volatility_low_max: float = 0.02
    volatility_medium_max: float = 0.05
    allowed_volatility_buckets: tuple[str, ...] = ("low", "medium")
    min_expected_alpha_bps: float = 10.0
    acceptance_threshold: float = 0.6
    min_order_value_usd: float = 1_000.0
    max_position: float = 0.03
    sector_limit: float = 0.3
    cash_reserve: float = 0.05
    max_exposure: float = 0.95
    atr_window: int = 14
    order_type: str = "limit"
    per_trade_risk_pct: float = 0.01
    stop_atr_multiple: float = 2.0

    @property
    def invested_fraction(self) -> float:
        """The fraction of equity a plan invests: ``min(1 - cash_reserve, max_exposure)``."""
        return min(1.0 - self.cash_reserve, self.max_exposure)

    def min_trade_weight(self, capital: float) -> float:
        """Return the smallest trade as a weight: ``max(1 bp, min_order_value_usd / capital)``."""
        return max(MIN_WEIGHT, self.min_order_value_usd / capital)

    def entry_denial(self, *, price: float, adv_usd: float, atr: float, expected_return: float,
                     percentile: float) -> Denial | None:
        """Return the first screen that refuses an entry into this name, in the trader's order.

        Signal threshold and price band (the trader's risk chain), then
        liquidity, volatility and expected alpha (its execution planner).
        """
        return (signal_threshold(percentile, self.acceptance_threshold)
                or price_band(price, self.min_price, self.max_price)
                or liquidity(adv_usd, self.min_adv_usd)
                or volatility(atr, price, self.volatility_low_max, self.volatility_medium_max,
                              self.allowed_volatility_buckets)
                or expected_alpha(expected_return, self.min_expected_alpha_bps))

    def entry_cap(self, price: float, atr: float) -> float:
        """Return the largest weight one entry order may add.

        That is ``per_trade_risk_pct * price / (stop_atr_multiple * ATR)`` for
        bracket orders (0 without a positive ATR and price), unlimited (``inf``)
        otherwise.

        Why: a bracket entry's quantity is cut so that hitting its stop loses at
        most ``per_trade_risk_pct`` of equity (the trader's planner); a plan that
        assumed more would never be reached. Other order types carry no stop at
        entry and are not cut: ``sizing.per_trade_risk_pct`` is bracket-only.
        A position is further capped at :attr:`max_position`.

        Examples
        --------
        >>> Rulebook(order_type="bracket").entry_cap(price=50.0, atr=2.5)
        0.1
        """
        if self.order_type != "bracket" or not self.per_trade_risk_pct > 0:
            return math.inf
        if not (atr > 0 and price > 0):
            return 0.0  # the planner refuses a bracket without an ATR
        return self.per_trade_risk_pct * price / (self.stop_atr_multiple * atr)
