"""``bma run --source polygon`` end to end: real client, store and pipeline vs the fake server."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from autotrader.research.cli import main
from tests.fakes.polygon_server import FakePolygonServer

KEY = "run-SECRET-key-0123456789"
TICKERS = [f"SY{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(40)]


@pytest.fixture
def polygon_run(tmp_path, repo_root, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    config = tmp_path / "config"
    config.mkdir()
    stocks = tmp_path / "stocks.txt"
    stocks.write_text("# test universe\n" + "\n".join(TICKERS) + "\n")
    with FakePolygonServer(api_key=KEY, universe=TICKERS, history_start="2023-01-03",
                           last_session="2024-06-28") as server:
        (config / "config.json").write_text(json.dumps({
            "app": {"stocks_file": str(stocks)},
            "polygon": {"base_url": server.base_url, "requests_per_minute": 100000,
                        "cache_dir": str(tmp_path / "cache")},
            "research": {"models": {"enabled": ["ridge", "lightgbm"]},
                         "portfolio": {"top_n": 40}},
            "capital": {"max_single_position_pct": 0.1},
            "signals": {"acceptance_threshold": 0.0},  # 40 names: every percentile may buy
            "risk_controls": {"sector_exposure_limit": 1.0},
        }))
        monkeypatch.setenv("POLYGON_API_KEY", KEY)
        monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
        out = tmp_path / "result"
        code = main(["run", "--config", str(config), "--output", str(out),
                     "--start-date", "2023-01-03", "--end-date", "2024-06-28"])
        requests = list(server.requests)
    return code, out, requests


def test_polygon_source_is_the_default_with_a_key_and_runs_end_to_end(polygon_run, caplog):
    code, out, requests = polygon_run
    assert code == 0
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert run.name.endswith("-polygon")  # no DEMO marker
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["source"] == "polygon" and not metrics["run"]["is_demo"]
    assert metrics["run"]["n_tickers"] == len(TICKERS)
    assert metrics["run"]["end"] == "2024-06-28"
    recs = pd.read_csv(run / "recommendations.csv")
    assert set(recs["ticker"]) <= set(TICKERS)
    assert recs["weight"].sum() == pytest.approx(0.95, abs=1e-4)
    # one full-history aggregates request per ticker (plus reference details), all authorised
    aggs = [r for r in requests if "/v2/aggs/ticker/" in r.path]
    assert len({r.path.split("/")[4] for r in aggs}) == len(TICKERS)


def test_the_api_key_never_reaches_logs_or_outputs(polygon_run, caplog):
    code, out, _ = polygon_run
    assert "Bearer" not in caplog.text or "Bearer ***" in caplog.text
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="ignore"), path
    assert KEY not in caplog.text
