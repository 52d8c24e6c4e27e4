"""Read the research pipeline's recommendations (``result/<run>/recommendations.csv``).

A run directory is *complete* when it has ``manifest.json`` (written last by
the pipeline) and ``recommendations.csv``. The newest complete run is the one
whose manifest was written last (directory name breaks ties). The manifest's
``run.source`` (or a top-level ``source``, or ``metrics.json``'s) says where the
data came from; ``"demo"`` runs are refused when the broker is live. Its
``data.last_date`` is the session of the run's last bar, from which the trader
tells how old the plan is (``signals.max_run_age_sessions``).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotrader.domain.errors import RecommendationsError
from autotrader.engine.correlation import ReturnHistory
from autotrader.engine.rebalance import Recommendation

logger = logging.getLogger(__name__)

#: the run's trailing daily returns (written by ``bma run``; read for ``max_correlation``)
RETURNS_FILE = "returns_recent.csv"
REQUIRED_COLUMNS = ("rank", "ticker", "sector", "score", "expected_return", "weight",
                    "last_close", "adv")


@dataclass(frozen=True)
class RunSignal:
    """The run's signal check (``metrics.json`` ``baselines``, see docs/signal.md).

    ``beats_all_baselines``: the fused score's mean rank IC beats each simple
    baseline's on the run's out-of-sample rows; ``beaten_by`` names those it
    does not beat.
    """

    beats_all_baselines: bool
    beaten_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecommendationSet:
    """The rows of one run plus where they came from."""

    run_id: str
    run_dir: Path
    source: str
    rows: tuple[Recommendation, ...]
    last_date: dt.date | None = None  # session of the run's last bar (None: not recorded)
    signal: RunSignal | None = None  # None: the run has no baselines table

    @property
    def is_demo(self) -> bool:
        """Return True when the run used the synthetic demo market."""
        return self.source.lower() == "demo"


def latest_run_dir(result_root: str | Path) -> Path:
    """Return the newest complete run directory under ``result_root``.

    Complete means it holds ``manifest.json`` and ``recommendations.csv``;
    the newest is the one with the latest ``manifest.json`` mtime.

    Raises
    ------
    RecommendationsError
        No complete run under ``result_root``.
    """
    root = Path(result_root)
    runs = [d for d in root.iterdir() if d.is_dir() and (d / "manifest.json").is_file()
            and (d / "recommendations.csv").is_file()] if root.is_dir() else []
    if not runs:
        raise RecommendationsError(f"no complete run (manifest.json + recommendations.csv) "
                                   f"under {root}")
    return max(runs, key=lambda d: ((d / "manifest.json").stat().st_mtime_ns, d.name))


@dataclass(frozen=True)
class RunInfo:
    """Which run a directory holds, where its data came from and when it was written."""

    run_id: str
    run_dir: Path
    source: str
    finished_at: float
    last_date: dt.date | None = None

    @property
    def is_demo(self) -> bool:
        """Return True when the run used the synthetic demo market."""
        return self.source.lower() == "demo"


def run_info(run_dir: str | Path) -> RunInfo:
    """Read the run id, data source and completion time (``manifest.json``'s mtime, epoch s).

    Raises
    ------
    RecommendationsError
        No ``manifest.json``, or one that is not readable JSON.
    """
    run_dir = Path(run_dir)
    try:
        finished = (run_dir / "manifest.json").stat().st_mtime
    except OSError as e:
        raise RecommendationsError(f"{run_dir}: no manifest.json ({e})") from e
    source, last_date = _run_origin(run_dir)
    return RunInfo(run_dir.name, run_dir, source, finished, last_date)


def _run_origin(run_dir: Path) -> tuple[str, dt.date | None]:
    """Return the run's data source and the session of its last bar (``manifest.json``).

    ``metrics.json`` is read here only when the manifest names no source (older
    runs); :func:`run_signal` reads its ``baselines``.
    """
    manifest = _json(run_dir / "manifest.json")
    data = manifest.get("data")
    if not isinstance(data, dict):
        data = {}
    last_date = _date(data["last_date"], run_dir / "manifest.json") \
        if data.get("last_date") else None
    source = _source(manifest) or _source(_json(run_dir / "metrics.json")) or "unknown"
    return source, last_date


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise RecommendationsError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(value, dict):
        raise RecommendationsError(f"{path} holds a JSON {type(value).__name__}, "
                                   "not an object")
    return value


def _source(meta: dict) -> str:
    run = meta.get("run")
    if not isinstance(run, dict):
        run = {}
    return str(run.get("source") or meta.get("source") or "")


def _date(value: object, path: Path) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as e:
        raise RecommendationsError(f"{path}: data.last_date {value!r} is not a date") from e


def _optional(row: dict[str, str], column: str) -> float:
    text = (row.get(column) or "").strip()
    return float(text) if text else math.nan


def _parse_row(row: dict[str, str], path: Path, line: int) -> Recommendation:
    try:
        return Recommendation(
            rank=int(float(row["rank"])), ticker=row["ticker"].strip().upper(),
            sector=(row["sector"] or "Unknown").strip() or "Unknown",
            score=float(row["score"]), expected_return=float(row["expected_return"]),
            weight=float(row["weight"]), last_close=float(row["last_close"]),
            adv=float(row["adv"]), atr=_optional(row, "atr"),
            score_percentile=_optional(row, "score_percentile"))
    except (KeyError, ValueError, TypeError) as e:
        raise RecommendationsError(f"{path} line {line}: bad value ({e})") from e


def load_recommendations(run_dir: str | Path, *, broker_is_live: bool) -> RecommendationSet:
    """Load and validate one run's recommendations.

    Raises
    ------
    RecommendationsError
        Missing file or column, a bad value, a duplicate ticker, or a demo run
        while ``broker_is_live`` (demo signals must never reach a real account).
    """
    run_dir = Path(run_dir)
    path = run_dir / "recommendations.csv"
    source, last_date = _run_origin(run_dir)
    if broker_is_live and source.lower() == "demo":
        raise RecommendationsError(f"run {run_dir.name} was built from demo data; refusing "
                                   "to trade it on a live broker")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise RecommendationsError(f"{path}: missing columns {missing}")
            rows = tuple(_parse_row(r, path, i + 2) for i, r in enumerate(reader))
    except OSError as e:
        raise RecommendationsError(f"{path} cannot be read: {e}") from e
    tickers = [r.ticker for r in rows]
    if len(set(tickers)) != len(tickers):
        raise RecommendationsError(f"{path}: duplicate tickers")
    logger.info("recommendations: run %s (source %s), %d rows", run_dir.name, source, len(rows))
    return RecommendationSet(run_dir.name, run_dir, source, rows, last_date,
                             run_signal(_json(run_dir / "metrics.json")))


def run_signal(metrics: Mapping[str, Any]) -> RunSignal | None:
    """Return the signal check of a run's ``metrics``; None without a baselines table."""
    report = metrics.get("baselines")
    if not isinstance(report, dict) or "beats_all_baselines" not in report:
        return None
    return RunSignal(bool(report["beats_all_baselines"]),
                     tuple(str(row) for row in report.get("beaten_by") or ()))


def load_recent_returns(run_dir: str | Path, window: int | None = None) -> ReturnHistory | None:
    """Read the run's ``returns_recent.csv`` (``date``, one column per ticker); None if absent.

    An empty cell is a missing return. ``window`` keeps the last ``window``
    dates for the correlations (None: all of them).

    Raises
    ------
    RecommendationsError
        The file exists but cannot be read, has no ``date`` column, a row of
        the wrong length or a value that is not a number (file and line named).
    """
    path = Path(run_dir) / RETURNS_FILE
    if not path.is_file():
        return None
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if not header or header[0] != "date":
                raise RecommendationsError(f"{path} line 1: the first column must be 'date'")
            dates, rows = [], []
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise RecommendationsError(f"{path} line {line}: {len(row)} fields, "
                                               f"expected {len(header)}")
                try:
                    rows.append([float(v) if v.strip() else math.nan for v in row[1:]])
                except ValueError as e:
                    raise RecommendationsError(f"{path} line {line}: bad value ({e})") from e
                dates.append(row[0])
    except OSError as e:
        raise RecommendationsError(f"{path} cannot be read: {e}") from e
    symbols = tuple(h.strip().upper() for h in header[1:])
    returns = np.array(rows, dtype=float).reshape(len(dates), len(symbols))
    return ReturnHistory(tuple(dates), symbols, returns, window=window)


class ReturnsForCycles:
    """The runner's source of :class:`ReturnHistory`: each run's file read once per window.

    :meth:`for_cycle` never raises: a missing file (a run older than the file)
    or a bad one means the ``max_correlation`` check cannot run; that is
    counted in the cycle's ``fallbacks`` (``correlation_check_skipped``), a bad
    file also in its ``failures``, and names without a history
    (``correlation_no_history``) are counted too.
    """

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._history: ReturnHistory | None = None

    def for_cycle(self, recs: RecommendationSet, window: int, symbols: Iterable[str],
                  fallbacks: dict[str, int], failures: list[str]) -> ReturnHistory | None:
        """Return the return history of ``recs``'s run for one cycle, or None.

        The file is re-read only when the run or ``window`` changes. Skipped
        checks and names without a history are added to ``fallbacks``, a bad
        file to ``failures`` (both the cycle's, updated in place).
        """
        key = (str(recs.run_dir), window)
        if key != self._key:
            self._key, self._history = None, None
            try:
                self._history = load_recent_returns(recs.run_dir, window)
            except RecommendationsError as e:
                logger.error("max_correlation check skipped: %s", e)
                failures.append(f"returns: {e}")
            else:
                self._key = key
                if self._history is None:
                    logger.warning("run %s has no %s: the max_correlation check is skipped",
                                   recs.run_id, RETURNS_FILE)
        if self._history is None:
            fallbacks["correlation_check_skipped"] = \
                fallbacks.get("correlation_check_skipped", 0) + 1
            return None
        missing = sum(1 for symbol in set(symbols) if symbol not in self._history)
        if missing:
            fallbacks["correlation_no_history"] = \
                fallbacks.get("correlation_no_history", 0) + missing
        return self._history
