"""Trading costs of one simulated order: commission, half spread and square-root impact.

Every function is vectorised over orders (numpy arrays of equal length) and
returns US dollars, never negative, zero for a zero quantity. The parameters are
:class:`bma_models.settings.CostSettings`; docs/backtest.md gives the source of
each default:

* **commission** -- Interactive Brokers' *Fixed* pricing for US stocks:
  ``min(max(per_share x |shares|, minimum), max_pct x value)``;
* **spread** -- half the bid/ask spread of the name's liquidity bucket (its
  dollar ADV), ``value x half_spread_bps / 1e4``;
* **impact** -- the square-root law ``Y x sigma_daily x sqrt(value / ADV)``
  per dollar traded, ``Y`` = ``impact_coefficient``.

Why three separate terms: they scale differently (per share, per dollar, and
with the square root of the order's share of the day's volume), so a strategy
that trades many small orders, one that trades illiquid names and one that
trades large blocks are each charged for what actually costs them money. Every
term is linear in its parameters, so doubling every cost parameter doubles the
cost of every order (a property the tests check).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bma_models.settings import CostSettings

__all__ = ["OrderCosts", "commission", "half_spread_bps", "market_impact", "order_costs"]


class OrderCosts(NamedTuple):
    """Per-order cost components in USD (arrays of the orders' length)."""

    commission: np.ndarray
    spread: np.ndarray
    impact: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Sum of the three components per order."""
        return self.commission + self.spread + self.impact


def commission(shares, price, per_share: float, minimum: float, max_pct: float) -> np.ndarray:
    """IBKR Fixed commission per order: ``min(max(per_share x |q|, minimum), max_pct x value)``.

    Examples
    --------
    >>> commission([100, 1000, 1000, 0], [25.0, 25.0, 0.25, 10.0], 0.005, 1.0, 0.01).tolist()
    [1.0, 5.0, 2.5, 0.0]
    """
    q = np.abs(np.asarray(shares, dtype=float))
    value = q * np.asarray(price, dtype=float)
    fee = np.minimum(np.maximum(per_share * q, minimum), max_pct * value)
    return np.where(q > 0, fee, 0.0)


def half_spread_bps(adv_usd, breaks, half_spreads) -> np.ndarray:
    """Half spread (bps) of each name's dollar-ADV bucket; unknown ADV is the least liquid.

    Examples
    --------
    >>> half_spread_bps([5e5, 2e6, 1e9, np.nan], (1e6, 5e7), (20.0, 5.0, 1.0)).tolist()
    [20.0, 5.0, 1.0, 20.0]
    """
    adv = np.nan_to_num(np.asarray(adv_usd, dtype=float), nan=0.0)
    bucket = np.searchsorted(np.asarray(breaks, dtype=float), adv, side="right")
    return np.asarray(half_spreads, dtype=float)[bucket]


def market_impact(value, adv_usd, sigma_daily, coefficient: float) -> np.ndarray:
    """Square-root impact in USD: ``coefficient x sigma x sqrt(value / ADV) x value``.

    An order in a name without a known ADV pays the impact of trading a whole
    day's volume (participation 1), one without a known volatility is charged
    at the given ``sigma_daily`` the caller filled in (see :func:`order_costs`).
    """
    value = np.abs(np.asarray(value, dtype=float))
    adv = np.asarray(adv_usd, dtype=float)
    known = np.isfinite(adv) & (adv > 0)
    participation = np.where(known, value / np.where(known, adv, 1.0), 1.0)
    return coefficient * np.asarray(sigma_daily, dtype=float) * np.sqrt(participation) * value


def order_costs(shares, price, adv_usd, sigma_daily, costs: CostSettings) -> OrderCosts:
    """Commission, spread and impact of each order (``shares`` signed, ``price`` the fill).

    ``adv_usd`` and ``sigma_daily`` are known at the decision date (the close
    before the fill). A missing ``sigma_daily`` is replaced by the median of
    the known ones (the cross-section's typical volatility), or 2 % when none is
    known; a missing ADV is the least liquid bucket and participation 1.
    """
    q = np.asarray(shares, dtype=float)
    price = np.asarray(price, dtype=float)
    value = np.abs(q) * price
    sigma = np.asarray(sigma_daily, dtype=float)
    if not np.isfinite(sigma).all():
        known = sigma[np.isfinite(sigma)]
        sigma = np.where(np.isfinite(sigma), sigma, np.median(known) if known.size else 0.02)
    fee = commission(q, price, costs.commission_per_share, costs.commission_min,
                     costs.commission_max_pct)
    spread = value * half_spread_bps(adv_usd, costs.spread_adv_breaks,
                                     costs.half_spread_bps) / 1e4
    impact = market_impact(value, adv_usd, sigma, costs.impact_coefficient)
    return OrderCosts(fee, spread, impact)
