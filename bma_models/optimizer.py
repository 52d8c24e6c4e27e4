"""Long-only mean-variance portfolio optimizer with turnover, sector and liquidity limits.

Solves::

    max  mu'w - lambda w'Sigma w - kappa ||w - w0||_1
    s.t. sum(w) = 1 - cash_reserve,  0 <= w_i <= min(max_position, p ADV_i / capital),
         sum_{i in sector} w_i <= sector_cap,  ||w - w0||_1 <= max_turnover (optional)

with ``Sigma = B F B' + diag(s^2)`` kept in factor form, as a sparse QP for
Clarabel (default, interior point, high accuracy) or OSQP.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtri

from bma_models import _qp
from bma_models.errors import BMAError, InfeasibleError, SettingsError

logger = logging.getLogger(__name__)

__all__ = [
    "OptimizationError",
    "OptimizationResult",
    "PortfolioOptimizer",
    "expected_returns_from_scores",
]

UNKNOWN_SECTOR = "Unknown"
_SOLVERS = {"clarabel": _qp.solve_clarabel, "osqp": _qp.solve_osqp}
_FALLBACKS = ("equal_within_caps", None)
_INFEASIBLE_STATUSES = frozenset({"PrimalInfeasible", "AlmostPrimalInfeasible",
                                  "primal infeasible", "primal infeasible inaccurate"})


class OptimizationError(BMAError):
    """The solver failed and no fallback was allowed (``fallback=None``)."""


@dataclass(frozen=True)
class OptimizationResult:
    """Outcome of one :meth:`PortfolioOptimizer.optimize` call.

    Attributes
    ----------
    weights : Series
        Target weight per ticker of the optimised universe (candidates plus
        current holdings that have a score and a risk estimate).
    solver, status : str
        Solver used and its final status (``"fallback"`` solver if it failed).
    objective : float
        ``mu'w - lambda w'Sigma w - kappa ||w - w0||_1`` at ``weights``.
    fallback : str or None
        None when the solver's answer is used, else why the fallback was taken.
    turnover : float
        ``sum |w - w0|`` against the actual holdings, forced sales included.
    forced_sales : tuple of str
        Holdings without a score or risk estimate, sold in full.
    """

    weights: pd.Series
    solver: str
    status: str
    objective: float
    fallback: str | None
    turnover: float
    expected_return: float
    variance: float
    iterations: int
    solve_time_s: float
    total_time_s: float
    candidates: tuple[str, ...]
    forced_sales: tuple[str, ...] = field(default=())


def expected_returns_from_scores(scores: pd.Series, volatility: pd.Series, ic: float = 0.05,
                                 horizon: int = 1) -> pd.Series:
    """Map scores to expected returns: ``mu_i = ic * sigma_i * sqrt(horizon) * z_i``.

    ``z_i = Phi^-1((rank_i - 0.5) / n)`` is the normal quantile of the
    cross-sectional rank of the score (per date when ``scores`` has a
    ``(date, ticker)`` MultiIndex), ``sigma_i`` the asset's daily volatility
    (e.g. :meth:`FactorRiskModel.total_volatility`).

    Why this mapping: it is Grinold's "alpha = IC x volatility x score". Ranks
    make it immune to the scale of the fused score, the normal quantile gives a
    standard score, and multiplying by volatility puts mu in return units that
    match ``Sigma``, so ``risk_aversion`` has the same meaning every day.

    Examples
    --------
    >>> s = pd.Series([3.0, 1.0, 2.0], index=["A", "B", "C"])
    >>> expected_returns_from_scores(s, pd.Series(0.02, index=s.index), ic=0.1).round(5)
    A    0.00193
    B   -0.00193
    C    0.00000
    Name: mu, dtype: float64
    """
    if isinstance(scores.index, pd.MultiIndex):
        groups = scores.groupby(level=0)
        pct = (groups.rank(method="average") - 0.5) / groups.transform("count")
        vol = volatility.reindex(scores.index.get_level_values(-1)).to_numpy()
    else:
        pct = (scores.rank(method="average") - 0.5) / scores.notna().sum()
        vol = volatility.reindex(scores.index).to_numpy()
    mu = ic * np.sqrt(horizon) * vol * ndtri(pct.to_numpy(dtype=float))
    return pd.Series(mu, index=scores.index, name="mu")


class PortfolioOptimizer:
    """Factor-form mean-variance optimizer over a top-N candidate set.

    Parameters
    ----------
    risk_aversion : float
        ``lambda``; mu and Sigma are daily, so 5 balances a 5 bp daily edge
        against 1 % daily volatility.
    turnover_penalty : float
        ``kappa``, cost per unit of ``|w - w0|`` in mu's units (5e-4 = 5 bp).
    max_position, sector_cap : float
        Per-name and per-sector weight caps (names without sector share ``"Unknown"``).
    cash_reserve : float
        Fraction kept in cash; ``sum(w) = 1 - cash_reserve``.
    max_turnover : float or None
        Hard limit on ``sum |w - w0|`` against current holdings (None: no limit).
    adv_participation, capital : float
        Liquidity cap ``w_i * capital <= adv_participation * ADV_i`` (dollar ADV).
    top_n : int or None
        Candidates kept, best ``mu / volatility`` first (None: all).
    solver : {"clarabel", "osqp"}
    fallback : {"equal_within_caps", None}
        What to do when the solver fails: equal weights within the position,
        liquidity and sector caps (recorded on the result), or raise.
    tol : float
        Solver tolerance (gap and feasibility).

    Notes
    -----
    Why factor form: with ``y = B'w`` the Hessian is ``diag(s^2)`` plus a
    ``k x k`` block, so the KKT system is sparse and a 500-name problem solves in
    milliseconds; a dense ``Sigma`` would make it ``O(n^2)`` nonzeros. The L1
    term is exact through an epigraph ``t >= |w - w0|`` (the u/v split with
    ``t = u + v``), needed only for held names since ``|w_i - 0| = w_i``.

    Turnover is always measured against the actual holdings ``current_weights``
    (cash when None). Held names outside the top-N stay in the problem so they
    can be kept or trimmed; held names without a score or risk estimate are
    sold and their weight counts against ``max_turnover``.
    """

    def __init__(self, risk_aversion=5.0, turnover_penalty=5e-4, max_position=0.03,
                 sector_cap=0.25, cash_reserve=0.03, max_turnover=None, adv_participation=0.05,
                 capital=1e6, top_n=100, solver="clarabel", fallback="equal_within_caps",
                 tol=1e-9):
        self.risk_aversion = risk_aversion
        self.turnover_penalty = turnover_penalty
        self.max_position = max_position
        self.sector_cap = sector_cap
        self.cash_reserve = cash_reserve
        self.max_turnover = max_turnover
        self.adv_participation = adv_participation
        self.capital = capital
        self.top_n = top_n
        self.solver = solver
        self.fallback = fallback
        self.tol = tol

    def __repr__(self) -> str:
        return (f"PortfolioOptimizer(solver={self.solver!r}, max_position={self.max_position}, "
                f"sector_cap={self.sector_cap}, cash_reserve={self.cash_reserve}, "
                f"max_turnover={self.max_turnover}, top_n={self.top_n})")

    def check_feasibility(self, mu, risk_model, sectors=None, adv=None, current_weights=None):
        """Raise :class:`InfeasibleError` with a plain-words reason if no portfolio fits.

        Checks, in order: any usable candidate; position and liquidity capacity
        versus the amount to invest; sector capacity; the smallest turnover that
        reaching the target needs versus ``max_turnover``. Returns None if all pass.
        """
        problem, _, forced = self._prepare(mu, risk_model, sectors, adv, current_weights)
        self._check(problem, forced, adv is not None)

    def optimize(self, mu, risk_model, sectors=None, adv=None, current_weights=None):
        """Solve for target weights.

        Parameters
        ----------
        mu : Series
            Expected return per ticker (see :func:`expected_returns_from_scores`).
        risk_model : FactorRiskModel
            Fitted model exposing ``B_``, ``F_``, ``specific_var_``.
        sectors : Series, optional
            Ticker -> sector for the sector caps (default ``risk_model.sectors_``).
        adv : Series, optional
            Ticker -> average daily *dollar* volume; None disables the liquidity cap,
            NaN means unknown liquidity and caps the name at zero.
        current_weights : Series, optional
            Actual holdings as weights of capital (None: all cash).

        Returns
        -------
        OptimizationResult

        Raises
        ------
        InfeasibleError
            The constraints cannot be met, found by the checks before solving or
            proved by the solver (the message says why and what to change).
        OptimizationError
            The solver failed and ``fallback`` is None.
        """
        start = time.perf_counter()
        problem, held_only, forced = self._prepare(mu, risk_model, sectors, adv,
                                                   current_weights)
        self._check(problem, forced, adv is not None)
        solution = self._run_solver(problem)
        if solution.status in _INFEASIBLE_STATUSES:
            raise InfeasibleError(
                f"the position, liquidity, sector and turnover limits cannot all hold at once "
                f"({self.solver} proved it: {solution.status}) although each passes on its "
                f"own: raise max_turnover or sector_cap, or add candidates (top_n)")
        reason = None
        weights = solution.weights
        if weights is not None:
            weights = np.clip(weights, 0.0, problem.upper)
            violation = _max_violation(problem, weights)
            if violation > 1e-6:
                reason = f"solver answer violates constraints by {violation:.2e}"
        else:
            reason = f"{self.solver} returned status {solution.status}"
        if reason is not None:
            weights = self._fallback(problem, reason)
        return self._result(problem, weights, solution, reason, forced, held_only, start)

    # -- steps -----------------------------------------------------------------------------

    def _validate(self):
        checks = [
            (self.risk_aversion >= 0, "risk_aversion must be >= 0"),
            (self.turnover_penalty >= 0, "turnover_penalty must be >= 0"),
            (0 < self.max_position <= 1, "max_position must be in (0, 1]"),
            (0 < self.sector_cap <= 1, "sector_cap must be in (0, 1]"),
            (0 <= self.cash_reserve < 1, "cash_reserve must be in [0, 1)"),
            (self.max_turnover is None or self.max_turnover >= 0, "max_turnover must be >= 0"),
            (self.adv_participation > 0 and self.capital > 0,
             "adv_participation and capital must be > 0"),
            (self.top_n is None or self.top_n >= 1, "top_n must be >= 1 or None"),
            (self.solver in _SOLVERS, f"solver must be one of {sorted(_SOLVERS)}"),
            (self.fallback in _FALLBACKS, f"fallback must be one of {_FALLBACKS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(f"{message}; got {self!r}")

    def _prepare(self, mu, risk_model, sectors, adv, current_weights):
        self._validate()
        tickers = risk_model.B_.index.to_numpy(dtype=object).tolist()
        B = risk_model.B_.to_numpy()
        F = risk_model.F_.to_numpy()
        specific = risk_model.specific_var_.to_numpy()
        mu_all = pd.Series(mu, dtype="float64").reindex(risk_model.B_.index).to_numpy()
        usable = np.flatnonzero(np.isfinite(mu_all))
        if len(usable) == 0:
            raise InfeasibleError("no candidate has both an expected return and a risk estimate")
        vol = np.sqrt(np.sum((B[usable] @ F) * B[usable], axis=1) + specific[usable])
        # Best mu/volatility first; ties keep the risk model's (alphabetical) order.
        ranked = usable[np.argsort(-(mu_all[usable] / vol), kind="stable")]
        chosen = ranked[: self.top_n] if self.top_n else ranked
        position = {t: i for i, t in enumerate(tickers)}
        w0_all = _holdings(current_weights)
        held_names = w0_all.index.to_numpy(dtype=object).tolist()
        held_values = w0_all.to_numpy()
        held = [position.get(t, -1) for t in held_names]
        chosen_set = set(chosen.tolist())
        usable_set = set(usable.tolist())
        held_only = [i for i in held if i in usable_set and i not in chosen_set]
        dropped = [t for t, i in zip(held_names, held) if i not in usable_set]
        forced_weight = sum(abs(v) for v, i in zip(held_values, held) if i not in usable_set)
        forced = (tuple(dropped), float(forced_weight))
        if dropped:
            logger.warning("selling %d holdings without score or risk estimate: %s",
                           len(dropped), dropped[:10])
        rows = np.concatenate([chosen, np.asarray(held_only, dtype=int)])
        w0 = np.zeros(len(tickers))
        for value, i in zip(held_values, held):
            if i >= 0:
                w0[i] = value
        arrays = {"mu": mu_all[rows], "B": B[rows], "F": F, "specific_var": specific[rows],
                  "w0": w0[rows]}
        universe = [tickers[i] for i in rows]
        problem = self._problem(universe, arrays, risk_model, sectors, adv, forced[1])
        return problem, [tickers[i] for i in held_only], forced

    def _problem(self, universe, arrays, risk_model, sectors, adv, forced_turnover):
        upper = np.full(len(universe), float(self.max_position))
        if adv is not None:
            dollars = pd.Series(adv, dtype="float64").reindex(universe).fillna(0.0).to_numpy()
            upper = np.minimum(upper, self.adv_participation * dollars / self.capital)
        labels = sectors if sectors is not None else getattr(risk_model, "sectors_", None)
        labels = (pd.Series(UNKNOWN_SECTOR, index=universe) if labels is None
                  else pd.Series(labels, dtype=object).reindex(universe))
        labels = labels.where(labels.notna(), UNKNOWN_SECTOR).astype(str)
        codes, names = pd.factorize(labels, sort=True)
        left = None if self.max_turnover is None else self.max_turnover - forced_turnover
        return _qp.Problem(
            tickers=universe, upper=upper, sector_ids=codes, sector_names=list(names),
            sector_cap=float(self.sector_cap), target=1.0 - self.cash_reserve,
            turnover_left=left, risk_aversion=float(self.risk_aversion),
            turnover_penalty=float(self.turnover_penalty), **arrays)

    def _check(self, problem, forced, has_adv):
        message = (_capacity_message(problem, self, has_adv)
                   or _sector_message(problem)
                   or _turnover_message(problem, forced[1], self.max_turnover))
        if message:
            logger.warning("infeasible portfolio for %r: %s", self, message)
            raise InfeasibleError(message)

    def _run_solver(self, problem):
        solution = self._attempt(problem, {})
        if not solution.ok and self.solver == "clarabel":
            logger.info("clarabel status %s; retrying with iterative refinement",
                        solution.status)
            retry = self._attempt(problem, {"refine": True})
            solution = retry._replace(solve_time_s=retry.solve_time_s + solution.solve_time_s)
        return solution

    def _attempt(self, problem, options):
        try:
            return _SOLVERS[self.solver](problem, tol=self.tol, **options)
        except (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError) as e:
            logger.warning("%s raised %s: %s", self.solver, type(e).__name__, e)
            return _qp.Solution(None, f"error: {type(e).__name__}: {e}", False, 0, 0.0)

    def _fallback(self, problem, reason):
        if self.fallback is None:
            raise OptimizationError(f"{reason} and fallback=None for {self!r}")
        logger.warning("%s; using fallback %r (see result.fallback)", reason, self.fallback)
        return _qp.equal_within_caps(problem)

    def _result(self, problem, weights, solution, reason, forced, held_only, start):
        exposure = problem.B.T @ weights
        variance = float(exposure @ problem.F @ exposure
                         + np.sum(problem.specific_var * weights**2))
        turnover = float(np.sum(np.abs(weights - problem.w0)) + forced[1])
        fallback = None if reason is None else f"{self.fallback}: {reason}"
        n_candidates = len(problem.tickers) - len(held_only)
        result = OptimizationResult(
            weights=pd.Series(weights, index=pd.Index(problem.tickers, name="ticker"),
                              name="weight"),
            solver=self.solver if reason is None else "fallback",
            status=solution.status, objective=_qp.objective_value(problem, weights),
            fallback=fallback, turnover=turnover,
            expected_return=float(problem.mu @ weights), variance=variance,
            iterations=solution.iterations, solve_time_s=solution.solve_time_s,
            total_time_s=time.perf_counter() - start,
            candidates=tuple(problem.tickers[:n_candidates]), forced_sales=forced[0])
        logger.info("%r: status %s, %d names held, turnover %.3f, fallback %s", self,
                    result.status, int((weights > 1e-6).sum()), turnover, fallback)
        return result


def _holdings(current_weights):
    if current_weights is None:
        return pd.Series(dtype="float64")
    w0 = pd.Series(current_weights, dtype="float64").fillna(0.0)
    return w0[w0 != 0.0]


def _pct(x):
    return f"{100 * x:.4g} %"


def _capacity_message(problem, opt, has_adv):
    capacity = float(problem.upper.sum())
    if capacity >= problem.target - 1e-12:
        return None
    n = len(problem.tickers)
    limited = int(np.sum(problem.upper < opt.max_position - 1e-15)) if has_adv else 0
    if limited == 0:
        return (f"{n} names x {_pct(opt.max_position)} cap = {_pct(capacity)} < "
                f"{_pct(problem.target)} to invest: raise top_n or the cap")
    return (f"{n} names can hold at most {_pct(capacity)} < {_pct(problem.target)} to invest: "
            f"{limited} of them are limited by liquidity ({_pct(opt.adv_participation)} of ADV "
            f"on capital {opt.capital:,.0f}), the rest by the {_pct(opt.max_position)} cap; "
            f"raise top_n, the cap or adv_participation, or lower capital")


def _sector_message(problem):
    per_sector = np.bincount(problem.sector_ids, weights=problem.upper,
                             minlength=len(problem.sector_names))
    capacity = float(np.minimum(per_sector, problem.sector_cap).sum())
    if capacity >= problem.target - 1e-12:
        return None
    return (f"{len(problem.sector_names)} sectors x {_pct(problem.sector_cap)} sector cap "
            f"(after position caps) hold at most {_pct(capacity)} < {_pct(problem.target)} "
            f"to invest: add names from more sectors (raise top_n) or raise sector_cap")


def _turnover_message(problem, forced, max_turnover):
    if max_turnover is None:
        return None
    capped = np.minimum(np.maximum(problem.w0, 0.0), problem.upper)
    trim = float(np.sum(np.abs(problem.w0 - capped)))
    held = np.bincount(problem.sector_ids, weights=capped, minlength=len(problem.sector_names))
    sector_trim = float(np.sum(np.maximum(held - problem.sector_cap, 0.0)))
    kept = float(capped.sum()) - sector_trim
    rebalance = abs(problem.target - kept)
    needed = forced + trim + sector_trim + rebalance
    if needed <= max_turnover + 1e-9:
        return None
    verb = "buy" if problem.target > kept else "sell"
    return (f"reaching {_pct(problem.target)} invested needs at least {_pct(needed)} turnover "
            f"(sell {_pct(forced)} of holdings without data, {_pct(trim + sector_trim)} above "
            f"the position/sector caps, then {verb} {_pct(rebalance)}) > max_turnover "
            f"{_pct(max_turnover)}: raise max_turnover or rebalance over several days")


def _max_violation(problem, w):
    sector_sums = np.bincount(problem.sector_ids, weights=w, minlength=len(problem.sector_names))
    parts = [abs(w.sum() - problem.target), float(np.max(w - problem.upper, initial=0.0)),
             float(np.max(-w, initial=0.0)),
             float(np.max(sector_sums - problem.sector_cap, initial=0.0))]
    if problem.turnover_left is not None:
        parts.append(float(np.sum(np.abs(w - problem.w0))) - problem.turnover_left)
    return max(parts)
