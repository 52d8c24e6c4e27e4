"""``autotrader run --broker paper|ib [--once | --loop --interval 60]``: the headless trader.

``autotrader status [--json]`` prints the plan versus the book after the last
cycle (coverage, invested, gaps with their reasons) from ``<state>/book.json``,
without connecting to the broker.

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
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from autotrader.appdb import default_state_dir
from autotrader.config import ConfigError, ConfigStore, Settings, resolve_config_dir
from autotrader.domain.errors import TraderError
from autotrader.services.session import (
    SessionOptions,
    SimClock,
    TraderSession,
    build_session,
    trader_settings,
)
from bma_models import __version__
from bma_models.log import configure_logging

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotrader", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run trading cycles headless")
    run.add_argument("--broker", choices=("paper", "ib"), default=None,
                     help="default: trading.broker (paper)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run one cycle and exit (default)")
    mode.add_argument("--loop", action="store_true", help="run cycles every --interval s")
    run.add_argument("--interval", type=float, default=None,
                     help="seconds between cycles (default: trading.cycle_interval_s)")
    run.add_argument("--max-cycles", type=int, default=None, help="stop --loop after N cycles")
    run.add_argument("--run-dir", type=Path, default=None,
                     help="recommendations run to trade (default: newest under --result-root)")
    run.add_argument("--result-root", type=Path, default=Path("result"))
    run.add_argument("--state-dir", type=Path, default=None,
                     help="journal and paper account (default: $BMA_STATE_DIR or ./state)")
    run.add_argument("--config-dir", type=Path, default=None,
                     help="config directory layered on the packaged defaults "
                          "(default: ./config when it exists)")
    run.add_argument("--initial-cash", type=float, default=None,
                     help="paper account starting cash, new account only (default: "
                          "research.portfolio.capital, the capital research assumes)")
    run.add_argument("--sim-time", type=dt.datetime.fromisoformat, default=None,
                     help="simulated clock start (ISO 8601 with offset); not on a live IB session")
    run.add_argument("--arm-live", action="store_true",
                     help="ib only: allow orders on a LIVE account (sets trading.live_armed)")
    run.add_argument("--log-level", default="INFO")
    status = sub.add_parser("status", help="plan versus book after the last cycle")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument("--state-dir", type=Path, default=None,
                        help="where book.json is (default: $BMA_STATE_DIR or ./state)")
    status.add_argument("--log-level", default="WARNING")
    return parser


def _status(args: argparse.Namespace) -> int:
    from autotrader.engine.plan_status import format_status
    from autotrader.services.book import read_status

    status = read_status(args.state_dir or default_state_dir())
    print(json.dumps(status, sort_keys=False) if args.json else format_status(status,
                                                                               max_rows=1000))
    return 0


def _run_defaults(args: argparse.Namespace, settings: Settings) -> argparse.Namespace:
    # the command line wins; otherwise the configuration's trading section and capital
    return argparse.Namespace(**{
        **vars(args),
        "broker": args.broker or settings.trading.broker,
        "interval": args.interval if args.interval is not None
        else settings.trading.cycle_interval_s,
        "initial_cash": args.initial_cash if args.initial_cash is not None
        else settings.research.portfolio.capital})


def _run(args: argparse.Namespace,
         on_session: Callable[[TraderSession], None] | None = None) -> int:
    overrides = {"trading.live_armed": True} if args.arm_live else None
    store = ConfigStore(resolve_config_dir(args.config_dir), overrides=overrides)
    args = _run_defaults(args, store.get())
    if args.arm_live and args.broker != "ib":
        raise TraderError("--arm-live applies to --broker ib only (trading.broker is "
                          f"{args.broker!r})")
    options = SessionOptions(
        state_dir=args.state_dir or default_state_dir(), result_root=args.result_root,
        broker=args.broker, run_dir=args.run_dir,
        clock=SimClock(args.sim_time) if args.sim_time is not None else None,
        simulated_clock=args.sim_time is not None, initial_cash=args.initial_cash)
    session = build_session(store.get(), options, lambda: trader_settings(store.get()))
    if on_session is not None:
        on_session(session)
    try:
        session.start()
        if args.loop:
            session.run_loop(args.interval, args.max_cycles)
        else:
            session.runner.run_cycle()
    finally:
        session.close()
    health = session.runner.health
    logger.info("done: %d cycles, %d orders, denials %s, failures %s", health.cycles,
                health.orders_submitted, dict(health.denials), dict(health.failures))
    return 1 if health.failures else 0


def main(argv: list[str] | None = None, *,
         on_session: Callable[[TraderSession], None] | None = None) -> int:
    """Entry point of the ``autotrader`` console script.

    Returns 0 when every cycle ran without a recorded failure, 1 when a cycle
    recorded one (missing recommendations, a broker or journal error) or the
    trader could not start (no TWS/Gateway reachable after the retry policy, a
    journal whose working orders belong to another client id), and 2 for usage
    errors.

    ``on_session`` is called with the built :class:`TraderSession` before it
    starts. It is a test seam only (the crash tests install a kill checkpoint on
    the runner through it, see ``tests/autotrader/crash_entry.py``); the console
    script passes nothing.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    state_dir = args.state_dir or default_state_dir()
    if args.command == "status":
        configure_logging(args.log_level, log_dir=None)
        try:
            return _status(args)
        except TraderError as e:
            logger.error("autotrader status: %s", e)
            return 1
    if args.arm_live and args.broker == "paper":
        parser.error("--arm-live applies to --broker ib only")
    if args.sim_time is not None and args.sim_time.tzinfo is None:
        parser.error("--sim-time needs a UTC offset, e.g. 2026-03-02T15:00:00+00:00")
    configure_logging(args.log_level, log_dir=state_dir / "logs", filename="autotrader.log")
    try:
        return _run(args, on_session)
    except (TraderError, ConfigError) as e:
        logger.error("autotrader stopped: %s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
