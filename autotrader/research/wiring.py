"""Composition root of ``bma run``: config store, data source, pipeline, reports.

The research core (:mod:`bma_models`) is pure; this module, in the application
layer, is where it meets the outside world: the config store, the universe
file, the Polygon adapter and the tqdm progress bars.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotrader.research.cli import DateRange, resolve_dates, resolve_source
from bma_models.data.protocol import MarketData
from bma_models.errors import DataError

if TYPE_CHECKING:
    from bma_models.backtest import OrderRule
    from bma_models.rules import Rulebook

logger = logging.getLogger("bma")


def cli_overrides(ns: argparse.Namespace, source: str | None) -> dict[str, Any]:
    """Runtime overrides (highest config precedence) from the command line."""
    overrides: dict[str, Any] = {} if source is None else {"research.data.source": source}
    if getattr(ns, "top_n", None) is not None:
        overrides["research.portfolio.top_n"] = ns.top_n
    if getattr(ns, "seed", None) is not None:
        overrides["research.seed"] = ns.seed
    if ns.jobs is not None:
        overrides["research.jobs"] = ns.jobs
    if ns.data:
        overrides["research.data.csv_path"] = ns.data
    if getattr(ns, "dask_scheduler", None):
        overrides["research.dask.scheduler"] = ns.dask_scheduler
    if getattr(ns, "csv_predictions", None):
        overrides["research.report.csv_predictions"] = True
    if getattr(ns, "backtest", None):
        overrides["research.backtest.enabled"] = True
    return overrides


ALPHAS_FILE = "alphas_config.yaml"


def config_dir_of(ns: argparse.Namespace) -> Path | None:
    """Return the config directory of ``--config`` (None: the packaged defaults only).

    Raises
    ------
    bma_models.errors.DataError
        ``--config`` names no config directory.
    """
    from autotrader.config import ConfigError, resolve_config_dir

    try:
        return resolve_config_dir(ns.config)
    except ConfigError as e:
        raise DataError(f"--config {ns.config}: no such config directory") from e


def load_settings(ns: argparse.Namespace, source: str | None,
                  extra: dict[str, Any] | None = None):
    """Build the layered settings (defaults < files < DB < hot config < CLI overrides).

    ``extra`` overrides are applied on top of the command line's.
    """
    from autotrader.config import ConfigStore

    overrides = {**cli_overrides(ns, source), **(extra or {})}
    return ConfigStore(config_dir_of(ns), overrides=overrides).get()


def factor_set_for(config_dir: Path | None, research):
    """Return the run's factor set: ``<config_dir>/alphas_config.yaml`` or the packaged one.

    The copy in the config directory, when there is one, replaces the packaged
    ``bma_models/factors/alphas_config.yaml`` whole. The regime weights of
    ``research`` are checked against the set here, before any data is loaded.

    Raises
    ------
    bma_models.errors.SettingsError
        Invalid YAML, an unknown family or key (the message names the file and
        the key), or a regime weight on a category without a factor.
    """
    from bma_models.factors import DEFAULT_FACTOR_SET, load_factor_set
    from bma_models.pipeline import check_regime_weights

    path = None if config_dir is None else Path(config_dir) / ALPHAS_FILE
    factors = load_factor_set(path) if path is not None and path.is_file() \
        else DEFAULT_FACTOR_SET
    logger.info("factor set: %d factors from %s", len(factors.specs), factors.source)
    check_regime_weights(research.regime.weights, factors.specs)
    return factors


def load_market_data(source: str, settings, dates: DateRange, ns: argparse.Namespace,
                     environ: dict[str, str]) -> MarketData:
    """Load bars and reference data from the chosen source for the configured universe."""
    research = settings.research
    if source == "demo":
        from bma_models.data.demo import DemoSource

        data = research.data
        demo = DemoSource(n_tickers=data.demo_tickers, n_sessions=data.demo_sessions,
                          seed=data.demo_seed, end=str(dates.end.date()))
        return demo.load(None, dates.start, dates.end)
    if source == "csv":
        from bma_models.data.csv_source import CsvSource

        path = ns.data or research.data.csv_path
        if not path:
            raise DataError("--source csv needs --data PATH (or research.data.csv_path)")
        if not Path(path).exists():
            raise DataError(f"--data {path}: no such file or directory")
        if ns.sectors and not Path(ns.sectors).exists():
            raise DataError(f"--sectors {ns.sectors}: no such file")
        return CsvSource(path, ns.sectors).load(None, dates.start, dates.end)
    return _load_polygon(settings, dates, environ, getattr(ns, "state_dir", None))


def _load_polygon(settings, dates: DateRange, environ: dict[str, str],
                  state_dir: Path | None = None) -> MarketData:
    from autotrader.config.secrets import polygon_api_key
    from polygon.source import TqdmProgress

    key = polygon_api_key(environ)
    if not key:
        raise DataError("--source polygon needs POLYGON_API_KEY (or MASSIVE_API_KEY) set")
    tickers = research_universe(settings, state_dir)
    progress = TqdmProgress("polygon download")
    try:
        loaded = polygon_source(settings, key, progress).load(tickers, dates.start, dates.end)
    finally:
        progress.close()
    return MarketData(**loaded._asdict())


def polygon_source(settings, api_key: str, progress=None):
    """Build the Polygon source of the ``polygon`` section (URL, rate, timeout, retries, cache)."""
    from bma_models.data import calendar
    from polygon.source import PolygonSource

    poly = settings.polygon
    return PolygonSource.from_config(
        calendar=calendar, base_url=poly.base_url, rate_limit_per_min=poly.requests_per_minute,
        cache_dir=poly.cache_dir, timeout_s=poly.timeout_s, max_retries=poly.max_retries,
        api_key=api_key, progress=progress)


def research_universe(settings, state_dir: Path | None = None) -> list[str]:
    """Return the tickers of ``app.universe_source``.

    The list comes from :func:`autotrader.universe.configured_universe`.

    The watchlist lives in the app database ``<state_dir>/workstation.db``
    (``state_dir`` default: ``$BMA_STATE_DIR`` or ``./state``), as in the GUI.
    """
    from autotrader.appdb import default_state_dir
    from autotrader.universe import configured_universe

    return configured_universe(settings.app.universe_source, settings.app.stocks_file,
                               Path(state_dir or default_state_dir()) / "workstation.db")


def portfolio_inputs(ns: argparse.Namespace, settings):
    """Return the rulebook of ``settings`` and the book of ``--holdings`` / ``--state-dir``.

    Returns ``(rules, holdings)``; holdings is None for cash.
    """
    from autotrader.appdb import default_state_dir
    from autotrader.config import trading_rules
    from autotrader.services.book import resolve_holdings

    state_dir = Path(getattr(ns, "state_dir", None) or default_state_dir())
    holdings = resolve_holdings(getattr(ns, "holdings", None), state_dir)
    if holdings is not None:
        logger.info("book: %s", holdings.source)
    return trading_rules(settings), holdings


def source_and_dates(ns: argparse.Namespace, data, environ: dict[str, str],
                     now: dt.datetime) -> tuple[str, DateRange]:
    """Return the run's data source and session range: the command line, else ``research.data``.

    ``--source`` wins over ``research.data.source`` (``auto``: Polygon when a key
    is set, else the demo market); ``--start-date``/``--end-date`` win over
    ``research.data.start_date``/``end_date`` (null end: the last completed
    NYSE session).
    """
    configured = None if data.source == "auto" else data.source
    source = resolve_source(ns.source or configured, environ)
    start = ns.start_date or (data.start_date and data.start_date.isoformat())
    end = ns.end_date or (data.end_date and data.end_date.isoformat())
    dates = resolve_dates(start, end, now)
    if dates.clamped_from is not None:
        logger.warning("end date %s is not a completed NYSE session yet: clamped to %s (T-1)",
                       dates.clamped_from.date(), dates.end.date())
    return source, dates


def run_command(ns: argparse.Namespace, environ: dict[str, str],
                now: dt.datetime | None = None) -> Path:
    """Execute ``bma run`` or ``bma backtest``; returns the run directory."""
    if ns.command == "backtest":
        return backtest_command(ns, environ)
    now = now or dt.datetime.now(dt.timezone.utc)
    configured = load_settings(ns, ns.source).research.data
    source, dates = source_and_dates(ns, configured, environ, now)
    settings = load_settings(ns, source)
    factors = factor_set_for(config_dir_of(ns), settings.research)
    rules, holdings = portfolio_inputs(ns, settings)
    load_start = time.perf_counter()
    market = load_market_data(source, settings, dates, ns, environ)
    load_s = time.perf_counter() - load_start
    if market.bars.empty:
        raise DataError(f"no bars from source {source!r} between {dates.start} and {dates.end}")
    for note in market.notes:
        logger.info("data: %s", note)
    return run_research(market, settings.research, Path(ns.output), argv=_argv(ns),
                        progress=_tqdm_progress(), load_s=load_s, rules=rules,
                        holdings=holdings, factors=factors, order_rule=trader_rule(settings))


def trader_rule(settings):
    """Return the trader's order sizing as the backtest's order rule.

    The rule applies lot rounding, the position cap, the cash reserve and the
    minimum order value (:mod:`autotrader.services.backtest_orders`).
    """
    from autotrader.services.backtest_orders import trader_order_rule

    return trader_order_rule(settings)


def backtest_command(ns: argparse.Namespace, environ: dict[str, str]) -> Path:
    """Execute ``bma backtest``: replay a committed run and add the backtest to it.

    The market is loaded as the run loaded it (source, file, dates and demo
    parameters from its ``manifest.json`` unless given on the command line;
    the data hash must match); every other setting -- the rulebook, portfolio,
    backtest, costs, the trader's sizing -- comes from the current configuration.
    The simulated book starts in cash (``--holdings`` does not apply).
    """
    import json

    from autotrader.config import trading_rules
    from bma_models.report.run import backtest_and_report
    from bma_models.report.rundir import complete_runs

    run_dir = Path(ns.run) if ns.run else next(iter(complete_runs(ns.output)[-1:]), None)
    if run_dir is None or not (run_dir / "manifest.json").is_file():
        raise DataError(f"no complete run to backtest ({ns.run or ns.output})")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    source = ns.source or manifest.get("source", "demo")
    overrides = _backtest_overrides(ns, manifest, source)
    settings = load_settings(ns, source, overrides)
    data = manifest.get("data") or {}
    dates = DateRange(_timestamp(data.get("first_date")), _timestamp(data.get("last_date")))
    ns.data = ns.data or settings.research.data.csv_path
    ns.sectors = ns.sectors or _run_argument(manifest, "sectors")
    market = load_market_data(source, settings, dates, ns, environ)
    risk_cache: dict = {}  # the point-in-time risk models, reused by --attribution
    block = backtest_and_report(run_dir, market, settings.research, trading_rules(settings),
                                trader_rule(settings), progress=_tqdm_progress(),
                                risk_cache=risk_cache)
    logger.info("backtest of %s: Sharpe %s, max drawdown %s, turnover %s/yr, cost drag %s/yr "
                "(equal-weight: Sharpe %s, max drawdown %s)", run_dir.name,
                _fmt(block["sharpe"]), _fmt(block["max_drawdown"]),
                _fmt(block["turnover_annual"]), _fmt(block["cost_drag_annual"]),
                _fmt(block["benchmark"]["sharpe"]), _fmt(block["benchmark"]["max_drawdown"]))
    if getattr(ns, "attribution", False):
        _attribution(ns, source, settings, overrides, run_dir, market, risk_cache)
    return run_dir


def _attribution(ns: argparse.Namespace, source: str, settings, overrides: dict[str, Any],
                 run_dir: Path, market, risk_cache: dict) -> None:
    """``bma backtest --attribution``: the run's backtest once per rule switched off.

    ``overrides`` are the backtest's own (on top of which each rule is relaxed).
    """
    from autotrader.config import relaxed_rules, trading_rules
    from bma_models.report.run import attribution_and_report

    variants: dict[str, tuple[Rulebook, OrderRule, dict[str, Any]]] = {
        "as configured": (trading_rules(settings), trader_rule(settings), {})}
    for check, relaxed in relaxed_rules(settings).items():
        variant = load_settings(ns, source, {**overrides, **relaxed})
        variants[f"without {check}"] = (trading_rules(variant), trader_rule(variant), relaxed)
    table = attribution_and_report(run_dir, market, settings.research, variants,
                                   progress=_tqdm_progress(), risk_cache=risk_cache)
    for row in table.itertuples(index=False):
        logger.info("attribution %-28s annual return %s (%+.4f), Sharpe %s (%+.3f), "
                    "turnover %s/yr, avg %.1f names", row.variant, _fmt(row.annual_return),
                    row.delta_annual_return, _fmt(row.sharpe), row.delta_sharpe,
                    _fmt(row.turnover_annual), row.avg_holdings)


def _backtest_overrides(ns: argparse.Namespace, manifest: dict, source: str) -> dict[str, Any]:
    run_data = (manifest.get("settings") or {}).get("data") or {}
    overrides: dict[str, Any] = {"research.backtest.enabled": True}
    if source == "demo":  # the run's demo market, whatever the config says now
        for key in ("demo_tickers", "demo_sessions", "demo_seed"):
            if key in run_data:
                overrides[f"research.data.{key}"] = run_data[key]
    if not ns.data and run_data.get("csv_path"):
        overrides["research.data.csv_path"] = run_data["csv_path"]
    for flag, key in (("start", "start"), ("end", "end"), ("rebalance_every", "rebalance_every"),
                      ("fill_price", "fill_price"), ("score", "score")):
        value = getattr(ns, flag, None)
        if value is not None:
            overrides[f"research.backtest.{key}"] = value
    return overrides


def _run_argument(manifest: dict, name: str) -> str | None:
    """Return a ``bma run`` argument as the run's manifest recorded it (``name=value``)."""
    prefix = f"{name}="
    return next((item[len(prefix):] for item in manifest.get("command_line", [])
                 if isinstance(item, str) and item.startswith(prefix)), None)


def _timestamp(text: str | None):
    import pandas as pd

    return None if text is None else pd.Timestamp(text)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run_research(market: MarketData, research, output_root: Path, argv: list[str],
                 progress=None, cancel=None, load_s: float = 0.0, rules=None,
                 holdings=None, factors=None, order_rule=None) -> Path:
    """Run the pipeline and write the run directory, on Dask when ``research.dask`` says so.

    The one place (CLI and GUI job) where a Dask session is opened around the
    run: with ``research.dask.scheduler`` null this is exactly
    :func:`bma_models.report.run.run_and_report`; otherwise a
    :class:`~bma_models.cluster.DaskSession` is opened first, handed to the
    pipeline, and closed (a local cluster shut down) when the run ends.
    Cluster failures surface as :class:`~bma_models.cluster.ClusterError`.
    ``rules`` and ``holdings`` (see :func:`portfolio_inputs`) shape the portfolio;
    ``factors`` is the factor set (:func:`factor_set_for`; None: the packaged one).
    ``order_rule`` (:func:`trader_rule`) is needed when ``research.backtest.enabled``.
    """
    from bma_models.cluster import dask_session
    from bma_models.report.run import run_and_report

    book = {"rules": rules, "holdings": holdings, "factors": factors}
    with dask_session(research.dask) as session:
        if session is None:
            return run_and_report(market, research, output_root, argv=argv, progress=progress,
                                  cancel=cancel, load_s=load_s, order_rule=order_rule,
                                  **book)
        logger.info("research on Dask: %r", session)
        return run_and_report(market, research, output_root, argv=argv, progress=progress,
                              cancel=cancel, load_s=load_s, cluster=session,
                              order_rule=order_rule, **book)


def _tqdm_progress():
    from tqdm import tqdm

    from bma_models.pipeline import STAGES

    bar = tqdm(total=len(STAGES), desc="bma run", unit="stage")
    bar.set_postfix_str(f"running {STAGES[0]}")
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        # per-task progress ("train:tasks": one per fold x model fit; "features:tasks" on
        # Dask) gets its own bar with tqdm's elapsed time and ETA
        if ":" in stage:
            _task_bar(tasks, stage, done, total)
            return
        bar.update(done - bar.n)
        if done >= total:
            bar.set_postfix_str("done")
            bar.close()
        else:  # the stage reported is finished: name the one running now
            bar.set_postfix_str(f"running {STAGES[done]}")

    return progress


def _task_bar(bars: dict[str, Any], stage: str, done: int, total: int) -> None:
    from tqdm import tqdm

    if stage not in bars:
        bars[stage] = tqdm(total=total, desc=stage.replace(":tasks", " (fold x model)")
                           if stage.startswith("train") else stage, unit="task", leave=False)
    task_bar = bars[stage]
    task_bar.update(done - task_bar.n)
    if done >= total:
        task_bar.close()
        del bars[stage]


def _argv(ns: argparse.Namespace) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(vars(ns).items()) if v is not None]
