"""``bma run --source csv`` end to end on a user's file with bad rows; infeasible settings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from autotrader.research.cli import main
from bma_models.data.demo import demo_market
from bma_models.evaluation import rank_ic
from bma_models.pipeline import factor_rank_ics

CONFIG = {"research": {
    "models": {"enabled": ["ridge", "lightgbm"]},
    "portfolio": {"top_n": 40},
}, "capital": {"max_single_position_pct": 0.1}, "signals": {"acceptance_threshold": 0.0},
    "execution": {"allowed_volatility_buckets": ["low", "medium", "high"]}}
# (40-50 name markets: the rulebook lets every percentile and bucket in, 10 % per name)
BAD_ROWS = [  # Kaggle layout: date,open,high,low,close,volume,Name
    ("not-a-date", 10, 11, 9, 10, 1000, "BADA"),       # bad_date
    ("2025-03-03", 10, 11, 9, -10, 1000, "BADB"),      # non_positive_price
    ("2025-03-03", 10, 9, 11, 10, 1000, "BADC"),       # high_below_low
    ("2025-03-01", 10, 11, 9, 10, 1000, "BADD"),       # non_session_date (a Saturday)
    ("2025-03-03", 10, 11, 9, 10, 1000, "FOO BAR"),    # bad_ticker
    ("2025-03-03", 10, 11, 9, 10, -5, "BADE"),         # negative_volume
]


def _config_dir(root, research_overrides=None, **sections):
    config = root / "config"
    config.mkdir(exist_ok=True)
    payload = json.loads(json.dumps(CONFIG))
    payload["research"].update(research_overrides or {})
    for name, values in sections.items():
        payload.setdefault(name, {}).update(values)
    (config / "config.json").write_text(json.dumps(payload))
    return config


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("csv")
    market = demo_market(n_tickers=50, n_sessions=420, seed=11, end="2025-06-30")
    bars = market.bars.rename(columns={"ticker": "Name"})
    bars["Name"] = bars["Name"].str.replace("DM", "US")  # the user's own symbols
    bars = bars[["date", "open", "high", "low", "close", "volume", "Name"]].copy()
    bars["date"] = bars["date"].dt.strftime("%Y-%m-%d")
    bad = pd.DataFrame(BAD_ROWS, columns=bars.columns)
    duplicate = bars.iloc[[10]]
    pd.concat([bars, bad, duplicate]).to_csv(root / "my_bars.csv", index=False)
    ref = market.reference.assign(ticker=market.reference["ticker"].str.replace("DM", "US"))
    sectors = pd.DataFrame({"Symbol": ref["ticker"], "GICS Sector": ref["sector"],
                            "Market Cap": [f"${v / 1e9:.2f}B" for v in ref["market_cap"]]})
    sectors.to_csv(root / "my_sectors.csv", index=False)
    return root


def test_csv_run_end_to_end_on_a_users_file_with_bad_rows(user_files, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config = _config_dir(user_files)
    out = user_files / "result"
    code = main(["run", "--source", "csv", "--data", str(user_files / "my_bars.csv"),
                 "--sectors", str(user_files / "my_sectors.csv"), "--config", str(config),
                 "--output", str(out), "--end-date", "2025-06-30"])
    assert code == 0
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert run.name.endswith("-csv") and "DEMO" not in run.name
    names = {p.name for p in run.iterdir()}
    assert "recommendations.xlsx" in names and "recommendations_DEMO.xlsx" not in names
    manifest = json.loads((run / "manifest.json").read_text())
    assert not manifest["is_demo"]
    notes = "\n".join(manifest["data_notes"])
    for rule in ("bad_date", "non_positive_price", "high_below_low", "non_session_date",
                 "bad_ticker", "negative_volume", "duplicate"):
        assert f"{rule} (" in notes, rule
    assert "6 dropped" not in notes and "7 dropped" in notes  # six bad rows + one duplicate
    recs = pd.read_csv(run / "recommendations.csv")
    assert recs["ticker"].str.startswith("US").all() and (recs["source"] == "csv").all()
    assert recs["sector"].notna().all()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["n_tickers"] == 50 and not metrics["run"]["is_demo"]
    wb = load_workbook(run / "recommendations.xlsx")
    assert "DEMO" not in wb.properties.title
    assert all(ws["A2"].value.startswith("Data source: csv") for ws in wb.worksheets)


def test_without_a_sectors_file_the_sector_limit_does_not_apply_and_is_noted(
        user_files, repo_root, monkeypatch, tmp_path):
    monkeypatch.chdir(repo_root)
    # a 5 % sector limit makes any portfolio of these 50 names infeasible with sectors;
    # without sector data it does not apply (noted), so the run never fails on it
    config = _config_dir(tmp_path, risk_controls={"sector_exposure_limit": 0.05})
    out = tmp_path / "result"
    assert main(["run", "--source", "csv", "--data", str(user_files / "my_bars.csv"),
                 "--config", str(config), "--output", str(out), "--end-date",
                 "2025-06-30"]) == 0
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    metrics = json.loads((run / "metrics.json").read_text())["portfolio"]
    assert "no sector data: the sector limit (risk_controls.sector_exposure_limit) does not " \
           "apply" in metrics["notes"]
    assert metrics["invested"] == pytest.approx(0.95, abs=1e-6)


def test_infeasible_portfolio_settings_exit_non_zero_with_a_clear_message(
        tmp_path, repo_root, monkeypatch, caplog):
    monkeypatch.chdir(repo_root)
    # caught by validation: top_n * max_single_position_pct cannot reach the invested fraction
    config = _config_dir(tmp_path, {"portfolio": {"top_n": 5}})
    args = ["run", "--source", "demo", "--config", str(config), "--output", str(tmp_path / "o"),
            "--end-date", "2025-06-30"]
    assert main(args) == 2
    assert "top_n * max_single_position_pct" in caplog.text
    # caught before training: 11 sectors x 5 % sector limit < 95 % to invest
    caplog.clear()
    config = _config_dir(tmp_path, {"data": {"demo_tickers": 40, "demo_sessions": 300}},
                         risk_controls={"sector_exposure_limit": 0.05})
    assert main(args) == 2
    assert "risk_controls.sector_exposure_limit" in caplog.text
    assert "infeasible" in caplog.text.lower() and "stage train" not in caplog.text
    assert not (tmp_path / "o").exists() or not any(
        p for p in (tmp_path / "o").iterdir() if not p.name.startswith("."))


def test_factor_rank_ics_equal_rank_ic_column_by_column():
    rng = np.random.default_rng(42)
    index = pd.MultiIndex.from_product([pd.bdate_range("2024-01-01", periods=12),
                                        [f"T{i}" for i in range(9)]], names=["date", "ticker"])
    X = pd.DataFrame(rng.normal(size=(len(index), 3)).round(1), index=index,
                     columns=["a", "b", "c"])
    X.iloc[::7, 2] = np.nan              # a column with holes takes the rank_ic path
    X.loc[index[:9], "a"] = 1.0          # a constant date gives NaN, like rank_ic
    y = pd.Series(rng.normal(size=len(index)), index=index)
    table = factor_rank_ics(X, y)
    for name in X.columns:
        expected = rank_ic(X[name], y)
        pd.testing.assert_series_equal(table[name].dropna(), expected, check_names=False,
                                       check_freq=False, atol=1e-12)
