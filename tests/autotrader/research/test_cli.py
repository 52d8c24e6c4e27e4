"""The ``bma`` command line: arguments, environment overrides, date clamping."""

import datetime as dt

import pandas as pd
import pytest

from autotrader.research.cli import parse_args, resolve_dates, resolve_source
from bma_models.report.rundir import RunDirectory, clean_stale_staging, complete_runs

MONDAY_EVENING_UTC = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.timezone.utc)  # after the close


def test_env_dates_fill_missing_flags_and_extra_args_are_appended():
    env = {"BMA_START_DATE": "2022-01-03", "BMA_END_DATE": "2024-06-28",
           "BMA_EXTRA_ARGS": "--top-n 50 --seed 7"}
    ns = parse_args(["run", "--source", "demo"], env)
    assert (ns.start_date, ns.end_date, ns.top_n, ns.seed) == ("2022-01-03", "2024-06-28", 50, 7)


def test_csv_predictions_flag_turns_the_config_key_on_only_when_given():
    from autotrader.research.wiring import cli_overrides

    ns = parse_args(["run", "--source", "demo", "--csv-predictions"], {})
    assert cli_overrides(ns, "demo")["research.report.csv_predictions"] is True
    plain = parse_args(["run", "--source", "demo"], {})
    assert "research.report.csv_predictions" not in cli_overrides(plain, "demo")


def test_command_line_dates_win_over_environment():
    ns = parse_args(["run", "--start-date", "2023-01-03"], {"BMA_START_DATE": "2020-01-02"})
    assert ns.start_date == "2023-01-03"


def test_source_defaults_to_polygon_with_a_key_else_demo(caplog):
    assert resolve_source(None, {"MASSIVE_API_KEY": "x"}) == "polygon"
    assert resolve_source(None, {}) == "demo"
    assert "DEMO" in caplog.text
    assert resolve_source("csv", {"POLYGON_API_KEY": "x"}) == "csv"


def test_end_date_is_clamped_to_last_completed_session():
    dates = resolve_dates("2026-01-02", "2026-12-31", MONDAY_EVENING_UTC)
    assert dates.end == pd.Timestamp("2026-11-23")
    assert dates.clamped_from == pd.Timestamp("2026-12-31")
    before_close = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.timezone.utc)
    assert resolve_dates(None, None, before_close).end == pd.Timestamp("2026-11-20")


def test_bad_dates_are_clear_errors():
    with pytest.raises(ValueError, match="--start-date 'yesterday-ish'"):
        resolve_dates("yesterday-ish", None, MONDAY_EVENING_UTC)
    with pytest.raises(ValueError, match="after the end date"):
        resolve_dates("2026-11-01", "2026-10-01", MONDAY_EVENING_UTC)


def test_run_directory_is_complete_or_absent(tmp_path):
    with RunDirectory(tmp_path, "run-ok") as run:
        run.write_json("manifest.json", {"ok": True})
    with pytest.raises(RuntimeError, match="boom"):
        with RunDirectory(tmp_path, "run-bad") as run:
            run.write_json("manifest.json", {"ok": False})
            raise RuntimeError("boom")
    assert [p.name for p in complete_runs(tmp_path)] == ["run-ok"]
    assert not (tmp_path / "run-bad").exists()
    assert list(tmp_path.glob(".staging-*")) == []
    (tmp_path / ".staging-crashed-123").mkdir()
    assert clean_stale_staging(tmp_path) == 1
