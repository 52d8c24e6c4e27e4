"""Risk settings, Data, Watchlist, Backtest and Logs tabs through the real widgets."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest

from tests.autotrader.gui.conftest import pump_until, screenshot

pytestmark = pytest.mark.gui


@pytest.fixture
def own_config(tmp_path, gui_config):
    config = tmp_path / "config"
    shutil.copytree(gui_config, config)
    return config


def test_risk_bad_values_are_highlighted_and_save_nothing(make_app, own_config, screenshots):
    app = make_app(config_dir=own_config)
    view = app.views["risk"]
    target = own_config / "risk_config.json"
    field = view.fields["capital.max_single_position_pct"]
    assert (field.info.label, field.info.unit, field.get()) == ("Max position size",
                                                               "% of equity", "5")
    field.set("abc")
    assert view.save() is False
    assert "Max position size: 'abc' is not a number" in view.message.get()
    assert str(field.label.cget("style")) == "Error.TLabel"  # the bad field is marked
    field.set("170")  # 170 % of equity: out of range
    view.save_button.invoke()
    assert "not saved" in view.message.get() and "Max position size" in view.message.get()
    assert str(field.label.cget("style")) == "Error.TLabel"
    assert not target.exists()
    assert app.settings.capital.max_single_position_pct == 0.05
    field.set("5")
    buckets = view.fields["execution.allowed_volatility_buckets"]
    assert buckets.get() == "low, medium, high" and set(buckets.checks) == {"low", "medium", "high"}
    for choice in buckets.checks.values():
        choice.set(False)  # no bucket at all: refused by the configuration
    view.save_button.invoke()
    assert "not saved" in view.message.get() and not target.exists()
    assert str(buckets.label.cget("style")) == "Error.TLabel"
    assert str(field.label.cget("style")) == "TLabel"
    view.fields["risk_controls.stops.trailing"].tooltip.show()  # the help of a checkbox
    screenshot(app, "risk", screenshots)
    view.fields["risk_controls.stops.trailing"].tooltip.hide()


def test_risk_fields_have_plain_labels_units_help_and_checkboxes(make_app, own_config):
    from tkinter import ttk

    app = make_app(config_dir=own_config)
    view = app.views["risk"]
    for key, widget in view.fields.items():
        assert widget.info.label != key and "_" not in widget.info.label, key
        assert key in widget.info.help and widget.info.help.split(".")[0], key
    assert isinstance(view.fields["sizing.notional_round_lots"].input, ttk.Checkbutton)
    assert isinstance(view.fields["execution.order_type"].input, ttk.Combobox)
    assert "less than 100 %" in view.fields["capital.cash_reserve_pct"].info.help


def test_risk_save_writes_the_file_and_external_edits_hot_reload(make_app, own_config):
    app = make_app(config_dir=own_config)
    view = app.views["risk"]
    target = own_config / "risk_config.json"
    view.fields["capital.max_single_position_pct"].set("4")
    view.fields["risk_controls.stops.trailing"].bool.set(False)
    buckets = view.fields["execution.allowed_volatility_buckets"]
    assert buckets.get() == "low, medium, high"
    buckets.checks["medium"].set(False)
    buckets.checks["high"].set(False)
    view.fields["execution.order_type"].set("bracket")
    view.save_button.invoke()
    assert "saved to" in view.message.get()
    saved = json.loads(target.read_text())
    assert saved["capital"]["max_single_position_pct"] == 0.04
    assert saved["risk_controls"]["stops"]["trailing"] is False
    assert saved["execution"]["allowed_volatility_buckets"] == ["low"]
    assert app.settings.capital.max_single_position_pct == 0.04
    assert app.settings.execution.allowed_volatility_buckets == ("low",)
    assert app.settings.execution.order_type == "bracket"
    saved["orders"]["daily_order_limit"] = 33
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved))
    os.replace(tmp, target)  # an external editor's atomic save
    pump_until(app, lambda: view.fields["orders.daily_order_limit"].get() == "33", timeout=10)
    assert "reloaded from disk: Max orders per day" in view.message.get()


def test_watchlist_import_reports_rejected_lines(make_app, tmp_path, screenshots):
    app = make_app()
    view = app.views["watchlist"]
    stocks = tmp_path / "stocks.txt"
    stocks.write_text("# universe\nAAPL\nMSFT\nnot a ticker!\nBRK.B\nAAPL\n")
    view.import_path.set(str(stocks))
    view.import_file()
    tickers = [r[0] for r in view.table.rows()]
    assert "AAPL" in tickers and "MSFT" in tickers
    assert "1 rejected" in view.message.get()
    assert "not a ticker!" in view.rejected.get("1.0", "end")
    view.ticker.set("ibm")
    view.add()
    assert "IBM" in [r[0] for r in view.table.rows()]
    view.table.tree.selection_set(view.table.tree.get_children()[0])
    view.remove_selected()
    assert tickers[0] not in [r[0] for r in view.table.rows()]
    screenshot(app, "watchlist", screenshots)


def test_data_tab_shows_whether_the_key_is_set_never_the_key(make_app, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", "sekrit-key-123")
    app = make_app()
    view = app.views["data"]
    view.refresh()
    pump_until(app, lambda: "tickers cached" in view.message.get(), timeout=10)
    assert view.key_status.get().startswith("set")
    assert "sekrit" not in view.key_status.get() + view.message.get()
    monkeypatch.delenv("POLYGON_API_KEY")
    monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    view.refresh()
    assert view.key_status.get().startswith("NOT set")
    view.update_button.invoke()
    assert "no Polygon API key" in view.message.get()


def test_backtest_tab_ic_matches_the_run_metrics(make_app, demo_result, screenshots):
    app = make_app(result_root=demo_result)
    view = app.views["backtest"]
    view.load_newest()
    pump_until(app, lambda: view.series is not None, timeout=60)
    metrics = json.loads((view.run_dir / "metrics.json").read_text())
    assert view.series.ic.mean() == pytest.approx(metrics["oos"]["fused"]["rank_ic"], abs=1e-9)
    assert len(view.series.ic) == metrics["oos"]["fused"]["n_dates"]
    assert view.chart_image is not None and view.chart_image.height() > 300
    note = view.note.cget("text")  # the explanation says what is drawn: the IC view
    assert note.startswith("IC view, no strategy backtest") and "label column" in note
    screenshot(app, "backtest", screenshots)


def test_backtest_tab_shows_the_strategy_equity_curve_when_the_run_has_one(
        make_app, backtested_result, screenshots):
    app = make_app(result_root=backtested_result)
    view = app.views["backtest"]
    view.load_newest()
    pump_until(app, lambda: view.strategy is not None or "cannot" in view.message.get(),
               timeout=60)
    assert view.strategy is not None, view.message.get()
    block = json.loads((view.run_dir / "metrics.json").read_text())["backtest"]
    assert view.strategy.stats["sharpe"] == block["sharpe"]
    assert len(view.strategy.daily) == block["n_sessions"]
    text = view.message.get()
    assert text.startswith("DEMO - ") and f"Sharpe {block['sharpe']:.2f}" in text
    assert f"Sharpe {block['benchmark']['sharpe']:.2f}" in text and "equal-weight" in text
    assert view.chart_image is not None and view.chart_image.height() > 300
    # the explanation line describes the strategy backtest on screen, not the IC view
    note = view.note.cget("text")
    assert note.startswith(f"DEMO DATA (a simulated market, not a track record). Strategy "
                           f"backtest of run {view.run_dir.name}, {block['start']} to "
                           f"{block['end']}:")
    assert "equity after costs" in note and "equal-weight universe" in note
    assert f"USD {block['total_costs']:,.0f} in all" in note
    assert f"rebalanced every {block['settings']['rebalance_every']} sessions" in note
    assert "IC" not in note and "label column" not in note
    pump_until(app, lambda: not view.chart.pending, timeout=30)  # every strip drawn
    shot = screenshot(app, "backtest", screenshots)
    shot.replace(shot.with_name("backtest_strategy.png"))


def test_research_tab_backtest_box_sets_the_override(make_app):
    app = make_app()
    view = app.views["research"]
    assert view.request().overrides["research.backtest.enabled"] is False
    view.backtest.set(True)
    assert view.request().overrides["research.backtest.enabled"] is True


def test_log_pane_shows_records_from_any_thread_and_filters_by_level(make_app):
    import threading

    app = make_app()
    view = app.views["logs"]
    log = logging.getLogger("tests.gui.logs")
    log.setLevel(logging.DEBUG)
    thread = threading.Thread(target=lambda: log.warning("warning from a worker thread"))
    thread.start()
    thread.join()
    log.info("an info line")
    pump_until(app, lambda: "an info line" in view.visible_text(), timeout=5)
    assert "warning from a worker thread" in view.visible_text()
    view.level.set("WARNING")
    view.rerender()
    assert "an info line" not in view.visible_text()
    assert "warning from a worker thread" in view.visible_text()


def _labelled_run(root, source: str = "polygon", file: str = "predictions_oos.parquet"):
    """A hand-written run: 3 dates x 5 tickers, label = 1% x score rank, horizon 1."""
    import pandas as pd

    run = root / f"20250101-000000-{source}"
    run.mkdir(parents=True)
    rows = []
    for d, date in enumerate(("2025-01-02", "2025-01-03", "2025-01-06")):
        for k in range(5):
            score = (k + d) % 5  # a different order each date
            label = 0.01 * score if d != 1 else -0.01 * score  # date 2: perfectly wrong
            rows.append((pd.Timestamp(date), f"T{k}", 0, score / 10, label))
    oos = pd.DataFrame(rows, columns=["date", "ticker", "fold", "fused", "label"])
    if file.endswith(".csv"):  # the format of runs written before predictions_oos.parquet
        oos.assign(date=oos["date"].dt.strftime("%Y-%m-%d")).to_csv(run / file, index=False)
    else:
        oos.astype({"fused": "float32", "label": "float32"}).to_parquet(run / file)
    (run / "metrics.json").write_text(json.dumps({"run": {"source": source, "horizon": 1},
                                                  "oos": {}}))
    return run


def test_backtest_uses_the_label_column_of_any_source(tmp_path):
    from autotrader.gui.runfiles import LABEL_COLUMN, oos_series

    series, reason = oos_series(_labelled_run(tmp_path, "polygon"))
    assert reason == "" and series.label_source == LABEL_COLUMN
    assert list(series.ic.round(12)) == [1.0, -1.0, 1.0]
    # top quintile minus bottom quintile = 0.04 - 0.00, then -0.04, then 0.04
    # (labels stored as float32, like a real run's)
    assert list(series.long_short) == pytest.approx([0.04, -0.04, 0.04], abs=1e-8)
    assert series.cumulative.iloc[-1] == pytest.approx(1.04 * 0.96 * 1.04 - 1.0)


def test_backtest_long_short_is_the_metric_of_the_report(demo_result):
    from autotrader.gui.runfiles import oos_series

    (run,) = [p for p in demo_result.iterdir() if not p.name.startswith(".")]
    series, reason = oos_series(run)
    assert reason == ""
    metrics = json.loads((run / "metrics.json").read_text())["oos"]["fused"]
    assert series.long_short.mean() == pytest.approx(metrics["long_short_mean"], rel=1e-12)
    assert series.ic.mean() == pytest.approx(metrics["rank_ic"], rel=1e-12)


def test_backtest_reads_an_older_run_that_has_only_the_csv_predictions(tmp_path):
    from autotrader.gui.runfiles import oos_series

    series, reason = oos_series(_labelled_run(tmp_path, "polygon", "predictions_oos.csv"))
    assert reason == "" and series.label_source == "label column of predictions_oos.csv"
    assert list(series.ic.round(12)) == [1.0, -1.0, 1.0]
    assert list(series.long_short.round(12)) == [0.04, -0.04, 0.04]


def test_a_run_without_predictions_is_a_clear_error(tmp_path):
    from autotrader.gui.runfiles import oos_series
    from bma_models.errors import DataError

    run = _labelled_run(tmp_path, "polygon")
    (run / "predictions_oos.parquet").unlink()
    with pytest.raises(DataError, match="no predictions_oos.parquet"):
        oos_series(run)


def test_older_run_without_labels_says_why_for_csv_and_polygon(tmp_path):
    from autotrader.gui.runfiles import oos_series

    run = _labelled_run(tmp_path, "csv", "predictions_oos.csv")
    text = (run / "predictions_oos.csv").read_text().splitlines()
    (run / "predictions_oos.csv").write_text(
        "\n".join(line.rsplit(",", 1)[0] for line in text) + "\n")
    series, reason = oos_series(run)
    assert series is None and "no label column" in reason and "'csv'" in reason


def test_backtest_tab_shows_a_polygon_run_with_labels(make_app, tmp_path):
    root = tmp_path / "result"
    run = _labelled_run(root, "polygon")
    app = make_app(result_root=root)
    view = app.views["backtest"]
    view.load(run)
    pump_until(app, lambda: view.series is not None or "cannot" in view.message.get(),
               timeout=60)
    assert view.series is not None, view.message.get()
    assert "label column of predictions_oos.parquet" in view.message.get()
    assert "mean rank IC 0.3333" in view.message.get()
    assert view.chart_image is not None and view.chart_image.width() > 500


def test_a_long_table_is_filled_in_chunks_between_ticks(make_app):
    from autotrader.gui.widgets import Table

    app = make_app()
    table = Table(app.views["logs"], ("a", "b"), timer=app.stall)
    done = []
    table.set_rows(((i, i * 0.5) for i in range(120)), chunk=50,
                   on_done=lambda: done.append(len(table.rows())))
    assert table.pending and len(table.rows()) == 50 and done == []
    pump_until(app, lambda: done, timeout=5)
    assert done == [120] and not table.pending
    assert table.rows()[-1] == ("119", "59.5")
    table.set_rows([("x", 1)])  # unchunked: at once, and replaces everything
    assert table.rows() == [("x", "1")]


def test_update_data_and_test_request_against_the_fake_polygon_server(make_app, tmp_path,
                                                                        monkeypatch, screenshots):
    from tests.fakes.polygon_server import FakePolygonServer

    (tmp_path / "stocks.txt").write_text("AAA\nBBB\n")
    monkeypatch.setenv("POLYGON_API_KEY", "gui-key")
    with FakePolygonServer(api_key="gui-key", universe=("AAA", "BBB"),
                           history_start="2023-01-03", last_session="2024-12-31") as fake:
        app = make_app(overrides={"polygon.base_url": fake.base_url,
                                  "polygon.cache_dir": str(tmp_path / "cache"),
                                  "app.stocks_file": str(tmp_path / "stocks.txt"),
                                  "app.universe_source": "stocks_file"})
        view = app.views["data"]
        view.update_button.invoke()
        pump_until(app, lambda: view.message.get().startswith(("updated", "update failed")),
                   timeout=60)
        assert view.message.get().startswith("updated 2 tickers"), view.message.get()
        assert "0 failures" in view.message.get()
        pump_until(app, lambda: len(view.coverage.rows()) == 2, timeout=10)
        assert [r[0] for r in view.coverage.rows()] == ["AAA", "BBB"]
        assert all(r[2] == "2024-12-31" for r in view.coverage.rows())
        screenshot(app, "data", screenshots)
        view.test_button.invoke()
        pump_until(app, lambda: view.message.get().startswith("test request"), timeout=30)
        assert view.message.get().startswith("test request OK"), view.message.get()
        assert any("SPY" in p for p in fake.paths())
        assert "gui-key" not in view.message.get() + view.key_status.get()


def test_charts_show_the_rendered_pixels_with_the_photo_colours_held(display, make_app):
    # the workstation holds Tk's photo colour table; every strip still shows exactly its pixels
    from autotrader.gui.charts import research_image
    from benchmarks.chart_display import _payload, _summary, measure

    app = make_app()
    holder = app.photo_color_holder
    assert holder is not None and not holder.winfo_ismapped()
    assert holder.cget("image") == str(holder.image)
    strips = research_image(_summary())
    for hold in (True, False):
        first, again, pixels = measure(strips, hold)
        assert pixels == [_payload(strip) for strip in strips]
        assert first > 0.0 and again > 0.0


def _two_copies_of_a_run(demo_result, root):
    run = next(p for p in sorted(demo_result.iterdir()) if (p / "metrics.json").is_file())
    first, second = root / "20260101-000000-demo-DEMO", root / "20260102-000000-demo-DEMO"
    shutil.copytree(run, first)
    shutil.copytree(run, second)
    return first, second


def _count_calls(view, name):
    calls, method = [], getattr(view, name)

    def counted(*args):
        calls.append(args)
        method(*args)

    setattr(view, name, counted)
    return calls


def test_a_backtest_loaded_over_another_shows_only_the_last_one(make_app, demo_result,
                                                                tmp_path):
    first, second = _two_copies_of_a_run(demo_result, tmp_path / "result")
    app = make_app(result_root=tmp_path / "result")
    view = app.views["backtest"]
    seen = []
    view.message.trace_add("write", lambda *_: seen.append(view.message.get()))
    results = _count_calls(view, "_on_series")
    view.load(first)
    view.load(second)  # before the first result is back (one helper process, in order)
    pump_until(app, lambda: len(results) == 2, timeout=90)
    assert view.run_dir == second and view.message.get().startswith(f"{second.name}: model")
    # the first result was not drawn (under the second's name, as it used to be)
    assert len([m for m in seen if ": model " in m]) == 1, seen


def test_a_run_selected_over_another_shows_only_the_last_one(make_app, demo_result, tmp_path):
    first, second = _two_copies_of_a_run(demo_result, tmp_path / "result")
    app = make_app(result_root=tmp_path / "result")
    view = app.views["research"]
    pump_until(app, lambda: view.shown is not None, timeout=90)  # the newest run, at start
    titles = []
    configure = view.results_title.configure
    view.results_title.configure = lambda **kw: (titles.append(kw.get("text")),
                                                 configure(**kw))[1]
    results = _count_calls(view, "_show_summary")
    view.show_run(first)
    view.show_run(second)
    pump_until(app, lambda: len(results) == 2, timeout=90)
    assert view.shown.run_dir == second
    assert len(titles) == 1 and f"run {second.name}" in titles[0], titles
