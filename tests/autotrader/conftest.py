"""Fixtures of the application tests.

Trader: a tiny recommendations run, a fake clock, a price table. Research job and GUI: a small
demo config (``gui_config``) and one complete small demo run (``demo_result``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from autotrader.broker.paper import PaperBroker
from autotrader.domain.records import Quote
from autotrader.journal import Journal
from autotrader.services.session import SimClock

SMALL = {"research": {
    "data": {"demo_tickers": 120, "demo_sessions": 500, "demo_seed": 7},
    "models": {"enabled": ["ridge", "lightgbm"]},
    "portfolio": {"top_n": 60},
}, "capital": {"max_single_position_pct": 0.05}, "signals": {"acceptance_threshold": 0.0},
    "execution": {"allowed_volatility_buckets": ["low", "medium", "high"]}}
# (a 120-name demo: the rulebook lets every score percentile and volatility bucket in)
END_DATE = "2025-06-30"

# Monday 2 March 2026, 10:00 New York (EST, UTC-5): a regular NYSE session.
SESSION_OPEN = dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.timezone.utc)
# the session before it: the last bar of a run traded then (0 sessions old)
LAST_BAR = "2026-02-27"

RECOMMENDATIONS = """rank,ticker,sector,score,expected_return,weight,last_close,adv,atr
1,AAA,Tech,0.95,0.020,0.05,50.00,50000000,1.0
2,BBB,Tech,0.90,0.015,0.05,120.00,80000000,2.4
3,CCC,Health,0.80,0.012,0.05,30.00,20000000,0.6
4,DDD,Energy,0.70,0.010,0.05,40.00,20000000,0.8
"""


def write_run(root: Path, name: str, csv_text: str = RECOMMENDATIONS,
              source: str = "polygon", last_date: str | None = LAST_BAR) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "recommendations.csv").write_text(csv_text, encoding="utf-8")
    manifest = {"run": {"source": source}, "data": {"last_date": last_date}}
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run


FakeClock = SimClock  # the same injectable clock the CLI's --sim-time uses


class PriceTable:
    """Settable prices; ``quote`` is a paper-broker price provider."""

    def __init__(self, prices: dict[str, float]) -> None:
        self.prices = dict(prices)

    def quote(self, symbol: str, now: dt.datetime) -> Quote | None:
        price = self.prices.get(symbol)
        if price is None:
            return None
        return Quote(symbol, last=price, prev_close=price, bid=price * 0.9999,
                     ask=price * 1.0001, time=now)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SESSION_OPEN + dt.timedelta(minutes=30))


@pytest.fixture
def prices() -> PriceTable:
    return PriceTable({"AAA": 50.0, "BBB": 120.0, "CCC": 30.0, "DDD": 40.0})


@pytest.fixture
def broker(tmp_path: Path, prices: PriceTable, clock: FakeClock):
    paper = PaperBroker(tmp_path / "paper.db", prices.quote, clock, initial_cash=100_000.0,
                        slippage_bps=10.0, commission_per_share=0.01, min_commission=1.0)
    paper.connect()
    yield paper
    paper.disconnect()


@pytest.fixture
def journal(tmp_path: Path):
    with Journal(tmp_path / "journal.db") as j:
        yield j


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "result", "20260301-run")


@pytest.fixture(scope="session")
def gui_config(tmp_path_factory, repo_root) -> Path:
    """A config dir on top of the packaged defaults: a small demo market.

    In ``local.yaml``, the lowest user layer, so what the GUI saves to
    ``risk_config.json`` (the capital, signals and execution keys too) wins over it.
    """
    config = tmp_path_factory.mktemp("gui") / "config"
    config.mkdir()
    (config / "local.yaml").write_text(json.dumps(SMALL))  # JSON is YAML
    return config


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory, gui_config) -> Path:
    """A result root holding one complete small demo run (built in-process, no GUI)."""
    from autotrader.services.research_job import ResearchRequest, execute_research

    root = tmp_path_factory.mktemp("result")
    execute_research(ResearchRequest(str(gui_config), str(root), source="demo",
                                     end_date=END_DATE),
                     progress=lambda *a: None)
    return root


@pytest.fixture(scope="session")
def backtested_result(tmp_path_factory, gui_config) -> Path:
    """A result root holding one small demo run with its strategy backtest (the GUI's path)."""
    from autotrader.services.research_job import ResearchRequest, execute_research

    root = tmp_path_factory.mktemp("backtested")
    execute_research(ResearchRequest(str(gui_config), str(root), source="demo",
                                     end_date=END_DATE,
                                     overrides={"research.backtest.enabled": True}),
                     progress=lambda *a: None)
    return root
