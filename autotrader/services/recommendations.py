"""Read the research pipeline's recommendations (``result/<run>/recommendations.csv``).

A run directory is *complete* when it has ``manifest.json`` (written last by
the pipeline) and ``recommendations.csv``. The newest complete run is the one
whose manifest was written last (directory name breaks ties). The manifest's
``run.source`` (or a top-level ``source``, or ``metrics.json``'s) says where the
data came from; ``"demo"`` runs are refused when the broker is live.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from autotrader.domain.errors import RecommendationsError
from autotrader.engine.rebalance import Recommendation

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("rank", "ticker", "sector", "score", "expected_return", "weight",
                    "last_close", "adv")


@dataclass(frozen=True)
class RecommendationSet:
    """The rows of one run plus where they came from."""

    run_id: str
    run_dir: Path
    source: str
    rows: tuple[Recommendation, ...]

    @property
    def is_demo(self) -> bool:
        return self.source.lower() == "demo"


def latest_run_dir(result_root: str | Path) -> Path:
    """The newest complete run directory under ``result_root``."""
    root = Path(result_root)
    runs = [d for d in root.iterdir() if d.is_dir() and (d / "manifest.json").is_file()
            and (d / "recommendations.csv").is_file()] if root.is_dir() else []
    if not runs:
        raise RecommendationsError(f"no complete run (manifest.json + recommendations.csv) "
                                   f"under {root}")
    return max(runs, key=lambda d: ((d / "manifest.json").stat().st_mtime_ns, d.name))


def _run_source(run_dir: Path) -> str:
    for name in ("manifest.json", "metrics.json"):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise RecommendationsError(f"{path} is not readable JSON: {e}") from e
        run = meta.get("run") if isinstance(meta.get("run"), dict) else {}
        source = run.get("source") or meta.get("source")
        if source:
            return str(source)
    return "unknown"


def _parse_row(row: dict[str, str], path: Path, line: int) -> Recommendation:
    try:
        atr_text = (row.get("atr") or "").strip()
        return Recommendation(
            rank=int(float(row["rank"])), ticker=row["ticker"].strip().upper(),
            sector=(row["sector"] or "Unknown").strip() or "Unknown",
            score=float(row["score"]), expected_return=float(row["expected_return"]),
            weight=float(row["weight"]), last_close=float(row["last_close"]),
            adv=float(row["adv"]), atr=float(atr_text) if atr_text else math.nan)
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
    source = _run_source(run_dir)
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
    return RecommendationSet(run_dir.name, run_dir, source, rows)
