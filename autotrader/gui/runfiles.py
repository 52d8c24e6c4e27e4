"""Read a research run directory into the tables the Research and Backtest tabs draw.

Pure pandas (no tkinter): tests call these directly, and the tabs call them on
a helper thread so that parsing never runs on the Tk thread.

Out-of-sample series (:func:`oos_series`) need the realized forward return of
each row. Runs written by the current report store it in the ``label`` column
of ``predictions_oos.parquet`` (T+1..T+horizon), for every source (csv, polygon,
demo), and that column is used as is (a run written before the Parquet file has
``predictions_oos.csv`` instead, read by the same
:func:`bma_models.report.predictions.read_predictions`). Older runs have no such
column: for an older *demo* run the label is rebuilt from the deterministic demo
market named by ``manifest.json`` (tickers, sessions, seed, end date); an older
csv/polygon run returns ``None`` with the reason (shown in the Backtest tab).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from autotrader.services.recommendations import RunSignal, run_signal

logger = logging.getLogger(__name__)

RECOMMENDATION_COLUMNS = ("rank", "ticker", "sector", "score", "weight", "current_weight",
                          "trade_weight", "last_close", "target_shares")
#: how the Research tab shows a number column: weights (fractions of equity) in percent, the
#: trade signed (+ buys, - sells)
CELL_FORMATS = {"score": ".4f", "weight": ".2%", "current_weight": ".2%", "trade_weight": "+.2%",
                "last_close": ".2f"}


#: where :attr:`OosSeries.label_source` says the realized returns came from (a run
#: written before the Parquet file: "label column of predictions_oos.csv")
LABEL_COLUMN = "label column of predictions_oos.parquet"
LABEL_REBUILT = "rebuilt from the demo market (older run without a label column)"


@dataclass(frozen=True)
class RunSummary:
    """What the Research tab shows for one run.

    ``recommendations`` holds every column of :data:`RECOMMENDATION_COLUMNS`
    (a column an older run does not have is empty: NaN).
    """

    run_dir: Path
    recommendations: pd.DataFrame
    model_ic: dict[str, float]
    quantile_returns: dict[str, float]
    stack_weights: dict[str, float]
    is_demo: bool
    signal: SignalCheck | None = None


@dataclass(frozen=True)
class SignalCheck:
    """Does the run's fused score beat the simple baselines? (``metrics.json`` ``baselines``).

    ``signal`` is the check itself (:func:`~autotrader.services.recommendations.run_signal`,
    None when the run has no baselines table: written before they existed).
    """

    text: str
    signal: RunSignal | None

    @property
    def good(self) -> bool | None:
        """True when it beats every baseline, False when not, None without a check."""
        return None if self.signal is None else self.signal.beats_all_baselines


def signal_check(metrics: dict) -> SignalCheck:
    """Return the one line the Research tab shows about the signal against its baselines.

    The sentence is :func:`bma_models.baselines.describe_verdict` (the run's log
    line), plus the paired t against the plain LightGBM, which says how sure
    the comparison with the model that costs nothing to build is.
    """
    from bma_models.baselines import PLAIN_LIGHTGBM, describe_verdict

    signal = run_signal(metrics)
    if signal is None:
        return SignalCheck("signal check: this run has no baselines table (written before "
                           "baselines were computed)", None)
    report = metrics["baselines"]
    text = f"Signal check (out of sample): {describe_verdict(report)}"
    plain = (report["scores"].get(PLAIN_LIGHTGBM) or {}).get("vs_reference")
    if plain:
        sure = "" if abs(plain["nw_t"]) >= 2 else ", not significant"
        text += (f"; {report['reference']} minus {PLAIN_LIGHTGBM} {plain['mean']:+.4f} "
                 f"(paired t {plain['nw_t']:.2f}{sure})")
    return SignalCheck(text, signal)


@dataclass(frozen=True)
class OosSeries:
    """Per-date out-of-sample rank IC and top-minus-bottom quintile return of a model."""

    model: str
    ic: pd.Series
    long_short: pd.Series
    horizon: int
    label_source: str = LABEL_COLUMN

    @property
    def cumulative(self) -> pd.Series:
        """Compounded long-short return of non-overlapping ``horizon``-day holdings."""
        step = self.long_short.iloc[:: max(1, self.horizon)]
        return (1.0 + step).cumprod() - 1.0


@dataclass(frozen=True)
class StrategyBacktest:
    """The strategy backtest of a run (``backtest.parquet`` + the ``backtest`` metrics block)."""

    run_dir: Path
    daily: pd.DataFrame
    stats: dict
    is_demo: bool

    @property
    def summary(self) -> str:
        """One line: the strategy's figures next to the equal-weight benchmark's."""
        s, b = self.stats, self.stats.get("benchmark") or {}
        demo = "DEMO - " if self.is_demo else ""
        return (f"{demo}{self.run_dir.name}: strategy after costs {_pct(s.get('annual_return'))}"
                f"/yr, Sharpe {_num(s.get('sharpe'))}, max drawdown "
                f"{_pct(s.get('max_drawdown'))}, turnover {_num(s.get('turnover_annual'))}x/yr, "
                f"cost drag {_share(s.get('cost_drag_annual'))}/yr, {s.get('n_rebalances')} "
                f"rebalances | equal-weight {_pct(b.get('annual_return'))}/yr, Sharpe "
                f"{_num(b.get('sharpe'))}, max drawdown {_pct(b.get('max_drawdown'))} | "
                f"IR {_num(s.get('information_ratio'))}")


def strategy_backtest(run_dir: str | Path) -> StrategyBacktest | None:
    """Return the run's strategy backtest, or None when it has none.

    ``bma run --backtest`` writes it (``backtest.parquet`` and the ``backtest`` block
    of ``metrics.json``).

    Raises
    ------
    bma_models.errors.DataError
        ``backtest.parquet`` exists but ``metrics.json`` has no ``backtest`` block.
    """
    from bma_models.errors import DataError
    from bma_models.report.backtest import BACKTEST_FILE, read_backtest

    run_dir = Path(run_dir)
    if not (run_dir / BACKTEST_FILE).is_file():
        return None
    daily, meta = read_backtest(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    if "backtest" not in metrics:
        raise DataError(f"{run_dir.name}: {BACKTEST_FILE} without a backtest block in "
                        "metrics.json")
    return StrategyBacktest(run_dir, daily, metrics["backtest"],
                            meta.get("bma.is_demo") == "true")


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _share(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def load_summary(run_dir: str | Path) -> RunSummary:
    """Read ``recommendations.csv`` and ``metrics.json`` of one run."""
    run_dir = Path(run_dir)
    recs = pd.read_csv(run_dir / "recommendations.csv")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    oos = metrics.get("oos", {})
    return RunSummary(
        run_dir=run_dir,
        recommendations=recs.reindex(columns=list(RECOMMENDATION_COLUMNS)),
        model_ic={m: v.get("rank_ic") or 0.0 for m, v in oos.items()},
        quantile_returns={m: v.get("long_short_mean") or 0.0 for m, v in oos.items()},
        stack_weights={k: float(v or 0.0) for k, v in metrics.get("stack_weights", {}).items()},
        is_demo=bool(metrics.get("run", {}).get("is_demo", False)),
        signal=signal_check(metrics))


def recommendation_rows(recommendations: pd.DataFrame) -> Iterator[tuple[object, ...]]:
    """Yield the table rows of ``recommendations``: weights in percent, empty cells blank.

    ``weight`` and ``current_weight`` read ``3.00%``, ``trade_weight`` is signed
    (``+3.00%`` a buy, ``-1.25%`` a sale), the score has four decimals and the
    last close two; a missing value (an older run without ``current_weight``
    and ``trade_weight``) is an empty cell.

    Examples
    --------
    >>> frame = pd.DataFrame({"rank": [1], "ticker": ["AAA"], "score": [0.87619],
    ...                       "weight": [0.03], "trade_weight": [float("nan")],
    ...                       "last_close": [35.1233]})
    >>> next(recommendation_rows(frame))
    (1, 'AAA', '0.8762', '3.00%', '', '35.12')
    """
    formats = {i: CELL_FORMATS[column] for i, column in enumerate(recommendations.columns)
               if column in CELL_FORMATS}
    for row in recommendations.itertuples(index=False, name=None):
        cells = ["" if _missing(v) else v for v in row]
        for i, spec in formats.items():
            if cells[i] != "":
                cells[i] = format(float(cells[i]), spec)
        yield tuple(cells)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def oos_series(run_dir: str | Path, model: str = "fused", quantiles: int = 5
               ) -> tuple[OosSeries | None, str]:
    """Per-date IC and long-short of ``model``; ``(None, reason)`` when labels are unavailable.

    The realized returns are the ``label`` column of the predictions file
    when it is there (any source); only an older demo run without it has its
    labels rebuilt from the demo market.
    """
    from bma_models.evaluation import long_short_spread, rank_ic
    from bma_models.report.predictions import read_predictions

    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    oos, file_name = read_predictions(run_dir)
    if model not in oos.columns:
        return None, f"{run_dir.name}: no {model!r} column in {file_name}"
    if "label" in oos.columns:
        label, source = oos["label"].astype(float), f"label column of {file_name}"
    else:
        rebuilt, reason = _rebuilt_label(run_dir, metrics)
        if rebuilt is None:
            return None, reason
        label, source = rebuilt.reindex(oos.index), LABEL_REBUILT
    frame = pd.DataFrame({"score": oos[model], "label": label}).dropna()
    if frame.empty:
        return None, f"{run_dir.name}: no out-of-sample row has a realized return yet"
    ic = rank_ic(frame["score"], frame["label"])
    spread = long_short_spread(frame["score"], frame["label"], quantiles)
    return OosSeries(model, ic, spread, int(metrics["run"]["horizon"]), source), ""


def _rebuilt_label(run_dir: Path, metrics: dict) -> tuple[pd.Series | None, str]:
    from bma_models.data.demo import demo_market
    from bma_models.labels import forward_returns

    run = metrics.get("run", {})
    if run.get("source") != "demo":
        return None, (f"{run_dir.name}: predictions_oos.csv has no label column (a run "
                      f"written before the report stored realized returns), and for source "
                      f"{run.get('source')!r} they cannot be rebuilt from the run files: "
                      "run the model again to get its backtest")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    data = manifest["settings"]["data"]
    market = demo_market(n_tickers=data["demo_tickers"], n_sessions=data["demo_sessions"],
                         seed=data["demo_seed"], end=run["end"])
    return forward_returns(market.bars, int(run["horizon"])), ""
