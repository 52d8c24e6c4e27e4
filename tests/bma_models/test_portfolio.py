"""Research's portfolio: the rulebook's screens, the book it trades from, the pre-training check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.data.demo import demo_market
from bma_models.errors import DataError, InfeasibleError
from bma_models.optimizer import expected_returns_from_scores
from bma_models.portfolio import (
    NO_SECTORS_NOTE,
    Holdings,
    check_plan_feasibility,
    current_book,
    market_snapshot,
    plan_portfolio,
    score_percentile,
    screen_names,
    trade_list,
)
from bma_models.risk import FactorRiskModel, risk_inputs_from_bars
from bma_models.rules import Rulebook
from bma_models.settings import PortfolioSettings

RULES = Rulebook(max_position=0.05)


@pytest.fixture(scope="module")
def day():
    """One date of a 120-name demo market: risk model, snapshot, sectors, scores."""
    market = demo_market(n_tickers=120, n_sessions=300, seed=3)
    model = FactorRiskModel().fit(**risk_inputs_from_bars(market.bars, market.reference))
    scores = pd.Series(np.random.default_rng(0).normal(size=len(model.B_)), index=model.B_.index)
    vol = model.total_volatility()
    return {"model": model, "snapshot": market_snapshot(market.bars, 14),
            "sectors": market.reference.set_index("ticker")["sector"], "scores": scores,
            "mu": expected_returns_from_scores(scores, vol, ic=0.05),
            "horizon_mu": expected_returns_from_scores(scores, vol, ic=0.05, horizon=5),
            "percentile": score_percentile(scores), "bars": market.bars}


def _plan(day, rules=RULES, holdings=None, sectors="default", **settings):
    return plan_portfolio(day["mu"], day["horizon_mu"], day["percentile"], day["model"],
                          day["snapshot"], day["sectors"] if sectors == "default" else sectors,
                          rules=rules, settings=PortfolioSettings(**settings),
                          holdings=holdings)


def test_snapshot_has_the_last_close_adv_and_atr_of_the_window(day):
    bars = day["bars"]
    one = bars[bars["ticker"] == "DM0001"].sort_values("date")
    snap = market_snapshot(bars, atr_window=5).loc["DM0001"]
    prev = one["close"].shift(1)
    tr = np.maximum(one["high"] - one["low"], np.maximum((one["high"] - prev).abs(),
                                                         (one["low"] - prev).abs()))
    assert snap["last_close"] == one["close"].iloc[-1]
    assert snap["atr"] == pytest.approx(tr.tail(5).mean())
    assert snap["adv"] == pytest.approx((one["close"] * one["volume"]).tail(20).mean())


def test_a_name_the_trader_would_refuse_gets_no_weight_with_its_reason(day):
    plan = _plan(day)
    refused = plan.screens[plan.screens != ""]
    assert len(refused) > 10
    assert (plan.weights.reindex(refused.index) == 0).all()
    checks = set(refused.str.split(":").str[0])
    assert {"signal_threshold", "volatility"} <= checks
    # the reason is the rulebook's, e.g. "volatility: ATR volatility bucket 'high' not allowed"
    high = refused[refused.str.startswith("volatility")].index[0]
    snap = day["snapshot"].loc[high]
    assert snap["atr"] / snap["last_close"] > RULES.volatility_medium_max
    assert plan.weights.sum() == pytest.approx(RULES.invested_fraction, abs=1e-6)
    held = plan.weights[plan.weights > 0]
    assert (held >= RULES.min_trade_weight(plan.capital) - 1e-12).all()
    assert (held <= RULES.max_position + 1e-9).all()


def test_screen_names_runs_the_trader_screens_in_the_trader_order(day):
    er = pd.Series({"AAA": 0.01, "BBB": 0.01, "CCC": 0.0001})
    pct = pd.Series({"AAA": 0.3, "BBB": 0.9, "CCC": 0.9})
    snap = pd.DataFrame({"last_close": [1.0, 50.0, 50.0], "adv": [1e7, 1e7, 1e7],
                         "atr": [0.5, 0.5, 0.5]}, index=["AAA", "BBB", "CCC"])
    got = screen_names(snap, er, pct, RULES)
    assert got["AAA"].startswith("signal_threshold:")  # before the price band, as the trader
    assert got["BBB"] == ""
    assert got["CCC"].startswith("expected_alpha:")


def test_with_the_book_the_turnover_penalty_and_cap_act_on_real_trades(day):
    first = _plan(day)
    book = Holdings.from_weights(first.weights[first.weights > 0], source="yesterday")
    # a new day: scores moved
    moved = day["scores"] + np.random.default_rng(1).normal(scale=0.7, size=len(day["scores"]))
    vol = day["model"].total_volatility()
    today = {**day, "mu": expected_returns_from_scores(moved, vol, ic=0.05),
             "horizon_mu": expected_returns_from_scores(moved, vol, ic=0.05, horizon=5),
             "percentile": score_percentile(moved)}
    from_cash = _plan(today)
    free = _plan(today, holdings=book, turnover_penalty=0.0)
    penalised = _plan(today, holdings=book, turnover_penalty=1e-3)
    assert from_cash.turnover == pytest.approx(0.95, abs=1e-6)
    assert free.turnover < from_cash.turnover
    assert penalised.turnover < 0.5 * free.turnover
    capped = _plan(today, holdings=book, max_turnover=0.1)
    assert capped.turnover <= 0.1 + 1e-6
    # from cash the penalty is the constant kappa * 0.95: it cannot change the weights
    cash_penalised = _plan(today, turnover_penalty=5e-4)
    assert np.abs(cash_penalised.weights - from_cash.weights).max() < 1e-5
    # trades are target minus book, and the trade list says so
    trades = trade_list(penalised)
    assert penalised.trades.abs().sum() == pytest.approx(penalised.turnover)
    assert set(trades["ticker"]) == set(penalised.trades.index[penalised.trades != 0])
    assert set(trades["reason"]) <= {"new", "add", "trim", "sell all"} | {
        r for r in trades["reason"] if r.startswith(("trim: ", "sell all: "))}


def test_a_held_name_the_trader_would_refuse_is_kept_or_trimmed_never_increased(day):
    plan = _plan(day)
    refused = plan.screens[plan.screens.str.startswith("volatility")].index[:3]
    book = Holdings.from_weights(pd.Series(0.02, index=refused), source="book")
    again = _plan(day, holdings=book, turnover_penalty=1e-3)
    after = again.weights.reindex(refused)
    assert (after <= 0.02 + 1e-9).all()
    assert (after > 0).any()  # keeping a held name costs no trade: the penalty keeps some


def test_the_capital_is_the_books_equity_and_the_minimum_order_applies_at_it(day):
    snap = day["snapshot"]
    held = snap.index[:2]
    book = Holdings.from_quantities({held[0]: 100, held[1]: 50}, cash=500_000.0, source="paper")
    weights, capital, source, notes = current_book(book, snap["last_close"], 1e6)
    value = 100 * snap.loc[held[0], "last_close"] + 50 * snap.loc[held[1], "last_close"]
    assert capital == pytest.approx(500_000.0 + value) and "account equity" in source
    assert weights[held[0]] == pytest.approx(100 * snap.loc[held[0], "last_close"] / capital)
    plan = _plan(day, rules=Rulebook(max_position=0.05, min_order_value_usd=2_000.0),
                 holdings=book)
    minimum = 2_000.0 / plan.capital
    trades = plan.trades[plan.trades != 0]
    closes = (plan.current > 0) & (plan.weights == 0)
    assert (trades.abs()[~closes.reindex(trades.index)] >= minimum - 1e-9).all()
    assert plan.capital == pytest.approx(capital)


def test_book_valuation_errors_name_the_source(day):
    prices = day["snapshot"]["last_close"]
    with pytest.raises(DataError, match="my.csv: no price for held"):
        current_book(Holdings.from_quantities({"NOPE": 10}, 100.0, source="my.csv"), prices, 1e6)
    with pytest.raises(DataError, match="more than research.portfolio.capital"):
        current_book(Holdings.from_quantities({prices.index[0]: 1e9}, source="my.csv"),
                     prices, 1e6)
    own = Holdings.from_quantities({"NOPE": 10}, 100.0, source="ib", prices={"NOPE": 5.0})
    weights, capital, _, notes = current_book(own, prices, 1e6)
    assert capital == 150.0 and "book's own price" in notes[0]


def test_without_sectors_the_sector_limit_does_not_apply_and_is_noted(day):
    tight = Rulebook(max_position=0.05, sector_limit=0.05)
    with pytest.raises(InfeasibleError, match="risk_controls.sector_exposure_limit"):
        _plan(day, rules=tight)
    plan = _plan(day, rules=tight, sectors=None)
    assert NO_SECTORS_NOTE in plan.notes
    assert plan.weights.sum() == pytest.approx(tight.invested_fraction, abs=1e-6)
    assert check_plan_feasibility(day["snapshot"], None, rules=tight,
                                  settings=PortfolioSettings()) == [NO_SECTORS_NOTE]


@pytest.mark.parametrize(("rules", "keys"), [
    (Rulebook(allowed_volatility_buckets=("low",)), "execution.allowed_volatility_buckets"),
    (Rulebook(max_position=0.05, sector_limit=0.02), "risk_controls.sector_exposure_limit"),
    (Rulebook(max_position=0.01), "capital.max_single_position_pct"),
    (Rulebook(min_adv_usd=1e12), "execution.min_adv_usd"),
    (Rulebook(min_order_value_usd=60_000.0), "orders.min_order_value_usd"),
])
def test_an_infeasible_setting_is_caught_before_training_naming_the_key(day, rules, keys):
    with pytest.raises(InfeasibleError, match=keys.replace(".", r"\.")) as info:
        check_plan_feasibility(day["snapshot"], day["sectors"], rules=rules,
                               settings=PortfolioSettings())
    assert "infeasible" in str(info.value) or "no name could be bought" in str(info.value)


def test_the_pre_training_check_passes_what_the_plan_can_hold(day):
    assert check_plan_feasibility(day["snapshot"], day["sectors"], rules=RULES,
                                  settings=PortfolioSettings()) == []
    _plan(day)  # and the real plan is feasible too


def test_score_percentile_is_the_traders_confidence_of_a_full_ranking():
    scores = pd.Series({"A": 3.0, "B": 1.0, "C": 2.0, "D": 0.0})
    assert score_percentile(scores).to_dict() == {"A": 1.0, "B": 0.5, "C": 0.75, "D": 0.25}
