"""Benchmark: the strategy backtest vs a straightforward per-date pandas loop, same equity curve.

``python -m benchmarks.backtest`` prints one JSON line. The market is the demo
market with ``--tickers`` names (400) and 12 years of sessions after a warm-up
for the risk model; the scores are the demo's planted score plus noise (a
realistic IC, no model training: the benchmark times the backtest "after the
models are trained"). Both sides run the default ``research.portfolio`` and
``research.backtest`` settings (weekly rebalances, ~600 optimizations), the
rulebook and the trader's order rule of the packaged config and the same cost
model.

- ours: :class:`bma_models.backtest.Backtest` (panels pivoted once, risk-model
  fits of one universe sharing their factor returns, ``--jobs`` processes).
- baseline: a per-date pandas loop written the obvious way: each session
  filters the long bars to that date, positions live in dicts, each rebalance
  calls :func:`bma_models.portfolio.market_snapshot` on the bars up to the
  date (what ``bma run`` does) and pivots the recent bars for the costs' ADV
  and volatility, and each risk refit pivots the whole history up to the date
  for :func:`risk_inputs_from_bars`. Same portfolio-construction adapter
  (``plan_portfolio`` with the rulebook), order rule and cost functions, so the
  same decisions; ``equal`` compares the two daily equity curves (relative 1e-9).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import time

import numpy as np
import pandas as pd

from autotrader.config import Settings, trading_rules
from autotrader.services.backtest_orders import trader_order_rule
from bma_models.backtest import Backtest, backtest_metrics
from bma_models.backtest.construction import BOOK_SOURCE, target_weights
from bma_models.backtest.costs import order_costs
from bma_models.backtest.engine import RISK_HISTORY, _refit_rows, rebalance_rows
from bma_models.data.demo import demo_market, planted_score
from bma_models.errors import BMAError
from bma_models.portfolio import Holdings, market_snapshot
from bma_models.risk import FactorRiskModel, average_dollar_volume, risk_inputs_from_bars
from bma_models.rules import Rulebook
from bma_models.settings import ResearchSettings

YEARS = 12
WARMUP = RISK_HISTORY + 20


def build_inputs(n_tickers: int, seed: int, years: int = YEARS):
    market = demo_market(n_tickers=n_tickers, n_sessions=years * 252 + WARMUP, seed=seed)
    planted = planted_score(market)
    rng = np.random.default_rng(seed)
    noisy = planted + rng.normal(0.0, 3 * np.nanstd(planted.to_numpy()), planted.shape)
    scores = noisy.iloc[WARMUP:].stack().rename("fused").to_frame()
    scores.index.names = ["date", "ticker"]
    return market, scores


class PerDateLoop:
    """The baseline: one pandas step per session, positions in dicts."""

    def __init__(self, settings: ResearchSettings, rules: Rulebook, rule) -> None:
        self.s, self.rules, self.rule = settings, rules, rule

    def run(self, market, scores: pd.DataFrame) -> pd.Series:
        s, bars = self.s.backtest, market.bars
        dates = pd.DatetimeIndex(sorted(bars["date"].unique()))
        by_date = {d: g.droplevel(0) for d, g in scores["fused"].dropna().groupby(level=0)}
        rows = rebalance_rows(dates, pd.DatetimeIndex(list(by_date)), None, len(dates) - 1,
                              s.rebalance_every)
        refit = set(_refit_rows(rows, s.risk_refit_every).tolist())
        rebalance_set = set(rows.tolist())
        sectors = market.reference.set_index("ticker")["sector"]
        shares: dict[str, float] = {}
        mark: dict[str, float] = {}
        missing: dict[str, int] = {}
        cash = equity = float(self.s.portfolio.capital)
        pending, decision, risk = {}, None, None
        equities = []
        for row in range(rows[0], len(dates)):
            date = dates[row]
            day = bars[bars["date"] == date].set_index("ticker")
            fills = []
            for ticker, q in pending.items():
                kind = s.fill_price
                if ticker not in day.index or not day.at[ticker, kind] > 0:
                    continue
                price = float(day.at[ticker, kind])
                adv, sigma = decision
                fills.append((ticker, q, price, adv.get(ticker, np.nan),
                              sigma.get(ticker, np.nan)))
            if fills:
                t, q, p, a, v = (np.array(x) for x in zip(*fills))
                cost = order_costs(q, p, a.astype(float), v.astype(float), s.costs)
                cash -= float(np.sum(q * p)) + float(cost.total.sum())
                for ticker, qty in zip(t, q):
                    shares[ticker] = shares.get(ticker, 0.0) + qty
            pending = {}
            for ticker in set(mark) | set(day.index):
                if ticker in day.index and day.at[ticker, "close"] > 0:
                    mark[ticker] = float(day.at[ticker, "close"])
                    missing[ticker] = 0
                else:
                    missing[ticker] = missing.get(ticker, 0) + 1
            for ticker in [t for t, q in shares.items() if q and missing[t] >= s.stale_after]:
                cash += shares.pop(ticker) * mark[ticker]
            shares = {t: q for t, q in shares.items() if q}
            equity = cash + sum(q * mark[t] for t, q in shares.items())
            equities.append(equity)
            if row not in rebalance_set:
                continue
            hist = bars[bars["date"] <= date]
            if row in refit:
                try:
                    risk = FactorRiskModel().fit(**risk_inputs_from_bars(hist, market.reference))
                except BMAError:
                    risk = None
            if risk is None:
                continue
            recent = hist[hist["date"] >= dates[max(0, row - 30)]]
            snapshot, adv, sigma = self._snapshot(hist, recent)
            held = pd.Series(dict(sorted(shares.items())), dtype=float)
            prices = pd.Series(mark, dtype=float)
            book = Holdings.from_quantities(held, cash=cash, source=BOOK_SOURCE,
                                            prices=prices.reindex(held.index))
            try:
                plan = target_weights(by_date[date], risk, snapshot, sectors, book,
                                      rules=self.rules, settings=self.s.portfolio,
                                      horizon=self.s.labels.horizon)
            except BMAError:
                continue
            orders = self.rule(plan.weights, equity, prices, held.astype(int))
            pending = {t: float(q) for t, q in orders.items() if q}
            decision = (adv, sigma)
        return pd.Series(equities, index=dates[rows[0]:])

    def _snapshot(self, hist, recent):
        costs = self.s.backtest.costs
        close = recent.pivot(index="date", columns="ticker", values="close")
        adv = average_dollar_volume(recent, costs.adv_window)
        window = costs.volatility_window
        sigma = close.pct_change(fill_method=None).rolling(
            window, min_periods=max(2, window // 2)).std().iloc[-1]
        snapshot = market_snapshot(hist, self.rules.atr_window)
        return snapshot, adv.to_dict(), sigma.to_dict()


def _cpu_s() -> float:
    """CPU seconds of this process (all threads): less sensitive to other jobs than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backtest")
    parser.add_argument("--tickers", type=int, default=400)
    parser.add_argument("--years", type=int, default=YEARS)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    market, scores = build_inputs(args.tickers, args.seed, args.years)
    settings = ResearchSettings()
    rules, rule = trading_rules(Settings()), trader_order_rule(Settings())
    start, cpu = time.perf_counter(), _cpu_s()
    result = Backtest(settings.backtest, settings.portfolio, rules, rule,
                      horizon=settings.labels.horizon, n_jobs=args.jobs).run(market, scores)
    ours, ours_cpu = time.perf_counter() - start, _cpu_s() - cpu
    stats = backtest_metrics(result)
    out = {"name": "backtest", "ours_s": round(ours, 2), "baseline_s": None, "speedup": None,
           "equal": None, "ours_cpu_s": round(ours_cpu, 2)}
    if not args.no_baseline:
        start = time.perf_counter()
        curve = PerDateLoop(settings, rules, rule).run(market, scores)
        baseline = time.perf_counter() - start
        ours_curve = result.daily["equity"]
        diff = float(np.max(np.abs(curve.to_numpy() / ours_curve.to_numpy() - 1.0)))
        out.update(baseline_s=round(baseline, 2), speedup=round(baseline / ours, 1),
                   equal=bool(len(curve) == len(ours_curve) and diff <= 1e-9),
                   max_relative_equity_diff=diff)
    out.update({
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "n_tickers": args.tickers, "years": args.years, "n_sessions": len(result.daily),
        "n_rebalances": stats["n_rebalances"], "n_risk_fits": int(math.ceil(
            len(result.rebalances) / max(1, settings.backtest.risk_refit_every
                                         // settings.backtest.rebalance_every))),
        "jobs": args.jobs, "timings_s": result.timings_s,
        "sharpe": stats["sharpe"], "benchmark_sharpe": stats["benchmark"]["sharpe"],
        "turnover_annual": stats["turnover_annual"],
        "cost_drag_annual": stats["cost_drag_annual"],
        "load_average_1m": round(os.getloadavg()[0], 2),
        "meets_target": bool(ours <= 30.0),
    })
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
