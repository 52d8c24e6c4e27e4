"""``autotrader run``: argument handling and one in-process paper cycle."""

from __future__ import annotations

import sqlite3

import pytest

from autotrader.cli import main
from autotrader.config import Settings
from autotrader.services.session import simulated_quotes, trader_settings
from tests.autotrader.conftest import write_run


def test_sim_time_needs_an_offset(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--once", "--sim-time", "2026-03-02T15:00:00"])
    assert "UTC offset" in capsys.readouterr().err


def test_once_runs_a_paper_cycle_and_loop_stops_after_max_cycles(tmp_path):
    run_dir = write_run(tmp_path / "result", "20260301-run")
    state, config = tmp_path / "state", tmp_path / "config"
    config.mkdir()
    common = ["run", "--broker", "paper", "--result-root", str(tmp_path / "result"),
              "--state-dir", str(state), "--config-dir", str(config),
              "--sim-time", "2026-03-02T15:30:00+00:00", "--log-level", "WARNING"]
    assert main([*common, "--once"]) == 0
    with sqlite3.connect(state / "paper_broker.db") as conn:
        refs = [r for (r,) in conn.execute("SELECT order_ref FROM orders")]
    assert any("-AAA-" in r for r in refs)
    assert run_dir.name.replace("-", "") in refs[0]
    assert main([*common, "--loop", "--interval", "600", "--max-cycles", "2"]) == 0


def test_missing_recommendations_is_an_error_exit(tmp_path):
    (tmp_path / "config").mkdir()
    code = main(["run", "--once", "--run-dir", str(tmp_path / "none"), "--state-dir",
                 str(tmp_path / "state"), "--config-dir", str(tmp_path / "config"),
                 "--sim-time", "2026-03-02T15:30:00+00:00", "--log-level", "WARNING"])
    assert code == 1


def test_config_sections_map_onto_engine_records():
    settings = Settings()
    mapped = trader_settings(settings)
    assert mapped.risk.daily_order_limit == settings.orders.daily_order_limit
    assert mapped.risk.min_price == settings.filters.min_price
    assert mapped.sizing.cash_reserve_pct == settings.capital.cash_reserve_pct
    assert mapped.stops.atr_multiplier == settings.risk_controls.stops.atr_multiplier


def test_simulated_quotes_are_deterministic_and_near_the_close():
    import datetime as dt

    provider = simulated_quotes(lambda: {"AAA": 100.0})
    now = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.timezone.utc)
    first, again = provider("AAA", now), provider("AAA", now)
    assert first == again and abs(first.last - 100.0) <= 0.5
    assert provider("ZZZ", now) is None
