"""Benchmark: the portfolio step of ``bma run`` on the default demo market, rulebook vs before.

``python -m benchmarks.portfolio_plan`` prints one JSON line. Same market (500 x 1260
demo, seed 42), same fitted risk model and the same seeded scores for both:

- ours: what ``bma run`` does now around the optimizer: :func:`market_snapshot` (last
  close, 20-day ADV, ATR from the last sessions only), :func:`check_plan_feasibility`
  (before training) and :func:`plan_portfolio` (screens + optimizer with the minimum
  trade), from cash, median of ``REPEATS``;
- baseline: the code this replaced: ``average_dollar_volume`` and the ATR over the whole
  panels, then ``PortfolioOptimizer.optimize`` with the old defaults (no screens).

``equal`` checks that the snapshot's close, ADV and ATR equal the whole-panel values
the baseline computes (the numbers the screens read did not change).
"""

from __future__ import annotations

import json
import resource
import statistics
import time

import numpy as np
import pandas as pd

from bma_models.data.demo import demo_market
from bma_models.data.protocol import to_panel
from bma_models.optimizer import PortfolioOptimizer, expected_returns_from_scores
from bma_models.portfolio import (
    check_plan_feasibility,
    market_snapshot,
    plan_portfolio,
    score_percentile,
)
from bma_models.risk import FactorRiskModel, average_dollar_volume, risk_inputs_from_bars
from bma_models.rules import Rulebook
from bma_models.settings import PortfolioSettings

REPEATS = 5


def _baseline(bars, mu, model, sectors):
    start = time.perf_counter()
    adv = average_dollar_volume(bars, window=20)
    close, high, low = (to_panel(bars, c) for c in ("close", "high", "low"))
    prev = close.shift(1)
    true_range = np.maximum(high - low, np.maximum((high - prev).abs(), (low - prev).abs()))
    atr = true_range.rolling(14, min_periods=14).mean().iloc[-1]
    result = PortfolioOptimizer(risk_aversion=1.0, turnover_penalty=0.0, max_position=0.03,
                                sector_cap=0.25, cash_reserve=0.03, capital=1e6,
                                top_n=200).optimize(mu, model, sectors=sectors, adv=adv)
    return time.perf_counter() - start, adv, atr, result


def _ours(bars, mu, horizon_mu, percentile, model, sectors, rules, settings):
    start = time.perf_counter()
    snapshot = market_snapshot(bars, rules.atr_window)
    check_plan_feasibility(snapshot, sectors, rules=rules, settings=settings)
    plan = plan_portfolio(mu, horizon_mu, percentile, model, snapshot, sectors, rules=rules,
                          settings=settings)
    return time.perf_counter() - start, snapshot, plan


def main() -> None:
    market = demo_market()
    model = FactorRiskModel().fit(**risk_inputs_from_bars(market.bars, market.reference))
    scores = pd.Series(np.random.default_rng(7).normal(size=len(model.B_)), index=model.B_.index)
    vol = model.total_volatility()
    mu = expected_returns_from_scores(scores, vol, ic=0.05)
    horizon_mu = expected_returns_from_scores(scores, vol, ic=0.05, horizon=5)
    sectors = market.reference.set_index("ticker")["sector"]
    rules, settings = Rulebook(), PortfolioSettings()
    base = [_baseline(market.bars, mu, model, sectors) for _ in range(REPEATS)]
    ours = [_ours(market.bars, mu, horizon_mu, score_percentile(scores), model, sectors, rules,
                  settings) for _ in range(REPEATS)]
    _, adv, atr, old = base[-1]
    _, snapshot, plan = ours[-1]
    equal = bool(np.allclose(snapshot["adv"], adv.reindex(snapshot.index), equal_nan=True)
                 and np.allclose(snapshot["atr"], atr.reindex(snapshot.index), equal_nan=True))
    ours_s, base_s = statistics.median(o[0] for o in ours), statistics.median(b[0] for b in base)
    print(json.dumps({
        "name": "portfolio_plan", "ours_s": round(ours_s, 4), "baseline_s": round(base_s, 4),
        "speedup": round(base_s / ours_s, 2), "equal": equal,
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "repeats": REPEATS, "names_scored": len(scores),
        "names_refused": int((plan.screens != "").sum()),
        "names_held": int((plan.weights > 0).sum()), "invested": round(plan.weights.sum(), 6),
        "baseline_names_held": int((old.weights > 1e-6).sum()),
        "baseline_dust_weights": int(((old.weights > 0) & (old.weights < 1e-4)).sum()),
        "ours_dust_weights": int(((plan.weights > 0) & (plan.weights < 1e-4)).sum()),
    }))


if __name__ == "__main__":
    main()
