"""``bma run`` end to end on a small demo market: run directory, metrics, trader hand-off."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from autotrader.research.cli import main
from autotrader.services.recommendations import load_recent_returns, load_recommendations
from bma_models.data.demo import demo_market
from bma_models.evaluation import (
    evaluate,
    newey_west_lags,
    newey_west_tstat,
    per_date_ic,
    rank_ic,
)
from bma_models.labels import forward_returns
from bma_models.risk import FactorRiskModel, risk_inputs_from_bars

SMALL = {"research": {
    "data": {"demo_tickers": 120, "demo_sessions": 500, "demo_seed": 7},
    "models": {"enabled": ["ridge", "lightgbm"]},
    "portfolio": {"top_n": 60},
}, "capital": {"max_single_position_pct": 0.05}, "signals": {"acceptance_threshold": 0.0},
    "execution": {"allowed_volatility_buckets": ["low", "medium", "high"]}}
# (a 120-name demo: the rulebook lets every score percentile and volatility bucket in)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("bma")
    config = root / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps(SMALL))
    out = root / "result"
    code = main(["run", "--source", "demo", "--config", str(config), "--output", str(out),
                 "--end-date", "2025-06-30", "--csv-predictions"])
    assert code == 0
    runs = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1
    return runs[0]


def test_run_directory_holds_every_output_and_is_labelled_demo(demo_run):
    names = {p.name for p in demo_run.iterdir()}
    assert {"recommendations.csv", "predictions_oos.parquet", "predictions_oos.csv",
            "metrics.json", "manifest.json",
            "factor_ic.csv", "regimes.csv", "returns_recent.csv", "recommendations.xlsx",
            "recommendations_DEMO.xlsx",
            "chart_cumulative_ic.png", "chart_quantile_returns.png", "chart_long_short.png",
            "chart_sector_weights.png"} <= names
    assert demo_run.name.endswith("-demo-DEMO")
    recs = pd.read_csv(demo_run / "recommendations.csv")
    assert (recs["source"].str.contains("DEMO")).all()
    assert recs["weight"].sum() == pytest.approx(0.95, abs=1e-4)  # 1 - capital.cash_reserve_pct
    assert (recs["weight"] <= 0.05 + 1e-9).all()
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert manifest["is_demo"] and manifest["source"] == "demo"
    assert len(manifest["data"]["sha256"]) == 64
    # the manifest lists every other file of the run, with its size and content hash
    assert set(manifest["files"]) == names - {"manifest.json"}
    parquet = manifest["files"]["predictions_oos.parquet"]
    assert parquet["bytes"] == (demo_run / "predictions_oos.parquet").stat().st_size
    assert parquet["sha256"] == hashlib.sha256(
        (demo_run / "predictions_oos.parquet").read_bytes()).hexdigest()
    assert "csv_predictions=True" in manifest["command_line"]


def test_metrics_follow_the_schema(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert set(metrics["run"]) >= {"id", "source", "start", "end", "n_tickers", "n_dates",
                                   "prediction_date", "horizon"}
    assert set(metrics["oos"]) == {"ridge", "lightgbm", "stack", "fused"}
    for model in metrics["oos"].values():
        assert set(model) >= {"ic", "rank_ic", "icir", "hit_rate", "n_dates"}
    assert set(metrics["portfolio"]) >= {"n_positions", "invested", "solver", "fallback",
                                         "ex_ante_vol"}
    assert set(metrics["timings_s"]) >= {"load", "features", "train", "risk", "optimize",
                                         "report", "total"}
    assert metrics["run"]["end"] <= "2025-06-30"


def test_oos_metrics_are_recomputable_from_predictions_and_input_data(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    oos = pd.read_parquet(demo_run / "predictions_oos.parquet").set_index(["date", "ticker"])
    market = demo_market(n_tickers=120, n_sessions=500, seed=7, end=metrics["run"]["end"])
    label = forward_returns(market.bars, metrics["run"]["horizon"],
                            metrics["dataset"]["label_entry"]).reindex(oos.index)
    # the file carries the realised label last: exactly the return rebuilt from the bars,
    # rounded to the stored float32 (the precision every reported metric was computed from)
    label = label.astype(np.float32)
    assert list(oos.columns)[-1] == "label"
    assert (oos["label"] == label).all()
    for model in ("ridge", "lightgbm", "stack", "fused"):
        ric = rank_ic(oos[model], label)
        ic = per_date_ic(oos[model], label)
        reported = metrics["oos"][model]
        assert reported["rank_ic"] == pytest.approx(ric.mean(), abs=1e-9)
        assert reported["ic"] == pytest.approx(ic.mean(), abs=1e-9)
        assert reported["icir"] == pytest.approx(ic.mean() / ic.std(ddof=1), abs=1e-9)
        assert reported["rank_icir"] == pytest.approx(ric.mean() / ric.std(ddof=1), abs=1e-9)
        assert reported["hit_rate"] == pytest.approx((ric > 0).mean(), abs=1e-12)
        assert reported["n_dates"] == len(ric)
        by_fold = ric.groupby(oos["fold"].groupby(level=0).first().reindex(ric.index)).mean()
        assert reported["rank_ic_by_fold"] == pytest.approx(
            {str(k): v for k, v in by_fold.items()}, abs=1e-9)
    # every OOS row is a scored date T whose label window T+1..T+h lies inside the data
    assert oos.index.get_level_values(0).max() < market.dates[-metrics["run"]["horizon"]]
    assert np.isfinite(label).all()


def test_predictions_are_float32_parquet_and_reproduce_every_oos_metric_exactly(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    oos = pd.read_parquet(demo_run / "predictions_oos.parquet").set_index(["date", "ticker"])
    scores = ["ridge", "lightgbm", "stack", "fused"]
    baselines = ["baseline_reversal_5", "baseline_momentum_20", "baseline_low_vol_60",
                 "baseline_lightgbm_plain"]
    assert list(oos.columns) == ["fold", *scores, *baselines, "label"]
    assert (oos[[*scores, *baselines, "label"]].dtypes == np.float32).all()
    recomputed = evaluate(oos[["fold", *scores]], oos["label"])
    for model in scores:
        reported, mine = metrics["oos"][model], recomputed[model]
        assert reported["ic"] == mine["ic_mean"] and reported["rank_ic"] == mine["rank_ic_mean"]
        assert reported["icir"] == mine["icir"] and reported["rank_icir"] == mine["rank_icir"]
        assert reported["long_short_mean"] == mine["long_short_mean"]
        assert reported["top_turnover_mean"] == mine["top_turnover_mean"]


def test_csv_predictions_flag_writes_the_parquet_content_as_csv(demo_run):
    parquet = pd.read_parquet(demo_run / "predictions_oos.parquet")
    csv = pd.read_csv(demo_run / "predictions_oos.csv", parse_dates=["date"])
    assert list(csv.columns) == list(parquet.columns)
    floats = [c for c in parquet.columns if c not in ("date", "ticker", "fold")]
    # a float64 reader gets exactly the stored float32 values (what the metrics used) ...
    pd.testing.assert_frame_equal(csv, parquet.astype(dict.fromkeys(floats, np.float64)),
                                  check_dtype=False, check_exact=True)
    # ... and a float32 reader the Parquet values bit for bit
    pd.testing.assert_frame_equal(csv.astype(dict.fromkeys(floats, np.float32)), parquet,
                                  check_dtype=False, check_exact=True)


def test_portfolio_metrics_are_recomputable_from_recommendations_and_input_data(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    recs = pd.read_csv(demo_run / "recommendations.csv").set_index("ticker")
    market = demo_market(n_tickers=120, n_sessions=500, seed=7, end=metrics["run"]["end"])
    held = recs["weight"][recs["weight"] > 1e-6]
    portfolio = metrics["portfolio"]
    assert portfolio["n_positions"] == len(held)
    assert portfolio["invested"] == pytest.approx(held.sum(), abs=1e-8)
    assert portfolio["turnover"] == pytest.approx(recs["weight"].abs().sum(), abs=1e-6)  # from cash
    risk = FactorRiskModel().fit(**risk_inputs_from_bars(market.bars, market.reference))
    weights = recs["weight"].reindex(risk.B_.index).fillna(0.0)
    vol = float(np.sqrt(risk.portfolio_variance(weights) * 252))
    assert portfolio["ex_ante_vol"] == pytest.approx(vol, rel=1e-6)
    last_close = market.bars.sort_values("date").groupby("ticker")["close"].last()
    np.testing.assert_allclose(recs["last_close"], last_close.reindex(recs.index), rtol=1e-9)
    capital = json.loads((demo_run / "manifest.json").read_text())["settings"]["portfolio"][
        "capital"]
    np.testing.assert_allclose(recs["target_usd"], recs["weight"] * capital, rtol=1e-8)
    assert (recs["target_shares"] == np.floor(recs["target_usd"] / recs["last_close"])).all()


def test_recent_returns_are_the_input_closes_last_sessions_and_the_trader_reads_them(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    market = demo_market(n_tickers=120, n_sessions=500, seed=7, end=metrics["run"]["end"])
    closes = market.bars.pivot(index="date", columns="ticker", values="close").sort_index()
    expected = closes.pct_change(fill_method=None).iloc[-250:]
    written = pd.read_csv(demo_run / "returns_recent.csv", index_col="date")
    assert list(written.index) == [d.strftime("%Y-%m-%d") for d in expected.index]
    assert list(written.columns) == sorted(expected.columns)
    np.testing.assert_allclose(written.to_numpy(), expected[written.columns].to_numpy(),
                               rtol=1e-9, equal_nan=True)
    history = load_recent_returns(demo_run, window=60)
    a, b = history.symbols[:2]
    x, y = expected[a].iloc[-60:], expected[b].iloc[-60:]
    both = x.notna() & y.notna()
    assert history.correlation(a, b) == pytest.approx(np.corrcoef(x[both], y[both])[0, 1],
                                                      abs=1e-9)


def test_trader_reads_the_run_and_refuses_it_when_live(demo_run):
    recs = load_recommendations(demo_run, broker_is_live=False)
    assert recs.is_demo and len(recs.rows) > 0
    with pytest.raises(Exception, match="demo"):
        load_recommendations(demo_run, broker_is_live=True)


def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path, caplog):
    assert main(["run", "--source", "csv", "--data", str(tmp_path / "missing.csv"),
                 "--output", str(tmp_path / "out")]) == 2
    assert "missing.csv: no such file" in caplog.text
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_baselines_are_recomputable_from_predictions_and_input_data(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    report = metrics["baselines"]
    oos = pd.read_parquet(demo_run / "predictions_oos.parquet").set_index(["date", "ticker"])
    market = demo_market(n_tickers=120, n_sessions=500, seed=7, end=metrics["run"]["end"])
    lag, horizon = metrics["dataset"]["lag"], metrics["run"]["horizon"]
    # the price baselines rebuilt from the bars, ticker by ticker on the market's sessions
    close = market.bars.pivot(index="date", columns="ticker", values="close")
    daily = close / close.shift(1) - 1
    rebuilt = {
        "reversal_5": -(close / close.shift(5) - 1),
        "momentum_20": close / close.shift(20) - 1,
        "low_vol_60": -daily.rolling(60).std(),
    }
    columns = {"fused": oos["fused"], "stack": oos["stack"],
               "best_member": oos[report["best_member"]],
               "lightgbm_plain": oos["baseline_lightgbm_plain"]}
    for name, panel in rebuilt.items():
        values = panel.shift(lag).stack().rename_axis(["date", "ticker"])
        # stored (and scored) at the run's float32 precision
        columns[name] = values.reindex(oos.index).astype(np.float32)
        stored = oos[f"baseline_{name}"]
        assert ((stored == columns[name]) | (stored.isna() & columns[name].isna())).all()
    ics = {name: rank_ic(score.dropna(), oos["label"]) for name, score in columns.items()}
    lags = newey_west_lags(len(ics["fused"]), horizon)
    assert report["nw_lags"] == lags
    assert set(report["scores"]) == set(columns)
    assert report["best_member"] == max(["ridge", "lightgbm"],
                                        key=lambda m: metrics["oos"][m]["rank_ic"])
    for name, ic in ics.items():
        row = report["scores"][name]
        assert row["rank_ic"] == pytest.approx(ic.mean(), abs=1e-12)
        assert row["rank_icir"] == pytest.approx(ic.mean() / ic.std(), abs=1e-9)
        assert row["nw_t"] == pytest.approx(newey_west_tstat(ic.to_numpy(), lags), rel=1e-9)
        assert row["n_dates"] == len(ic)
        if name != "fused":
            diff = (ics["fused"] - ic).dropna()
            assert row["vs_reference"]["mean"] == pytest.approx(diff.mean(), abs=1e-12)
            assert row["vs_reference"]["nw_t"] == pytest.approx(
                newey_west_tstat(diff.to_numpy(), lags), rel=1e-9)
    beaten_by = [n for n in ("reversal_5", "momentum_20", "low_vol_60", "lightgbm_plain")
                 if not ics["fused"].mean() > ics[n].mean()]
    assert report["beaten_by"] == beaten_by
    assert report["beats_all_baselines"] == (not beaten_by)
    years = ics["fused"].index.year
    assert [y["year"] for y in report["by_year"]] == sorted(set(years))
    for entry in report["by_year"]:
        in_year = {name: ic[ic.index.year == entry["year"]] for name, ic in ics.items()}
        assert entry["rank_ic"]["fused"] == pytest.approx(in_year["fused"].mean(), abs=1e-12)
        diff = (in_year["fused"] - in_year["lightgbm_plain"]).dropna()
        assert entry["vs_reference"]["lightgbm_plain"]["nw_t"] == pytest.approx(
            newey_west_tstat(diff.to_numpy(), newey_west_lags(len(diff), horizon)), rel=1e-9)
    canaries = metrics["canaries"]
    assert canaries["future_label"]["passed"] and canaries["shuffled_label"]["passed"]
