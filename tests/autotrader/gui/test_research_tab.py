"""Research tab: run BMA on a small demo market through the real widgets."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from autotrader.services.research_job import JobFailed
from tests.autotrader.gui.conftest import END_DATE, pump_until, screenshot

pytestmark = pytest.mark.gui


def test_run_bma_in_a_subprocess_fills_the_results_table_and_charts(make_app, tmp_path,
                                                                     screenshots, caplog):
    caplog.set_level(logging.INFO)  # the child inherits the root level
    app = make_app(result_root=tmp_path / "result", research_mode="process")
    view = app.views["research"]
    assert view.table.rows() == []
    view.form.vars["end_date"].set(END_DATE)
    view.source.set("demo")
    view.run_button.invoke()
    assert view.job is not None and view.job.mode == "process"
    pump_until(app, lambda: view.summary or view.message.get().startswith("failed"),
               timeout=240)
    assert view.table.rows(), view.message.get()
    run_dir = view.run_dir
    recs = pd.read_csv(run_dir / "recommendations.csv")
    rows = view.table.rows()
    assert len(rows) == len(recs) > 0
    assert [r[1] for r in rows] == list(recs["ticker"])
    # the plan's weight next to what is held and what the run trades, in percent
    assert [r[4:7] for r in rows] == [(f"{w:.2%}", f"{c:.2%}", f"{t:+.2%}") for w, c, t in zip(
        recs["weight"], recs["current_weight"], recs["trade_weight"], strict=True)]
    assert [r[7] for r in rows] == [f"{c:.2f}" for c in recs["last_close"]]
    assert all(bar["value"] == 1.0 for bar in view.bars.values())
    assert "done in" in view.message.get()
    assert view.chart_image is not None and view.chart_image.width() > 500
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert view.summary.model_ic["fused"] == pytest.approx(metrics["oos"]["fused"]["rank_ic"])
    assert view.last_stall_s is not None
    # the child's log records reach the log pane through the parent's logging
    logs = app.views["logs"]
    pump_until(app, lambda: "research run finished" in logs.visible_text(), timeout=10)
    child = [r for r in caplog.records if r.processName == "bma-research"]
    assert child and any(r.getMessage() in logs.visible_text() for r in child)
    screenshot(app, "research", screenshots)
    screenshot(app, "logs", screenshots)  # the run's own log lines, child process included
    pump_until(app, lambda: app.views["backtest"].series is not None, timeout=60)
    screenshot(app, "backtest", screenshots)


def test_cancel_stops_the_run_before_the_next_stage(make_app, tmp_path):
    app = make_app(result_root=tmp_path / "result", research_mode="thread")
    view = app.views["research"]
    failed = []
    app.bus.subscribe(JobFailed, failed.append)
    view.form.vars["end_date"].set(END_DATE)
    view.source.set("demo")
    view.run_button.invoke()
    view.cancel_button.invoke()
    pump_until(app, lambda: failed, timeout=120)
    assert failed[0].cancelled
    assert view.message.get().startswith("cancelled")
    assert not any(p.is_dir() and not p.name.startswith(".")
                   for p in (tmp_path / "result").glob("*"))


def test_bad_top_n_gives_a_message_and_starts_nothing(make_app):
    app = make_app()
    view = app.views["research"]
    view.form.vars["top_n"].set("ten")
    view.run_button.invoke()
    assert view.job is None
    assert "Top N must be a whole number" in view.message.get()


def test_open_buttons_use_the_opener_and_explain_a_missing_excel_file(make_app, demo_result):
    app = make_app(result_root=demo_result)
    view = app.views["research"]
    pump_until(app, lambda: view.table.rows(), timeout=30)
    view.folder_button.invoke()
    assert app.opened == [view.run_dir]
    excel = view.run_dir / "recommendations.xlsx"
    view.excel_button.invoke()
    if excel.exists():
        assert app.opened[-1] == excel
    else:
        assert "has no Excel workbook" in view.message.get()
        assert len(app.opened) == 1


def test_chinese_labels_come_from_the_language_setting(make_app):
    app = make_app(overrides={"app.language": "zh"})
    assert app.views["research"].run_button.cget("text").startswith("一键运行BMA模型")
    english = make_app()
    assert english.views["research"].run_button.cget("text") == "Run BMA model  (F5)"


def test_dask_scheduler_field_becomes_the_runtime_override_of_the_job(make_app):
    app = make_app()
    view = app.views["research"]
    assert view.form.vars["dask_scheduler"].get() == ""  # default config: no Dask
    assert view.request().overrides == {"research.dask.scheduler": None,
                                        "research.backtest.enabled": False}
    view.form.vars["dask_scheduler"].set(" tcp://10.0.0.5:8786 ")
    assert view.request().overrides["research.dask.scheduler"] == "tcp://10.0.0.5:8786"
    view.form.vars["dask_scheduler"].set("local")
    assert view.request().overrides["research.dask.scheduler"] == "local"
    view.form.vars["dask_scheduler"].set("not an address")
    view.run_button.invoke()
    assert view.job is None
    assert "Dask scheduler 'not an address'" in view.message.get()
    assert "dask_scheduler" in view.form.marked()


def test_the_job_opens_the_dask_scheduler_it_is_given(gui_config, tmp_path):
    """A closed port as scheduler: the run fails naming it, so the override reached the run."""
    import socket

    from autotrader.services.research_job import ResearchRequest, execute_research

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    request = ResearchRequest(str(gui_config), str(tmp_path / "result"), source="demo",
                              end_date=END_DATE,
                              overrides={"research.dask.scheduler": address,
                                         "research.dask.connect_timeout_s": 1.0})
    with pytest.raises(Exception, match=f"127.0.0.1:{port}"):
        execute_research(request, progress=lambda *a: None)
    assert not any((tmp_path / "result").glob("2*"))


def test_a_csv_run_takes_a_sectors_file_from_the_research_tab(make_app, tmp_path):
    from bma_models.data.demo import demo_market

    market = demo_market(n_tickers=60, n_sessions=300, seed=5, end=END_DATE)
    bars, sectors = tmp_path / "bars.csv", tmp_path / "sectors.csv"
    market.bars[["date", "ticker", "open", "high", "low", "close", "volume"]].to_csv(
        bars, index=False)
    market.reference[["ticker", "sector", "shares_outstanding"]].to_csv(sectors, index=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({  # a 60-name market: loose enough rules
        "research": {"models": {"enabled": ["ridge", "lightgbm"]}, "portfolio": {"top_n": 60}},
        "capital": {"max_single_position_pct": 0.1}, "signals": {"acceptance_threshold": 0.0},
        "execution": {"allowed_volatility_buckets": ["low", "medium", "high"]}}))
    app = make_app(result_root=tmp_path / "result", research_mode="thread", config_dir=config)
    view = app.views["research"]
    for name, value in (("end_date", END_DATE), ("data_path", str(bars)),
                        ("sectors_path", str(sectors))):
        view.form.vars[name].set(value)
    view.source.set("csv")
    assert view.request().sectors_path == str(sectors)
    view.run_button.invoke()
    pump_until(app, lambda: view.summary or view.message.get().startswith("failed"),
               timeout=240)
    assert view.summary is not None, view.message.get()
    recs = pd.read_csv(view.run_dir / "recommendations.csv").set_index("ticker")
    expected = market.reference.set_index("ticker")["sector"].reindex(recs.index)
    assert (recs["sector"] == expected).all()  # the sectors came from the file
    metrics = json.loads((view.run_dir / "metrics.json").read_text())
    assert not any("no sector data" in note for note in metrics["portfolio"]["notes"])
    assert metrics["run"]["source"] == "csv"


def test_the_signal_check_line_is_red_when_the_fused_score_loses_to_a_baseline(
        make_app, demo_result, tmp_path, screenshots):
    import shutil

    source = sorted(p for p in demo_result.iterdir() if p.is_dir())[-1]
    root = tmp_path / "result"
    run = shutil.copytree(source, root / source.name)
    metrics = json.loads((run / "metrics.json").read_text())
    report = metrics["baselines"]
    app = make_app(result_root=root)
    view = app.views["research"]
    pump_until(app, lambda: view.summary is not None, timeout=60)
    good = report["beats_all_baselines"]
    text = view.signal_line.cget("text")
    assert text.startswith("Signal check (out of sample)" if good else "WARNING: Signal check")
    assert str(view.signal_line.cget("style")) == ("Good.TLabel" if good else "Error.TLabel")
    plain_t = report["scores"]["lightgbm_plain"]["vs_reference"]["nw_t"]
    assert f"paired t {plain_t:.2f}" in text
    app.refresh_header()  # the strip says it on every tab, the trading tab included
    verdict = "; signal beats every baseline" if good else "; signal LOSES to "
    assert verdict in app.strip.text("research")

    report.update(beats_all_baselines=False, beaten_by=["reversal_5"])
    (run / "metrics.json").write_text(json.dumps(metrics))
    view.summary = None
    view.show_run(run)
    pump_until(app, lambda: view.summary is not None, timeout=60)
    text = view.signal_line.cget("text")
    assert text.startswith("WARNING: Signal check (out of sample): fused does NOT beat")
    assert "reversal_5" in text and str(view.signal_line.cget("style")) == "Error.TLabel"
    app.refresh_header()
    assert app.strip.text("research").endswith("; signal LOSES to reversal_5")
    assert str(app.strip.values["research"].cget("style")) == "StripBad.TLabel"
    screenshot(app, "research", screenshots, "signal-warning")


def test_an_older_run_without_baselines_says_so_instead_of_a_verdict():
    from autotrader.gui.runfiles import signal_check

    check = signal_check({"oos": {}})
    assert check.good is None and "no baselines table" in check.text


def test_an_older_run_without_current_and_trade_weights_shows_blank_cells(make_app, demo_result,
                                                                          tmp_path):
    import shutil

    from autotrader.services.recommendations import latest_run_dir

    old = tmp_path / "older" / latest_run_dir(demo_result).name
    shutil.copytree(latest_run_dir(demo_result), old)
    recs = pd.read_csv(old / "recommendations.csv")
    recs.drop(columns=["current_weight", "trade_weight"]).to_csv(old / "recommendations.csv",
                                                                 index=False)
    app = make_app(result_root=tmp_path / "older")
    view = app.views["research"]
    pump_until(app, lambda: view.summary is not None and view.summary.run_dir == old
               or "cannot" in view.message.get(), timeout=60)
    rows = view.table.rows()
    assert len(rows) == len(recs) and view.summary.run_dir == old, view.message.get()
    assert [r[4:7] for r in rows] == [(f"{w:.2%}", "", "") for w in recs["weight"]]
    assert [r[1] for r in rows] == list(recs["ticker"])  # the other columns stay in place
    assert [r[8] for r in rows] == [str(n) for n in recs["target_shares"]]
