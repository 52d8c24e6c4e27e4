"""The simple baselines every run is measured against ("alpha quality monitoring").

A research pipeline that cannot beat a one-line score is not worth trading, and
nothing else in a run's outputs would say so. Every ``bma run`` therefore scores,
on exactly its own out-of-sample rows:

==================  =====================================================================
baseline            score at session ``T`` (data up to ``T - lag``, the run's feature lag)
==================  =====================================================================
``reversal_5``      ``-(close(T-lag) / close(T-lag-5) - 1)``: last week's losers
``momentum_20``     ``close(T-lag) / close(T-lag-20) - 1``: last month's winners
``low_vol_60``      ``-std(daily close-to-close returns over the 60 sessions to T-lag)``
``lightgbm_plain``  one LightGBM with the library's default hyperparameters on the
                    run's features, training target and walk-forward splits
==================  =====================================================================

next to the stack's best first-layer member, the stack and the fused score, and
the paired difference of the fused score's per-date rank IC against each, with
Newey-West t-statistics (:func:`bma_models.evaluation.paired_difference`).

The three price baselines use the same information set as the features (the
run's lag on the market session grid), so a baseline is never handicapped or
favoured by fresher data than the model gets. Prices are the bars as loaded
(total-return basis when the source had an adjusted close).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bma_models.data.protocol import to_panel
from bma_models.errors import DataError, SettingsError
from bma_models.evaluation import (
    PerDateScores,
    ic_summary,
    newey_west_lags,
    paired_difference,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINE_COLUMNS",
    "PLAIN_LIGHTGBM",
    "PRICE_BASELINES",
    "baseline_report",
    "baseline_scores",
    "describe_verdict",
    "figures_by_year",
    "plain_lightgbm",
]

#: The price baselines and their description (what the report shows).
PRICE_BASELINES: dict[str, str] = {
    "reversal_5": "5-day reversal: -(close / close 5 sessions earlier - 1)",
    "momentum_20": "20-day momentum: close / close 20 sessions earlier - 1",
    "low_vol_60": "60-day low volatility: -std of 60 daily returns",
}
#: Name of the plain LightGBM baseline.
PLAIN_LIGHTGBM = "lightgbm_plain"
#: Column of each baseline in ``predictions_oos`` (prefixed so no model name can clash).
BASELINE_COLUMNS: dict[str, str] = {
    name: f"baseline_{name}" for name in (*PRICE_BASELINES, PLAIN_LIGHTGBM)
}


def baseline_scores(bars: pd.DataFrame, lag: int, index: pd.MultiIndex | None = None
                    ) -> pd.DataFrame:
    """Compute the price baselines on the ``(date, ticker)`` rows of ``index``.

    Parameters
    ----------
    bars : DataFrame
        Protocol bars (``date``, ``ticker``, ``close``, ...).
    lag : int
        Feature lag of the run in market sessions (>= 0): the score at ``T``
        uses closes up to ``T - lag``.
    index : MultiIndex, optional
        Rows to return (e.g. the run's OOS rows); default every bar.

    Returns
    -------
    DataFrame
        Columns ``reversal_5``, ``momentum_20``, ``low_vol_60``; NaN where the
        window is incomplete (listing, halt) or the row has no bar.
    """
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 0:
        raise SettingsError(f"lag must be an integer >= 0, got {lag!r}")
    close = to_panel(bars, "close")
    returns = close.pct_change(fill_method=None)
    panels = {
        "reversal_5": -(close / close.shift(5) - 1.0),
        "momentum_20": close / close.shift(20) - 1.0,
        "low_vol_60": -returns.rolling(60, min_periods=60).std(),
    }
    frame = pd.DataFrame({name: panel.shift(int(lag)).stack(future_stack=True)
                          for name, panel in panels.items()})
    frame.index.names = ["date", "ticker"]
    if index is not None:
        frame = frame.reindex(index)
    return frame


def plain_lightgbm(seed: int = 0, n_jobs: int = 1):
    """Build the plain LightGBM baseline: library defaults, seeded, quiet."""
    import lightgbm as lgb

    return lgb.LGBMRegressor(random_state=int(seed), n_jobs=int(n_jobs), verbose=-1)


def baseline_report(
    scores: pd.DataFrame,
    label: pd.Series,
    *,
    horizon: int,
    members: list[str],
    reference: str = "fused",
    n_quantiles: int = 5,
    per_date: PerDateScores | None = None,
) -> dict:
    """Rank IC, ICIR, Newey-West t and paired difference vs ``reference`` of every score.

    Parameters
    ----------
    scores : DataFrame on the run's OOS ``(date, ticker)`` rows
        Columns: the first-layer ``members``, ``stack``, ``fused`` and the
        baselines under their :data:`BASELINE_COLUMNS` names (missing
        baselines are left out of the table).
    label : Series
        The run's label on the same rows.
    horizon : int
        Label horizon (sets the Newey-West lags, see
        :func:`~bma_models.evaluation.newey_west_lags`).
    members : list of str
        First-layer model columns; the one with the highest mean rank IC is
        reported as ``best_member``.
    reference : str, default="fused"
        The score every other row is compared with.
    per_date : PerDateScores, optional
        The run's :class:`~bma_models.evaluation.PerDateScores` of these
        columns and this label (figures the metrics already computed are
        reused); default a new one.

    Returns
    -------
    dict
        ``{"scores": {row: {"role", "column", "rank_ic", "rank_icir", "nw_t",
        "long_short_mean", "n_dates", "vs_reference": {"mean", "nw_t",
        "n_dates"} or None}}, "reference", "best_member", "nw_lags",
        "beats_all_baselines", "beaten_by", "by_year", "years_won"}``. Rows are
        ``fused``, ``stack``, ``best_member`` and the baselines;
        ``beats_all_baselines`` is True when the reference's mean rank IC exceeds
        every *baseline's* (the stack and best member are shown for diagnosis,
        not part of the verdict). ``by_year`` repeats the comparison per calendar
        year (see :func:`figures_by_year`); ``years_won`` counts, per row, the
        years in which the reference's mean rank IC was higher (``{"won",
        "years"}``): an edge that holds in one year only is not an edge.
    """
    if reference not in scores.columns:
        raise DataError(f"scores have no {reference!r} column to compare with")
    label = label.reindex(scores.index)
    if per_date is None:
        per_date = PerDateScores(scores, label)
    ics = {c: per_date.rank_ic(c) for c in scores.columns}
    n_dates = len(ics[reference])
    lags = newey_west_lags(n_dates, horizon)
    best = max(members, key=lambda m: ics[m].mean()) if members else None
    rows: dict[str, str] = {reference: reference}
    if "stack" in scores.columns and reference != "stack":
        rows["stack"] = "stack"
    if best is not None:
        rows["best_member"] = best
    baselines = {name: column for name, column in BASELINE_COLUMNS.items()
                 if column in scores.columns}
    rows.update(baselines)
    table = {}
    for row, column in rows.items():
        summary = ic_summary(ics[column], lags)
        spread = per_date.long_short_spread(column, n_quantiles)
        table[row] = {
            "role": _role(row, column), "column": column, "rank_ic": summary["mean"],
            "rank_icir": summary["icir"], "nw_t": summary["nw_t"],
            "long_short_mean": float(spread.mean()), "n_dates": summary["n_dates"],
            "vs_reference": None if row == reference else paired_difference(
                ics[reference], ics[column], lags),
        }
    beaten_by = [row for row in baselines
                 if not table[reference]["rank_ic"] > table[row]["rank_ic"]]
    by_year = figures_by_year({row: ics[column] for row, column in rows.items()},
                              reference, horizon)
    years_won = {row: {"won": sum(year["vs_reference"][row]["mean"] > 0 for year in by_year),
                       "years": len(by_year)}
                 for row in rows if row != reference}
    return {"scores": table, "reference": reference, "best_member": best, "nw_lags": lags,
            "beats_all_baselines": not beaten_by, "beaten_by": beaten_by,
            "by_year": by_year, "years_won": years_won}


def figures_by_year(ics: Mapping[str, pd.Series], reference: str, horizon: int) -> list[dict]:
    """Mean rank IC of every row and its paired difference vs ``reference``, per year.

    Parameters
    ----------
    ics : mapping of row name to per-date rank IC (index: dates)
    reference : str
        The row every other row is compared with.
    horizon : int
        Label horizon (the Newey-West lags of each year's figures).

    Returns
    -------
    list of dict
        One ``{"year", "n_dates", "rank_ic": {row: mean}, "vs_reference": {row:
        {"mean", "nw_t", "n_dates"}}}`` per calendar year of the reference's
        dates, in order; ``n_dates`` counts the reference's dates.
    """
    years = {row: pd.DatetimeIndex(ic.index).year for row, ic in ics.items()}
    out = []
    for year in sorted(set(years[reference])):
        in_year = {row: ic[years[row] == year].dropna() for row, ic in ics.items()}
        ref = in_year[reference]
        lags = newey_west_lags(max(len(ref), 1), horizon)
        out.append({
            "year": int(year), "n_dates": int(len(ref)),
            "rank_ic": {row: float(ic.mean()) if len(ic) else float("nan")
                        for row, ic in in_year.items()},
            "vs_reference": {row: paired_difference(ref, ic, lags)
                             for row, ic in in_year.items() if row != reference},
        })
    return out


def _role(row: str, column: str) -> str:
    if row == "best_member":
        return f"best first-layer member ({column})"
    if row in PRICE_BASELINES:
        return f"baseline: {PRICE_BASELINES[row]}"
    if row == PLAIN_LIGHTGBM:
        return "baseline: one LightGBM, default hyperparameters, same features and splits"
    return {"fused": "fused score (what is traded)", "stack": "stack (meta-learner)"}.get(
        row, row)


def describe_verdict(report: Mapping) -> str:
    """One sentence saying whether the reference beats every baseline, with the figures."""
    ref = report["reference"]
    table = report["scores"]
    if report["beats_all_baselines"]:
        sentence = (f"{ref} beats every baseline: rank IC {table[ref]['rank_ic']:.4f} vs "
                    + ", ".join(f"{row} {table[row]['rank_ic']:.4f}" for row in table
                                if row in BASELINE_COLUMNS))
    else:
        sentence = (f"{ref} does NOT beat every baseline: rank IC {table[ref]['rank_ic']:.4f} vs "
                    + ", ".join(f"{row} {table[row]['rank_ic']:.4f} (paired t "
                                f"{table[row]['vs_reference']['nw_t']:.2f})"
                                for row in report["beaten_by"]))
    won = (report.get("years_won") or {}).get(PLAIN_LIGHTGBM)
    if won:
        sentence += f"; {ref} beats {PLAIN_LIGHTGBM} in {won['won']} of {won['years']} years"
    return sentence
