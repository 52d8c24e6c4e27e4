"""``bma run --backtest`` and ``bma backtest`` end to end on a small demo market."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from openpyxl import load_workbook

from autotrader.research.cli import main
from bma_models.report.backtest import BACKTEST_FILES, read_backtest

SMALL = {"research": {
    "data": {"demo_tickers": 100, "demo_sessions": 520, "demo_seed": 11},
    "models": {"enabled": ["ridge"]},
    "portfolio": {"top_n": 50},
}, "capital": {"max_single_position_pct": 0.05}}
STATS = ("annual_return", "annual_vol", "sharpe", "sortino", "max_drawdown", "calmar",
         "turnover_annual", "cost_drag_annual", "hit_rate", "n_rebalances", "benchmark",
         "tracking_error", "information_ratio")


@pytest.fixture(scope="module")
def backtested_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bma-backtest")
    config = root / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps(SMALL))
    out = root / "result"
    code = main(["run", "--source", "demo", "--config", str(config), "--output", str(out),
                 "--end-date", "2025-06-30", "--backtest"])
    assert code == 0
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return run, config


def test_bma_run_backtest_writes_the_files_and_the_stats(backtested_run):
    run, _ = backtested_run
    names = {p.name for p in run.iterdir()}
    assert set(BACKTEST_FILES) <= names
    metrics = json.loads((run / "metrics.json").read_text())
    block = metrics["backtest"]
    assert set(STATS) <= set(block)
    assert set(STATS[:6]) | {"hit_rate"} <= set(block["benchmark"])
    assert block["is_demo"] and "DEMO" in block["source_label"]
    assert block["n_rebalances"] > 10 and block["cost_drag_annual"] > 0
    assert block["conventions"]["fill"] == "the next session's open"
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(BACKTEST_FILES) <= set(manifest["files"])


def test_backtest_parquet_balances_to_the_cent_and_says_demo(backtested_run):
    run, _ = backtested_run
    daily, meta = read_backtest(run)
    assert meta == {"bma.source_label": "DEMO (synthetic demo market)", "bma.is_demo": "true"}
    assert {"equity", "cash", "gross_exposure", "turnover", "costs", "benchmark_equity",
            "holdings_count"} <= set(daily.columns)
    initial = json.loads((run / "metrics.json").read_text())["backtest"]["initial_capital"]
    final = initial + daily["pnl"].sum() - daily["costs"].sum()
    assert abs(final - daily["equity"].iloc[-1]) < 0.005


def test_the_workbook_has_a_demo_backtest_sheet(backtested_run):
    run, _ = backtested_run
    for name in ("recommendations.xlsx", "recommendations_DEMO.xlsx"):
        sheet = load_workbook(run / name, read_only=True)["Backtest"]
        assert "DEMO" in str(sheet["A1"].value)
        assert sheet["A3"].value == "Date"


def test_bma_backtest_replays_a_run_and_perfect_foresight_beats_the_fused_score(
        backtested_run):
    run, config = backtested_run
    fused = json.loads((run / "metrics.json").read_text())["backtest"]
    # the label column is the realised forward return: a perfect-foresight score
    code = main(["backtest", "--run", str(run), "--config", str(config), "--score", "label"])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    seen = metrics["backtest"]
    assert seen["settings"]["score"] == "label"
    assert seen["annual_return"] > fused["annual_return"] + 0.5
    assert seen["sharpe"] > fused["sharpe"] + 2
    assert metrics["oos"]  # the rest of the document is kept
    manifest = json.loads((run / "manifest.json").read_text())
    digest = hashlib.sha256((run / "backtest.parquet").read_bytes()).hexdigest()
    assert manifest["files"]["backtest.parquet"]["sha256"] == digest


def test_bma_backtest_refuses_other_market_data(backtested_run, tmp_path):
    run, config = backtested_run
    other = tmp_path / "config"
    other.mkdir()
    changed = json.loads(json.dumps(SMALL))
    changed["research"]["data"]["demo_seed"] = 12
    (other / "config.json").write_text(json.dumps(changed))
    before = (run / "metrics.json").read_bytes()
    # the demo parameters come from the run's manifest: the config's seed is overridden
    assert main(["backtest", "--run", str(run), "--config", str(other),
                 "--rebalance-every", "10"]) == 0
    assert json.loads((run / "metrics.json").read_text())["backtest"]["settings"][
        "rebalance_every"] == 10
    assert (run / "metrics.json").read_bytes() != before
    # a CSV that is not the run's data is refused by the data hash
    bars = tmp_path / "bars.csv"
    bars.write_text("date,ticker,open,high,low,close,volume\n2025-01-02,AAA,1,1,1,1,100\n")
    assert main(["backtest", "--run", str(run), "--config", str(config), "--source", "csv",
                 "--data", str(bars)]) == 2


def test_the_backtest_daily_equity_never_uses_a_missing_number(backtested_run):
    run, _ = backtested_run
    daily, _ = read_backtest(run)
    assert np.isfinite(daily.drop(columns=[]).to_numpy(dtype=float)).all()


def test_bma_backtest_takes_the_runs_own_sectors_file():
    from autotrader.research.wiring import _run_argument

    manifest = {"command_line": ["bma", "command=run", "data=/x/bars.csv",
                                 "sectors=/x/sectors.csv", "source=csv"]}
    assert _run_argument(manifest, "sectors") == "/x/sectors.csv"
    assert _run_argument({"command_line": ["bma"]}, "sectors") is None


def test_bma_backtest_attribution_switches_off_one_rule_per_row(backtested_run, tmp_path):
    import shutil

    import pandas as pd

    from autotrader.config import Settings, relaxed_rules

    run, config = backtested_run
    ours = shutil.copytree(run, tmp_path / "ours" / run.name)
    assert main(["backtest", "--run", str(ours), "--config", str(config), "--attribution"]) == 0
    table = pd.read_csv(ours / "backtest_attribution.csv")
    checks = list(relaxed_rules(Settings()))
    assert list(table["variant"]) == ["as configured", *[f"without {c}" for c in checks]]
    metrics = json.loads((ours / "metrics.json").read_text())
    block, attribution = metrics["backtest"], metrics["backtest_attribution"]
    # the reference row is the run's own backtest; deltas are against it
    rows = {r["variant"]: r for r in attribution["rows"]}
    assert list(rows) == list(table["variant"])
    for stat in ("annual_return", "sharpe", "max_drawdown", "turnover_annual"):
        assert rows["as configured"][stat] == pytest.approx(block[stat], rel=1e-12)
        assert rows["as configured"][f"delta_{stat}"] == 0
        assert table[stat].to_numpy() == pytest.approx([r[stat] for r in rows.values()],
                                                       rel=1e-9)
    assert table["relaxed"].iloc[1] == "signals.acceptance_threshold = 0.0"
    assert rows["without volatility"]["relaxed"] == (
        'execution.allowed_volatility_buckets = ["low", "medium", "high"]')
    assert attribution["is_demo"] and "do not add up" in attribution["note"]
    assert "backtest_attribution.csv" in json.loads((ours / "manifest.json").read_text())["files"]
    for workbook in ("recommendations.xlsx", "recommendations_DEMO.xlsx"):
        ws = load_workbook(ours / workbook)["Rule attribution"]
        assert "DEMO" in str(ws["A1"].value)
        header = [c.value for c in ws[3]]
        sheet = {r[0]: dict(zip(header, r)) for r in ws.iter_rows(min_row=4, values_only=True)
                 if r[0] in rows}
        assert list(sheet) == list(rows)
        for name, row in rows.items():
            assert sheet[name]["Sharpe"] == pytest.approx(row["sharpe"], rel=1e-12)
            assert sheet[name]["Delta return"] == pytest.approx(row["delta_annual_return"],
                                                                abs=1e-15)
    # a row is exactly the backtest of the configuration with that one key changed
    # (same risk models reused, nothing else moved)
    relaxed = tmp_path / "relaxed-config"
    shutil.copytree(config, relaxed)
    overrides = json.loads((relaxed / "config.json").read_text())
    overrides["capital"]["max_single_position_pct"] = 0.95  # the relaxed position cap
    (relaxed / "config.json").write_text(json.dumps(overrides))
    theirs = shutil.copytree(run, tmp_path / "theirs" / run.name)
    assert main(["backtest", "--run", str(theirs), "--config", str(relaxed)]) == 0
    direct = json.loads((theirs / "metrics.json").read_text())["backtest"]
    row = rows["without max_single_position"]
    assert row["relaxed"] == "capital.max_single_position_pct = 0.95"
    for stat in ("annual_return", "sharpe", "turnover_annual", "cost_drag_annual"):
        assert row[stat] == pytest.approx(direct[stat], rel=1e-12)
    assert row["annual_return"] != pytest.approx(block["annual_return"], rel=1e-6)  # it binds
