"""``autotrader run --broker paper|ib [--once | --loop --interval 60]``: the headless trader.

This is the composition root of the trader: it reads the configuration store
(``--config-dir``), maps its sections onto the engine's parameter records,
builds the broker, the journal and the runner, and runs cycles.

With ``--broker paper`` prices are simulated (paper/sim): each symbol trades
around the run's ``last_close`` with a small deterministic intraday drift.
``--sim-time`` replaces the wall clock with a simulated one that starts at the
given instant and advances by ``--interval`` per cycle (replays and tests).

With ``--broker ib`` the trader connects to TWS / IB Gateway at
``connection.host:port`` with ``connection.client_id`` (paper port 7497 by
default). Orders on a live session (ports 7496/4001 or a non-paper account) are
refused unless ``--arm-live`` is given; ``--sim-time`` only drives the engine's
clock and is refused on a live session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from autotrader.appdb import default_state_dir
from autotrader.broker.base import Broker
from autotrader.broker.paper import PaperBroker
from autotrader.config import ConfigError, ConfigStore, Settings, resolve_config_dir
from autotrader.domain.errors import TraderError
from autotrader.journal import Journal
from autotrader.services.recommendations import (
    RecommendationSet,
    latest_run_dir,
    load_recommendations,
)
from autotrader.services.trader_setup import (
    SimClock,
    prev_close_source,
    simulated_quotes,
    trader_settings,
)
from autotrader.services.trading import TradingRunner
from bma_models import __version__
from bma_models.log import configure_logging

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotrader", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    run.add_argument("--config-dir", type=Path, default=None,
                     help="config directory layered on the packaged defaults "
                          "(default: ./config when it exists)")
    run.add_argument("--initial-cash", type=float, default=100_000.0,
                     help="paper account starting cash (new account only)")
    run.add_argument("--sim-time", type=dt.datetime.fromisoformat, default=None,
                     help="simulated clock start (ISO 8601 with offset); not on a live IB session")
    run.add_argument("--arm-live", action="store_true",
                     help="ib only: allow orders on a LIVE account (sets trading.live_armed)")
    run.add_argument("--log-level", default="INFO")
    return parser


def _ib_broker(args: argparse.Namespace, settings: Settings, journal: Journal,
               clock: Callable[[], dt.datetime],
               closes: Callable[[], dict[str, float]]) -> Broker:
    from autotrader.broker.ib import IBBroker

    broker = IBBroker.from_settings(
        settings, prev_close=prev_close_source(settings, closes),
        on_reconnect=lambda b: journal.reconcile(b, clock()))
    broker.connect()
    if broker.is_live and args.sim_time is not None:
        broker.disconnect()
        raise TraderError("--sim-time is refused on a live IB session")
    logger.info("%r (%s), live armed: %s", broker, "LIVE" if broker.is_live else "paper",
                broker.live_armed)
    return broker


def _run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    overrides = {"trading.live_armed": True} if args.arm_live else None
    store = ConfigStore(resolve_config_dir(args.config_dir), overrides=overrides)
    clock: Callable[[], dt.datetime]
    sim = SimClock(args.sim_time) if args.sim_time is not None else None
    clock = sim or (lambda: dt.datetime.now(dt.timezone.utc))
    last_closes: dict[str, float] = {}  # every run seen, so names dropped later keep a price
    broker: Broker | None = None

    def recommendations() -> RecommendationSet:
        run_dir = args.run_dir or latest_run_dir(args.result_root)
        run = load_recommendations(run_dir, broker_is_live=bool(broker and broker.is_live))
        last_closes.update({r.ticker: r.last_close for r in run.rows})
        return run

    def closes() -> dict[str, float]:
        if not last_closes:
            recommendations()
        return last_closes

    journal = Journal(state_dir / "journal.db").open()
    if args.broker == "ib":
        try:
            broker = _ib_broker(args, store.get(), journal, clock, closes)
        except TraderError:
            journal.close()
            raise
    else:
        broker = PaperBroker(state_dir / "paper_broker.db", simulated_quotes(closes), clock,
                             initial_cash=args.initial_cash)
        logger.info("paper broker with simulated (paper/sim) prices; state in %s", state_dir)
    runner = TradingRunner(broker, journal, recommendations, clock=clock,
                           settings_source=lambda: trader_settings(store.get()))
    try:
        runner.start()
        if args.loop:
            advance = (lambda _s: sim.advance(args.interval)) if sim else \
                getattr(broker, "wait", None)  # IB: keep the client loop running between cycles
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
    trader could not start (including no TWS/Gateway reachable), and 2 for usage errors.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.arm_live and args.broker != "ib":
        parser.error("--arm-live applies to --broker ib only")
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
