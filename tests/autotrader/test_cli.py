"""``autotrader run``: argument handling and one in-process paper cycle."""

from __future__ import annotations

import json
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


#: a run made under the packaged rulebook: 3 % per name, every name's percentile in the run
PLANNED = """rank,ticker,sector,score,score_percentile,expected_return,weight,last_close,adv,atr
1,AAA,Tech,0.95,0.99,0.020,0.03,50.00,50000000,1.0
2,BBB,Tech,0.90,0.98,0.015,0.03,120.00,80000000,2.4
3,CCC,Health,0.80,0.97,0.012,0.03,30.00,20000000,0.6
4,DDD,Energy,0.70,0.96,0.010,0.03,40.00,20000000,0.8
"""


def _paper_cycles(tmp_path, *extra):
    write_run(tmp_path / "result", "20260301-run", PLANNED)
    state, config = tmp_path / "state", tmp_path / "config"
    config.mkdir(exist_ok=True)
    return main(["run", "--result-root", str(tmp_path / "result"), "--state-dir", str(state),
                 "--config-dir", str(config), "--sim-time", "2026-03-02T15:30:00+00:00",
                 "--log-level", "WARNING", *extra])


def test_status_json_is_one_object_with_the_plan_versus_the_book(tmp_path, capsys):
    assert _paper_cycles(tmp_path, "--loop", "--max-cycles", "2") == 0
    capsys.readouterr()
    assert main(["status", "--json", "--state-dir", str(tmp_path / "state")]) == 0
    status = json.loads(capsys.readouterr().out)
    assert set(status) >= {"run_id", "equity", "cash", "positions", "coverage", "invested",
                           "gaps"}
    assert status["run_id"] == "20260301-run" and status["coverage"] >= 0.95
    assert {p["symbol"] for p in status["positions"]} == {"AAA", "BBB", "CCC", "DDD"}
    assert set(status["positions"][0]) == {"symbol", "quantity", "price", "market_value",
                                           "weight", "planned_weight"}
    assert status["invested"] == pytest.approx(
        sum(p["market_value"] for p in status["positions"]) / status["equity"], abs=1e-4)
    assert main(["status", "--state-dir", str(tmp_path / "state")]) == 0
    assert "PLAN vs BOOK run 20260301-run" in capsys.readouterr().out


def test_status_names_every_gap_in_words_and_keeps_the_codes_in_json(tmp_path, capsys):
    # one order per cycle: three planned names wait for the per-cycle order limit
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yaml").write_text("orders: {per_cycle_order_limit: 1}\n")
    assert _paper_cycles(tmp_path, "--once") == 0
    capsys.readouterr()
    assert main(["status", "--json", "--state-dir", str(tmp_path / "state")]) == 0
    gaps = [g for g in json.loads(capsys.readouterr().out)["gaps"] if g["kind"] == "order_limit"]
    assert len(gaps) == 3
    for gap in gaps:  # the codes stay as they were; the words are beside them
        assert gap["check"] == "per_cycle_order_limit"
        assert gap["reason"].startswith("waiting for the per_cycle_order_limit: ")
        assert gap["reason_text"].startswith("order limit per cycle reached: 1 orders this "
                                             "cycle (limit 1)")
    assert main(["status", "--state-dir", str(tmp_path / "state")]) == 0
    table = capsys.readouterr().out
    assert table.count("order limit per cycle reached") == 3
    assert "per_cycle_order_limit" not in table and "order_limit" not in table


def test_status_without_a_book_exits_1_naming_the_file(tmp_path, caplog):
    assert main(["status", "--json", "--state-dir", str(tmp_path)]) == 1
    assert "book.json: no book snapshot" in caplog.text


def test_run_takes_broker_interval_and_starting_cash_from_the_configuration(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yaml").write_text(
        "trading: {broker: paper, cycle_interval_s: 900}\n"
        "research: {portfolio: {capital: 250000}}\n")
    assert _paper_cycles(tmp_path, "--loop", "--max-cycles", "2") == 0
    book = json.loads((tmp_path / "state" / "book.json").read_text())
    assert book["broker"] == "paper"
    assert book["as_of"] == "2026-03-02T15:45:00+00:00"  # one 900 s interval after the start
    with sqlite3.connect(tmp_path / "state" / "paper_broker.db") as conn:
        spent = conn.execute("SELECT SUM(quantity * price + commission) FROM executions "
                             "WHERE side = 'BUY'").fetchone()[0]
        cash = conn.execute("SELECT amount FROM cash").fetchone()[0]
    assert cash + spent == pytest.approx(250_000.0)  # the one capital research assumes
