"""US equity tick sizes and price rounding (Reg NMS: $0.01 at or above $1, $0.0001 below)."""

from __future__ import annotations

import math


def tick_size(price: float) -> float:
    """Return the minimum price increment for a quote at ``price``.

    Examples
    --------
    >>> tick_size(12.5), tick_size(0.5)
    (0.01, 0.0001)
    """
    return 0.01 if price >= 1.0 else 0.0001


def round_to_tick(price: float, direction: str = "nearest") -> float:
    """Round ``price`` to its tick; ``direction`` is "down", "up" or "nearest".

    Why integer tick counts: ``round(x / 0.01) * 0.01`` leaves float residue
    (``0.30000000000000004``) that a broker rejects; counting ticks and
    rounding the product to 4 decimals gives an exact-looking price. A small
    epsilon keeps an already-on-tick price from moving when rounding up/down.

    Examples
    --------
    >>> round_to_tick(10.126, "down"), round_to_tick(10.121, "up"), round_to_tick(0.123456)
    (10.12, 10.13, 0.1235)
    """
    if not math.isfinite(price) or price <= 0:
        raise ValueError(f"cannot round a non-positive or non-finite price {price!r}")
    tick = tick_size(price)
    ticks = price / tick
    if direction == "down":
        n = math.floor(ticks + 1e-9)
    elif direction == "up":
        n = math.ceil(ticks - 1e-9)
    elif direction == "nearest":
        n = math.floor(ticks + 0.5)
    else:
        raise ValueError(f"direction must be 'down', 'up' or 'nearest', not {direction!r}")
    rounded = round(n * tick, 4)
    if rounded >= 1.0 and tick < 0.01:  # rounding up across $1 lands on the coarser grid
        return round_to_tick(rounded, direction)
    return rounded
