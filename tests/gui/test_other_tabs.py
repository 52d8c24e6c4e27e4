"""Risk settings, Data, Watchlist, Backtest and Logs tabs through the real widgets."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest

from tests.gui.conftest import pump_until, screenshot

pytestmark = pytest.mark.gui


@pytest.fixture
def own_config(tmp_path, gui_config):
    config = tmp_path / "config"
    shutil.copytree(gui_config, config)
    return config


def test_risk_bad_values_give_a_message_and_save_nothing(make_app, own_config, screenshots):
    app = make_app(config_dir=own_config)
    view = app.views["risk"]
    target = own_config / "risk_config.json"
    view.vars["capital.max_single_position_pct"].set("abc")
    assert view.save() is False
    assert "capital.max_single_position_pct: 'abc' is not a number" in view.message.get()
    view.vars["capital.max_single_position_pct"].set("1.7")
    view.save_button.invoke()
    assert "not saved" in view.message.get() and "max_single_position_pct" in view.message.get()
    assert not target.exists()
    assert app.settings.capital.max_single_position_pct == 0.05
    screenshot(app, "risk", screenshots)


def test_risk_save_writes_the_file_and_external_edits_hot_reload(make_app, own_config):
    app = make_app(config_dir=own_config)
    view = app.views["risk"]
    target = own_config / "risk_config.json"
    view.vars["capital.max_single_position_pct"].set("0.04")
    view.vars["risk_controls.stops.trailing"].set("false")
    view.save_button.invoke()
    assert "saved to" in view.message.get()
    saved = json.loads(target.read_text())
    assert saved["capital"]["max_single_position_pct"] == 0.04
    assert saved["risk_controls"]["stops"]["trailing"] is False
    assert app.settings.capital.max_single_position_pct == 0.04
    saved["orders"]["daily_order_limit"] = 33
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved))
    os.replace(tmp, target)  # an external editor's atomic save
    pump_until(app, lambda: view.vars["orders.daily_order_limit"].get() == "33", timeout=10)
    assert "reloaded from disk" in view.message.get()


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


def test_data_tab_shows_whether_the_key_is_set_never_the_key(make_app, monkeypatch,
                                                              screenshots):
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
    screenshot(app, "data", screenshots)


def test_backtest_tab_ic_matches_the_run_metrics(make_app, demo_result, screenshots):
    app = make_app(result_root=demo_result)
    view = app.views["backtest"]
    view.load_newest()
    pump_until(app, lambda: view.series is not None, timeout=60)
    metrics = json.loads((view.run_dir / "metrics.json").read_text())
    assert view.series.ic.mean() == pytest.approx(metrics["oos"]["fused"]["rank_ic"], abs=1e-9)
    assert len(view.series.ic) == metrics["oos"]["fused"]["n_dates"]
    assert view.chart_image is not None and view.chart_image.height() > 300
    screenshot(app, "backtest", screenshots)


def test_log_pane_shows_records_from_any_thread_and_filters_by_level(make_app, screenshots):
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
    screenshot(app, "logs", screenshots)
