"""Run the pipeline and write its run directory (CSV, JSON, Excel, charts, manifest) atomically."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bma_models.backtest import (
    Backtest,
    BacktestResult,
    MarketPanels,
    OrderRule,
    backtest_metrics,
    backtest_panels,
)
from bma_models.data.protocol import MarketData, to_panel
from bma_models.errors import DataError
from bma_models.factors import FactorSet
from bma_models.pipeline import ResearchPipeline, ResearchResult
from bma_models.portfolio import Holdings, trade_list
from bma_models.report.backtest import backtest_document, write_backtest, write_json_atomic
from bma_models.report.charts import write_charts
from bma_models.report.excel import add_attribution_sheet, add_backtest_sheet, write_workbook
from bma_models.report.manifest import build_manifest, data_fingerprint, file_inventory
from bma_models.report.predictions import read_predictions, write_predictions
from bma_models.report.rundir import RunDirectory, clean_stale_staging
from bma_models.rules import Rulebook
from bma_models.settings import ResearchSettings

logger = logging.getLogger(__name__)

#: Sessions of daily returns written to ``returns_recent.csv`` (the trader's
#: ``risk_controls.correlation_window`` reads at most this many)
RECENT_RETURN_SESSIONS = 250
#: The workbook's stable name (what the GUI opens); demo runs also get :data:`DEMO_WORKBOOK`.
WORKBOOK = "recommendations.xlsx"
DEMO_WORKBOOK = "recommendations_DEMO.xlsx"
#: ``bma backtest --attribution``: one row per rulebook variant (:func:`rule_attribution`)
ATTRIBUTION_FILE = "backtest_attribution.csv"
#: The statistics of each variant (keys of the ``backtest`` block) the attribution compares.
ATTRIBUTION_STATS = ("annual_return", "sharpe", "max_drawdown", "turnover_annual",
                     "cost_drag_annual", "information_ratio")
ATTRIBUTION_NOTE = ("Each row backtests the same scores with ONE rule relaxed (the others as "
                    "configured); delta_* = row minus the 'as configured' row. Rules interact: "
                    "the rows do not add up, and a rule that costs return may still cut risk.")


def chart_title(market: MarketData) -> str:
    """First line of every chart title: the data source, ``DEMO`` first for demo data."""
    demo = market.is_demo and "DEMO" not in market.label
    return f"DEMO - {market.label}" if demo else market.label


def run_id_for(market: MarketData, now: dt.datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<source>``, with ``-DEMO`` for synthetic data."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{market.source}" + ("-DEMO" if market.is_demo else "")


def run_and_report(market: MarketData, settings: ResearchSettings, output_root: Path,
                   argv: list[str], progress=None, cancel=None, load_s: float = 0.0,
                   cluster=None, rules: Rulebook | None = None,
                   holdings: Holdings | None = None,
                   factors: FactorSet | None = None,
                   order_rule: OrderRule | None = None) -> Path:
    """Run the research pipeline on ``market`` and write ``output_root/<run-id>/``.

    ``cluster`` is an open :class:`~bma_models.cluster.DaskSession` or None;
    ``rules`` the trader's rulebook and ``holdings`` the current book (see
    :class:`~bma_models.pipeline.ResearchPipeline`); ``factors`` the factor set
    (None: the packaged ``alphas_config.yaml``), recorded as ``factor_set`` in
    ``manifest.json`` and ``metrics.json`` (``dataset.factor_set``).
    With ``settings.backtest.enabled`` the strategy is also backtested over the
    OOS span (``order_rule``: the trader's sizing, required then) and the run
    directory gets the backtest files, the ``backtest`` metrics block and the
    workbook's Backtest sheet.
    """
    started = time.perf_counter()
    clean_stale_staging(output_root)
    backtest_rule: OrderRule | None = None  # None: no backtest
    if settings.backtest.enabled:
        if order_rule is None:
            raise DataError("research.backtest.enabled needs the trader's order rule (run it "
                            "through bma run --backtest)")
        backtest_rule = order_rule
    result = ResearchPipeline(settings, progress=progress, cancel=cancel, cluster=cluster,
                              rules=rules, holdings=holdings, factors=factors).run(market)
    backtest = None
    if backtest_rule is not None:
        backtest = run_backtest(market, result.predictions_oos, settings, rules, backtest_rule,
                                result.dataset, progress)
    report_start = time.perf_counter()
    run_id = run_id_for(market)
    with RunDirectory(output_root, run_id) as run:
        write_tables(run, result)
        write_charts(run.path, result, chart_title(market))
        timings = {"load": round(load_s, 3), **result.timings_s}
        if backtest is not None:
            timings["backtest"] = round(sum(backtest.timings_s.values()), 3)
        document = metrics_document(run_id, result, timings)
        if backtest is not None:
            document["backtest"] = backtest_document(backtest, market.label, market.is_demo)
            write_backtest(run.path, backtest, chart_title(market), market.label,
                           market.is_demo)
        manifest = build_manifest(run_id, market.source, settings.to_dict(), market.bars,
                                  settings.seed, argv)
        manifest["is_demo"] = market.is_demo
        manifest["source_label"] = market.label
        manifest["data_notes"] = list(market.notes)
        manifest["holdings"] = document["portfolio"]["holdings"]
        manifest["factor_set"] = result.dataset["factor_set"]
        write_workbook(run.file(WORKBOOK), result, document, manifest,
                       backtest_daily=None if backtest is None else backtest.daily)
        if market.is_demo:
            shutil.copyfile(run.file(WORKBOOK), run.file(DEMO_WORKBOOK))
        timings["report"] = round(time.perf_counter() - report_start, 3)
        timings["total"] = round(time.perf_counter() - started + load_s, 3)
        run.write_json("metrics.json", document)
        manifest["files"] = file_inventory(run.path)
        run.write_json("manifest.json", manifest)
    return run.final_path


def run_backtest(market: MarketData | MarketPanels, predictions: pd.DataFrame,
                 settings: ResearchSettings, rules: Rulebook | None, order_rule: OrderRule,
                 dataset: dict[str, Any] | None = None, progress=None,
                 risk_cache: dict | None = None) -> BacktestResult:
    """Backtest ``settings.backtest.score`` of ``predictions`` on ``market``.

    The backtest (:class:`bma_models.backtest.Backtest`) holds the portfolio
    ``bma run`` makes: ``rules`` (None: the packaged defaults, as the pipeline)
    and ``settings.portfolio``. ``dataset`` is the run's dataset block (feature
    lag, label horizon and entry), recorded with the result with the rulebook.
    ``risk_cache``: see :class:`~bma_models.backtest.Backtest` (backtests of
    one market that differ in rules only).
    """
    dataset = dataset or {}
    rules = rules or Rulebook()
    s = settings.backtest
    horizon = int(dataset.get("horizon") or settings.labels.horizon)
    conventions = {
        "score": s.score, "score_known": "after the close of its date",
        "fill": f"the next session's {s.fill_price}",
        "feature_lag": dataset.get("lag"), "label_horizon": horizon,
        "label_entry": dataset.get("label_entry", "close"),
        "portfolio": "bma_models.portfolio.plan_portfolio from the simulated book",
        "rules": dataclasses.asdict(rules),
    }
    backtest = Backtest(s, settings.portfolio, rules, order_rule, horizon=horizon,
                        n_jobs=settings.jobs, progress=progress, risk_cache=risk_cache)
    return backtest.run(market, predictions, conventions=conventions)


def rule_attribution(market: MarketData, predictions: pd.DataFrame,
                     settings: ResearchSettings,
                     variants: Mapping[str, tuple[Rulebook, OrderRule, dict[str, Any]]],
                     dataset: dict[str, Any] | None = None, progress=None,
                     risk_cache: dict | None = None) -> pd.DataFrame:
    """Backtest the same scores once per rulebook: what each rule costs or earns.

    Parameters
    ----------
    market, predictions, settings, dataset
        As :func:`run_backtest`; every variant backtests the same scores on the
        same market panels, with the same point-in-time risk models (fitted once).
    variants : mapping of name to ``(rules, order_rule, relaxed)``
        The first is the reference (the rules as configured); each other one
        relaxes one rule (``relaxed``: the configuration keys it changed and
        their values, recorded in the table).

    Returns
    -------
    DataFrame
        One row per variant: ``variant``, ``relaxed``, :data:`ATTRIBUTION_STATS`
        and their differences from the reference row (``delta_<stat>``).
        Rules interact: a rule's row is the effect of relaxing it alone, and the
        rows do not add up.
    """
    atr_window = next(iter(variants.values()))[0].atr_window
    panels = backtest_panels(market, settings.backtest, atr_window)
    cache: dict = {} if risk_cache is None else risk_cache
    rows = []
    for i, (name, (rules, order_rule, relaxed)) in enumerate(variants.items()):
        if rules.atr_window != atr_window:
            raise DataError(f"attribution variant {name!r} changes the ATR window, "
                            "which the shared market panels fix")
        result = run_backtest(panels, predictions, settings, rules, order_rule, dataset,
                              risk_cache=cache)
        stats = backtest_metrics(result)
        rows.append({"variant": name,
                     "relaxed": "; ".join(f"{k} = {json.dumps(v)}" for k, v in relaxed.items()),
                     **{key: stats[key] for key in ATTRIBUTION_STATS},
                     "avg_holdings": float(result.daily["holdings_count"].iloc[1:].mean())})
        if progress is not None:
            progress("backtest:attribution", i + 1, len(variants))
    table = pd.DataFrame(rows)
    for key in (*ATTRIBUTION_STATS, "avg_holdings"):
        table[key] = pd.to_numeric(table[key], errors="coerce")  # a None statistic is NaN
        table[f"delta_{key}"] = table[key] - table[key].iloc[0]
    return table


def backtest_and_report(run_dir: str | Path, market: MarketData, settings: ResearchSettings,
                        rules: Rulebook, order_rule: OrderRule,
                        progress=None, risk_cache: dict | None = None) -> dict[str, Any]:
    """Backtest a committed run and add the backtest to its directory (``bma backtest``).

    The market must be the one the run was made on (its content hash is
    checked against ``manifest.json``). Writes the backtest files, replaces
    the ``backtest`` block of ``metrics.json``, the Backtest sheet of the
    workbook(s) and the manifest's file inventory, each file atomically.

    Returns
    -------
    dict
        The ``backtest`` metrics block.

    Raises
    ------
    bma_models.errors.DataError
        No such run, or market data other than the run's.
    """
    run_dir = Path(run_dir)
    manifest, metrics, predictions = _committed_run(run_dir, market)
    result = run_backtest(market, predictions, settings, rules, order_rule,
                          metrics.get("dataset"), progress, risk_cache=risk_cache)
    block = backtest_document(result, market.label, market.is_demo)
    write_backtest(run_dir, result, chart_title(market), market.label, market.is_demo)
    for name in (WORKBOOK, DEMO_WORKBOOK):
        if (run_dir / name).is_file():
            add_backtest_sheet(run_dir / name, block, result.daily)
    metrics["backtest"] = block
    _commit_metrics(run_dir, manifest, metrics)
    return block


def attribution_and_report(run_dir: str | Path, market: MarketData,
                           settings: ResearchSettings,
                           variants: Mapping[str, tuple[Rulebook, OrderRule, dict[str, Any]]],
                           progress=None, risk_cache: dict | None = None) -> pd.DataFrame:
    """Rule attribution of a committed run (``bma backtest --attribution``), written to it.

    Writes :data:`ATTRIBUTION_FILE` and the ``backtest_attribution`` block of
    ``metrics.json`` (``{"rows": [...], "note": ...}``) and refreshes the
    manifest's file inventory. See :func:`rule_attribution`; ``risk_cache`` is
    the one :func:`backtest_and_report` filled for the same market, if any.

    Raises
    ------
    bma_models.errors.DataError
        No such run, or market data other than the run's.
    """
    run_dir = Path(run_dir)
    manifest, metrics, predictions = _committed_run(run_dir, market)
    table = rule_attribution(market, predictions, settings, variants,
                             metrics.get("dataset"), progress, risk_cache=risk_cache)
    tmp = run_dir / (ATTRIBUTION_FILE + ".tmp")
    table.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(run_dir / ATTRIBUTION_FILE)
    metrics["backtest_attribution"] = {
        "source_label": market.label, "is_demo": bool(market.is_demo),
        "score": settings.backtest.score, "note": ATTRIBUTION_NOTE,
        "rows": [{k: _jsonable(v) for k, v in row.items()}
                 for row in table.to_dict(orient="records")]}
    for name in (WORKBOOK, DEMO_WORKBOOK):
        if (run_dir / name).is_file():
            add_attribution_sheet(run_dir / name, table, ATTRIBUTION_NOTE, market.label,
                                  market.is_demo)
    _commit_metrics(run_dir, manifest, metrics)
    return table


def _committed_run(run_dir: Path, market: MarketData) -> tuple[dict, dict, pd.DataFrame]:
    """Manifest, metrics and OOS predictions of a complete run made on ``market``'s data."""
    manifest_path, metrics_path = run_dir / "manifest.json", run_dir / "metrics.json"
    if not manifest_path.is_file() or not metrics_path.is_file():
        raise DataError(f"{run_dir}: not a complete run directory (no manifest.json/metrics.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    expected = (manifest.get("data") or {}).get("sha256")
    actual = data_fingerprint(market.bars)["sha256"]
    if expected and expected != actual:
        raise DataError(f"{run_dir.name}: the market data differs from the run's (sha256 "
                        f"{actual[:12]}... vs {expected[:12]}... in manifest.json): load the "
                        "same source, file and dates")
    predictions, _ = read_predictions(run_dir)
    return manifest, metrics, predictions


def _commit_metrics(run_dir: Path, manifest: dict, metrics: dict) -> None:
    write_json_atomic(run_dir / "metrics.json", metrics)
    manifest["files"] = file_inventory(run_dir)
    write_json_atomic(run_dir / "manifest.json", manifest)


def write_tables(run: RunDirectory, result: ResearchResult) -> None:
    """Write the run's CSV tables and its predictions into ``run``.

    The files are ``recommendations.csv`` (with the source label), ``trades.csv``
    (:func:`~bma_models.portfolio.trade_list` of the plan), the out-of-sample
    predictions (:func:`~bma_models.report.predictions.write_predictions`),
    ``factor_ic.csv``, ``regimes.csv`` and ``returns_recent.csv``
    (:func:`recent_returns`).
    """
    source = result.market.label
    recs = result.recommendations.copy()
    recs["source"] = source
    recs.to_csv(run.file("recommendations.csv"), index=False, float_format="%.10g")
    trades = trade_list(result.plan)
    trades.to_csv(run.file("trades.csv"), index=False, float_format="%.10g")
    # metrics.json is recomputed from these files by a test
    write_predictions(result.predictions_oos, run.path,
                      csv=result.settings.report.csv_predictions)
    result.factor_ic.to_csv(run.file("factor_ic.csv"), index=False, float_format="%.10g")
    regimes = result.regimes.reset_index()
    regimes.to_csv(run.file("regimes.csv"), index=False, float_format="%.10g")
    recent = recent_returns(result.market.bars)
    recent.index = recent.index.strftime("%Y-%m-%d")
    recent.to_csv(run.file("returns_recent.csv"), index_label="date", float_format="%.10g")


def recent_returns(bars: pd.DataFrame, sessions: int = RECENT_RETURN_SESSIONS) -> pd.DataFrame:
    """Close-to-close returns of the last ``sessions`` sessions, dates x tickers (sorted).

    A return needs the close of the session and of the one before it: a
    ticker without a bar on either is NaN there (no filling across gaps).
    Only data up to the last session of ``bars`` is used.
    """
    closes = to_panel(bars, "close").iloc[-(sessions + 1):]
    returns = closes.pct_change(fill_method=None).iloc[1:]
    returns.columns.name = None
    return returns


def metrics_document(run_id: str, result: ResearchResult, timings: dict[str, float]) -> dict:
    """``metrics.json`` in the documented schema (see docs/reports.md)."""
    market, s, portfolio = result.market, result.settings, result.portfolio
    dates = market.bars["date"]
    oos = {name: {"ic": _num(m["ic_mean"]), "rank_ic": _num(m["rank_ic_mean"]),
                  "icir": _num(m["icir"]), "rank_icir": _num(m["rank_icir"]),
                  "hit_rate": _num(m["hit_rate"]),
                  "n_dates": m["n_dates"], "long_short_mean": _num(m["long_short_mean"]),
                  "top_turnover_mean": _num(m["top_turnover_mean"]),
                  "rank_ic_by_fold": {str(k): _num(v) for k, v in
                                      m.get("rank_ic_by_fold", {}).items()}}
           for name, m in result.metrics.items()}
    plan = result.plan
    held = plan.weights[plan.weights > 0]
    return {
        "run": {"id": run_id, "source": market.source, "source_label": market.label,
                "is_demo": market.is_demo,
                "start": str(dates.min().date()), "end": str(dates.max().date()),
                "n_tickers": int(market.bars["ticker"].nunique()),
                "n_dates": int(dates.nunique()),
                "prediction_date": str(result.prediction_date.date()),
                "horizon": s.labels.horizon, "label_entry": s.labels.entry,
                "feature_lag": int(result.dataset["lag"])},
        "oos": oos,
        "stack_weights": {str(k): _num(v) for k, v in result.stack_weights.items()},
        "canaries": _jsonable(result.canaries),
        "baselines": _jsonable(result.baselines),
        "portfolio": {"n_positions": int(len(held)), "invested": _num(held.sum()),
                      "solver": portfolio.solver, "status": portfolio.status,
                      "fallback": portfolio.fallback,
                      "ex_ante_vol": _num(result.risk["ex_ante_vol_annual"]),
                      "turnover": _num(plan.turnover),
                      "capital": _num(plan.capital), "capital_source": plan.capital_source,
                      "holdings": plan.holdings_source,
                      "n_current": int((plan.current > 0).sum()),
                      "current_invested": _num(plan.current.sum()),
                      "n_trades": int((plan.trades.abs() > 0).sum()),
                      "trading_cost_bps": _num(plan.trading_cost_bps),
                      "estimated_cost_usd": _num(plan.estimated_cost_usd),
                      "refused": _refusals(plan.screens),
                      "small_trades_removed": len(portfolio.small_trades),
                      "notes": list(plan.notes),
                      "rules": _jsonable(dataclasses.asdict(plan.rules))},
        "dataset": _jsonable(result.dataset),
        "timings_s": timings,
    }


def _refusals(screens: pd.Series) -> dict[str, int]:
    checks = screens[screens != ""].str.split(":", n=1).str[0].value_counts()
    return {str(k): int(v) for k, v in checks.items()}


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float):
        return _num(value)
    return value
