"""``bma run --holdings state``: the portfolio trades from the trader's book, not from cash."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from autotrader.engine.plan_status import BookPosition, BookSnapshot
from autotrader.research.cli import main
from autotrader.services.book import BOOK_FILE, write_book
from tests.autotrader.research.test_bma_run import SMALL

HELD = {"DM0001": 300, "DM0002": 200, "GONE": 10}  # GONE: not in the market any more
CASH = 400_000.0


@pytest.fixture(scope="module")
def book_run(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("book")
    config = root / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps(SMALL))
    state = root / "state"
    positions = tuple(BookPosition(s, q, 20.0, 20.0) for s, q in HELD.items())
    write_book(state / BOOK_FILE, BookSnapshot("2025-06-30T20:00:00+00:00", "ib", "old-run",
                                               CASH + 20.0 * sum(HELD.values()), CASH,
                                               positions))
    out = root / "result"
    code = main(["run", "--source", "demo", "--config", str(config), "--output", str(out),
                 "--end-date", "2025-06-30", "--holdings", "state", "--state-dir", str(state)])
    assert code == 0
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return run


def test_the_plan_starts_from_the_traders_book_at_its_equity(book_run):
    metrics = json.loads((book_run / "metrics.json").read_text())["portfolio"]
    recs = pd.read_csv(book_run / "recommendations.csv").set_index("ticker")
    assert metrics["holdings"].startswith("ib snapshot") and "book.json" in metrics["holdings"]
    value = sum(HELD[t] * recs.loc[t, "last_close"] for t in ("DM0001", "DM0002")) + 10 * 20.0
    assert metrics["capital"] == pytest.approx(CASH + value)
    assert metrics["capital_source"].startswith("account equity")
    for ticker in ("DM0001", "DM0002"):  # held names are listed whatever their score
        assert recs.loc[ticker, "current_weight"] == pytest.approx(
            HELD[ticker] * recs.loc[ticker, "last_close"] / metrics["capital"])
    pd.testing.assert_series_equal(recs["trade_weight"], recs["weight"] - recs["current_weight"],
                                   check_names=False, atol=1e-12)
    assert recs["target_usd"].to_numpy() == pytest.approx(
        (recs["weight"] * metrics["capital"]).to_numpy())
    assert any("GONE" in note and "own price" in note for note in metrics["notes"])


def test_the_trade_list_is_book_to_plan_and_its_turnover_is_measured_from_the_book(book_run):
    metrics = json.loads((book_run / "metrics.json").read_text())["portfolio"]
    trades = pd.read_csv(book_run / "trades.csv").set_index("ticker")
    recs = pd.read_csv(book_run / "recommendations.csv").set_index("ticker")
    assert trades.loc["GONE", "side"] == "SELL"
    assert trades.loc["GONE", "reason"] == "sell all: no score or risk estimate"
    assert metrics["turnover"] == pytest.approx(trades["trade_weight"].abs().sum(), abs=1e-9)
    held_before = sum(HELD[t] * recs.loc[t, "last_close"] for t in ("DM0001", "DM0002"))
    # measured from the book: less than the invested fraction plus everything sold
    assert metrics["turnover"] < 0.95 + (held_before + 200.0) / metrics["capital"] - 1e-6
    assert metrics["estimated_cost_usd"] == pytest.approx(
        metrics["turnover"] * metrics["capital"] * 10 / 1e4)
    manifest = json.loads((book_run / "manifest.json").read_text())
    assert manifest["holdings"] == metrics["holdings"]
