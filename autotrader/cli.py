"""``autotrader run --broker paper [--once | --loop --interval 60]``: the headless trader.

This is the composition root of the trader: it reads the configuration store
(``--config-dir``), maps its sections onto the engine's parameter records,
builds the broker, the journal and the runner, and runs cycles.

With ``--broker paper`` prices are simulated (paper/sim): each symbol trades
around the run's ``last_close`` with a small deterministic intraday drift.
``--sim-time`` replaces the wall clock with a simulated one that starts at the
given instant and advances by ``--interval`` per cycle (replays and tests).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

from autotrader.appdb import default_state_dir
from autotrader.broker.paper import PaperBroker
from autotrader.config import ConfigError, ConfigStore, Settings
from autotrader.domain.errors import TraderError
from autotrader.domain.records import Quote
from autotrader.engine.limits import PlannerSettings, RiskLimits, SizingSettings, StopSettings
from autotrader.journal import Journal
from autotrader.services.recommendations import (
    RecommendationSet,
    latest_run_dir,
    load_recommendations,
)
from autotrader.services.trading import TraderSettings, TradingRunner
from bma_models.log import configure_logging

logger = logging.getLogger(__name__)


def trader_settings(settings: Settings) -> TraderSettings:
    """Map the configuration sections onto the engine's parameter records."""
    capital, orders, sizing = settings.capital, settings.orders, settings.sizing
    controls, filters = settings.risk_controls, settings.filters
    stops = controls.stops
    return TraderSettings(
        risk=RiskLimits(
            cash_reserve_pct=capital.cash_reserve_pct,
            max_single_position_pct=capital.max_single_position_pct,
            max_portfolio_exposure=capital.max_portfolio_exposure,
            min_order_value_usd=orders.min_order_value_usd,
            daily_order_limit=orders.daily_order_limit,
            per_cycle_order_limit=orders.per_cycle_order_limit,
            acceptance_threshold=settings.signals.acceptance_threshold,
            sector_exposure_limit=controls.sector_exposure_limit,
            max_daily_loss_pct=controls.max_daily_loss_pct,
            min_price=filters.min_price, max_price=filters.max_price,
            trading_start=filters.trading_start, trading_end=filters.trading_end,
            timezone=filters.timezone),
        sizing=SizingSettings(
            per_trade_risk_pct=sizing.per_trade_risk_pct,
            max_position_pct_of_equity=sizing.max_position_pct_of_equity,
            notional_round_lots=sizing.notional_round_lots,
            cash_reserve_pct=capital.cash_reserve_pct),
        planner=PlannerSettings(per_trade_risk_pct=sizing.per_trade_risk_pct),
        stops=StopSettings(enabled=stops.enabled, atr_multiplier=stops.atr_multiplier,
                           trailing=stops.trailing, max_loss_pct=stops.max_loss_pct),
    )


class SimClock:
    """A clock that starts at ``start`` and moves only when :meth:`advance` is called."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def simulated_quotes(closes: Callable[[], dict[str, float]]) -> Callable[[str, dt.datetime],
                                                                        Quote | None]:
    """Paper/sim price provider: ``last_close`` with a deterministic +-0.5% intraday wave.

    The phase comes from a CRC of the symbol, so every run and every restart
    sees the same prices at the same instant; bid/ask are 2 bps either side.
    """

    def provider(symbol: str, now: dt.datetime) -> Quote | None:
        close = closes().get(symbol)
        if close is None or not close > 0:
            return None
        phase = zlib.crc32(symbol.encode()) % 360 / 57.29578
        minutes = now.timestamp() / 60.0
        last = round(close * (1.0 + 0.005 * math.sin(minutes / 60.0 + phase)), 4)
        return Quote(symbol, last=last, prev_close=close, bid=last * 0.9998, ask=last * 1.0002,
                     time=now)

    return provider


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotrader", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run trading cycles headless")
    run.add_argument("--broker", choices=("paper", "ib"), default="paper")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run one cycle and exit (default)")
    mode.add_argument("--loop", action="store_true", help="run cycles every --interval s")
    run.add_argument("--interval", type=float, default=60.0, help="seconds between cycles")
    run.add_argument("--max-cycles", type=int, default=None, help="stop --loop after N cycles")
    run.add_argument("--run-dir", type=Path, default=None,
                     help="recommendations run to trade (default: newest under --result-root)")
    run.add_argument("--result-root", type=Path, default=Path("result"))
    run.add_argument("--state-dir", type=Path, default=None,
                     help="journal and paper account (default: $BMA_STATE_DIR or ./state)")
    run.add_argument("--config-dir", type=Path, default=Path("config"))
    run.add_argument("--initial-cash", type=float, default=100_000.0,
                     help="paper account starting cash (new account only)")
    run.add_argument("--sim-time", type=dt.datetime.fromisoformat, default=None,
                     help="paper only: simulated clock start (ISO 8601 with offset)")
    run.add_argument("--log-level", default="INFO")
    return parser


def _run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    store = ConfigStore(args.config_dir)
    clock: Callable[[], dt.datetime]
    sim = SimClock(args.sim_time) if args.sim_time is not None else None
    clock = sim or (lambda: dt.datetime.now(dt.timezone.utc))
    last_closes: dict[str, float] = {}  # every run seen, so names dropped later keep a price

    def recommendations() -> RecommendationSet:
        run_dir = args.run_dir or latest_run_dir(args.result_root)
        run = load_recommendations(run_dir, broker_is_live=False)
        last_closes.update({r.ticker: r.last_close for r in run.rows})
        return run

    def closes() -> dict[str, float]:
        if not last_closes:
            recommendations()
        return last_closes

    broker = PaperBroker(state_dir / "paper_broker.db", simulated_quotes(closes), clock,
                         initial_cash=args.initial_cash)
    logger.info("paper broker with simulated (paper/sim) prices; state in %s", state_dir)
    journal = Journal(state_dir / "journal.db").open()
    runner = TradingRunner(broker, journal, recommendations, clock=clock,
                           settings_source=lambda: trader_settings(store.get()))
    try:
        runner.start()
        if args.loop:
            advance = (lambda _s: sim.advance(args.interval)) if sim else None
            runner.run_loop(args.interval, args.max_cycles, sleep=advance)
        else:
            runner.run_cycle()
    finally:
        runner.stop()
        journal.close()
    health = runner.health
    logger.info("done: %d cycles, %d orders, denials %s, failures %s", health.cycles,
                health.orders_submitted, dict(health.denials), dict(health.failures))
    return 1 if health.failures else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``autotrader`` console script.

    Returns 0 when every cycle ran without a recorded failure, 1 when a cycle
    recorded one (missing recommendations, a broker or journal error) or the
    trader could not start, and 2 for usage errors (including ``--broker ib``).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.broker == "ib":
        parser.exit(2, "autotrader: error: IB adapter not available yet; use --broker paper\n")
    if args.sim_time is not None and args.sim_time.tzinfo is None:
        parser.error("--sim-time needs a UTC offset, e.g. 2026-03-02T15:00:00+00:00")
    state_dir = args.state_dir or default_state_dir()
    configure_logging(args.log_level, log_dir=state_dir / "logs", filename="autotrader.log")
    try:
        return _run(args)
    except (TraderError, ConfigError) as e:
        logger.error("autotrader stopped: %s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
