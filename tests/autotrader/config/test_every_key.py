"""Every key of ``autotrader/config/default.yaml`` changes behaviour (issue #18, item 5).

:data:`PROBES` maps each leaf key of the packaged ``default.yaml`` to a probe:
a changed value and an *observation*, a function that builds the object or
decision the key is meant to drive - through the same code the application
uses (``trader_settings`` and the engine's ``decide``, ``trading_rules``,
``ResearchPipeline``'s stages, ``IBBroker.from_settings``, the research
wiring...) - from a :class:`Settings`. A probe passes when the observation
under the default differs from the observation under the changed value, so:

* a key added to ``default.yaml`` without a probe fails
  :func:`test_every_default_yaml_key_has_a_probe`;
* a key whose consumer stops reading it fails its probe (both observations equal).

Probes are small and synthetic (a 30-name demo market at most, a 40-session backtest,
no training).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from autotrader.config import Settings, trading_rules
from autotrader.domain.records import Account, Position, Quote
from autotrader.engine.correlation import ReturnHistory
from autotrader.engine.cycle import BookState, CycleInputs, decide
from autotrader.engine.planner import MarketStats
from autotrader.engine.rebalance import Recommendation
from autotrader.engine.stops import trailing_stop_price
from autotrader.services.session import trader_settings
from bma_models.errors import DataError
from bma_models.schema import build, to_dict

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.timezone.utc)  # 10:00 in New York
EQUITY = 100_000.0


# -- the keys -----------------------------------------------------------------------------

def _leaves(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        keys.extend(_leaves(value, path) if isinstance(value, dict) and value else [path])
    return keys


@functools.cache
def _default_yaml_keys() -> tuple[str, ...]:
    path = Path(__file__).resolve().parents[3] / "autotrader" / "config" / "default.yaml"
    return tuple(_leaves(yaml.safe_load(path.read_text(encoding="utf-8"))))


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _settings(flat: Mapping[str, Any]) -> Settings:
    """The defaults with the dotted keys of ``flat`` changed (deep-merged, as the store layers)."""
    return build(Settings, _merge(to_dict(Settings()), _nested(flat)))


@dataclasses.dataclass(frozen=True)
class Probe:
    """``observe(settings)`` differs between the default and ``value`` (on top of ``base``)."""

    value: Any
    observe: Callable[[Settings], Any]
    base: Mapping[str, Any] = dataclasses.field(default_factory=dict)


# -- trader observations: the engine's decisions ------------------------------------------

def _rec(ticker="AAA", *, price=50.0, weight=0.03, adv=5e6, atr=0.75, alpha=0.01,
         percentile=0.9, sector="Tech") -> Recommendation:
    return Recommendation(rank=1, ticker=ticker, sector=sector, score=1.0,
                          expected_return=alpha, weight=weight, last_close=price, adv=adv,
                          atr=atr, score_percentile=percentile)


def _trade(*, recs=(None,), positions=(), cash=EQUITY, spread_bps=2.0, day_start=math.nan,
           daily_orders=0, last_order_at=None, returns=None, now=NOW, run_age=0):
    """The decisions of one cycle: (symbol, side, quantity, type, limit, stop, take profit,
    denial check) per intent."""
    recs = [r or _rec() for r in recs]

    def observe(s: Settings):
        mapped = trader_settings(s)
        held = {p.symbol: p for p in positions}
        value = sum(p.quantity * p.avg_cost for p in positions)
        prices = {r.ticker: r.last_close for r in recs} | {p.symbol: p.avg_cost
                                                            for p in positions}
        half = spread_bps / 2e4
        quotes = {t: Quote(t, last=p, prev_close=p, bid=p * (1 - half), ask=p * (1 + half))
                  for t, p in prices.items()}
        stats = {r.ticker: MarketStats(r.ticker, adv_usd=r.adv, atr=r.atr) for r in recs}
        stats |= {p.symbol: MarketStats(p.symbol, adv_usd=1e9, atr=p.avg_cost * 0.01)
                  for p in positions if p.symbol not in stats}
        book = BookState(Account(equity=cash + value, cash=cash), held,
                         daily_orders=daily_orders, day_start_equity=day_start)
        decisions = decide(recs, book, CycleInputs(quotes, stats), now=now, market_open=True,
                           limits=mapped.risk, sizing=mapped.sizing, planner=mapped.planner,
                           last_order_at=last_order_at, returns=returns,
                           run_age_sessions=run_age)
        return [(d.intent.symbol, d.intent.side.value, d.intent.quantity,
                 None if d.plan is None else (d.plan.order_type.value, d.plan.quantity,
                                              d.plan.limit_price, d.plan.stop_price,
                                              d.plan.take_profit_price),
                 None if d.denial is None else d.denial.check) for d in decisions]
    return observe


def _stop(*, days_held=3.0, atr=2.0):
    """The protective stop of a long bought at 100, high 110 (the stop manager's level)."""
    def observe(s: Settings):
        return trailing_stop_price(100.0, 110.0, atr, days_held, trader_settings(s).stops)
    return observe


def _correlated_history(window_effect: bool = False) -> ReturnHistory:
    rng = np.random.default_rng(5)
    base = rng.normal(0, 0.01, 120)
    other = base + rng.normal(0, 0.004, 120)
    if window_effect:
        other[-30:] = rng.normal(0, 0.01, 30)
    dates = tuple(str(d.date()) for d in pd.bdate_range("2025-09-01", periods=120))
    return ReturnHistory(dates, ("AAA", "HELD"), np.column_stack([base, other]))


def _stops_enabled(s: Settings):
    """Whether the runner's stop manager acts (it returns at once when stops are disabled)."""
    from autotrader.services.trading import TradingRunner

    calls = []
    runner = SimpleNamespace(settings=trader_settings(s),
                             broker=SimpleNamespace(positions=lambda: calls.append(1) or {},
                                                    quotes=lambda symbols: {}),
                             journal=SimpleNamespace(orders=lambda active_only: []))
    TradingRunner._update_stops(runner, None, NOW, SimpleNamespace(exiting=set(),
                                                                     failures=[]))
    return bool(calls)


def _correlation_rows(tmp_root: Path):
    """The returns history the runner loads for the correlation check (last window rows)."""
    from autotrader.services.recommendations import ReturnsForCycles

    def observe(s: Settings):
        recs = SimpleNamespace(run_dir=tmp_root, run_id="r")
        history = ReturnsForCycles().for_cycle(recs, trader_settings(s).risk.correlation_window,
                                          ["AAA"], {}, [])
        return round(history.correlation("AAA", "HELD"), 9)
    return observe


# -- application observations -------------------------------------------------------------

def _ib(s: Settings):
    pytest.importorskip("autotrader.broker.ib")
    from autotrader.services.brokers import make_broker

    broker = make_broker("ib", state_dir=Path("."), settings=s)
    policy = broker.reconnect_policy
    return (broker.host, broker.port, broker.client_id, broker.account_id,
            broker.connect_timeout_s, broker.use_delayed, broker.live_armed,
            policy.base_delay_s, policy.max_delay_s, policy.max_attempts)


def _cli_run_defaults(s: Settings):
    from autotrader.cli import _parser, _run_defaults

    args = _run_defaults(_parser().parse_args(["run"]), s)
    return args.broker, args.interval, args.initial_cash


def _gui_label(s: Settings):
    from autotrader.gui.app import Workstation

    return Workstation.t(SimpleNamespace(settings=s), "tab.research")


def _gui_log_level(s: Settings):
    from autotrader.gui.app import log_level

    return log_level(None, s)


def _reload_interval(s: Settings):
    from autotrader.config.store import ConfigStore

    store = ConfigStore(None)
    store._settings = s  # the settings the store serves (as after a load)
    return store._interval()


def _universe(tmp_root: Path):
    from autotrader import appdb
    from autotrader.research.wiring import research_universe
    from autotrader.universe import Watchlist

    (tmp_root / "stocks.txt").write_text("AAA\nBBB\n", encoding="utf-8")
    (tmp_root / "other.txt").write_text("CCC\n", encoding="utf-8")
    conn = appdb.connect(tmp_root / "workstation.db")
    Watchlist(conn).add("WWW")
    conn.close()

    def observe(s: Settings):
        app = dataclasses.replace(s.app, stocks_file=str(tmp_root / s.app.stocks_file))
        return research_universe(dataclasses.replace(s, app=app), tmp_root)
    return observe


def _polygon(s: Settings):
    from autotrader.research.wiring import polygon_source

    store = polygon_source(s, "key").store
    http = store.client._http
    return (http.base_url, http.rate_limiter.requests_per_minute, http.timeout,
            http.retry, str(store.cache_dir))


def _source_and_dates(s: Settings):
    from autotrader.research.wiring import source_and_dates

    ns = argparse.Namespace(source=None, start_date=None, end_date=None)
    source, dates = source_and_dates(ns, s.research.data, {"POLYGON_API_KEY": "k"}, NOW)
    return source, dates.start, dates.end


def _market_data(tmp_root: Path, source: str | None = None):
    from autotrader.research.cli import resolve_dates
    from autotrader.research.wiring import load_market_data

    csv = tmp_root / "bars.csv"
    days = pd.bdate_range("2025-01-02", periods=3)
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "ticker": "AAA", "open": 1.0,
                  "high": 1.1, "low": 0.9, "close": 1.0, "volume": 1000}).to_csv(csv,
                                                                                 index=False)

    def observe(s: Settings):
        ns = argparse.Namespace(data=None, sectors=None, state_dir=None)
        dates = resolve_dates(None, "2025-06-30", NOW)
        try:
            bars = load_market_data(source or s.research.data.source, s, dates, ns, {}).bars
        except DataError as e:  # the outcome of a missing csv_path is the error
            return type(e).__name__
        return bars.shape, float(bars["close"].sum())
    return observe


# -- research observations: the pipeline's stages on a small demo market ------------------

@functools.cache
def _market():
    from bma_models.data.demo import demo_market

    return demo_market(n_tickers=30, n_sessions=260, seed=3, end="2025-06-30")


def _pipeline(s: Settings, **kwargs):
    from bma_models.pipeline import ResearchPipeline

    return ResearchPipeline(s.research, rules=trading_rules(s), **kwargs)


def _dataset(s: Settings):
    from bma_models.factors import FACTORS

    market = _market()
    specs = [FACTORS[n] for n in ("mom_20", "vol_20", "reversal_1", "amihud_20")]
    X, y, relevance, meta = _pipeline(s)._dataset(market.bars, market.reference, specs)
    return (X.shape, round(float(np.nansum(np.abs(X.to_numpy()))), 6),
            round(float(np.nansum(y.to_numpy())), 9), tuple(np.unique(relevance)))


def _stacked_model(s: Settings):
    model = _pipeline(s)._stacked_model()
    return repr(model.get_params(deep=True))


def _regimes(s: Settings):
    return tuple(_pipeline(s)._regimes(_market())["state"])


@functools.cache
def _fusion_inputs():
    from bma_models.settings import REGIMES

    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2025-01-02", periods=40)
    index = pd.MultiIndex.from_product([dates, [f"T{i}" for i in range(8)]],
                                       names=["date", "ticker"])
    X = pd.DataFrame(rng.normal(size=(len(index), 4)), index=index,
                     columns=["mom_20", "reversal_1", "vol_20", "amihud_20"])
    ics = pd.DataFrame(0.01, index=dates, columns=X.columns)
    oos = pd.DataFrame({"stack": rng.normal(size=len(index))}, index=index).loc[dates[20]:]
    states = pd.Series([REGIMES[i % len(REGIMES)] for i in range(len(dates))], index=dates)
    return X, ics, oos, states


def _fused(s: Settings):
    from bma_models.factors import FACTORS

    X, ics, oos, states = _fusion_inputs()
    fusion, _ = _pipeline(s)._fusion(X, ics, oos, FACTORS)
    return tuple(np.round(fusion.fuse(oos["stack"], X, states).to_numpy(), 12))


@functools.cache
def _portfolio_inputs():
    from bma_models.portfolio import market_snapshot
    from bma_models.risk import FactorRiskModel, risk_inputs_from_bars

    market = _market()
    risk_model = FactorRiskModel().fit(**risk_inputs_from_bars(market.bars, market.reference))
    tickers = sorted(market.bars["ticker"].unique())
    date = market.bars["date"].max()
    rng = np.random.default_rng(2)
    index = pd.MultiIndex.from_product([[date], tickers], names=["date", "ticker"])
    fused = pd.Series(rng.normal(size=len(tickers)), index=index)
    stack = pd.Series(rng.normal(size=len(tickers)), index=index)
    snapshot = market_snapshot(market.bars, 14)
    return market, stack, fused, risk_model, snapshot


def _plan(s: Settings):
    from bma_models.portfolio import Holdings, trade_list

    market, stack, fused, risk_model, snapshot = _portfolio_inputs()
    held = sorted(market.bars["ticker"].unique())[:10]
    holdings = Holdings.from_weights({t: 0.09 for t in held}, source="test")
    recs, plan = _pipeline(s, holdings=holdings)._portfolio(market, stack, fused, risk_model,
                                                           snapshot)
    numeric = recs.select_dtypes("number").fillna(0.0)
    trades = trade_list(plan).select_dtypes("number").fillna(0.0)
    return (recs.shape, round(float(numeric.abs().to_numpy().sum()), 6),
            round(float(trades.abs().to_numpy().sum()), 6))


#: research.* base keys that let the small demo market plan a portfolio under the rulebook
PLAN_BASE = {"research.portfolio.top_n": 20, "capital.max_single_position_pct": 0.09,
             "signals.acceptance_threshold": 0.0, "execution.min_adv_usd": 0.0,
             "execution.min_expected_alpha_bps": -10000.0, "orders.min_order_value_usd": 0.0,
             "execution.allowed_volatility_buckets": ["low", "medium", "high"],
             "risk_controls.sector_exposure_limit": 1.0}


def _atr(s: Settings):
    from bma_models.portfolio import market_snapshot

    snapshot = market_snapshot(_market().bars, trading_rules(s).atr_window)
    return round(float(snapshot["atr"].sum()), 9)


def _dask(s: Settings):
    """What the research run asks Dask for (a recording stand-in for ``distributed``)."""
    from bma_models import cluster

    calls: list[tuple[str, Any]] = []

    class LocalCluster:
        def __init__(self, **kwargs):
            calls.append(("LocalCluster", sorted(kwargs.items(), key=str)))

        def close(self):
            pass

    class Client:
        def __init__(self, target, **kwargs):
            calls.append(("Client", type(target).__name__ if not isinstance(target, str)
                          else target, sorted(kwargs.items())))
            self.scheduler = SimpleNamespace(address="tcp://127.0.0.1:1")

        def wait_for_workers(self, n, timeout):
            calls.append(("wait", n, timeout))

        def close(self):
            pass

    fake = SimpleNamespace(LocalCluster=LocalCluster, Client=Client)
    original = cluster._import_distributed
    cluster._import_distributed = lambda: fake
    try:
        with cluster.dask_session(s.research.dask) as session:
            calls.append(("session", session is not None))
    finally:
        cluster._import_distributed = original
    return repr(calls)


def _dask_pipeline(s: Settings):
    """Block size of the factor tasks and the native-fit threshold on a cluster."""
    import bma_models.pipeline as pipeline

    seen = {}

    def blocks(bars, reference, specs, *, client, block_tickers, on_task):
        seen["block_tickers"] = block_tickers
        raise StopIteration

    session = SimpleNamespace(client=object(), joblib_backend="dask", n_threads=2)
    original = pipeline.compute_factors_by_blocks
    pipeline.compute_factors_by_blocks = blocks
    try:
        pipe = _pipeline(s, cluster=session)
        with pytest.raises(StopIteration):
            pipe._dataset(_market().bars, _market().reference, [])
        fitter = pipe._parallel(2)[0]["final_fitter"]
    finally:
        pipeline.compute_factors_by_blocks = original
    return seen["block_tickers"], fitter.keywords["min_rows"]


def _report_files(tmp_root: Path):
    from bma_models.report import run as report

    def observe(s: Settings):
        out = tmp_root / f"run{len(list(tmp_root.iterdir()))}"
        out.mkdir()
        market = _market()
        index = pd.MultiIndex.from_product([[market.bars["date"].max()], ["A"]],
                                           names=["date", "ticker"])
        result = SimpleNamespace(
            market=SimpleNamespace(label="x", bars=market.bars),
            recommendations=pd.DataFrame({"ticker": ["A"]}), plan=None,
            predictions_oos=pd.DataFrame({"stack": [0.1], "fold": [0], "label": [0.0]},
                                         index=index),
            factor_ic=pd.DataFrame(), regimes=pd.DataFrame(index=pd.Index([], name="date")),
            settings=s.research)
        run = SimpleNamespace(path=out, file=lambda name: out / name)
        original = report.trade_list
        report.trade_list = lambda plan: pd.DataFrame()
        try:
            report.write_tables(run, result)
        finally:
            report.trade_list = original
        return sorted(p.name for p in out.iterdir())
    return observe


# -- backtest observations: run_backtest as bma run --backtest calls it ----------------------

#: Rows of the demo market: the first scored session (enough history for the risk model
#: before it), and the sessions the names of :data:`GAP_TICKERS` have no bar
FIRST_SCORED = 220
GAP_ROWS = slice(241, 244)
GAP_TICKERS = 10


@functools.cache
def _backtest_inputs():
    """The demo market with 3 sessions without a bar for 10 names (held names among them:
    ``stale_after`` 2 removes them, 5 does not) and ``fused``/``stack`` random scores."""
    from bma_models.data.protocol import to_panel

    market = _market()
    dates = market.dates
    tickers = sorted(market.bars["ticker"].unique())[:GAP_TICKERS]
    bars = market.bars
    gap = bars["ticker"].isin(tickers) & bars["date"].isin(dates[GAP_ROWS])
    market = dataclasses.replace(market, bars=bars[~gap].reset_index(drop=True))
    present = to_panel(market.bars, "close").notna()
    rng = np.random.default_rng(4)
    columns = {}
    for name in ("fused", "stack"):
        values = pd.DataFrame(rng.standard_normal(present.shape), index=present.index,
                              columns=present.columns).where(present)
        columns[name] = values.iloc[FIRST_SCORED:].stack()
    predictions = pd.DataFrame(columns)
    predictions.index.names = ["date", "ticker"]
    return market, predictions


_BACKTESTS: dict[str, Any] = {}


def _backtest_run(s: Settings):
    """``run_backtest`` with the rulebook and order rule ``bma run --backtest`` builds (one
    run per distinct settings: the probes share the default's)."""
    from autotrader.research.wiring import trader_rule
    from bma_models.report.run import run_backtest

    key = repr(s)
    if key not in _BACKTESTS:
        market, predictions = _backtest_inputs()
        _BACKTESTS[key] = run_backtest(market, predictions, s.research, trading_rules(s),
                                       trader_rule(s))
    return _BACKTESTS[key]


def _backtest(s: Settings):
    """The simulated path: sessions, equity, the three costs, fills, rebalances, events."""
    result = _backtest_run(s)
    daily, trades = result.daily, result.trades
    return (result.initial_capital, tuple(str(d.date()) for d in daily.index),
            tuple(daily["equity"].round(4)),
            tuple(round(float(daily[c].sum()), 6) for c in ("commission", "spread_cost",
                                                               "impact_cost")),
            len(trades), round(float(trades["price"].abs().sum()), 6),
            tuple(result.rebalances["n_orders"]),
            tuple(zip(result.events["ticker"], result.events["event"])))


def _backtest_charts(tmp_root: Path):
    """The lines of the backtest charts (``write_backtest``; recorded, not rendered)."""
    from bma_models.report import backtest as report
    from bma_models.report import charts

    def observe(s: Settings):
        out = tmp_root / f"bt{len(list(tmp_root.iterdir()))}"
        out.mkdir()
        plotted: list = []

        class Figure(charts.Figure):
            def savefig(self, fname, **kwargs):  # record the lines instead of rendering
                plotted.extend(tuple(np.round(np.nan_to_num(np.asarray(line.get_ydata(),
                                                                         dtype=float)), 9))
                               for ax in self.axes for line in ax.get_lines())

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(charts, "Figure", Figure)
            report.write_backtest(out, _backtest_run(s), "t", "demo", True)
        return plotted
    return observe


def _backtest_enabled(tmp_root: Path):
    """Whether ``bma run`` (``run_and_report``) backtests (the pipeline a stand-in)."""
    from autotrader.research.wiring import trader_rule
    from bma_models.report import run as report

    def observe(s: Settings):
        calls = []
        result = SimpleNamespace(predictions_oos=pd.DataFrame(), dataset={})

        def stop(market, now=None):
            raise StopIteration

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(report, "ResearchPipeline",
                          lambda *args, **kwargs: SimpleNamespace(run=lambda market: result))
            patch.setattr(report, "run_backtest", lambda *args, **kwargs: calls.append(1))
            patch.setattr(report, "run_id_for", stop)
            with pytest.raises(StopIteration):
                report.run_and_report(_market(), s.research, tmp_root / "runs", argv=[],
                                      rules=trading_rules(s), order_rule=trader_rule(s))
        return calls
    return observe


# -- the table ----------------------------------------------------------------------------

def _probes(tmp_root: Path) -> dict[str, Probe]:
    bracket = {"execution.order_type": "bracket",
               "execution.allowed_volatility_buckets": ["low", "medium", "high"]}
    no_reserve = {"capital.cash_reserve_pct": 0.0, "capital.max_single_position_pct": 0.95}
    weights = {
        f"research.regime.weights.{regime}.{category}": Probe(0.9, _fused)
        for regime in ("Bull", "Bear", "High-vol", "Low-vol", "Normal")
        for category in ("momentum", "reversion", "volatility", "liquidity")}
    held_value = [Position("HELD", 940, 100.0)]
    held_recs = [_rec("HELD", price=100.0, weight=0.94, atr=1.0, sector="Energy"), _rec()]
    return {
        "app.language": Probe("zh", _gui_label),
        "app.log_level": Probe("DEBUG", _gui_log_level),
        "app.hot_reload_interval_s": Probe(5.0, _reload_interval),
        "app.universe_source": Probe("watchlist", _universe(tmp_root)),
        "app.stocks_file": Probe("other.txt", _universe(tmp_root)),
        **{f"connection.{key}": Probe(value, _ib) for key, value in {
            "host": "10.0.0.2", "port": 4002, "client_id": 7, "account_id": "DU1",
            "use_delayed_if_no_realtime": False, "connect_timeout_s": 3.0,
            "connect_attempts": 2, "reconnect_base_delay_s": 1.5,
            "reconnect_max_delay_s": 9.0}.items()},
        "trading.broker": Probe("ib", _cli_run_defaults),
        "trading.live_armed": Probe(True, _ib),
        "trading.cycle_interval_s": Probe(15.0, _cli_run_defaults),
        # a buy of 3 % of equity next to a 94 % holding: the reserve refuses it at 5 %
        "capital.cash_reserve_pct": Probe(0.01, _trade(recs=held_recs, positions=held_value,
                                                       cash=6_000.0),
                                          {"capital.max_portfolio_exposure": 1.0,
                                           "capital.max_single_position_pct": 0.95}),
        "capital.max_single_position_pct": Probe(0.05, _trade(recs=[_rec(weight=0.05)])),
        "capital.max_portfolio_exposure": Probe(1.0, _trade(recs=held_recs,
                                                            positions=held_value,
                                                            cash=6_000.0), no_reserve),
        "orders.min_order_value_usd": Probe(5_000.0, _trade(recs=[_rec(weight=0.02)])),
        "orders.daily_order_limit": Probe(25, _trade(recs=[_rec("AAA"), _rec("BBB")],
                                                     daily_orders=19)),
        "orders.per_cycle_order_limit": Probe(
            5, _trade(recs=[_rec(f"T{i:02d}", weight=0.02) for i in range(12)])),
        "signals.acceptance_threshold": Probe(0.4, _trade(recs=[_rec(percentile=0.5)])),
        "signals.max_run_age_sessions": Probe(5, _trade(run_age=3)),
        "sizing.per_trade_risk_pct": Probe(0.05, _trade(recs=[_rec(atr=10.0)]), bracket),
        "sizing.notional_round_lots": Probe(True, _trade(recs=[_rec(price=12.0)])),
        "risk_controls.sector_exposure_limit": Probe(
            0.5, _trade(recs=[_rec("HELD", price=100.0, weight=0.29, atr=1.0), _rec()],
                        positions=[Position("HELD", 290, 100.0)], cash=71_000.0),
            {"capital.max_single_position_pct": 0.3}),
        "risk_controls.max_correlation": Probe(
            0.99, _trade(recs=[_rec("HELD", price=100.0, weight=0.01, atr=1.0), _rec()],
                         positions=[Position("HELD", 10, 100.0)], cash=99_000.0,
                         returns=_correlated_history())),
        "risk_controls.correlation_window": Probe(30, _correlation_rows(tmp_root)),
        "risk_controls.max_daily_loss_pct": Probe(0.05, _trade(day_start=104_000.0)),
        "risk_controls.stops.enabled": Probe(False, _stops_enabled),
        "risk_controls.stops.atr_window": Probe(5, _atr),
        "risk_controls.stops.atr_multiplier": Probe(3.0, _stop()),
        "risk_controls.stops.trailing": Probe(False, _stop()),
        "risk_controls.stops.max_loss_pct": Probe(0.01, _stop(atr=10.0)),
        "risk_controls.stops.min_atr_multiplier": Probe(1.0, _stop(days_held=10.0)),
        "risk_controls.stops.decay_per_day": Probe(0.0, _stop()),
        "execution.min_adv_usd": Probe(1e5, _trade(recs=[_rec(adv=5e5)])),
        "execution.max_spread_bps": Probe(100.0, _trade(spread_bps=60.0)),
        "execution.min_expected_alpha_bps": Probe(1.0, _trade(recs=[_rec(alpha=0.0005)])),
        "execution.volatility_low_max": Probe(0.03, _trade(recs=[_rec(atr=1.25)]),
                                              {"execution.allowed_volatility_buckets": ["low"]}),
        "execution.volatility_medium_max": Probe(0.06, _trade(recs=[_rec(atr=2.75)])),
        "execution.allowed_volatility_buckets": Probe(["low", "medium", "high"],
                                                      _trade(recs=[_rec(atr=2.75)])),
        "execution.max_limit_offset_bps": Probe(50.0, _trade()),
        "execution.order_type": Probe("market", _trade()),
        "execution.take_profit_atr_multiple": Probe(5.0, _trade(), bracket),
        "execution.stop_atr_multiple": Probe(3.0, _trade(), bracket),
        "execution.min_seconds_between_orders": Probe(
            60.0, _trade(last_order_at={"AAA": NOW - dt.timedelta(seconds=100)})),
        "filters.min_price": Probe(5.0, _trade(recs=[_rec(price=3.0, atr=0.03)])),
        "filters.max_price": Probe(500.0, _trade(recs=[_rec(price=700.0, atr=7.0)])),
        "filters.trading_start": Probe("10:30", _trade()),
        "filters.trading_end": Probe("09:45", _trade()),
        "filters.timezone": Probe("Asia/Tokyo", _trade()),
        "polygon.base_url": Probe("https://api.polygon.io", _polygon),
        "polygon.requests_per_minute": Probe(100, _polygon),
        "polygon.timeout_s": Probe(5.0, _polygon),
        "polygon.max_retries": Probe(1, _polygon),
        "polygon.cache_dir": Probe("elsewhere", _polygon),
        "research.data.source": Probe("demo", _source_and_dates),
        "research.data.start_date": Probe("2024-01-02", _source_and_dates),
        "research.data.end_date": Probe("2025-06-30", _source_and_dates),
        "research.data.csv_path": Probe(str(tmp_root / "bars.csv"),
                                        _market_data(tmp_root, source="csv")),
        "research.data.demo_tickers": Probe(12, _market_data(tmp_root),
                                            {"research.data.source": "demo",
                                             "research.data.demo_sessions": 60}),
        "research.data.demo_sessions": Probe(70, _market_data(tmp_root),
                                             {"research.data.source": "demo",
                                              "research.data.demo_tickers": 10}),
        "research.data.demo_seed": Probe(43, _market_data(tmp_root),
                                         {"research.data.source": "demo",
                                          "research.data.demo_tickers": 10,
                                          "research.data.demo_sessions": 60}),
        "research.features.base_lag": Probe(2, _dataset),
        "research.features.safety_gap": Probe(2, _dataset),
        "research.features.winsor_lower": Probe(0.2, _dataset),
        "research.features.winsor_upper": Probe(0.8, _dataset),
        "research.features.sector_neutral": Probe(False, _dataset),
        "research.labels.horizon": Probe(3, _dataset),
        "research.labels.entry": Probe("close", _dataset, {"research.features.base_lag": 1}),
        "research.labels.relevance_buckets": Probe(3, _dataset),
        "research.cv.n_splits": Probe(3, _stacked_model),
        "research.cv.gap": Probe(7, _stacked_model),
        "research.cv.embargo": Probe(1, _stacked_model),
        "research.cv.test_group_size": Probe(20, _stacked_model),
        "research.cv.max_train_group_size": Probe(100, _stacked_model),
        "research.models.enabled": Probe(["ridge"], _stacked_model),
        "research.models.params": Probe({"lightgbm": {"num_leaves": 7}}, _stacked_model),
        "research.stacking.method": Probe("ic_weighted", _stacked_model),
        "research.stacking.meta_gap": Probe(12, _stacked_model),
        "research.stacking.meta_embargo": Probe(6, _stacked_model),
        "research.stacking.temperature": Probe(0.05, _stacked_model),
        "research.stacking.min_t": Probe(3.0, _stacked_model),
        "research.regime.w_ml": Probe(0.3, _fused),
        "research.regime.vol_window": Probe(5, _regimes),
        "research.regime.threshold_window": Probe(30, _regimes),
        **weights,
        **{f"research.portfolio.{key}": Probe(value, _plan, PLAN_BASE) for key, value in {
            "top_n": 15, "risk_aversion": 50.0, "turnover_penalty": 0.05,
            "max_turnover": 0.2, "adv_participation": 0.0006, "capital": 2e6,
            "trading_cost_bps": 40.0, "expected_ic": 0.2}.items()},
        "research.seed": Probe(7, _stacked_model),
        "research.jobs": Probe(1, _stacked_model),
        "research.joblib_backend": Probe("threading", _stacked_model),
        "research.dask.scheduler": Probe("local", _dask),
        **{f"research.dask.{key}": Probe(value, _dask, {"research.dask.scheduler": "local"})
           for key, value in {"workers": 3, "threads_per_worker": 2, "memory_limit": "1GiB",
                              "connect_timeout_s": 5.0, "allowed_failures": 1}.items()},
        "research.dask.factor_block_tickers": Probe(50, _dask_pipeline),
        "research.dask.native_fit_min_rows": Probe(10, _dask_pipeline),
        "research.report.csv_predictions": Probe(True, _report_files(tmp_root)),
        "research.backtest.enabled": Probe(True, _backtest_enabled(tmp_root)),
        **{f"research.backtest.{key}": Probe(value, _backtest, PLAN_BASE) for key, value in {
            "rebalance_every": 7, "fill_price": "close", "initial_capital": 250_000.0,
            # the first rebalance moves off the every-5-sessions grid of the first OOS date
            "start": _market().dates[FIRST_SCORED + 2].date(),
            "end": _market().dates[FIRST_SCORED + 30].date(),
            "score": "stack",  # another random column
            # quarterly: one fit over the 40 scored sessions; 5: one per rebalance
            "risk_refit_every": 5,
            # 3 sessions without a bar for names held: removed after 2, kept under 5
            "stale_after": 2,
            "costs.commission_per_share": 0.02, "costs.commission_min": 5.0,
            "costs.commission_max_pct": 0.0001,
            # 100 times the dollar-ADV edges: names move to less liquid buckets
            "costs.spread_adv_breaks": [1e8, 5e8, 2.5e9, 1e10, 5e10],
            "costs.half_spread_bps": [40.0, 20.0, 10.0, 5.0, 2.0, 1.0],
            "costs.impact_coefficient": 2.0, "costs.volatility_window": 5,
            "costs.adv_window": 5}.items()},
        # 40 backtested sessions: a 20-session rolling Sharpe ratio, none over 252
        "research.backtest.rolling_window": Probe(20, _backtest_charts(tmp_root), PLAN_BASE),
    }


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict[str, Probe]:
    root = tmp_path_factory.mktemp("probes")
    (root / "returns_recent.csv").write_text(_returns_csv(), encoding="utf-8")
    return _probes(root)


def _returns_csv() -> str:
    dates = pd.bdate_range("2025-01-02", periods=80).strftime("%Y-%m-%d")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(0, 0.01, (80, 2)), index=dates, columns=["AAA", "HELD"])
    return frame.to_csv(index_label="date")


def test_every_default_yaml_key_has_a_probe(probes):
    keys = set(_default_yaml_keys())
    assert sorted(keys - set(probes)) == [], "keys without a probe (add one, or remove the key)"
    assert sorted(set(probes) - keys) == [], "probes for keys that are not in default.yaml"


@pytest.mark.parametrize("key", _default_yaml_keys())
def test_the_key_changes_behaviour(probes, key):
    probe = probes[key]
    default = probe.observe(_settings(probe.base))
    changed = probe.observe(_settings({**probe.base, key: probe.value}))
    assert default != changed, f"{key}: {probe.value!r} changes nothing"
