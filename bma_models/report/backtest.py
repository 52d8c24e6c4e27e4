"""The backtest's files: ``backtest.parquet`` (+ trades, holdings), charts and the metrics block.

Written into a run directory by ``bma run --backtest`` (inside the staged run)
and by ``bma backtest`` (added to a committed run, file by file, each replaced
atomically). docs/outputs.md lists the files, docs/backtest.md the conventions.

Demo runs say DEMO on every output: the charts' titles, the workbook sheet's
banner, the ``source_label`` / ``is_demo`` of the metrics block and the Parquet
files' key-value metadata (``bma.source_label``, ``bma.is_demo``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from bma_models.backtest import BacktestResult, backtest_metrics, drawdown, rolling_sharpe
from bma_models.report.charts import render_chart
from bma_models.schema import to_dict

logger = logging.getLogger(__name__)

__all__ = ["BACKTEST_CHARTS", "BACKTEST_FILE", "BACKTEST_FILES", "backtest_document",
           "read_backtest", "write_backtest"]

BACKTEST_FILE = "backtest.parquet"
TRADES_FILE = "backtest_trades.parquet"
HOLDINGS_FILE = "backtest_holdings.parquet"
BACKTEST_CHARTS: tuple[str, ...] = ("chart_backtest_equity.png", "chart_backtest_drawdown.png",
                                    "chart_backtest_rolling_sharpe.png",
                                    "chart_backtest_turnover_cost.png")
BACKTEST_FILES: tuple[str, ...] = (BACKTEST_FILE, TRADES_FILE, HOLDINGS_FILE) + BACKTEST_CHARTS
#: Events listed one by one in metrics.json (the rest are counted)
_EVENTS_SHOWN = 20


def backtest_document(result: BacktestResult, source_label: str, is_demo: bool
                      ) -> dict[str, Any]:
    """Return the ``backtest`` block of ``metrics.json``: statistics, settings and conventions."""
    events = result.events
    return {
        "source_label": source_label, "is_demo": bool(is_demo),
        **backtest_metrics(result),
        "settings": to_dict(result.settings),
        "conventions": result.conventions,
        "events": {"counts": {str(k): int(v) for k, v in
                              events["event"].value_counts().items()},
                   "first": [{"date": str(pd.Timestamp(r.date).date()), "ticker": r.ticker,
                              "event": r.event, "detail": r.detail}
                             for r in events.head(_EVENTS_SHOWN).itertuples()]},
        "failed_rebalances": [
            {"date": str(pd.Timestamp(r.date).date()), "error": r.error}
            for r in result.rebalances[result.rebalances["error"].astype(bool)]
            .head(_EVENTS_SHOWN).itertuples()],
        "timings_s": result.timings_s,
    }


def write_backtest(directory: str | Path, result: BacktestResult, title_prefix: str,
                   source_label: str, is_demo: bool) -> list[Path]:
    """Write ``backtest.parquet``, the trades and holdings files and the four charts.

    Each file is written to a temporary name in ``directory`` and renamed into
    place, so a committed run directory never shows a half-written file.
    """
    directory = Path(directory)
    meta = {"bma.source_label": source_label, "bma.is_demo": str(bool(is_demo)).lower()}
    daily = result.daily.reset_index()
    paths = [_parquet(daily, directory / BACKTEST_FILE, meta),
             _parquet(result.trades, directory / TRADES_FILE, meta),
             _parquet(result.holdings, directory / HOLDINGS_FILE, meta)]
    paths += _charts(directory, result, title_prefix)
    logger.info("backtest files written: %s", [p.name for p in paths])
    return paths


def read_backtest(run_dir: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """``backtest.parquet`` of a run (indexed by date) and its ``bma.*`` metadata."""
    table = pq.read_table(Path(run_dir) / BACKTEST_FILE)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()
            if k.startswith(b"bma.")}
    return table.to_pandas().set_index("date"), meta


def _parquet(frame: pd.DataFrame, path: Path, meta: dict[str, str]) -> Path:
    table = pyarrow.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{k.encode(): v.encode() for k, v in meta.items()}})
    with _atomic(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


class _atomic:
    """A temporary file next to ``path``, renamed onto it when the block succeeds."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}-", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Replace a JSON file atomically (``bma backtest`` updating ``metrics.json``)."""
    path = Path(path)
    with _atomic(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


# -- charts -------------------------------------------------------------------------------

def _charts(directory: Path, result: BacktestResult, title_prefix: str) -> list[Path]:
    daily = result.daily
    window = int(result.settings.rolling_window)
    drawers = (
        lambda ax: _equity(ax, daily),
        lambda ax: _drawdowns(ax, daily),
        lambda ax: _rolling(ax, daily, window),
        lambda ax: _turnover_cost(ax, daily),
    )
    paths = []
    for name, draw in zip(BACKTEST_CHARTS, drawers):
        fig = render_chart(draw, title_prefix)
        path = directory / name
        with _atomic(path) as tmp:
            fig.savefig(tmp, format="png")
        paths.append(path)
    return paths


def _equity(ax, daily: pd.DataFrame) -> str:
    base = daily["equity"].iloc[0]
    ax.plot(daily.index, daily["equity"] / base, label="strategy (after costs)", linewidth=1.6)
    ax.plot(daily.index, daily["benchmark_equity"] / base, label="equal-weight universe",
            linewidth=1.2, alpha=0.8)
    ax.set_ylabel("equity (start = 1)")
    ax.legend(fontsize=8)
    return "Backtest: equity vs the equal-weight benchmark"


def _drawdowns(ax, daily: pd.DataFrame) -> str:
    for column, label in (("equity", "strategy"), ("benchmark_equity", "equal-weight")):
        dd = drawdown(daily[column]) * 100
        ax.fill_between(daily.index, dd.to_numpy(), 0.0, alpha=0.35, label=label)
    ax.set_ylabel("drawdown (%)")
    ax.legend(fontsize=8)
    return "Backtest: drawdown from the running peak"


def _rolling(ax, daily: pd.DataFrame, window: int) -> str:
    for column, label in (("equity", "strategy"), ("benchmark_equity", "equal-weight")):
        ax.plot(daily.index, rolling_sharpe(daily[column], window).to_numpy(), label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel("Sharpe ratio (annualised)")
    ax.legend(fontsize=8)
    return f"Backtest: rolling {window}-session Sharpe ratio"


def _turnover_cost(ax, daily: pd.DataFrame) -> str:
    prev = daily["equity"].shift(1)
    traded = daily["turnover"] > 0
    ax.bar(daily.index[traded], (daily["turnover"][traded] * 100).to_numpy(), width=3,
           color="#1F4E78", label="turnover (% of equity)")
    ax.set_ylabel("turnover per rebalance (% of equity)")
    cost = (daily["costs"] / prev).fillna(0.0).cumsum() * 100
    twin = ax.twinx()
    twin.plot(daily.index, np.asarray(cost), color="#C00000", label="cumulative costs")
    twin.set_ylabel("cumulative costs (% of equity)")
    lines = ax.get_legend_handles_labels()
    extra = twin.get_legend_handles_labels()
    ax.legend(lines[0] + extra[0], lines[1] + extra[1], fontsize=8, loc="upper left")
    return "Backtest: turnover and cumulative trading costs"
