"""``recommendations.xlsx``: the analyst-ready workbook of one run (openpyxl).

Eight sheets (nine with a backtest), each with a banner naming the data source
(row 1: title, row 2: source and run), the table header on row 3, frozen panes below the header,
an autofilter over the main table, number formats per column and colour
scales on the columns an analyst scans first (scores, ICs, weights):

==================  ============================================================
sheet               contents
==================  ============================================================
Recommendations     rank, ticker, sector, score, score percentile, stack score,
                    expected return, current weight, target weight, trade
                    weight, target USD / shares at the plan's capital (named in
                    the header), last close, ADV, ATR, share of ex-ante
                    variance, the rulebook's reason when the trader would
                    refuse to buy the name
Trades              the trade list from the current book to the plan: side,
                    weights, USD and shares, assumed cost, reason; turnover,
                    cost, capital and book source
Model metrics       per first-layer model, ``stack`` and ``fused``: OOS IC, rank
                    IC, ICIR, rank ICIR, hit rate, long-short, turnover, weight
Baselines           fused score, stack, best member and the simple baselines on
                    the same OOS rows: rank IC, ICIR, Newey-West t, long-short,
                    paired difference vs fused with its t; the verdict (red when
                    the fused score does not beat every baseline), a bar chart,
                    and the same per calendar year (fused minus the plain
                    LightGBM with its t, and in how many years fused won)
Factor IC           per-factor OOS rank IC / ICIR, category, sign used
Portfolio & risk    sector weight vs limit and holdings per sector; solver,
                    status, fallback, ex-ante vol; the rulebook (each rule, its
                    config key and how many names it refused); factor exposures
Regime              current state; per-date history (vol, trend, thresholds)
Run info            run id, source, dates, config/data hashes, timings, versions
Backtest            only with a backtest (docs/backtest.md): the daily equity,
                    benchmark, drawdown, cash, exposure, turnover, costs and
                    holdings; strategy vs equal-weight statistics
Rule attribution    only after ``bma backtest --attribution``: the backtest once
                    per rule switched off, and the differences
==================  ============================================================

Why a fixed banner + header row 3 on every sheet: readers (people and the
tests) find every table at the same place, and the data source -- above all
"DEMO" -- is visible on whichever sheet is open or printed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bma_models.baselines import PLAIN_LIGHTGBM

logger = logging.getLogger(__name__)

__all__ = ["ATTRIBUTION_SHEET", "BACKTEST_SHEET", "HEADER_ROW", "SHEETS", "add_attribution_sheet",
           "add_backtest_sheet", "baseline_verdict",
           "baselines_by_year_frame", "baselines_frame", "model_metrics_frame",
           "sector_exposure", "workbook_title", "write_workbook"]

SHEETS: tuple[str, ...] = ("Recommendations", "Trades", "Model metrics", "Baselines",
                           "Factor IC", "Portfolio & risk", "Regime", "Run info")
#: The last sheet, present when the run has a backtest (``bma run --backtest``)
BACKTEST_SHEET = "Backtest"
#: Row of every sheet's table header (rows 1-2 are the banner).
HEADER_ROW = 3

_PCT, _PCT3, _NUM3, _NUM4 = "0.00%", "0.000%", "0.000", "0.0000"
_USD, _INT, _PRICE = "#,##0", "#,##0", "#,##0.00"
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_DEMO_FILL = PatternFill("solid", fgColor="FCE4D6")
_TITLE_FONT = Font(bold=True, size=14)
_DEMO_FONT = Font(bold=True, size=14, color="C00000")

# (column in the recommendations frame, header, number format)
_REC_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("rank", "Rank", _INT), ("ticker", "Ticker", None), ("sector", "Sector", None),
    ("score", "Score (fused)", _NUM4), ("score_percentile", "Score percentile", _PCT),
    ("stack_score", "Stack score", _NUM4),
    ("expected_return", "Expected return ({h}d)", _PCT3),
    ("current_weight", "Current weight", _PCT), ("weight", "Weight", _PCT),
    ("trade_weight", "Trade weight", _PCT),
    ("target_usd", "Target USD at {capital}", _USD), ("target_shares", "Target shares", _INT),
    ("last_close", "Last close", _PRICE), ("adv", "ADV 20d (USD)", _USD),
    ("atr", "ATR {atr}d (USD)", _PRICE),
    ("risk_contribution", "Risk contribution (share of variance)", _PCT),
    ("screen", "Refused by", None),
)
_TRADE_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("ticker", "Ticker", None), ("sector", "Sector", None), ("side", "Side", None),
    ("current_weight", "Current weight", _PCT), ("weight", "Target weight", _PCT),
    ("trade_weight", "Trade weight", _PCT), ("trade_usd", "Trade USD at {capital}", _USD),
    ("trade_shares", "Trade shares", _INT), ("last_close", "Last close", _PRICE),
    ("cost_usd", "Assumed cost (USD)", _PRICE), ("reason", "Reason", None),
)
_METRIC_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("model", "Model", None), ("role", "Role", None), ("stack_weight", "Stack weight", _PCT),
    ("ic", "OOS IC", _NUM4), ("rank_ic", "OOS rank IC", _NUM4), ("icir", "ICIR", _NUM3),
    ("rank_icir", "Rank ICIR", _NUM3), ("hit_rate", "Hit rate", _PCT),
    ("long_short_mean", "Top-bottom quintile ({h}d)", _PCT3),
    ("top_turnover_mean", "Top-quintile turnover", _PCT), ("n_dates", "OOS dates", _INT),
)
_BASELINE_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("row", "Score", None), ("role", "What it is", None), ("rank_ic", "OOS rank IC", _NUM4),
    ("rank_icir", "Rank ICIR", _NUM3), ("nw_t", "NW t", "0.00"),
    ("long_short_mean", "Top-bottom quintile ({h}d)", _PCT3),
    ("diff", "Fused minus this (rank IC)", _NUM4), ("diff_t", "Paired NW t", "0.00"),
    ("n_dates", "OOS dates", _INT),
)
_RED_FONT = Font(bold=True, color="C00000")
_GREEN_FONT = Font(bold=True, color="006100")
_RED_FILL = PatternFill("solid", fgColor="FFC7CE")
_FACTOR_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("factor", "Factor", None), ("category", "Category", None),
    ("sign_used", "Sign used", "0"), ("rank_ic", "OOS rank IC", _NUM4),
    ("rank_icir", "Rank ICIR", _NUM3), ("n_dates", "Dates", _INT),
)
_REGIME_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("date", "Date", "yyyy-mm-dd"), ("state", "State", None),
    ("vol", "Market vol (ann.)", _PCT), ("trend", "Trend (21d log)", _PCT),
    ("vol_lo", "Vol low threshold", _PCT), ("vol_hi", "Vol high threshold", _PCT),
    ("trend_lo", "Trend low threshold", _PCT), ("trend_hi", "Trend high threshold", _PCT),
)


def workbook_title(source_label: str, is_demo: bool) -> str:
    """Title of the workbook and of every sheet banner (``DEMO`` first for demo data)."""
    title = f"BMA recommendations - {source_label}"
    return f"DEMO - {title}" if is_demo and "DEMO" not in source_label else title


def write_workbook(path: str | Path, result, metrics: dict[str, Any],
                   manifest: dict[str, Any], backtest_daily: pd.DataFrame | None = None) -> Path:
    """Write the analyst workbook of one run.

    Parameters
    ----------
    path : str or Path
        Target file (inside the run's staging directory).
    result : ResearchResult
        What the pipeline computed.
    metrics : dict
        The ``metrics.json`` document of the run (figures are taken from it so
        the workbook and the JSON can never disagree).
    manifest : dict
        The ``manifest.json`` document (hashes, versions, command line).
    backtest_daily : DataFrame, optional
        The backtest's daily series; with ``metrics["backtest"]`` it adds the
        :data:`BACKTEST_SHEET` sheet.

    Returns
    -------
    Path
        ``path``.
    """
    run = metrics["run"]
    banner = _Banner(workbook_title(run["source_label"], bool(run["is_demo"])),
                     f"Data source: {run['source_label']} | run {run['id']} | "
                     f"prediction date {run['prediction_date']}", bool(run["is_demo"]))
    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.title = banner.title
    wb.properties.subject = banner.subtitle
    horizon = int(run["horizon"])
    fmt = {"h": horizon, "capital": f"{result.plan.capital:,.0f}",
           "atr": result.plan.rules.atr_window}
    _recommendations_sheet(wb.create_sheet(SHEETS[0]), banner, result.recommendations, fmt)
    _trades_sheet(wb.create_sheet(SHEETS[1]), banner, result.plan, metrics, fmt)
    _metrics_sheet(wb.create_sheet(SHEETS[2]), banner, metrics, horizon)
    _baselines_sheet(wb.create_sheet(SHEETS[3]), banner, metrics, horizon)
    _factor_sheet(wb.create_sheet(SHEETS[4]), banner, result.factor_ic)
    _portfolio_sheet(wb.create_sheet(SHEETS[5]), banner, result, metrics)
    _regime_sheet(wb.create_sheet(SHEETS[6]), banner, result.regimes)
    _run_info_sheet(wb.create_sheet(SHEETS[7]), banner, metrics, manifest)
    if backtest_daily is not None and "backtest" in metrics:
        _backtest_sheet(wb.create_sheet(BACKTEST_SHEET), banner, metrics["backtest"],
                        backtest_daily)
    path = Path(path)
    wb.save(path)
    logger.info("workbook written: %s (%d sheets)", path, len(wb.sheetnames))
    return path


class _Banner:
    def __init__(self, title: str, subtitle: str, is_demo: bool) -> None:
        self.title, self.subtitle, self.is_demo = title, subtitle, is_demo

    def write(self, ws: Worksheet, sheet_title: str) -> None:
        ws["A1"] = f"{self.title} - {sheet_title}"
        ws["A1"].font = _DEMO_FONT if self.is_demo else _TITLE_FONT
        ws["A2"] = self.subtitle
        ws["A2"].font = Font(italic=True, color="C00000" if self.is_demo else "595959")
        if self.is_demo:
            for cell in ("A1", "A2"):
                ws[cell].fill = _DEMO_FILL


def _cell_value(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def _table(ws: Worksheet, frame: pd.DataFrame, columns: Sequence[tuple[str, str, str | None]],
           *, first_col: int = 1, row: int = HEADER_ROW, filter_: bool = True,
           fmt: dict[str, Any] | None = None) -> tuple[int, int]:
    """Header + rows of ``frame[columns]``; returns (last row, last column)."""
    fmt = fmt or {}
    for j, (_, header, _) in enumerate(columns):
        cell = ws.cell(row=row, column=first_col + j, value=header.format(**fmt))
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    values = [frame[key].tolist() for key, _, _ in columns]
    for i in range(len(frame)):
        for j, (_, _, number_format) in enumerate(columns):
            cell = ws.cell(row=row + 1 + i, column=first_col + j, value=_cell_value(values[j][i]))
            if number_format:
                cell.number_format = number_format
    last_row, last_col = row + max(len(frame), 1), first_col + len(columns) - 1
    if filter_:
        ws.auto_filter.ref = (f"{get_column_letter(first_col)}{row}:"
                              f"{get_column_letter(last_col)}{last_row}")
    for j, (_, header, _) in enumerate(columns):
        width = max([len(header.format(**fmt))] + [len(str(v)) for v in values[j][:200]])
        ws.column_dimensions[get_column_letter(first_col + j)].width = min(max(width + 2, 9), 40)
    return last_row, last_col


def _key_values(ws: Worksheet, rows: Sequence[tuple[str, Any, str | None]], *, col: int,
                row: int = HEADER_ROW, header: tuple[str, str] = ("Item", "Value")) -> int:
    for j, text in enumerate(header):
        cell = ws.cell(row=row, column=col + j, value=text)
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
    for i, (key, value, number_format) in enumerate(rows, start=1):
        ws.cell(row=row + i, column=col, value=key).font = Font(bold=True)
        cell = ws.cell(row=row + i, column=col + 1, value=_cell_value(value))
        if number_format:
            cell.number_format = number_format
    ws.column_dimensions[get_column_letter(col)].width = max(
        [len(k) for k, _, _ in rows] + [12]) + 2
    ws.column_dimensions[get_column_letter(col + 1)].width = min(max(
        [len(str(v)) for _, v, _ in rows] + [12]) + 2, 70)
    return row + len(rows)


def _color_scale(ws: Worksheet, column: int, first_row: int, last_row: int) -> None:
    if last_row < first_row:
        return
    letter = get_column_letter(column)
    ws.conditional_formatting.add(
        f"{letter}{first_row}:{letter}{last_row}",
        ColorScaleRule(start_type="min", start_color="F8696B", mid_type="percentile",
                       mid_value=50, mid_color="FFFFFF", end_type="max", end_color="63BE7B"))


def _column_of(columns, key: str) -> int:
    return 1 + [k for k, _, _ in columns].index(key)


def _recommendations_sheet(ws, banner: _Banner, recs: pd.DataFrame, fmt: dict) -> None:
    banner.write(ws, "Recommendations")
    last_row, _ = _table(ws, recs, _REC_COLUMNS, fmt=fmt)
    for key in ("score", "expected_return", "weight"):
        _color_scale(ws, _column_of(_REC_COLUMNS, key), HEADER_ROW + 1, last_row)
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=3)  # rank + ticker stay visible
    note = (f"Weights are fractions of the capital {fmt['capital']} USD (the USD and share "
            "columns assume it); weights under one basis point are zero; 'Refused by' is the "
            "trader's screen that would refuse to buy the name (it then gets no new weight).")
    ws.cell(row=last_row + 2, column=1, value=note).font = Font(italic=True)


def _trades_sheet(ws, banner: _Banner, plan, metrics: dict[str, Any], fmt: dict) -> None:
    from bma_models.portfolio import trade_list

    banner.write(ws, "Trades (current book -> plan)")
    trades = trade_list(plan)
    last_row, last_col = _table(ws, trades, _TRADE_COLUMNS, fmt=fmt)
    p = metrics["portfolio"]
    summary = [
        ("Book", p["holdings"], None), ("Capital", p["capital_source"], None),
        ("Names held now", p["n_current"], _INT), ("Invested now", p["current_invested"], _PCT),
        ("Trades", p["n_trades"], _INT), ("Turnover (one-way)", p["turnover"], _PCT),
        ("Assumed cost per traded dollar (bps)", p["trading_cost_bps"], "0.0"),
        ("Assumed cost (USD)", p["estimated_cost_usd"], _PRICE),
        ("Trades below the minimum order removed", p["small_trades_removed"], _INT),
    ]
    summary += [(f"Note {i + 1}", note, None) for i, note in enumerate(p["notes"])]
    _key_values(ws, summary, col=last_col + 2, header=("Trade list", "Value"))
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)


def model_metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per first-layer model, ``stack`` and ``fused`` from ``metrics.json``."""
    weights = metrics.get("stack_weights", {})
    rows = []
    for name, m in metrics["oos"].items():
        role = ("stack (meta-learner)" if name == "stack" else
                "fused (stack + regime factors)" if name == "fused" else "first layer")
        rows.append({"model": name, "role": role, "stack_weight": weights.get(name),
                     **{k: m.get(k) for k in ("ic", "rank_ic", "icir", "rank_icir", "hit_rate",
                                              "long_short_mean", "top_turnover_mean",
                                              "n_dates")}})
    return pd.DataFrame(rows)


def _metrics_sheet(ws, banner: _Banner, metrics: dict[str, Any], horizon: int) -> None:
    banner.write(ws, "Model metrics (out of sample)")
    frame = model_metrics_frame(metrics)
    last_row, _ = _table(ws, frame, _METRIC_COLUMNS, fmt={"h": horizon})
    _color_scale(ws, _column_of(_METRIC_COLUMNS, "rank_ic"), HEADER_ROW + 1, last_row)
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)
    note = ("OOS = rows the meta-learner's walk-forward split scored; IC = per-date Pearson, "
            "rank IC = per-date Spearman vs the forward return; ICIR = mean / std of the "
            "per-date IC (not annualised); hit rate = share of dates with rank IC > 0.")
    ws.cell(row=last_row + 2, column=1, value=note).font = Font(italic=True)


def baselines_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per score of ``metrics.json`` ``baselines`` (fused first)."""
    table = (metrics.get("baselines") or {}).get("scores", {})
    rows = []
    for row, entry in table.items():
        versus = entry.get("vs_reference") or {}
        rows.append({"row": row, "role": entry["role"], "rank_ic": entry["rank_ic"],
                     "rank_icir": entry["rank_icir"], "nw_t": entry["nw_t"],
                     "long_short_mean": entry["long_short_mean"],
                     "diff": versus.get("mean"), "diff_t": versus.get("nw_t"),
                     "n_dates": entry["n_dates"]})
    return pd.DataFrame(rows, columns=[key for key, _, _ in _BASELINE_COLUMNS])


def baselines_by_year_frame(metrics: dict[str, Any]) -> tuple[pd.DataFrame, list]:
    """Per-year rank IC of every row and fused minus the plain LightGBM (with its t).

    Returns the frame (one row per calendar year of the OOS dates) and its
    column specs for the workbook; empty for runs without ``by_year``.
    """
    report = metrics.get("baselines") or {}
    years = report.get("by_year") or []
    rows = list(report.get("scores", {}))
    columns = [("year", "Year", "0"), ("n_dates", "Dates", _INT)]
    columns += [(f"ic_{row}", f"{row} rank IC", _NUM4) for row in rows]
    records = []
    for year in years:
        record = {"year": year["year"], "n_dates": year["n_dates"]}
        record.update({f"ic_{row}": year["rank_ic"].get(row) for row in rows})
        versus = year["vs_reference"].get(PLAIN_LIGHTGBM)
        if versus is not None:
            record.update(diff_plain=versus["mean"], diff_plain_t=versus["nw_t"])
        records.append(record)
    if any("diff_plain" in r for r in records):
        reference = report.get("reference", "fused")
        columns += [("diff_plain", f"{reference} minus {PLAIN_LIGHTGBM}", _NUM4),
                    ("diff_plain_t", "Year's paired t", "0.00")]
    return pd.DataFrame(records, columns=[key for key, _, _ in columns]), columns


def baseline_verdict(metrics: dict[str, Any]) -> tuple[str, bool]:
    """Return the baseline sentence the workbook shows and whether it is good news."""
    report = metrics.get("baselines") or {}
    if not report:
        return "baselines not computed", False
    reference = report["reference"]
    if report["beats_all_baselines"]:
        return (f"OK: the {reference} score beats every baseline on mean OOS rank IC "
                "(see the paired t for how sure that is)"), True
    return (f"WARNING: the {reference} score does NOT beat every baseline: "
            f"{', '.join(report['beaten_by'])} score at least as well on the same OOS "
            "dates. Do not trade it as if it had an edge over them."), False


def _baselines_sheet(ws, banner: _Banner, metrics: dict[str, Any], horizon: int) -> None:
    banner.write(ws, "Baselines (out of sample)")
    frame = baselines_frame(metrics)
    last_row, _ = _table(ws, frame, _BASELINE_COLUMNS, fmt={"h": horizon})
    _color_scale(ws, _column_of(_BASELINE_COLUMNS, "rank_ic"), HEADER_ROW + 1, last_row)
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)
    verdict, good = baseline_verdict(metrics)
    cell = ws.cell(row=last_row + 2, column=1, value=verdict)
    cell.font = _GREEN_FONT if good else _RED_FONT
    if not good:
        cell.fill = _RED_FILL
        # the fused row (first) in red as well
        for j in range(1, len(_BASELINE_COLUMNS) + 1):
            ws.cell(row=HEADER_ROW + 1, column=j).font = _RED_FONT
    lags = (metrics.get("baselines") or {}).get("nw_lags")
    note = (f"Rank IC = per-date Spearman vs the label, averaged over the run's OOS dates; "
            f"NW t = Newey-West t of that mean with {lags} lags (covers the overlap of "
            f"{horizon}-session labels); paired = per-date difference fused minus the row, "
            "same dates. |t| < 2 is not a finding.")
    ws.cell(row=last_row + 3, column=1, value=note).font = Font(italic=True)
    _baselines_by_year(ws, metrics, first_col=len(_BASELINE_COLUMNS) + 2)
    if len(frame):
        chart = BarChart()
        chart.type = "bar"
        chart.title = "OOS rank IC: fused vs baselines"
        chart.y_axis.title = "mean rank IC"
        column = _column_of(_BASELINE_COLUMNS, "rank_ic")
        chart.add_data(Reference(ws, min_col=column, min_row=HEADER_ROW, max_row=last_row),
                       titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=HEADER_ROW + 1, max_row=last_row))
        chart.legend = None
        chart.height, chart.width = 7.5, 16
        ws.add_chart(chart, f"A{last_row + 5}")


def _baselines_by_year(ws, metrics: dict[str, Any], first_col: int) -> None:
    by_year, columns = baselines_by_year_frame(metrics)
    if not len(by_year):
        return
    ws.cell(row=HEADER_ROW - 1, column=first_col, value="By calendar year").font = Font(bold=True)
    last_row, _ = _table(ws, by_year, columns, first_col=first_col, filter_=False)
    won = (metrics["baselines"].get("years_won") or {}).get(PLAIN_LIGHTGBM)
    if won:
        reference = metrics["baselines"]["reference"]
        ws.cell(row=last_row + 2, column=first_col,
                value=(f"{reference} beats {PLAIN_LIGHTGBM} in {won['won']} of {won['years']} "
                       "years (a year's paired t below 2 is noise)")).font = Font(italic=True)


def _factor_sheet(ws, banner: _Banner, factor_ic: pd.DataFrame) -> None:
    banner.write(ws, "Factor IC (out of sample)")
    last_row, _ = _table(ws, factor_ic, _FACTOR_COLUMNS)
    _color_scale(ws, _column_of(_FACTOR_COLUMNS, "rank_ic"), HEADER_ROW + 1, last_row)
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)


def sector_exposure(result) -> pd.DataFrame:
    """Planned weight, limit, headroom and holdings per sector (largest first).

    ``names`` counts the names the plan holds (weight > 0) in the sector. The
    limit is the rulebook's sector limit; names without a sector are not a
    sector (``Unknown``: no limit, cap NaN).
    """
    from bma_models.rules import sector_is_capped

    weights = result.plan.weights
    held = weights[weights > 0]
    ref = result.market.reference.set_index("ticker")["sector"]
    sectors = ref.reindex(held.index).fillna("Unknown")
    limit = float(result.plan.rules.sector_limit)
    table = held.groupby(sectors.to_numpy()).agg(["sum", "size"])
    frame = pd.DataFrame({"sector": table.index.astype(str), "weight": table["sum"].to_numpy(),
                          "names": table["size"].to_numpy().astype(int)})
    frame["cap"] = [limit if sector_is_capped(s) else np.nan for s in frame["sector"]]
    frame["headroom"] = frame["cap"] - frame["weight"]
    frame["binding"] = np.where(frame["headroom"] <= 1e-6, "at cap", "")
    return frame.sort_values("weight", ascending=False, ignore_index=True)


def _portfolio_sheet(ws, banner: _Banner, result, metrics: dict[str, Any]) -> None:
    banner.write(ws, "Portfolio & risk")
    columns = (("sector", "Sector", None), ("weight", "Weight", _PCT), ("cap", "Sector cap", _PCT),
               ("headroom", "Headroom", _PCT), ("names", "Names", _INT),
               ("binding", "Cap binding", None))
    last_row, _ = _table(ws, sector_exposure(result), columns)
    _color_scale(ws, 2, HEADER_ROW + 1, last_row)
    p, risk, s = metrics["portfolio"], result.risk, result.settings.portfolio
    rules = result.plan.rules
    summary = [
        ("Solver", p["solver"], None), ("Status", p["status"], None),
        ("Fallback", p["fallback"] or "none (solver answer used)", None),
        ("Positions", p["n_positions"], _INT), ("Invested", p["invested"], _PCT),
        ("Ex-ante vol (annual)", p["ex_ante_vol"], _PCT),
        ("Ex-ante vol (daily)", risk["ex_ante_vol_daily"], _PCT3),
        ("Turnover (one-way vs the book)", p["turnover"], _PCT),
        ("Capital (USD)", p["capital"], _USD), ("Capital source", p["capital_source"], None),
        ("Book", p["holdings"], None), ("Risk aversion", s.risk_aversion, "0.00"),
        ("Turnover penalty", s.turnover_penalty, "0.00000"),
        ("ADV participation", s.adv_participation, _PCT),
        ("Risk-model shrinkage", risk["shrinkage"], _NUM3),
        ("Size factor source", risk["size_source"], None),
    ]
    _key_values(ws, summary, col=8, header=("Portfolio", "Value"))
    _key_values(ws, _rulebook_rows(rules, p["refused"]), col=11,
                header=("Rulebook (config key)", "Value"))
    exposures = [(str(k), v, _NUM4) for k, v in risk["factor_exposures"].items()]
    _key_values(ws, exposures, col=14, header=("Factor", "Exposure"))
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=1)


def _rulebook_rows(rules, refused: dict[str, int]) -> list[tuple[str, Any, str | None]]:
    from bma_models.rules import CONFIG_KEYS

    rows: list[tuple[str, Any, str | None]] = []
    for name, key in CONFIG_KEYS.items():
        value = getattr(rules, name)
        rows.append((key, ", ".join(value) if isinstance(value, tuple) else value, None))
    rows.append(("invested fraction (1 - cash reserve, <= max exposure)",
                 rules.invested_fraction, _PCT))
    rows += [(f"names refused: {check}", count, _INT) for check, count in refused.items()]
    return rows


def _regime_sheet(ws, banner: _Banner, regimes: pd.DataFrame) -> None:
    banner.write(ws, "Regime")
    history = regimes.reset_index().sort_values("date", ascending=False, ignore_index=True)
    last_row, _ = _table(ws, history, _REGIME_COLUMNS)
    current = history.iloc[0] if len(history) else None
    share = regimes["state"].value_counts(normalize=True)
    rows = [("Current state", None if current is None else current["state"], None),
            ("As of", None if current is None else current["date"], "yyyy-mm-dd"),
            ("Market vol (ann.)", None if current is None else current["vol"], _PCT),
            ("Trend (21d log)", None if current is None else current["trend"], _PCT)]
    rows += [(f"Share of sessions: {state}", value, _PCT) for state, value in share.items()]
    _key_values(ws, rows, col=len(_REGIME_COLUMNS) + 2, header=("Regime", "Value"))
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)


def _run_info_sheet(ws, banner: _Banner, metrics: dict[str, Any],
                    manifest: dict[str, Any]) -> None:
    banner.write(ws, "Run info")
    run, data = metrics["run"], manifest.get("data", {})
    canary = (metrics.get("canaries") or {}).get("future_label") or {}
    shuffled = (metrics.get("canaries") or {}).get("shuffled_label") or {}
    rows: list[tuple[str, Any, str | None]] = [
        ("Run id", run["id"], None), ("Source", run["source_label"], None),
        ("Demo data", "YES - synthetic, not real prices" if run["is_demo"] else "no", None),
        ("First session", run["start"], None), ("Last session", run["end"], None),
        ("Prediction date", run["prediction_date"], None),
        ("Label horizon (sessions)", run["horizon"], _INT),
        ("Label", _label_text(run), None),
        ("Tickers", run["n_tickers"], _INT), ("Sessions", run["n_dates"], _INT),
        ("Config SHA-256", manifest.get("config_sha256"), None),
        ("Data SHA-256", data.get("sha256"), None), ("Bars", data.get("rows"), _INT),
        ("Seed", manifest.get("seed"), None),
        ("Command line", " ".join(manifest.get("command_line", [])), None),
        ("Future-label canary", _canary_text(canary), None),
        ("Shuffled-label canary", _canary_text(shuffled), None),
        ("Baselines", baseline_verdict(metrics)[0], None),
    ]
    rows += [(f"Time: {stage} (s)", value, "0.00")
             for stage, value in metrics.get("timings_s", {}).items()]
    rows += [(f"Version: {name}", version, None)
             for name, version in manifest.get("packages", {}).items()]
    last = _key_values(ws, rows, col=1)
    if not baseline_verdict(metrics)[1]:
        row = HEADER_ROW + 1 + [key for key, _, _ in rows].index("Baselines")
        ws.cell(row=row, column=2).font = _RED_FONT
        ws.cell(row=row, column=2).fill = _RED_FILL
    ws.auto_filter.ref = f"A{HEADER_ROW}:B{last}"
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=1)


def _label_text(run: dict[str, Any]) -> str:
    h, lag = run["horizon"], run.get("feature_lag")
    entry = run.get("label_entry", "close")
    bought = "open(T+1)" if entry == "next_open" else "close(T)"
    known = "the close of T" if not lag else f"the close of T-{lag}"
    return (f"close(T+{h}) / {bought} - 1; the score of row T uses data up to {known} "
            f"(entry: {entry}, feature lag {lag})")


def _canary_text(canary: dict[str, Any]) -> str:
    if not canary:
        return "not run"
    ic = canary.get("rank_ic", canary.get("mean_rank_ic"))
    passed = canary.get("passed")
    verdict = "passed" if passed or passed is None else "FAILED"
    return f"{verdict} (OOS rank IC {ic})" if ic is not None else verdict


def add_backtest_sheet(path: str | Path, block: dict[str, Any], daily: pd.DataFrame) -> Path:
    """Add (or replace) the :data:`BACKTEST_SHEET` sheet of an existing workbook.

    ``bma backtest`` on a committed run: the banner is the workbook's own
    (title and subtitle), DEMO when ``block["is_demo"]``; the file is saved
    under a temporary name and renamed onto ``path``.
    """
    from openpyxl import load_workbook

    path = Path(path)
    wb = load_workbook(path)
    if BACKTEST_SHEET in wb.sheetnames:
        del wb[BACKTEST_SHEET]
    title = wb.properties.title or workbook_title(block["source_label"], block["is_demo"])
    banner = _Banner(title, wb.properties.subject or "", bool(block["is_demo"]))
    _backtest_sheet(wb.create_sheet(BACKTEST_SHEET), banner, block, daily)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path


#: The sheet ``bma backtest --attribution`` adds (one row per rulebook variant)
ATTRIBUTION_SHEET = "Rule attribution"
_ATTRIBUTION_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("variant", "Variant", None), ("relaxed", "Keys changed", None),
    ("annual_return", "Annual return", _PCT), ("delta_annual_return", "Delta return", _PCT),
    ("sharpe", "Sharpe", _NUM3), ("delta_sharpe", "Delta Sharpe", _NUM3),
    ("max_drawdown", "Max drawdown", _PCT), ("delta_max_drawdown", "Delta drawdown", _PCT),
    ("turnover_annual", "Turnover /yr", "0.00"), ("cost_drag_annual", "Cost drag /yr", _PCT3),
    ("information_ratio", "Information ratio", _NUM3), ("avg_holdings", "Avg names", "0.0"),
)


def add_attribution_sheet(path: str | Path, table: pd.DataFrame, note: str,
                          source_label: str, is_demo: bool) -> Path:
    """Add (or replace) the :data:`ATTRIBUTION_SHEET` sheet of an existing workbook.

    ``table`` is :func:`bma_models.report.run.rule_attribution`'s; the first
    row (the rules as configured) is bold, ``note`` is written under the
    table. Saved under a temporary name and renamed onto ``path``.
    """
    from openpyxl import load_workbook

    path = Path(path)
    wb = load_workbook(path)
    if ATTRIBUTION_SHEET in wb.sheetnames:
        del wb[ATTRIBUTION_SHEET]
    title = wb.properties.title or workbook_title(source_label, is_demo)
    banner = _Banner(title, wb.properties.subject or "", bool(is_demo))
    ws = wb.create_sheet(ATTRIBUTION_SHEET)
    banner.write(ws, "Rule attribution: the backtest with one rule switched off per row")
    last_row, _ = _table(ws, table, _ATTRIBUTION_COLUMNS)
    for j in range(1, len(_ATTRIBUTION_COLUMNS) + 1):
        ws.cell(row=HEADER_ROW + 1, column=j).font = Font(bold=True)
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)
    ws.cell(row=last_row + 2, column=1, value=note).font = Font(italic=True)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path


_BACKTEST_STATS: tuple[tuple[str, str, str], ...] = (
    ("annual_return", "Annual return (CAGR)", _PCT), ("annual_vol", "Annual volatility", _PCT),
    ("sharpe", "Sharpe ratio (no risk-free rate)", _NUM3), ("sortino", "Sortino ratio", _NUM3),
    ("max_drawdown", "Max drawdown", _PCT), ("calmar", "Calmar ratio", _NUM3),
    ("hit_rate", "Hit rate (holding periods > 0)", _PCT), ("total_return", "Total return", _PCT),
)
_BACKTEST_OTHER: tuple[tuple[str, str, str | None], ...] = (
    ("turnover_annual", "Turnover per year (x equity)", "0.00"),
    ("cost_drag_annual", "Cost drag per year", _PCT3),
    ("tracking_error", "Tracking error", _PCT), ("information_ratio", "Information ratio", _NUM3),
    ("n_rebalances", "Rebalances", _INT), ("n_rebalances_failed", "Rebalances without orders",
                                            _INT),
    ("n_trades", "Fills", _INT), ("initial_capital", "Initial capital (USD)", _USD),
    ("final_equity", "Final equity (USD)", _USD), ("total_costs", "Total costs (USD)", _USD),
    ("mean_holdings", "Mean holdings", "0.0"), ("start", "First session", None),
    ("end", "Last session", None),
)
_BACKTEST_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("date", "Date", "yyyy-mm-dd"), ("equity", "Equity (USD)", _USD),
    ("benchmark_equity", "Equal-weight (USD)", _USD), ("drawdown", "Drawdown", _PCT),
    ("cash", "Cash (USD)", _USD), ("gross_exposure", "Gross exposure", _PCT),
    ("turnover", "Turnover", _PCT), ("costs", "Costs (USD)", _PRICE),
    ("holdings_count", "Holdings", _INT),
)


def _backtest_sheet(ws, banner: _Banner, block: dict[str, Any], daily: pd.DataFrame) -> None:
    banner.write(ws, "Backtest (after costs)")
    frame = daily.reset_index()
    frame["drawdown"] = frame["equity"] / frame["equity"].cummax() - 1.0
    last_row, last_col = _table(ws, frame, _BACKTEST_COLUMNS)
    col = last_col + 2
    for j, text in enumerate(("Metric", "Strategy", "Equal-weight")):
        cell = ws.cell(row=HEADER_ROW, column=col + j, value=text)
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
    bench = block.get("benchmark") or {}
    for i, (key, label, fmt) in enumerate(_BACKTEST_STATS, start=1):
        ws.cell(row=HEADER_ROW + i, column=col, value=label).font = Font(bold=True)
        for j, value in enumerate((block.get(key), bench.get(key)), start=1):
            cell = ws.cell(row=HEADER_ROW + i, column=col + j, value=_cell_value(value))
            cell.number_format = fmt
    rows = [(label, block.get(key), fmt) for key, label, fmt in _BACKTEST_OTHER]
    _key_values(ws, rows, col=col, row=HEADER_ROW + len(_BACKTEST_STATS) + 2,
                header=("Backtest", "Value"))
    ws.column_dimensions[get_column_letter(col)].width = 34
    settings = block.get("settings") or {}
    note = (f"Rebalance every {settings.get('rebalance_every')} sessions on the "
            f"{settings.get('score')!s} score, fills at the next session's "
            f"{settings.get('fill_price')}, costs: IBKR Fixed commission + half spread by ADV "
            "bucket + square-root impact (docs/backtest.md). The benchmark is the daily "
            "equal-weighted universe, without costs.")
    ws.cell(row=last_row + 2, column=1, value=note).font = Font(italic=True)
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)
