"""Proofs about the backtest engine: no look-ahead, accounting, caps, fills, missing bars."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bma_models.backtest import MarketPanels
from bma_models.backtest.engine import RISK_HISTORY
from bma_models.data.protocol import MarketData
from bma_models.portfolio import market_snapshot
from bma_models.risk import FactorRiskModel, risk_inputs_from_bars
from tests.bma_models.backtest.conftest import FIRST_SCORED, RULES, SETTINGS, run


def _perturbed_after(market: MarketData, date: pd.Timestamp, seed: int) -> MarketData:
    bars = market.bars.copy()
    later = bars["date"] > date
    rng = np.random.default_rng(seed)
    factor = np.exp(rng.normal(0.0, 0.05, int(later.sum())))
    for column in ("open", "high", "low", "close", "vwap"):
        bars.loc[later, column] = bars.loc[later, column] * factor
    bars.loc[later, "volume"] = bars.loc[later, "volume"] * rng.uniform(0.5, 2.0, later.sum())
    return dataclasses.replace(market, bars=bars)


def test_perturbing_prices_after_a_date_changes_nothing_before_it(bt_market, bt_scores,
                                                                   bt_result):
    dates = bt_result.daily.index
    cut = dates[len(dates) // 2]
    other = run(_perturbed_after(bt_market, cut, seed=9), bt_scores)
    before = bt_result.daily.index <= cut
    pd.testing.assert_frame_equal(bt_result.daily[before], other.daily[other.daily.index <= cut])
    for name in ("trades", "holdings"):
        mine, theirs = getattr(bt_result, name), getattr(other, name)
        pd.testing.assert_frame_equal(mine[mine["date"] <= cut].reset_index(drop=True),
                                      theirs[theirs["date"] <= cut].reset_index(drop=True))
    # ... and the perturbation did change the backtest after the date (the test can fail)
    assert not np.allclose(bt_result.daily["equity"].iloc[-1], other.daily["equity"].iloc[-1])


def test_equity_is_initial_plus_pnl_minus_costs_to_the_cent(bt_result):
    daily = bt_result.daily
    ledger = bt_result.initial_capital + daily["pnl"].cumsum() - daily["costs"].cumsum()
    assert np.abs(ledger - daily["equity"]).max() < 0.005
    assert daily["equity"].iloc[-1] == pytest.approx(
        bt_result.initial_capital + daily["pnl"].sum() - daily["costs"].sum(), abs=0.005)
    # cash moves only by trades, costs and removals
    trades = bt_result.trades
    removed = bt_result.events.loc[bt_result.events["event"] == "removed", "value"].sum()
    cash = bt_result.initial_capital - trades["value"].sum() - daily["costs"].sum() + removed
    assert daily["cash"].iloc[-1] == pytest.approx(cash, abs=0.005)
    assert daily["costs"].sum() > 0 and len(trades) > 100


def test_costs_are_the_sum_of_the_fills_costs(bt_result):
    fills = bt_result.trades.groupby("date")[["commission", "spread_cost", "impact_cost"]].sum()
    daily = bt_result.daily.loc[fills.index]
    assert np.allclose(daily["commission"], fills["commission"])
    assert np.allclose(daily["costs"], fills.sum(axis=1))


def test_positions_never_breach_a_cap_by_more_than_the_rounding_residue(bt_result):
    holdings = bt_result.holdings
    equity = bt_result.daily["equity"].reindex(holdings["date"]).to_numpy()
    # a position may exceed its target by at most one share (rounding) plus a trim that was
    # smaller than the minimum order value (1000 USD) and so not made
    residue = (holdings["price"].to_numpy() + 1000.0) / equity
    assert (holdings["weight"] <= RULES.max_position + residue + 1e-12).all()
    assert (holdings["target_weight"] <= RULES.max_position + 1e-6).all()
    held = holdings[holdings["shares"] > 0]
    assert held["shares"].eq(held["shares"].round()).all()
    assert (holdings["weight"] > RULES.max_position * 0.9).any()  # the cap binds


def test_every_fill_is_at_the_next_sessions_open(bt_market, bt_result):
    trades = bt_result.trades
    dates = pd.DatetimeIndex(sorted(bt_market.bars["date"].unique()))
    decision = dates.get_indexer(trades["decision_date"])
    assert (dates.get_indexer(trades["date"]) == decision + 1).all()
    opens = bt_market.bars.set_index(["date", "ticker"])["open"]
    expected = opens.reindex(pd.MultiIndex.from_arrays([trades["date"], trades["ticker"]]))
    assert np.allclose(trades["price"].to_numpy(), expected.to_numpy())


def test_fill_price_setting_selects_close_or_vwap(bt_market, bt_scores):
    bars = bt_market.bars.set_index(["date", "ticker"])
    for kind in ("close", "vwap"):
        end = bt_market.dates[FIRST_SCORED + 60].date()
        result = run(bt_market, bt_scores, dataclasses.replace(SETTINGS, fill_price=kind,
                                                               end=end))
        trades = result.trades.head(50)
        expected = bars[kind].reindex(pd.MultiIndex.from_arrays([trades["date"],
                                                                 trades["ticker"]]))
        assert np.allclose(trades["price"].to_numpy(), expected.to_numpy())


def test_sessions_without_turnover_cost_nothing(bt_result):
    daily = bt_result.daily
    assert (daily.loc[daily["turnover"] == 0, "costs"] == 0).all()
    assert (daily.loc[daily["turnover"] > 0, "costs"] > 0).all()


def test_rebalances_follow_the_schedule(bt_market, bt_result):
    dates = pd.DatetimeIndex(sorted(bt_market.bars["date"].unique()))
    rows = dates.get_indexer(bt_result.rebalances["date"])
    assert rows[0] == FIRST_SCORED
    assert set(np.diff(rows)) == {SETTINGS.rebalance_every}
    assert bt_result.daily.index[0] == dates[FIRST_SCORED]
    assert bt_result.daily["equity"].iloc[0] == bt_result.initial_capital


def test_a_held_name_without_bars_is_marked_at_its_last_close_then_removed(bt_market,
                                                                         bt_scores, bt_result):
    first_fill = bt_result.trades["date"].min()
    held = bt_result.holdings
    name = held.loc[held["shares"] > 0, "ticker"].iloc[0]
    bars = bt_market.bars
    cut = bars.loc[bars["date"] > first_fill, "date"].drop_duplicates().iloc[3]
    gone = dataclasses.replace(bt_market, bars=bars[~((bars["ticker"] == name)
                                                      & (bars["date"] >= cut))])
    result = run(gone, bt_scores)
    removed = result.events[(result.events["event"] == "removed")
                            & (result.events["ticker"] == name)]
    assert len(removed) == 1
    dates = result.daily.index
    assert removed["date"].iloc[0] == dates[dates.get_loc(cut) + SETTINGS.stale_after - 1]
    daily = result.daily
    ledger = result.initial_capital + daily["pnl"].cumsum() - daily["costs"].cumsum()
    assert np.abs(ledger - daily["equity"]).max() < 0.005


def test_the_risk_model_is_fitted_point_in_time_on_the_trailing_window(bt_market):
    panels = MarketPanels.from_market(bt_market)
    row = 420
    date = panels.dates[row]
    full = FactorRiskModel().fit(**risk_inputs_from_bars(
        bt_market.bars[bt_market.bars["date"] <= date], bt_market.reference))
    window = panels.risk_inputs(row, RISK_HISTORY)
    shared = FactorRiskModel().factor_returns(**panels.risk_inputs(row + 60, RISK_HISTORY,
                                                                   first=row - RISK_HISTORY))
    for inputs in (window, {**window, "factor_returns": shared.loc[window["returns"].index]}):
        fitted = FactorRiskModel().fit(**inputs)
        assert np.allclose(fitted.B_.to_numpy(), full.B_.to_numpy(), rtol=1e-9, atol=1e-12)
        assert np.allclose(fitted.F_.to_numpy(), full.F_.to_numpy(), rtol=1e-9, atol=1e-15)
        assert np.allclose(fitted.specific_var_.to_numpy(), full.specific_var_.to_numpy(),
                           rtol=1e-9)


def test_a_ticker_that_lists_later_is_not_in_an_earlier_risk_model(bt_market):
    dates = bt_market.dates
    bars = bt_market.bars
    late = bars["ticker"].iloc[0]
    listed = bars[~((bars["ticker"] == late) & (bars["date"] < dates[FIRST_SCORED + 20]))]
    panels = MarketPanels.from_market(dataclasses.replace(bt_market, bars=listed))
    assert late not in panels.risk_inputs(FIRST_SCORED, RISK_HISTORY)["returns"].columns
    assert late in panels.risk_inputs(FIRST_SCORED + 20, RISK_HISTORY)["returns"].columns


def test_the_snapshot_is_market_snapshot_of_the_bars_up_to_the_date(bt_market):
    """The portfolio reads what ``bma run`` would read on that date: ``market_snapshot`` of
    the bars up to it (with the rulebook's ATR window), nothing later."""
    panels = MarketPanels.from_market(bt_market, atr_window=RULES.atr_window)
    bars = bt_market.bars
    for row in (FIRST_SCORED, FIRST_SCORED + 37, len(panels.dates) - 1):
        date = panels.dates[row]
        expected = market_snapshot(bars[bars["date"] <= date], RULES.atr_window)
        pd.testing.assert_frame_equal(panels.snapshot(row), expected, rtol=1e-9,
                                      check_index_type=False)


def test_the_backtest_plans_with_plan_portfolio_and_the_rulebook(bt_market, bt_scores,
                                                                 bt_result):
    """A price band in the rulebook keeps names out of the backtest, as it does in bma run."""
    end = bt_market.dates[FIRST_SCORED + 60].date()
    short = dataclasses.replace(SETTINGS, end=end)
    closes = bt_market.bars.set_index(["date", "ticker"])["close"]
    cap = float(closes.xs(bt_market.dates[FIRST_SCORED], level="date").quantile(0.85))

    def bought_above_cap(result):
        buys = result.trades[result.trades["shares"] > 0]
        decided = closes.reindex(pd.MultiIndex.from_arrays([buys["decision_date"],
                                                            buys["ticker"]]))
        return int((decided.to_numpy() > cap).sum())

    assert bought_above_cap(run(bt_market, bt_scores, short)) > 0  # the test can fail
    banded = run(bt_market, bt_scores, short, rules=dataclasses.replace(RULES, max_price=cap))
    assert bought_above_cap(banded) == 0
    assert not banded.rebalances["error"].astype(bool).any()
    assert (banded.rebalances["n_refused"].to_numpy() >= bt_result.rebalances["n_refused"]
            .iloc[:len(banded.rebalances)].to_numpy()).all()


def test_the_cash_reserve_is_kept_once(bt_result):
    """The plan invests 1 - capital.cash_reserve_pct of equity (no second reserve on top)."""
    invested = bt_result.daily["gross_exposure"].iloc[2:]
    assert abs(invested.median() - RULES.invested_fraction) < 0.01


def test_portfolio_construction_is_one_call_to_plan_portfolio(repo_root):
    """Only construction.py asks the product for a portfolio, through ``plan_portfolio``;
    nothing in the backtest builds expected returns or an optimizer of its own."""
    package = repo_root / "bma_models" / "backtest"
    texts = {path.name: path.read_text(encoding="utf-8") for path in package.glob("*.py")}
    assert {name for name, text in texts.items() if "plan_portfolio(" in text} \
        == {"construction.py"}
    assert not any("PortfolioOptimizer" in text or "expected_returns_from_scores" in text
                   for text in texts.values())
