"""Benchmark: one 500-name trading decision cycle (rebalance -> risk chain -> planner).

``ours`` is :func:`autotrader.engine.cycle.decide` (plus the market-input
fallbacks), i.e. the whole decision half of a runner cycle with no broker or
journal I/O. ``baseline`` is an independent, straightforward pandas
implementation of the rebalance and of the risk checks that can fire in this
scenario (state, hours, duplicates, daily limits and stop-outs are all
passing here and are left out of it), written the way a DataFrame-first
version would be: targets by column arithmetic, then one row loop in which
every check recomputes exposures from a DataFrame of the book plus the orders
approved so far. The planner (per-order pricing) is shared. ``equal`` says
both produced the same decisions (symbol, side, quantity, denial check, order
type, planned quantity and limit price) for every intent, which cross-checks
the rebalance arithmetic and the exposure bookkeeping.

Run: ``python -m benchmarks.trader_cycle``; prints one JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
import time
import tracemalloc

import numpy as np
import pandas as pd

from autotrader.domain.records import Account, OrderIntent, Position, Quote, Side
from autotrader.engine.cycle import BookState, Decision, decide, market_inputs
from autotrader.engine.limits import PlannerSettings, RiskLimits, SizingSettings
from autotrader.engine.planner import plan_order
from autotrader.engine.rebalance import Recommendation
from autotrader.engine.risk import Denial

N_NAMES, N_HELD, TARGET_S = 500, 100, 0.050
NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.timezone.utc)
LIMITS = RiskLimits(max_single_position_pct=0.01, max_portfolio_exposure=0.95,
                    min_order_value_usd=2_000.0, daily_order_limit=1_000,
                    per_cycle_order_limit=400, acceptance_threshold=0.1,
                    sector_exposure_limit=0.03)
SIZING = SizingSettings(max_position_pct_of_equity=0.01, cash_reserve_pct=0.05)
PLANNER = PlannerSettings(min_adv_usd=2e6, min_expected_alpha_bps=5.0)


def _universe(seed: int = 42):
    rng = np.random.default_rng(seed)
    sectors = [f"S{i:02d}" for i in range(11)]
    tickers = [f"T{i:04d}" for i in range(N_NAMES + N_HELD // 2)]
    prices = np.round(np.exp(rng.normal(3.8, 1.0, len(tickers))), 2).clip(0.5, 2_000)
    weights = rng.dirichlet(np.ones(N_NAMES))
    recs = tuple(
        Recommendation(rank=i + 1, ticker=tickers[i], sector=sectors[i % 11],
                       score=float(1 - i / N_NAMES),
                       expected_return=float(rng.normal(0.004, 0.004)),
                       weight=float(weights[i]), last_close=float(prices[i]),
                       adv=float(rng.lognormal(16, 1.5)),
                       atr=float(prices[i] * rng.uniform(0.005, 0.07)))
        for i in range(N_NAMES))
    held = rng.choice(len(tickers), N_HELD, replace=False)
    positions = {tickers[j]: Position(tickers[j], int(rng.integers(10, 3_000)), float(prices[j]))
                 for j in held}
    quotes = {}
    for j, t in enumerate(tickers):
        p = float(prices[j])
        quotes[t] = Quote(t, last=p, prev_close=p, bid=p * 0.9995, ask=p * 1.0005)
    book = BookState(account=Account(equity=10_000_000.0, cash=6_000_000.0), positions=positions)
    return recs, book, quotes


def ours(recs, book, quotes) -> list[Decision]:
    inputs = market_inputs(recs, quotes, sorted(book.positions), 0.02, {})
    return decide(recs, book, inputs, now=NOW, market_open=True, limits=LIMITS, sizing=SIZING,
                  planner=PLANNER)


def _baseline_targets(recs, book, quotes) -> pd.DataFrame:
    df = pd.DataFrame([r.__dict__ for r in recs])
    df["price"] = df["ticker"].map(lambda t: quotes[t].reference_price)
    total, investable_fraction = df["weight"].clip(lower=0).sum(), 1 - SIZING.cash_reserve_pct
    scale = investable_fraction / total if total > investable_fraction else 1.0
    w = (df["weight"].clip(lower=0) * scale).clip(upper=SIZING.max_position_pct_of_equity)
    investable = book.account.equity
    df["target"] = np.floor(w * investable / df["price"] + 1e-9).astype(int)
    held = pd.DataFrame([(s, p.quantity, p.avg_cost) for s, p in book.positions.items()],
                        columns=["ticker", "held", "avg_cost"])
    df = df.merge(held, on="ticker", how="outer")
    df["held"] = df["held"].fillna(0).astype(int)
    df["target"] = df["target"].fillna(0).astype(int)
    df["price"] = df["ticker"].map(lambda t: quotes[t].reference_price)
    df["delta"] = df["target"] - df["held"]
    return df.sort_values("ticker").reset_index(drop=True)


def _baseline_intents(df: pd.DataFrame) -> list[OrderIntent]:
    n = int(df["rank"].notna().sum())
    sells, buys = [], []
    for row in df.itertuples():
        if row.delta == 0:
            continue
        rec = not math.isnan(row.rank)
        side = Side.BUY if row.delta > 0 else Side.SELL
        qty = row.delta if row.delta > 0 else min(-row.delta, row.held)
        intent = OrderIntent(
            row.ticker, side, int(qty), row.price, sector=row.sector if rec else "Unknown",
            score=row.score if rec else 0.0, expected_return=row.expected_return if rec else 0.0,
            confidence=1.0 - (row.rank - 1) / n if rec else 1.0,
            reduces_position=side is Side.SELL,
            closes_position=side is Side.SELL and qty == row.held,
            reason="rebalance" if rec else "exit: no longer recommended")
        (sells if side is Side.SELL else buys).append((row.rank, intent))
    buys.sort(key=lambda x: x[0])
    return [i for _, i in sells] + [i for _, i in buys]


def _baseline_check(intent, book_df, equity, cash, approved, n_approved) -> Denial | None:
    entry = not intent.reduces_position
    if n_approved >= LIMITS.per_cycle_order_limit:  # daily limit is far away in this scenario
        return Denial("per_cycle_order_limit", "")
    if entry and intent.confidence < LIMITS.acceptance_threshold:
        return Denial("signal_threshold", "")
    if entry and not LIMITS.min_price <= intent.reference_price <= LIMITS.max_price:
        return Denial("price_band", "")
    if not intent.closes_position and intent.notional < LIMITS.min_order_value_usd:
        return Denial("min_order_value", "")
    frame = pd.concat([book_df, pd.DataFrame(approved, columns=["ticker", "sector", "value"])])
    frame["value"] = frame["value"].astype(float)
    if entry:
        if frame.loc[frame["ticker"] == intent.symbol, "value"].sum().clip(0) + intent.notional \
                > LIMITS.max_single_position_pct * equity + 1e-9:
            return Denial("max_single_position", "")
        if frame.loc[frame["sector"] == intent.sector, "value"].sum() + intent.notional \
                > LIMITS.sector_exposure_limit * equity + 1e-9:
            return Denial("sector_exposure", "")
        if frame["value"].sum() + intent.notional > LIMITS.max_portfolio_exposure * equity + 1e-9:
            return Denial("max_portfolio_exposure", "")
    if intent.side is Side.BUY and cash - intent.notional < LIMITS.cash_reserve_pct * equity - 1e-9:
        return Denial("cash_reserve", "")
    return None


def baseline(recs, book, quotes) -> list[Decision]:
    inputs = market_inputs(recs, quotes, sorted(book.positions), 0.02, {})
    df = _baseline_targets(recs, book, quotes)
    sector_of = {r.ticker: r.sector for r in recs}
    book_df = pd.DataFrame(
        [(s, sector_of.get(s, "Unknown"), p.quantity * quotes[s].reference_price)
         for s, p in book.positions.items()], columns=["ticker", "sector", "value"])
    equity, cash = book.account.equity, book.account.cash
    approved: list[tuple[str, str, float]] = []
    decisions = []
    for intent in _baseline_intents(df):
        denial = _baseline_check(intent, book_df, equity, cash, approved, len(approved))
        if denial is None:
            plan = plan_order(intent, inputs.quotes[intent.symbol], inputs.stats[intent.symbol],
                              PLANNER, equity=equity, now=NOW)
            if isinstance(plan, Denial):
                denial = plan
        if denial is not None:
            decisions.append(Decision(intent, denial=denial))
            continue
        decisions.append(Decision(intent, plan=plan))
        value = plan.quantity * intent.reference_price * intent.side.sign
        approved.append((intent.symbol, intent.sector, value))
        cash -= max(value, 0.0)
    return decisions


def _key(d: Decision):
    i = d.intent
    if d.plan is not None:
        p = d.plan
        return (i.symbol, i.side.value, i.quantity, None, p.order_type.value, p.quantity,
                p.limit_price)
    return (i.symbol, i.side.value, i.quantity, d.denial.check)


def _time(fn, args, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = _universe()
    ours(*args)  # warm-up (imports, caches)
    ours_s = _time(ours, args, 15)
    baseline_s = _time(baseline, args, 3)
    mine, ref = ours(*args), baseline(*args)
    tracemalloc.start()
    ours(*args)
    peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    denials: dict[str, int] = {}
    for d in mine:
        if d.denial is not None:
            denials[d.denial.check] = denials.get(d.denial.check, 0) + 1
    print(json.dumps({
        "name": "trader_cycle", "ours_s": round(ours_s, 5), "baseline_s": round(baseline_s, 5),
        "speedup": round(baseline_s / ours_s, 2), "equal": [_key(d) for d in mine] ==
        [_key(d) for d in ref], "peak_mb": round(peak_mb, 2), "names": N_NAMES,
        "held": N_HELD, "intents": len(mine), "orders": sum(d.plan is not None for d in mine),
        "denials": denials, "target_s": TARGET_S, "meets_target": ours_s <= TARGET_S,
    }))


if __name__ == "__main__":
    main()
