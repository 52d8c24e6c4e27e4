"""Ctrl-C and the cancel event leave no run directory behind (complete or absent)."""

from __future__ import annotations

import threading

import pytest

import autotrader.research.wiring as wiring
import bma_models.report.run as report_run
from autotrader.research.cli import main
from bma_models.data.demo import demo_market
from bma_models.pipeline import PipelineCancelled
from bma_models.report.run import run_and_report
from bma_models.rules import Rulebook
from bma_models.settings import ResearchSettings

from .test_csv_run import _config_dir

TINY = {"data": {"demo_tickers": 40, "demo_sessions": 300}}


def _leftovers(out):
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_ctrl_c_between_stages_exits_130_and_writes_nothing(tmp_path, repo_root, monkeypatch,
                                                            caplog):
    monkeypatch.chdir(repo_root)

    def interrupted_progress():
        def progress(stage, done, total):
            if stage == "train":
                raise KeyboardInterrupt
        return progress

    monkeypatch.setattr(wiring, "_tqdm_progress", interrupted_progress)
    out = tmp_path / "out"
    assert main(["run", "--source", "demo", "--config", str(_config_dir(tmp_path, TINY)),
                 "--output", str(out), "--end-date", "2025-06-30"]) == 130
    assert "cancelled by the user" in caplog.text
    assert _leftovers(out) == []


def test_ctrl_c_while_writing_the_report_discards_the_staging_directory(
        tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)

    def interrupted_charts(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_run, "write_charts", interrupted_charts)
    out = tmp_path / "out"
    assert main(["run", "--source", "demo", "--config", str(_config_dir(tmp_path, TINY)),
                 "--output", str(out), "--end-date", "2025-06-30"]) == 130
    assert _leftovers(out) == []


def test_cancel_event_stops_before_the_next_stage(tmp_path):
    market = demo_market(n_tickers=40, n_sessions=300, seed=1, end="2025-06-30")
    cancel = threading.Event()
    seen = []

    def progress(stage, done, total):
        seen.append(stage)
        cancel.set()

    with pytest.raises(PipelineCancelled, match="before stage 'train'"):
        run_and_report(market, ResearchSettings.from_mapping(TINY), tmp_path / "out", argv=[],
                       progress=progress, cancel=cancel,
                       rules=Rulebook(max_position=0.1, acceptance_threshold=0.0))
    assert seen == ["features"] and _leftovers(tmp_path / "out") == []
