"""The analyst workbook and the PNG charts of a run, read back from disk."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from bma_models.data.demo import demo_market
from bma_models.portfolio import PortfolioPlan
from bma_models.report.charts import CHART_FILES, chart_data
from bma_models.report.excel import HEADER_ROW, SHEETS
from bma_models.report.run import DEMO_WORKBOOK, WORKBOOK, run_and_report
from bma_models.rules import Rulebook
from bma_models.settings import ResearchSettings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {"data": {"demo_tickers": 60}, "models": {"enabled": ["ridge", "lightgbm"]},
        "portfolio": {"top_n": 40}}
#: a 60-name market: every name may pass the signal threshold, 10 % per name
RULES = Rulebook(max_position=0.1, acceptance_threshold=0.0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    market = demo_market(n_tickers=60, n_sessions=400, seed=3, end="2025-06-30")
    settings = ResearchSettings.from_mapping(TINY)
    root = tmp_path_factory.mktemp("report")
    return run_and_report(market, settings, root, argv=["--source", "demo"], rules=RULES)


def _rows(ws, first: int = HEADER_ROW):
    return [r for r in ws.iter_rows(min_row=first, values_only=True)]


def test_workbook_has_every_sheet_with_banner_header_freeze_and_filter(tiny_run):
    wb = load_workbook(tiny_run / WORKBOOK)
    assert wb.sheetnames == list(SHEETS)
    assert wb.properties.title.startswith("BMA recommendations") and "DEMO" in wb.properties.title
    for ws in wb.worksheets:
        assert "DEMO" in ws["A1"].value, ws.title          # title banner names the data
        assert ws["A2"].value.startswith("Data source: DEMO"), ws.title
        assert ws.freeze_panes is not None and ws.freeze_panes.endswith(str(HEADER_ROW + 1))
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A3:"), ws.title
        assert ws.cell(row=HEADER_ROW, column=1).font.bold
    assert wb["Recommendations"].freeze_panes == "C4"
    assert wb["Recommendations"].conditional_formatting  # colour scales
    assert (tiny_run / DEMO_WORKBOOK).read_bytes() == (tiny_run / WORKBOOK).read_bytes()


def test_default_run_writes_parquet_predictions_only_and_lists_its_files(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    assert "predictions_oos.parquet" in names and "predictions_oos.csv" not in names
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert all(f["bytes"] == (tiny_run / n).stat().st_size for n, f in manifest["files"].items())


def test_recommendations_sheet_matches_the_csv(tiny_run):
    ws = load_workbook(tiny_run / WORKBOOK)["Recommendations"]
    header, *rows = _rows(ws)
    assert header[:3] == ("Rank", "Ticker", "Sector")
    usd = "Target USD at 1,000,000"  # the header names the capital the column assumes
    assert {"Score (fused)", "Expected return (5d)", "Current weight", "Weight", "Trade weight",
            usd, "Target shares", "Last close", "ADV 20d (USD)", "ATR 14d (USD)",
            "Risk contribution (share of variance)", "Refused by"} <= set(header)
    sheet = pd.DataFrame([r for r in rows if r[1] is not None], columns=header)
    csv = pd.read_csv(tiny_run / "recommendations.csv")
    assert len(sheet) == len(csv)
    assert sheet["Ticker"].tolist() == csv["ticker"].tolist()
    np.testing.assert_allclose(sheet["Weight"].astype(float), csv["weight"], rtol=1e-8)
    np.testing.assert_allclose(sheet[usd].astype(float), csv["target_usd"], rtol=1e-8)
    assert sheet["Target shares"].tolist() == csv["target_shares"].tolist()
    assert ws.cell(row=HEADER_ROW + 1, column=header.index("Weight") + 1).number_format == "0.00%"


def test_weights_risk_shares_and_sector_names_are_what_they_say(tiny_run):
    recs = pd.read_csv(tiny_run / "recommendations.csv")
    weights = recs["weight"]
    # no dust: a weight is zero or at least one basis point
    assert ((weights == 0) | (weights >= 1e-4)).all() and (weights > 0).sum() >= 10
    # risk contribution is each name's share of the ex-ante variance: the shares sum to 100 %
    assert recs["risk_contribution"].sum() == pytest.approx(1.0, abs=1e-9)
    assert (recs.loc[weights == 0, "risk_contribution"] == 0).all()
    # the sector sheet's "Names" counts the names held, not the candidates
    header, *rows = _rows(load_workbook(tiny_run / WORKBOOK)["Portfolio & risk"])
    names = {r[0]: r[header.index("Names")] for r in rows if r[0] is not None}
    held = recs[weights > 0].groupby("sector").size()
    assert names == held.to_dict()
    # a name the trader would refuse to buy gets no weight (from cash), with its reason
    refused = recs["screen"].fillna("") != ""
    assert refused.any() and (weights[refused] == 0).all()


def test_trades_sheet_is_the_trade_list_from_the_book(tiny_run):
    trades = pd.read_csv(tiny_run / "trades.csv")
    recs = pd.read_csv(tiny_run / "recommendations.csv")
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # from cash every planned name is a buy of its whole weight
    assert (trades["side"] == "BUY").all() and (trades["reason"] == "new").all()
    assert set(trades["ticker"]) == set(recs.loc[recs["weight"] > 0, "ticker"])
    assert trades["trade_weight"].abs().sum() == pytest.approx(metrics["portfolio"]["turnover"])
    assert metrics["portfolio"]["turnover"] == pytest.approx(0.95, abs=1e-6)
    assert metrics["portfolio"]["estimated_cost_usd"] == pytest.approx(
        0.95 * 1e6 * 10 / 1e4, rel=1e-6)
    ws = load_workbook(tiny_run / WORKBOOK)["Trades"]
    header, *rows = _rows(ws)
    assert header[:3] == ("Ticker", "Sector", "Side")
    assert [r[0] for r in rows if r[0] is not None] == trades["ticker"].tolist()
    summary = {r[12]: r[13] for r in rows if len(r) > 13 and r[12]}
    assert summary["Book"] == "cash" and summary["Turnover (one-way)"] == pytest.approx(0.95)
    assert summary["Capital"].startswith("research.portfolio.capital 1,000,000")


def test_metric_sheets_agree_with_metrics_json(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    wb = load_workbook(tiny_run / WORKBOOK)
    header, *rows = _rows(wb["Model metrics"])
    table = {r[0]: dict(zip(header, r)) for r in rows if r[0] in metrics["oos"]}
    assert set(table) == {"ridge", "lightgbm", "stack", "fused"}
    for name, row in table.items():
        assert row["OOS rank IC"] == pytest.approx(metrics["oos"][name]["rank_ic"], abs=1e-12)
        assert row["ICIR"] == pytest.approx(metrics["oos"][name]["icir"], abs=1e-12)
        assert row["Hit rate"] == pytest.approx(metrics["oos"][name]["hit_rate"], abs=1e-12)
    factors = pd.read_csv(tiny_run / "factor_ic.csv")
    header, *rows = _rows(wb["Factor IC"])
    assert [r[0] for r in rows] == factors["factor"].tolist()
    portfolio = {r[7]: r[8] for r in _rows(wb["Portfolio & risk"]) if r[7]}
    assert portfolio["Solver"] == metrics["portfolio"]["solver"]
    assert portfolio["Ex-ante vol (annual)"] == pytest.approx(metrics["portfolio"]["ex_ante_vol"])
    regimes = pd.read_csv(tiny_run / "regimes.csv")
    header, first, *_ = _rows(wb["Regime"])
    assert first[1] == regimes["state"].iloc[-1]  # newest first; current state on top
    info = {r[0]: r[1] for r in _rows(wb["Run info"])}
    assert info["Run id"] == tiny_run.name and info["Demo data"].startswith("YES")


def test_sector_sheet_respects_the_cap(tiny_run):
    header, *rows = _rows(load_workbook(tiny_run / WORKBOOK)["Portfolio & risk"])
    sectors = [r for r in rows if r[0] is not None]
    assert header[:3] == ("Sector", "Weight", "Sector cap")
    assert all(r[1] <= r[2] + 1e-6 for r in sectors)
    recs = pd.read_csv(tiny_run / "recommendations.csv")
    assert sum(r[1] for r in sectors) == pytest.approx(recs["weight"].sum(), abs=1e-6)


def test_charts_are_valid_pngs_with_their_data(tiny_run):
    for name in CHART_FILES:
        data = (tiny_run / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5_000, name


def test_chart_data_is_computed_from_the_oos_predictions():
    market = demo_market(n_tickers=40, n_sessions=300, seed=5, end="2025-06-30")
    from bma_models.pipeline import ResearchPipeline

    result = ResearchPipeline(ResearchSettings.from_mapping(
        {**TINY, "portfolio": {"top_n": 30}}), rules=RULES).run(market)
    data = chart_data(result)
    assert list(data["quantile_returns"].index) == [0, 1, 2, 3, 4]
    assert set(data["cumulative_ic"].columns) == {"ridge", "lightgbm", "stack", "fused"}
    # the long-short curve compounds every horizon-th spread: its last value is reproducible
    oos = result.predictions_oos
    buckets = oos.groupby(level=0)["fused"].rank(method="first", pct=True)
    top = oos["label"][buckets > 0.8].groupby(level=0).mean()
    bottom = oos["label"][buckets <= 0.2].groupby(level=0).mean()
    spread = (top - bottom).iloc[::5]
    assert data["long_short"]["fused"].iloc[-1] == pytest.approx((1 + spread).prod() - 1, 1e-9)


def test_baselines_sheet_agrees_with_metrics_json_and_has_a_chart(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    ws = load_workbook(tiny_run / WORKBOOK)["Baselines"]
    header, *rows = _rows(ws)
    table = {r[0]: dict(zip(header, r)) for r in rows if r[0] in metrics["baselines"]["scores"]}
    assert list(table) == ["fused", "stack", "best_member", "reversal_5", "momentum_20",
                           "low_vol_60", "lightgbm_plain"]
    for name, row in table.items():
        expected = metrics["baselines"]["scores"][name]
        assert row["OOS rank IC"] == pytest.approx(expected["rank_ic"], abs=1e-12)
        assert row["NW t"] == pytest.approx(expected["nw_t"], abs=1e-12)
        if name != "fused":
            assert row["Paired NW t"] == pytest.approx(expected["vs_reference"]["nw_t"],
                                                       abs=1e-12)
    assert len(ws._charts) == 1
    verdict = [r[0] for r in rows if r[0] and str(r[0]).startswith(("OK:", "WARNING:"))]
    assert verdict and verdict[0].startswith(
        "OK:" if metrics["baselines"]["beats_all_baselines"] else "WARNING:")


def test_baselines_sheet_has_the_comparison_per_calendar_year(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    by_year = metrics["baselines"]["by_year"]
    assert [y["year"] for y in by_year] == sorted({y["year"] for y in by_year}) and by_year
    ws = load_workbook(tiny_run / WORKBOOK)["Baselines"]
    title = next(c for row in ws.iter_rows(max_row=HEADER_ROW - 1) for c in row
                 if c.value == "By calendar year")
    col = title.column
    header = [ws.cell(row=HEADER_ROW, column=col + j).value for j in range(20)]
    header = header[:header.index(None)] if None in header else header
    for i, expected in enumerate(by_year, start=1):
        row = {h: ws.cell(row=HEADER_ROW + i, column=col + j).value
               for j, h in enumerate(header)}
        assert row["Year"] == expected["year"] and row["Dates"] == expected["n_dates"]
        assert row["fused rank IC"] == pytest.approx(expected["rank_ic"]["fused"], abs=1e-12)
        versus = expected["vs_reference"]["lightgbm_plain"]
        assert row["fused minus lightgbm_plain"] == pytest.approx(versus["mean"], abs=1e-12)
        assert row["Year's paired t"] == pytest.approx(versus["nw_t"], abs=1e-12)
    won = metrics["baselines"]["years_won"]["lightgbm_plain"]
    note = ws.cell(row=HEADER_ROW + len(by_year) + 2, column=col).value
    assert note.startswith(f"fused beats lightgbm_plain in {won['won']} of {won['years']} years")


def test_a_fused_score_that_loses_to_a_baseline_is_flagged_red(tiny_run, tmp_path):
    from bma_models.report.excel import write_workbook

    metrics = json.loads((tiny_run / "metrics.json").read_text())
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    metrics["baselines"]["beats_all_baselines"] = False
    metrics["baselines"]["beaten_by"] = ["reversal_5"]

    class Result:  # the sheets that read the result object need only these
        recommendations = pd.read_csv(tiny_run / "recommendations.csv")
        factor_ic = pd.read_csv(tiny_run / "factor_ic.csv")
        regimes = pd.read_csv(tiny_run / "regimes.csv", parse_dates=["date"]).set_index("date")

    result = Result()
    market = demo_market(n_tickers=60, n_sessions=400, seed=3, end="2025-06-30")
    result.market = market
    result.settings = ResearchSettings.from_mapping(TINY)
    result.risk = {"ex_ante_vol_daily": 0.01, "shrinkage": 0.1, "size_source": "cap",
                   "factor_exposures": {}}
    result.portfolio = type("P", (), {"weights": pd.Series(dtype=float)})()
    recs = result.recommendations.set_index("ticker")
    result.plan = PortfolioPlan(
        weights=recs["weight"], current=recs["current_weight"],
        screens=recs["screen"].fillna(""), optimization=None, capital=1e6,
        capital_source="assumed", holdings_source="cash", trading_cost_bps=10.0, rules=RULES,
        snapshot=recs[["last_close", "adv", "atr"]])
    path = write_workbook(tmp_path / "red.xlsx", result, metrics, manifest)
    wb = load_workbook(path)
    ws = wb["Baselines"]
    cells = [c for row in ws.iter_rows(min_row=HEADER_ROW) for c in row
             if isinstance(c.value, str) and c.value.startswith("WARNING:")]
    assert cells and "reversal_5" in cells[0].value
    assert cells[0].font.color.rgb.endswith("C00000")
    assert ws.cell(row=HEADER_ROW + 1, column=1).font.color.rgb.endswith("C00000")
    info = {r[0]: r[1] for r in _rows(wb["Run info"])}
    assert info["Baselines"].startswith("WARNING:")
    assert info["Shuffled-label canary"].startswith("passed")
