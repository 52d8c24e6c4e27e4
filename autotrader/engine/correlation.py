"""Trailing daily returns of a run's universe, for the ``max_correlation`` pre-trade check.

Why the research run provides them (``returns_recent.csv`` in its run
directory) instead of the broker: the run already holds every ticker's bars up
to its end date, so the trader needs no extra market-data request per cycle and
the correlations are those of the data the recommendations came from. A held
name that the run does not cover has no history here; the check then cannot
say anything about that pair and the runner counts it as a fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: fewer common return dates than this and a pair's correlation is not estimated
MIN_OVERLAP = 20


@dataclass(frozen=True)
class ReturnHistory:
    """Daily close-to-close returns, ``returns[i, j]`` = date ``dates[i]``, symbol ``symbols[j]``.

    NaN marks a date without a return for that symbol. ``window`` (None = all
    rows) keeps only the last ``window`` dates for the correlations.

    Examples
    --------
    >>> h = ReturnHistory(("2026-01-02", "2026-01-05", "2026-01-06"), ("A", "B"),
    ...                   np.array([[0.01, 0.02], [-0.02, -0.03], [0.01, 0.01]]), min_overlap=3)
    >>> round(h.correlation("A", "B"), 4)
    0.982
    """

    dates: Sequence[str]
    symbols: Sequence[str]
    returns: np.ndarray
    window: int | None = None
    min_overlap: int = MIN_OVERLAP
    _column: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.returns.shape != (len(self.dates), len(self.symbols)):
            raise ValueError(f"returns shape {self.returns.shape} does not match "
                             f"{len(self.dates)} dates x {len(self.symbols)} symbols")
        object.__setattr__(self, "_column", {s: j for j, s in enumerate(self.symbols)})

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._column

    def correlation(self, a: str, b: str) -> float | None:
        """Pearson correlation of ``a`` and ``b`` over their common dates of the window.

        None when either has no history, they share fewer than ``min_overlap``
        dates, or either is constant over them.
        """
        if a not in self._column or b not in self._column:
            return None
        rows = self.returns if self.window is None else self.returns[-self.window:]
        x, y = rows[:, self._column[a]], rows[:, self._column[b]]
        both = np.isfinite(x) & np.isfinite(y)
        if both.sum() < self.min_overlap:
            return None
        x, y = x[both] - x[both].mean(), y[both] - y[both].mean()
        scale = np.sqrt((x @ x) * (y @ y))
        return float(x @ y / scale) if scale > 0 else None

    def most_correlated(self, symbol: str, others: Iterable[str]) -> tuple[str, float] | None:
        """Return the name in ``others`` with the highest (signed) correlation, or None.

        The result is ``(name, correlation with symbol)``; a name without a
        correlation (see :meth:`correlation`) is skipped, and None means none had one.
        """
        best: tuple[str, float] | None = None
        for other in others:
            if other == symbol:
                continue
            value = self.correlation(symbol, other)
            if value is not None and (best is None or value > best[1]):
                best = (other, value)
        return best
