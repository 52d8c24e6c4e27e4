"""The config directory's alphas_config.yaml drives ``bma run`` and the GUI's research job."""

from __future__ import annotations

import json
import logging

import pytest

import autotrader.research.wiring as wiring
from autotrader.research.cli import main
from autotrader.services.research_job import ResearchRequest, execute_research
from bma_models.errors import SettingsError

SMALL = {"research": {
    "data": {"demo_tickers": 60, "demo_sessions": 400, "demo_seed": 3},
    "models": {"enabled": ["ridge"]},
    "cv": {"n_splits": 3},
    "portfolio": {"top_n": 40},
}, "capital": {"max_single_position_pct": 0.05}, "signals": {"acceptance_threshold": 0.0},
    "execution": {"allowed_volatility_buckets": ["low", "medium", "high"],
                  "min_adv_usd": 0.0, "min_expected_alpha_bps": -10000.0}}

# four families, one per category: every default regime weight has a factor
SMALL_SET = """\
version: 1
factors:
  momentum: {windows: [10]}
  reversal: {windows: [1]}
  volatility: {windows: [20]}
  amihud: {windows: [20]}
"""


def _config(tmp_path, alphas: str | None, extra: dict | None = None):
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({**SMALL, **(extra or {})}))
    if alphas is not None:
        (config / "alphas_config.yaml").write_text(alphas, encoding="utf-8")
    return config


def _run(tmp_path, config) -> int:
    return main(["run", "--source", "demo", "--config", str(config),
                 "--output", str(tmp_path / "result"), "--end-date", "2025-06-30",
                 "--state-dir", str(tmp_path / "state")])


@pytest.fixture
def no_data_load(monkeypatch):
    """Fail the test if the run gets as far as loading data (an error must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the factor set must be checked before any data is loaded")

    monkeypatch.setattr(wiring, "load_market_data", refuse)


@pytest.mark.parametrize(("alphas", "named"), [
    ("factors: [unclosed\n", "cannot read alphas config"),
    ("factors:\n  alpha_magic: {windows: [5]}\n", "factors.alpha_magic"),
    ("factors:\n  momentum: {windows: [5], windos: 3}\n", "factors.momentum: unknown keys"),
    ("factors:\n  momentum: {enabled: true}\n", "factors.momentum.windows"),
], ids=["bad_yaml", "unknown_family", "unknown_key", "no_windows"])
def test_an_invalid_factor_set_exits_2_naming_file_and_key(tmp_path, monkeypatch, caplog,
                                                           no_data_load, alphas, named):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, alphas)
    with caplog.at_level(logging.ERROR):
        assert _run(tmp_path, config) == 2
    message = caplog.text
    assert str(config / "alphas_config.yaml") in message
    assert named in message
    assert not (tmp_path / "result").exists() or not any((tmp_path / "result").iterdir())


def test_a_regime_weight_on_a_category_without_factors_exits_2(tmp_path, monkeypatch, caplog,
                                                               no_data_load):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, "factors:\n  momentum: {windows: [10]}\n")
    with caplog.at_level(logging.ERROR):
        assert _run(tmp_path, config) == 2
    assert "research.regime.weights.Bull.reversion" in caplog.text


def test_the_gui_job_reads_the_same_file(tmp_path, no_data_load):
    config = _config(tmp_path, "factors:\n  alpha_magic: {}\n")
    request = ResearchRequest(str(config), str(tmp_path / "result"), source="demo",
                              end_date="2025-06-30", state_dir=str(tmp_path / "state"))
    with pytest.raises(SettingsError, match="factors.alpha_magic"):
        execute_research(request, progress=lambda *a: None, environ={})


def test_the_run_uses_and_records_the_config_directorys_factor_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, SMALL_SET)
    assert _run(tmp_path, config) == 0
    (run_dir,) = [p for p in (tmp_path / "result").iterdir() if not p.name.startswith(".")]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert metrics["dataset"]["features"] == ["vol_20", "mom_10", "reversal_1", "amihud_20"]
    recorded = manifest["factor_set"]
    assert recorded == metrics["dataset"]["factor_set"]
    assert recorded["file"] == str(config / "alphas_config.yaml")
    assert recorded["factors"] == {"volatility": {"windows": [20]},
                                   "momentum": {"windows": [10]},
                                   "reversal": {"windows": [1]},
                                   "amihud": {"windows": [20]}}
