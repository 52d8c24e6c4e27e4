"""``bma`` — the research pipeline command line (also ``python -m autotrader.research``).

Parses the command line and the ``BMA_*`` environment overrides, resolves the
data source and the dates, and calls :func:`autotrader.research.wiring.run_command`,
the composition root that reaches the adapters (the Polygon source and the
config store) and hands plain frames and parameters to the pure core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bma_models import __version__
from bma_models.data.calendar import last_completed_session

logger = logging.getLogger("bma")

SOURCES = ("demo", "csv", "polygon")


@dataclass(frozen=True)
class DateRange:
    """The sessions of a run, as :func:`resolve_dates` resolved them.

    Attributes
    ----------
    start : pandas.Timestamp or None
        First session; None: no start given, the source decides how far back.
    end : pandas.Timestamp
        Last session, at most the last completed NYSE session.
    clamped_from : pandas.Timestamp or None
        The requested end when it was later than the last completed session
        and was clamped; None when the end was not clamped.
    """

    start: pd.Timestamp | None
    end: pd.Timestamp
    clamped_from: pd.Timestamp | None = None


def build_parser() -> argparse.ArgumentParser:
    """Build the ``bma`` argument parser (the ``run`` and ``backtest`` commands)."""
    parser = argparse.ArgumentParser(prog="bma", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the research pipeline end to end")
    run.add_argument("--source", choices=SOURCES, default=None,
                     help="market data source (default: research.data.source; auto = polygon "
                          "when an API key is set, else demo)")
    run.add_argument("--data", help="bars file or directory for --source csv "
                                    "(.csv, .csv.gz or .parquet)")
    run.add_argument("--sectors", help="optional sectors file for --source csv")
    run.add_argument("--holdings", default="auto", metavar="auto|state|none|FILE",
                     help="the current book the portfolio trades from: auto = the trader's "
                          "state when it has a book, else cash (default); state = the trader's "
                          "state (book.json / paper_broker.db, an error without one); none = "
                          "cash; FILE = CSV with ticker and quantity (optional CASH row) or "
                          "weight")
    run.add_argument("--state-dir", default=None,
                     help="the trader's state directory (default: $BMA_STATE_DIR or ./state)")
    run.add_argument("--start-date", help="first session (YYYY-MM-DD); env BMA_START_DATE; "
                     "default: research.data.start_date")
    run.add_argument("--end-date", help="last session, clamped to T-1; env BMA_END_DATE; "
                     "default: research.data.end_date, else T-1")
    run.add_argument("--top-n", type=int, default=None, help="portfolio candidates (default 200)")
    run.add_argument("--config", default=None,
                     help="config directory layered on the packaged defaults "
                          "(default: ./config when it exists)")
    run.add_argument("--output", default="result", help="output root (default: result/)")
    run.add_argument("--seed", type=int, default=None, help="random seed (default from config)")
    run.add_argument("--jobs", type=int, default=None, help="parallel jobs (default from config)")
    run.add_argument("--dask-scheduler", metavar="ADDRESS|local", default=None,
                     help="run on a Dask cluster: 'local' starts a LocalCluster on this machine, "
                          "tcp://host:8786 connects to a running scheduler (needs the dask "
                          "extra; default from research.dask.scheduler, null = no Dask)")
    run.add_argument("--csv-predictions", action="store_true", default=None,
                     help="also write predictions_oos.csv next to predictions_oos.parquet "
                          "(default from research.report.csv_predictions)")
    run.add_argument("--backtest", action="store_true", default=None,
                     help="also backtest the strategy over the OOS span, with costs "
                          "(default from research.backtest.enabled; docs/backtest.md)")
    run.add_argument("--log-level", default="INFO")
    _backtest_parser(sub)
    return parser


def _backtest_parser(sub) -> None:
    bt = sub.add_parser(
        "backtest", help="backtest a run's strategy over its OOS span, with costs, and add "
                         "the results to its run directory")
    bt.add_argument("--run", default=None,
                    help="run directory (default: the newest complete run under --output)")
    bt.add_argument("--output", default="result", help="output root (default: result/)")
    bt.add_argument("--source", choices=SOURCES, default=None,
                    help="market data source (default: the run's)")
    bt.add_argument("--data", help="bars file for --source csv (default: the run's)")
    bt.add_argument("--sectors", help="sectors file for --source csv (as given to bma run)")
    bt.add_argument("--start", help="first rebalance date inside the OOS span (YYYY-MM-DD)")
    bt.add_argument("--end", help="last simulated session (YYYY-MM-DD)")
    bt.add_argument("--rebalance-every", type=int, default=None,
                    help="sessions between rebalances (default from research.backtest)")
    bt.add_argument("--fill-price", choices=("open", "close", "vwap"), default=None,
                    help="fill at the next session's open | close | vwap")
    bt.add_argument("--score", default=None,
                    help="predictions_oos column to rank by (default: fused)")
    bt.add_argument("--config", default=None,
                    help="config directory layered on the packaged defaults")
    bt.add_argument("--attribution", action="store_true",
                    help="also backtest once per rule with that rule switched off, and write "
                         "what each rule costs or earns to backtest_attribution.csv "
                         "(docs/backtest.md)")
    bt.add_argument("--jobs", type=int, default=None, help="processes for the risk-model fits")
    bt.add_argument("--log-level", default="INFO")


def parse_args(argv: Sequence[str] | None, environ: dict[str, str]) -> argparse.Namespace:
    """Parse ``argv`` plus the ``BMA_*`` environment overrides.

    ``BMA_EXTRA_ARGS`` is split like a shell line and appended to the command
    line; ``BMA_START_DATE`` / ``BMA_END_DATE`` fill the dates when the command
    line does not give them.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    extra = environ.get("BMA_EXTRA_ARGS", "").strip()
    if extra:
        args += shlex.split(extra)
    ns = build_parser().parse_args(args)
    if getattr(ns, "start_date", None) is None and environ.get("BMA_START_DATE"):
        ns.start_date = environ["BMA_START_DATE"]
    if getattr(ns, "end_date", None) is None and environ.get("BMA_END_DATE"):
        ns.end_date = environ["BMA_END_DATE"]
    return ns


def resolve_source(requested: str | None, environ: dict[str, str]) -> str:
    """Pick the data source: explicit choice, else polygon with a key, else demo (loudly)."""
    if requested:
        return requested
    if environ.get("POLYGON_API_KEY") or environ.get("MASSIVE_API_KEY"):
        return "polygon"
    logger.warning(
        "no POLYGON_API_KEY/MASSIVE_API_KEY set: using the synthetic DEMO market; "
        "every output of this run is labelled DEMO"
    )
    return "demo"


def resolve_dates(start: str | None, end: str | None, now: dt.datetime) -> DateRange:
    """Parse the dates and clamp the end to the last completed NYSE session (T-1).

    Raises
    ------
    ValueError
        If a date does not parse or the start is after the (clamped) end.
    """
    last = last_completed_session(now)
    start_ts = _parse_date(start, "--start-date") if start else None
    end_ts = _parse_date(end, "--end-date") if end else last
    clamped_from = None
    if end_ts > last:
        clamped_from, end_ts = end_ts, last
    if start_ts is not None and start_ts > end_ts:
        raise ValueError(f"--start-date {start_ts.date()} is after the end date {end_ts.date()}")
    return DateRange(start_ts, end_ts, clamped_from)


def _parse_date(text: str, flag: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text).normalize()
    except (ValueError, TypeError) as e:
        raise ValueError(f"{flag} {text!r} is not a date (expected YYYY-MM-DD)") from e


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bma`` command and print the run directory it wrote.

    Returns
    -------
    int
        The exit status: 0 on success, 2 when the command failed (the error is
        logged), 130 when the user cancelled.
    """
    from bma_models.log import configure_logging

    environ = dict(os.environ)
    ns = parse_args(argv, environ)
    configure_logging(ns.log_level, log_dir="logs", filename="bma.log")
    try:
        from autotrader.research.wiring import run_command

        run_dir = run_command(ns, environ)
    except KeyboardInterrupt:
        logger.error("cancelled by the user; no run directory was written")
        return 130
    except Exception as e:  # the CLI boundary: report clearly, exit non-zero
        logger.error("bma %s failed: %s", ns.command, e)
        logger.debug("traceback", exc_info=True)
        return 2
    print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
