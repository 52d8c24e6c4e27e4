"""The research pipeline on a 2-worker LocalCluster: identical results, progress, worker deaths."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import bma_models.factors.distributed as factor_blocks
from autotrader.research.cli import main
from autotrader.research.wiring import run_research
from bma_models.cluster import ClusterError, cluster_errors, open_session
from bma_models.data.demo import demo_market
from bma_models.pipeline import STAGES, PipelineCancelled, ResearchPipeline
from bma_models.rules import Rulebook
from bma_models.settings import DaskSettings, ResearchSettings

SMALL = {"cv": {"n_splits": 3}, "portfolio": {"top_n": 40},
         "dask": {"factor_block_tickers": 15}}
#: a 40-name market: every score percentile and volatility bucket may buy, 10 % per name
RULES = Rulebook(max_position=0.1, acceptance_threshold=0.0,
                 allowed_volatility_buckets=("low", "medium", "high"))


@pytest.fixture(scope="module")
def market():
    return demo_market(n_tickers=40, n_sessions=300, seed=1, end="2025-06-30")


@pytest.fixture(scope="module")
def settings():
    return ResearchSettings.from_mapping(SMALL)


@pytest.fixture(scope="module")
def single(market, settings):
    """The single-machine run (loky, jobs=2): the reference every Dask run must equal."""
    return ResearchPipeline(settings, rules=RULES).run(market)


def _assert_same_result(got, expected):
    pd.testing.assert_frame_equal(got.predictions_oos, expected.predictions_oos,
                                  rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(got.recommendations, expected.recommendations,
                                  rtol=1e-9, atol=1e-9)
    pd.testing.assert_series_equal(got.stack_weights, expected.stack_weights, rtol=1e-9)
    assert got.dataset["training_rows"] == expected.dataset["training_rows"]


def test_dask_run_equals_the_single_machine_run_and_reports_task_progress(
        market, settings, single, dask_local):
    seen = []
    result = ResearchPipeline(settings, progress=lambda *a: seen.append(a), rules=RULES,
                              cluster=dask_local).run(market)
    _assert_same_result(result, single)
    stages = [s for s, _, _ in seen if ":" not in s]
    assert stages == list(STAGES)
    features = [(d, t) for s, d, t in seen if s == "features:tasks"]
    assert features == [(k, 3) for k in range(1, 4)]  # 40 tickers in blocks of 15
    train = [(d, t) for s, d, t in seen if s == "train:tasks"]
    assert train and train[-1][0] == train[-1][1] and len(train) == train[-1][1]


@pytest.mark.slow
def test_native_final_fits_change_only_the_latest_scores_and_those_only_slightly(
        market, single, dask_local):
    # threshold 0: the final LightGBM/XGBoost fits run on lightgbm.dask / xgboost.dask
    settings = ResearchSettings.from_mapping({**SMALL, "dask": {"native_fit_min_rows": 0}})
    result = ResearchPipeline(settings, cluster=dask_local, rules=RULES).run(market)
    # out-of-fold predictions never use the final fits: still identical
    pd.testing.assert_frame_equal(result.predictions_oos, single.predictions_oos,
                                  rtol=1e-9, atol=1e-9)
    got = result.recommendations.set_index("ticker")["stack_score"]
    expected = single.recommendations.set_index("ticker")["stack_score"].reindex(got.index)
    assert not np.allclose(got, expected, rtol=1e-9, atol=0)  # the native path really ran
    assert spearmanr(got, expected)[0] > 0.9


@pytest.mark.filterwarnings("ignore:.*tasks which were still being processed:UserWarning")
def test_cancel_on_a_cluster_stops_the_train_stage_between_tasks(market, settings, dask_local):
    cancel = threading.Event()
    seen = []

    def progress(stage, done, total):
        seen.append((stage, done))
        if stage == "train:tasks" and done == 2:
            cancel.set()

    with pytest.raises(PipelineCancelled, match="during stage 'train' after 3 of"):
        ResearchPipeline(settings, progress=progress, cancel=cancel,
                         cluster=dask_local, rules=RULES).run(market)
    assert ("train", 2) not in seen  # the stage never completed
    deadline = time.monotonic() + 30  # the remaining tasks were cancelled, not left running
    while any(dask_local.client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(dask_local.client.processing().values())


def _kill_a_busy_worker(session, timeout_s=60.0) -> int:
    # wait until a worker is running a task, then SIGKILL that worker's process
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = [w for w, keys in session.client.processing().items() if keys]
        if busy:
            pid = session.worker_pids()[busy[0]]
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.005)
    raise AssertionError("no task was ever processing")


@pytest.mark.slow
@pytest.mark.parametrize("during", ["features", "train"])
def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes_unchanged_or_fails_clearly(
        market, settings, single, during):
    # features: every block's data lives in its task, so a lost task is always re-run.
    # train: a lost running task is re-run too, but a finished result still held by the
    # killed worker is not recomputed by joblib's Dask backend: then the run must fail with
    # a ClusterError naming the task -- never return a partial or wrong result.
    session = open_session(DaskSettings(scheduler="local", workers=2, memory_limit="0"))
    outcome, started = {}, threading.Event()
    trigger = {"features": None, "train": "train:tasks"}[during]

    def progress(stage, done, total):
        if stage == trigger:
            started.set()

    def run():
        try:
            with cluster_errors(session.address):
                outcome["result"] = ResearchPipeline(settings, progress=progress,
                                                     cluster=session, rules=RULES).run(market)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = e

    try:
        if trigger is None:
            started.set()
        thread = threading.Thread(target=run)
        thread.start()
        assert started.wait(120)
        killed = _kill_a_busy_worker(session)
        thread.join(300)
        assert killed not in session.worker_pids().values()
    finally:
        session.close()
    if during == "features" or "error" not in outcome:
        assert "error" not in outcome, outcome.get("error")
        _assert_same_result(outcome["result"], single)
    else:
        error = outcome["error"]
        assert isinstance(error, ClusterError), repr(error)
        assert "batch_of__fit_predict_fold" in str(error) and "nothing was written" in str(error)


def _lose_the_worker(block, reference, specs, n_jobs):
    os._exit(1)  # the worker process dies as in an OOM kill


def test_worker_deaths_beyond_allowed_failures_fail_clearly_and_write_nothing(
        market, monkeypatch, tmp_path):
    monkeypatch.setattr(factor_blocks, "_compute_block", _lose_the_worker)
    settings = ResearchSettings.from_mapping({**SMALL, "dask": {
        "scheduler": "local", "workers": 1, "allowed_failures": 0, "memory_limit": "0"}})
    out = tmp_path / "out"
    with pytest.raises(ClusterError, match="lost with its worker.*nothing was written"):
        run_research(market, settings, out, argv=["test"], rules=RULES)
    assert not out.exists() or [p.name for p in out.iterdir()] == []


@pytest.mark.slow
def test_bma_run_with_dask_scheduler_local_writes_a_run_directory(tmp_path, repo_root,
                                                                 monkeypatch, capsys):
    from tests.autotrader.research.test_csv_run import _config_dir

    monkeypatch.chdir(repo_root)
    config = _config_dir(tmp_path, {"data": {"demo_tickers": 40, "demo_sessions": 300},
                                    "dask": {"workers": 2, "memory_limit": "0"}})
    out = tmp_path / "out"
    root_level = logging.getLogger().level  # main() configures logging: restore the level
    try:
        assert main(["run", "--source", "demo", "--config", str(config), "--output", str(out),
                     "--end-date", "2025-06-30", "--dask-scheduler", "local"]) == 0
    finally:
        logging.getLogger().setLevel(root_level)
    run_dir = out / capsys.readouterr().out.strip().splitlines()[-1].split("/")[-1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["settings"]["dask"]["scheduler"] == "local"
