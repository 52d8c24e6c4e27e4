"""Long-only mean-variance portfolio optimizer with turnover, sector and liquidity limits.

Solves::

    max  mu'w - lambda w'Sigma w - kappa ||w - w0||_1
    s.t. sum(w) = 1 - cash_reserve,  0 <= w_i <= min(max_position, p ADV_i / capital, ub_i),
         sum_{i in sector} w_i <= sector_cap (known sectors),  ||w - w0||_1 <= max_turnover

with optional per-name bounds ``ub_i`` (the rulebook's screens) and a minimum
trade (weights and trades below it are not made; the problem is re-solved),

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
from bma_models.rules import MIN_WEIGHT, UNKNOWN_SECTOR, sector_is_capped

logger = logging.getLogger(__name__)

__all__ = [
    "OptimizationError",
    "OptimizationResult",
    "PortfolioOptimizer",
    "expected_returns_from_scores",
]

_SOLVERS = {"clarabel": _qp.solve_clarabel, "osqp": _qp.solve_osqp}
_FALLBACKS = ("equal_within_caps", None)
_INFEASIBLE_STATUSES = frozenset({"PrimalInfeasible", "AlmostPrimalInfeasible",
                                  "primal infeasible", "primal infeasible inaccurate"})
#: |w - w0| at or below this is the solver's numerical zero (interior-point dust)
_SNAP = 1e-7
#: re-solves allowed to remove trades below ``min_trade``
_MAX_RESOLVES = 8


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
    small_trades : tuple of str
        Names whose trade was below ``min_trade`` and was removed by a re-solve
        (a new name left out, a holding kept as it is, a holding under one basis
        point sold).
    notes : tuple of str
        Anything the caller should show: small trades that could not be removed.
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
    small_trades: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())


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
        Per-name and per-sector weight caps. Names without a sector (``"Unknown"``)
        are not a sector: the sector cap does not apply to them.
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
    setting_names : mapping, optional
        Parameter name -> the name of the setting it comes from (e.g.
        ``{"max_position": "capital.max_single_position_pct"}``), used in the
        advice of an :class:`InfeasibleError`; missing names are shown as is.
    tol : float
        Solver tolerance (gap and feasibility).
    min_trade : float
        Smallest trade ``|w_i - w0_i|`` (and smallest weight, at least one basis
        point) the portfolio may contain; 0 = off. A smaller trade is removed and
        the problem re-solved: a new name is left out, a holding keeps its
        weight, a weight under one basis point is sold. Why: the trader refuses
        orders below its minimum order value, so a plan with smaller trades
        would never be reached.

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
                 tol=1e-9, min_trade=0.0, setting_names=None):
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
        self.min_trade = min_trade
        self.setting_names = setting_names

    def __repr__(self) -> str:
        return (f"PortfolioOptimizer(solver={self.solver!r}, max_position={self.max_position}, "
                f"sector_cap={self.sector_cap}, cash_reserve={self.cash_reserve}, "
                f"max_turnover={self.max_turnover}, top_n={self.top_n})")

    def check_feasibility(self, mu, risk_model, sectors=None, adv=None, current_weights=None,
                          upper_bounds=None):
        """Raise :class:`InfeasibleError` with a plain-words reason if no portfolio fits.

        Checks, in order: any usable candidate; position and liquidity capacity
        versus the amount to invest; sector capacity; the smallest turnover that
        reaching the target needs versus ``max_turnover``. Returns None if all pass.
        """
        problem, _, forced = self._prepare(mu, risk_model, sectors, adv, current_weights,
                                           upper_bounds)
        self._check(problem, forced, adv is not None)

    def optimize(self, mu, risk_model, sectors=None, adv=None, current_weights=None,
                 upper_bounds=None):
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
        upper_bounds : Series, optional
            Ticker -> largest weight allowed (below ``max_position``); missing or
            NaN = no extra bound. A name not held with a bound of 0 is not a
            candidate (a name the trader would refuse to buy).

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
                                                   current_weights, upper_bounds)
        self._check(problem, forced, adv is not None)
        solution = self._run_solver(problem)
        if solution.status in _INFEASIBLE_STATUSES:
            raise InfeasibleError(
                f"the position, liquidity, sector and turnover limits cannot all hold at once "
                f"({self.solver} proved it: {solution.status}) although each passes on its "
                f"own: raise {_name(self, 'max_turnover')} or {_name(self, 'sector_cap')}, or "
                f"add candidates ({_name(self, 'top_n')})")
        weights, reason = _accepted(problem, solution, self.solver)
        small: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        if reason is not None:
            weights = self._fallback(problem, reason)
        elif self.min_trade > 0:
            problem, weights, solution, small = self._without_small_trades(problem, weights,
                                                                           solution)
        return self._result(problem, weights, solution, reason, forced, held_only, start, small)

    def _without_small_trades(self, problem, weights, solution):
        """Re-solve until no trade is below ``min_trade``; returns the final state.

        Each round leaves out the new names with a small weight, keeps the
        holdings with a small trade at their weight and sells the holdings
        under one basis point. A round whose problem fails the feasibility
        checks or the solver stops the loop with the previous answer (noted).
        """
        removed: dict[str, None] = {}
        notes: list[str] = []
        for _ in range(_MAX_RESOLVES):
            bounds = _small_trade_bounds(problem, weights, self.min_trade)
            if bounds is None:
                break
            lower, upper, names = bounds
            candidate = problem._replace(lower=lower, upper=upper)
            message = _capacity_message(candidate, self, False) or _sector_message(candidate,
                                                                                   self)
            retry = None if message else self._run_solver(candidate)
            accepted, reason = (None, message) if retry is None else _accepted(
                candidate, retry, self.solver)
            if retry is None or reason is not None:
                notes.append(f"{len(names)} trades below the minimum trade "
                             f"{_pct(self.min_trade)} kept: removing them fails ({reason})")
                break
            removed.update(dict.fromkeys(problem.tickers[i] for i in names))
            solution = retry._replace(iterations=retry.iterations + solution.iterations,
                                      solve_time_s=retry.solve_time_s + solution.solve_time_s)
            problem, weights = candidate, accepted
        weights = np.where(np.abs(weights - problem.w0) <= _SNAP, problem.w0, weights)
        weights = np.where(weights <= _SNAP, 0.0, weights)
        if removed:
            logger.info("%d trades below the minimum trade %s removed by re-solving",
                        len(removed), _pct(self.min_trade))
        return problem, weights, solution, (tuple(removed), tuple(notes))

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

    def _prepare(self, mu, risk_model, sectors, adv, current_weights, upper_bounds=None):
        self._validate()
        tickers = risk_model.B_.index.to_numpy(dtype=object).tolist()
        B = risk_model.B_.to_numpy()
        F = risk_model.F_.to_numpy()
        specific = risk_model.specific_var_.to_numpy()
        mu_all = pd.Series(mu, dtype="float64").reindex(risk_model.B_.index).to_numpy()
        usable = np.flatnonzero(np.isfinite(mu_all))
        if len(usable) == 0:
            raise InfeasibleError("no candidate has both an expected return and a risk estimate")
        position = {t: i for i, t in enumerate(tickers)}
        w0_all = _holdings(current_weights)
        held_names = w0_all.index.to_numpy(dtype=object).tolist()
        held_values = w0_all.to_numpy()
        held = [position.get(t, -1) for t in held_names]
        bounds = None if upper_bounds is None else pd.Series(
            upper_bounds, dtype="float64").reindex(risk_model.B_.index).to_numpy()
        buyable = usable
        if bounds is not None:  # a name not held that may not be bought is no candidate
            buyable = usable[~(bounds[usable] <= 0) | np.isin(usable, held)]
        vol = np.sqrt(np.sum((B[buyable] @ F) * B[buyable], axis=1) + specific[buyable])
        # Best mu/volatility first; ties keep the risk model's (alphabetical) order.
        ranked = buyable[np.argsort(-(mu_all[buyable] / vol), kind="stable")]
        chosen = ranked[: self.top_n] if self.top_n else ranked
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
        extra = None if bounds is None else bounds[rows]
        problem = self._problem(universe, arrays, risk_model, sectors, adv, forced[1], extra)
        return problem, [tickers[i] for i in held_only], forced

    def _problem(self, universe, arrays, risk_model, sectors, adv, forced_turnover,
                 bounds=None):
        upper = np.full(len(universe), float(self.max_position))
        if adv is not None:
            dollars = pd.Series(adv, dtype="float64").reindex(universe).fillna(0.0).to_numpy()
            upper = np.minimum(upper, self.adv_participation * dollars / self.capital)
        if bounds is not None:
            upper = np.minimum(upper, np.where(np.isnan(bounds), np.inf, bounds))
        upper = np.maximum(upper, 0.0)
        labels = sectors if sectors is not None else getattr(risk_model, "sectors_", None)
        labels = (pd.Series(UNKNOWN_SECTOR, index=universe) if labels is None
                  else pd.Series(labels, dtype=object).reindex(universe))
        labels = labels.where(labels.notna(), UNKNOWN_SECTOR).astype(str)
        codes, names = pd.factorize(labels, sort=True)
        target = 1.0 - self.cash_reserve
        caps = np.array([float(self.sector_cap) if sector_is_capped(name) else max(1.0, target)
                         for name in names])
        left = None if self.max_turnover is None else self.max_turnover - forced_turnover
        return _qp.Problem(
            tickers=universe, upper=upper, sector_ids=codes, sector_names=list(names),
            sector_cap=caps, target=target,
            turnover_left=left, risk_aversion=float(self.risk_aversion),
            turnover_penalty=float(self.turnover_penalty), **arrays)

    def _check(self, problem, forced, has_adv):
        message = (_capacity_message(problem, self, has_adv)
                   or _sector_message(problem, self)
                   or _turnover_message(problem, forced[1], self))
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

    def _result(self, problem, weights, solution, reason, forced, held_only, start,
                small=((), ())):
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
            candidates=tuple(problem.tickers[:n_candidates]), forced_sales=forced[0],
            small_trades=small[0], notes=small[1])
        logger.info("%r: status %s, %d names held, turnover %.3f, fallback %s", self,
                    result.status, int((weights > 1e-6).sum()), turnover, fallback)
        return result


def _accepted(problem, solution, solver):
    """Return the solver's weights clipped to the bounds, or None and why they are unusable."""
    if solution.weights is None:
        return None, f"{solver} returned status {solution.status}"
    weights = np.clip(solution.weights, _qp.lower_bounds(problem), problem.upper)
    violation = _max_violation(problem, weights)
    if violation > 1e-6:
        return None, f"solver answer violates constraints by {violation:.2e}"
    return weights, None


def _small_trade_bounds(problem, w, min_trade):
    """Return new bounds that remove the trades below ``min_trade`` (None when there are none).

    Returns ``(lower, upper, indices of the names changed)``.
    """
    lower, upper = _qp.lower_bounds(problem).copy(), problem.upper.copy()
    w0 = problem.w0
    held = w0 > 0
    trade = np.abs(w - w0)
    tiny = (w > _SNAP) & (w < MIN_WEIGHT - 1e-12)
    small = (trade > _SNAP) & (trade < min_trade - 1e-12) & (w > _SNAP)
    sell = held & tiny
    leave_out = ~held & (small | tiny)
    keep = held & small & ~tiny & (w0 <= upper) & (w0 >= max(MIN_WEIGHT, 0.0))
    changed = np.flatnonzero(sell | leave_out | keep)
    if len(changed) == 0:
        return None
    upper[sell | leave_out] = 0.0
    lower[sell | leave_out] = 0.0
    lower[keep] = upper[keep] = w0[keep]
    return lower, upper, changed


def _holdings(current_weights):
    if current_weights is None:
        return pd.Series(dtype="float64")
    w0 = pd.Series(current_weights, dtype="float64").fillna(0.0)
    return w0[w0 != 0.0]


def _name(opt, parameter):
    return (opt.setting_names or {}).get(parameter, parameter)


def _pct(x):
    return f"{100 * x:.4g} %"


def _capacity_message(problem, opt, has_adv):
    capacity = float(problem.upper.sum())
    if capacity >= problem.target - 1e-12:
        return None
    n = len(problem.tickers)
    limited = int(np.sum(problem.upper < opt.max_position - 1e-15)) if has_adv else 0
    top_n, cap = _name(opt, "top_n"), _name(opt, "max_position")
    if limited == 0:
        return (f"{n} names x {_pct(opt.max_position)} cap = {_pct(capacity)} < "
                f"{_pct(problem.target)} to invest: raise {top_n} or {cap}")
    return (f"{n} names can hold at most {_pct(capacity)} < {_pct(problem.target)} to invest: "
            f"{limited} of them are limited below the {_pct(opt.max_position)} cap by liquidity "
            f"({_pct(opt.adv_participation)} of ADV on capital {opt.capital:,.0f}) or by their "
            f"own bound; raise {top_n}, {cap} or {_name(opt, 'adv_participation')}, or lower "
            f"{_name(opt, 'capital')}")


def _sector_message(problem, opt):
    per_sector = np.bincount(problem.sector_ids, weights=problem.upper,
                             minlength=len(problem.sector_names))
    caps = _qp.sector_caps(problem)
    capacity = float(np.minimum(per_sector, caps).sum())
    if capacity >= problem.target - 1e-12:
        return None
    capped = sum(sector_is_capped(name) for name in problem.sector_names)
    return (f"{capped} sectors x {_pct(opt.sector_cap)} sector cap "
            f"(after position caps) hold at most {_pct(capacity)} < {_pct(problem.target)} "
            f"to invest: add names from more sectors (raise {_name(opt, 'top_n')}) or raise "
            f"{_name(opt, 'sector_cap')}")


def _turnover_message(problem, forced, opt):
    max_turnover = opt.max_turnover
    if max_turnover is None:
        return None
    capped = np.minimum(np.maximum(problem.w0, 0.0), problem.upper)
    trim = float(np.sum(np.abs(problem.w0 - capped)))
    held = np.bincount(problem.sector_ids, weights=capped, minlength=len(problem.sector_names))
    sector_trim = float(np.sum(np.maximum(held - _qp.sector_caps(problem), 0.0)))
    kept = float(capped.sum()) - sector_trim
    rebalance = abs(problem.target - kept)
    needed = forced + trim + sector_trim + rebalance
    if needed <= max_turnover + 1e-9:
        return None
    verb = "buy" if problem.target > kept else "sell"
    return (f"reaching {_pct(problem.target)} invested needs at least {_pct(needed)} turnover "
            f"(sell {_pct(forced)} of holdings without data, {_pct(trim + sector_trim)} above "
            f"the position/sector caps, then {verb} {_pct(rebalance)}) > max_turnover "
            f"{_pct(max_turnover)}: raise {_name(opt, 'max_turnover')} or rebalance over "
            f"several days")


def _max_violation(problem, w):
    sector_sums = np.bincount(problem.sector_ids, weights=w, minlength=len(problem.sector_names))
    parts = [abs(w.sum() - problem.target), float(np.max(w - problem.upper, initial=0.0)),
             float(np.max(_qp.lower_bounds(problem) - w, initial=0.0)),
             float(np.max(sector_sums - _qp.sector_caps(problem), initial=0.0))]
    if problem.turnover_left is not None:
        parts.append(float(np.sum(np.abs(w - problem.w0))) - problem.turnover_left)
    return max(parts)
