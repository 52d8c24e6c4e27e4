"""Portfolio optimizer: constraints, accuracy vs cvxpy, feasibility messages, fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.optimizer import cvxpy_reference
from bma_models import _qp
from bma_models.errors import InfeasibleError
from bma_models.optimizer import (
    OptimizationError,
    PortfolioOptimizer,
    expected_returns_from_scores,
)


@pytest.fixture(scope="module")
def inputs(risk_model, asset_market):
    rng = np.random.default_rng(11)
    tickers = risk_model.B_.index
    scores = pd.Series(rng.normal(size=len(tickers)), index=tickers)
    mu = expected_returns_from_scores(scores, risk_model.total_volatility(), ic=0.1)
    adv = pd.Series(np.exp(rng.normal(16, 0.5, len(tickers))), index=tickers)
    held = rng.choice(tickers, 13, replace=False)
    w0 = pd.Series(np.linspace(0.065, 0.08, 13), index=held)  # 94.25 % invested
    return {"mu": mu, "adv": adv, "w0": w0, "sectors": asset_market["sectors"]}


def _optimizer(**overrides):
    params = {"risk_aversion": 5.0, "turnover_penalty": 5e-4, "max_position": 0.08,
              "sector_cap": 0.35, "cash_reserve": 0.03, "max_turnover": 0.8,
              "adv_participation": 0.1, "capital": 1e6, "top_n": 30}
    params.update(overrides)
    return PortfolioOptimizer(**params)


def _solve(opt, inputs, risk_model, **kw):
    args = {"sectors": inputs["sectors"], "adv": inputs["adv"], "current_weights": inputs["w0"]}
    args.update(kw)
    return opt.optimize(inputs["mu"], risk_model, **args)


@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_solution_respects_every_constraint(inputs, risk_model, solver):
    opt = _optimizer(solver=solver)
    result = _solve(opt, inputs, risk_model)
    w = result.weights
    assert result.fallback is None and result.solver == solver
    assert w.sum() == pytest.approx(0.97, abs=1e-6)
    upper = np.minimum(0.08, 0.1 * inputs["adv"].reindex(w.index) / 1e6)
    assert (w >= -1e-9).all() and (w <= upper + 1e-7).all()
    sector_sums = w.groupby(inputs["sectors"].reindex(w.index)).sum()
    assert (sector_sums <= 0.35 + 1e-7).all()
    w0 = inputs["w0"].reindex(w.index).fillna(0.0)
    assert result.turnover == pytest.approx(np.abs(w - w0).sum(), abs=1e-12)
    assert result.turnover <= 0.8 + 1e-6
    assert set(inputs["w0"].index) <= set(w.index)


@pytest.mark.parametrize("max_turnover", [None, 0.5])
def test_clarabel_objective_matches_cvxpy_reference(inputs, risk_model, max_turnover):
    opt = _optimizer(max_turnover=max_turnover)
    result = _solve(opt, inputs, risk_model)
    problem, _, _ = opt._prepare(inputs["mu"], risk_model, inputs["sectors"], inputs["adv"],
                                 inputs["w0"])
    reference = cvxpy_reference(problem)
    assert abs(result.objective - reference) <= 1e-6 * abs(reference)
    osqp = _solve(_optimizer(max_turnover=max_turnover, solver="osqp"), inputs, risk_model)
    assert abs(osqp.objective - reference) <= 1e-4 * abs(reference)


def test_results_are_deterministic(inputs, risk_model):
    first = _solve(_optimizer(), inputs, risk_model)
    second = _solve(_optimizer(), inputs, risk_model)
    pd.testing.assert_series_equal(first.weights, second.weights)
    assert first.objective == second.objective


def test_turnover_is_measured_against_actual_holdings(inputs, risk_model):
    w0 = inputs["w0"]
    result = _solve(_optimizer(max_turnover=0.08, top_n=10), inputs, risk_model)
    # every holding stays in the problem even outside the top 10 candidates
    assert set(w0.index) <= set(result.weights.index)
    held = result.weights.reindex(w0.index)
    assert result.turnover <= 0.08 + 1e-6
    assert np.abs(held - w0).sum() <= 0.08 + 1e-6
    from_cash = _solve(_optimizer(max_turnover=None, top_n=15), inputs, risk_model,
                       current_weights=None)
    assert from_cash.turnover == pytest.approx(0.97, abs=1e-6)


def test_holdings_without_data_are_sold_and_count_as_turnover(inputs, risk_model):
    w0 = pd.concat([inputs["w0"], pd.Series({"DELISTED": 0.05})])
    result = _solve(_optimizer(max_turnover=0.6), inputs, risk_model, current_weights=w0)
    assert result.forced_sales == ("DELISTED",)
    moved = np.abs(result.weights - w0.reindex(result.weights.index).fillna(0.0)).sum()
    assert result.turnover == pytest.approx(moved + 0.05, abs=1e-9)
    assert result.turnover <= 0.6 + 1e-6


def test_position_capacity_shortfall_is_explained_in_plain_words(inputs, risk_model):
    opt = _optimizer(top_n=20, max_position=0.03)
    with pytest.raises(InfeasibleError, match=r"20 names x 3 % cap = 60 % < 97 % to invest: "
                                              r"raise top_n or max_position"):
        opt.check_feasibility(inputs["mu"], risk_model, inputs["sectors"])
    with pytest.raises(InfeasibleError, match="limited below the 8 % cap by liquidity"):
        _optimizer(top_n=20, capital=1e9).check_feasibility(
            inputs["mu"], risk_model, inputs["sectors"], inputs["adv"])


def test_sector_and_turnover_shortfalls_are_explained(inputs, risk_model):
    with pytest.raises(InfeasibleError, match=r"4 sectors x 20 % sector cap .* raise sector_cap"):
        _optimizer(sector_cap=0.2, top_n=None).check_feasibility(
            inputs["mu"], risk_model, inputs["sectors"])
    with pytest.raises(InfeasibleError, match=r"needs at least .* > max_turnover 1 %"):
        _optimizer(max_turnover=0.01).check_feasibility(
            inputs["mu"], risk_model, inputs["sectors"], current_weights=None)
    assert _optimizer().check_feasibility(inputs["mu"], risk_model, inputs["sectors"],
                                          current_weights=inputs["w0"]) is None


def test_solver_failure_uses_recorded_fallback_or_raises(inputs, risk_model, monkeypatch):
    def broken(problem, **kwargs):
        return _qp.Solution(None, "NumericalError", False, 7, 0.0)

    monkeypatch.setattr("bma_models.optimizer._SOLVERS", {"clarabel": broken,
                                                          "osqp": _qp.solve_osqp})
    result = _solve(_optimizer(), inputs, risk_model)
    assert result.solver == "fallback"
    assert "equal_within_caps" in result.fallback and "NumericalError" in result.fallback
    w = result.weights
    assert w.sum() == pytest.approx(0.97, abs=1e-9)
    assert (w <= 0.08 + 1e-12).all()
    with pytest.raises(OptimizationError, match="NumericalError"):
        _solve(_optimizer(fallback=None), inputs, risk_model)


def test_solver_proven_infeasibility_raises_instead_of_falling_back(inputs, risk_model,
                                                                    monkeypatch):
    def infeasible(problem, **kwargs):
        return _qp.Solution(None, "PrimalInfeasible", False, 9, 0.0)

    monkeypatch.setattr("bma_models.optimizer._SOLVERS", {"clarabel": infeasible})
    with pytest.raises(InfeasibleError, match="cannot all hold at once"):
        _solve(_optimizer(), inputs, risk_model)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 30), cap=st.floats(0.02, 0.5), sector_cap=st.floats(0.05, 1.0),
       n_sectors=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_equal_within_caps_fills_up_to_the_caps(n, cap, sector_cap, n_sectors, seed):
    rng = np.random.default_rng(seed)
    upper = np.minimum(cap, rng.uniform(0, 2 * cap, n))
    sector_ids = rng.integers(0, n_sectors, n)
    problem = _qp.Problem(
        tickers=list(range(n)), mu=np.zeros(n), B=np.zeros((n, 1)), F=np.eye(1),
        specific_var=np.ones(n), w0=np.zeros(n), upper=upper, sector_ids=sector_ids,
        sector_names=list(range(n_sectors)), sector_cap=sector_cap, target=0.97,
        turnover_left=None, risk_aversion=1.0, turnover_penalty=0.0)
    w = _qp.equal_within_caps(problem)
    by_sector = np.bincount(sector_ids, weights=w, minlength=n_sectors)
    capacity = np.minimum(np.bincount(sector_ids, weights=upper, minlength=n_sectors),
                          sector_cap).sum()
    assert (w >= 0).all() and (w <= upper + 1e-12).all()
    assert (by_sector <= sector_cap + 1e-12).all()
    assert w.sum() == pytest.approx(min(0.97, capacity), abs=1e-9)


def test_mu_mapping_is_ic_times_vol_times_normal_score_per_date():
    dates = pd.to_datetime(["2024-01-02", "2024-01-03"])
    idx = pd.MultiIndex.from_product([dates, ["A", "B"]], names=["date", "ticker"])
    scores = pd.Series([5.0, -1.0, 0.0, 9.0], index=idx)
    vol = pd.Series({"A": 0.01, "B": 0.03})
    mu = expected_returns_from_scores(scores, vol, ic=0.05, horizon=4)
    z = 0.6744897501960817  # Phi^-1(0.75)
    np.testing.assert_allclose(mu.to_numpy(),
                               [0.05 * 2 * 0.01 * z, -0.05 * 2 * 0.03 * z,
                                -0.05 * 2 * 0.01 * z, 0.05 * 2 * 0.03 * z])


class _StubRiskModel:
    """Minimal risk model: the optimizer only reads B_, F_, specific_var_ (and sectors_)."""

    def __init__(self, rng, tickers, k=3):
        self.B_ = pd.DataFrame(rng.normal(1.0, 0.3, (len(tickers), k)), index=tickers)
        factor = rng.normal(0, 0.01, (50, k))
        self.F_ = pd.DataFrame(np.cov(factor.T) + 1e-6 * np.eye(k))
        self.specific_var_ = pd.Series(rng.uniform(1e-4, 4e-4, len(tickers)), index=tickers)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 40), n_sectors=st.integers(1, 6), max_position=st.floats(0.02, 0.4),
       sector_cap=st.floats(0.1, 1.0), max_turnover=st.one_of(st.none(), st.floats(0.05, 2.0)),
       seed=st.integers(0, 10_000))
def test_optimize_either_explains_infeasibility_or_meets_every_constraint(
        n, n_sectors, max_position, sector_cap, max_turnover, seed):
    rng = np.random.default_rng(seed)
    tickers = [f"X{i}" for i in range(n)]
    model = _StubRiskModel(rng, tickers)
    mu = pd.Series(rng.normal(0, 0.001, n), index=tickers)
    sectors = pd.Series([f"S{i % n_sectors}" for i in range(n)], index=tickers)
    w0 = pd.Series(rng.dirichlet(np.ones(n)) * 0.5, index=tickers)
    opt = PortfolioOptimizer(max_position=max_position, sector_cap=sector_cap,
                             max_turnover=max_turnover, top_n=None, fallback=None)
    try:
        result = opt.optimize(mu, model, sectors=sectors, current_weights=w0)
    except InfeasibleError as e:
        assert " < " in str(e) or "> max_turnover" in str(e)
        return
    w = result.weights
    assert w.sum() == pytest.approx(0.97, abs=1e-6)
    assert (w >= -1e-9).all() and (w <= max_position + 1e-7).all()
    assert (w.groupby(sectors).sum() <= sector_cap + 1e-7).all()
    if max_turnover is not None:
        assert result.turnover <= max_turnover + 1e-6


@pytest.mark.parametrize("bad", [{"max_position": 0.0}, {"sector_cap": 1.5},
                                 {"cash_reserve": 1.0}, {"solver": "cplex"},
                                 {"fallback": "random"}, {"top_n": 0}])
def test_invalid_parameters_raise_settings_error_naming_the_rule(inputs, risk_model, bad):
    from bma_models.errors import SettingsError

    name = next(iter(bad))
    with pytest.raises(SettingsError, match=name):
        _solve(_optimizer(**bad), inputs, risk_model)


def test_min_trade_leaves_out_small_new_names_and_keeps_small_holding_trades(inputs,
                                                                            risk_model):
    plain = _solve(_optimizer(max_turnover=None), inputs, risk_model)
    w0 = inputs["w0"].reindex(plain.weights.index).fillna(0.0)
    small = (plain.weights - w0).abs()
    assert ((small > 1e-7) & (small < 0.01)).sum() > 0  # without it: dust and small trades
    result = _solve(_optimizer(max_turnover=None, min_trade=0.01), inputs, risk_model)
    w = result.weights
    w0 = inputs["w0"].reindex(w.index).fillna(0.0)
    trade = (w - w0).abs()
    closes = (w0 > 0) & (w == 0)
    assert ((trade == 0) | (trade >= 0.01 - 1e-9) | closes).all()
    assert ((w == 0) | (w >= 1e-4)).all()  # no weight under one basis point
    assert w.sum() == pytest.approx(0.97, abs=1e-6) and result.small_trades
    assert result.objective <= plain.objective + 1e-12  # a restriction costs objective


def test_upper_bounds_exclude_names_not_held_and_cap_held_ones(inputs, risk_model):
    held = inputs["w0"].index
    plain = _solve(_optimizer(max_turnover=None), inputs, risk_model)
    bought = plain.weights[plain.weights > 1e-6].index.difference(held)[:5]
    bounds = pd.Series(0.0, index=bought)
    bounds[held[0]] = inputs["w0"][held[0]] / 2  # a refused holding: trimmed, never added to
    result = _solve(_optimizer(max_turnover=None), inputs, risk_model, upper_bounds=bounds)
    assert (result.weights.reindex(bought).fillna(0.0) <= 1e-9).all()
    assert not set(bought) & set(result.candidates)
    assert result.weights[held[0]] <= inputs["w0"][held[0]] / 2 + 1e-9


def test_names_without_a_sector_are_not_one_capped_sector(inputs, risk_model):
    sectors = pd.Series(np.nan, index=inputs["sectors"].index, dtype=object)
    result = _solve(_optimizer(sector_cap=0.1), inputs, risk_model, sectors=sectors)
    assert result.weights.sum() == pytest.approx(0.97, abs=1e-6)  # not capped at 10 %
    with pytest.raises(InfeasibleError, match="sector cap"):  # known sectors are capped
        _solve(_optimizer(sector_cap=0.1), inputs, risk_model)
