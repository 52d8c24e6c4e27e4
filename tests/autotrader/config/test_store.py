"""ConfigStore: precedence, debounced hot reload, rejection of bad files, writers."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from autotrader import appdb
from autotrader.config import ConfigError, ConfigStore, Settings
from tests.autotrader.config.conftest import write_json, write_text


def test_no_files_gives_code_defaults(make_store):
    assert make_store().get() == Settings()


def test_precedence_each_layer_overrides_the_one_below(make_store, config_dir, tmp_path):
    write_text(config_dir / "local.yaml",
               "connection:\n  port: 4001\nsignals:\n  acceptance_threshold: 0.7\n")
    write_json(config_dir / "connection.json", {"connection": {"port": 4002, "client_id": 7}})
    write_json(config_dir / "risk_config.json",
               {"orders": {"daily_order_limit": 40, "per_cycle_order_limit": 4}})
    db = tmp_path / "state" / "app.db"
    conn = appdb.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO settings (section, key, value_json) VALUES (?, ?, ?)",
            [("orders", "daily_order_limit", "50"), ("connection", "client_id", "8"),
             ("research", "labels.horizon", "3")],
        )
    conn.close()
    write_json(config_dir / "config.json",
               {"orders": {"daily_order_limit": 60}, "research": {"cv": {"gap": 6}}})
    store = make_store(db_path=db, overrides={"research.cv.gap": 7})

    s = store.get()
    assert s.signals.acceptance_threshold == 0.7  # local.yaml over the packaged defaults
    assert s.connection.port == 4002  # connection.json over local.yaml
    assert s.connection.client_id == 8  # database over connection.json
    assert s.orders.per_cycle_order_limit == 4  # risk_config.json, nobody above
    assert s.orders.daily_order_limit == 60  # config.json over database
    assert s.research.labels.horizon == 3  # database, nested dotted key
    assert s.research.cv.gap == 7  # runtime override over config.json
    assert s.filters == Settings().filters  # untouched sections keep their defaults


def test_reads_within_interval_do_one_mtime_check_and_no_reload(make_store, config_dir, clock):
    write_json(config_dir / "config.json", {"orders": {"daily_order_limit": 30}})
    store = make_store(interval_s=60.0)
    for _ in range(100):
        store.get()
    assert store.stats.mtime_checks == 0
    clock.advance(60.0)
    for _ in range(100):
        store.get()
        clock.advance(0.5)
    assert store.stats.mtime_checks == 1
    assert store.stats.reloads == 0
    assert store.stats.swaps == 0


def test_interval_defaults_to_app_hot_reload_interval(make_store, config_dir, clock):
    write_json(config_dir / "config.json", {"app": {"hot_reload_interval_s": 5.0}})
    store = make_store(interval_s=None)
    clock.advance(4.9)
    store.get()
    assert store.stats.mtime_checks == 0
    clock.advance(0.1)
    store.get()
    assert store.stats.mtime_checks == 1


def test_change_is_picked_up_after_the_interval_and_notifies(make_store, config_dir, clock):
    store = make_store()
    seen: list[Settings] = []
    store.subscribe(seen.append)
    write_json(config_dir / "config.json", {"capital": {"max_single_position_pct": 0.1}})
    assert store.get().capital.max_single_position_pct == 0.03  # interval not elapsed yet
    clock.advance(60.0)
    new = store.get()
    assert new.capital.max_single_position_pct == 0.1
    assert seen == [new]
    assert store.stats.reloads == 1


def test_touch_without_content_change_swaps_nothing(make_store, config_dir, clock):
    write_json(config_dir / "config.json", {"orders": {"daily_order_limit": 30}})
    store = make_store()
    before = store.get()
    write_json(config_dir / "config.json", {"orders": {"daily_order_limit": 30}})
    clock.advance(60.0)
    assert store.get() is before
    assert store.stats.mtime_checks == 1
    assert store.stats.reloads == 0


def test_bad_value_is_rejected_and_old_config_kept(make_store, config_dir, clock, caplog):
    store = make_store()
    old = store.get()
    write_json(config_dir / "risk_config.json", {"capital": {"max_single_position_pct": 1.7}})
    clock.advance(60.0)
    with caplog.at_level(logging.ERROR, logger="autotrader.config.store"):
        assert store.get() is old
        clock.advance(60.0)
        assert store.get() is old  # still bad, same file: not re-read, not re-logged
    expected = "capital.max_single_position_pct = 1.7 is out of range [0, 1]"
    assert store.last_error == f"{config_dir / 'risk_config.json'}: {expected}"
    assert len([r for r in caplog.records if expected in r.getMessage()]) == 1
    assert store.stats.rejected == 1

    write_json(config_dir / "risk_config.json", {"capital": {"max_single_position_pct": 0.2}})
    clock.advance(60.0)
    assert store.get().capital.max_single_position_pct == 0.2
    assert store.last_error is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"orders": {"daily_order_limit": 5,', "invalid JSON at line 1"),
        ('{"orders": {"daily_order_limt": 5}}', "orders.daily_order_limt is not a known key"),
        ('{"orders": {"daily_order_limit": "5"}}', "orders.daily_order_limit = '5' is not an "),
        ('{"orders": {"daily_order_limit": true}}', "= True is not an integer"),
        ('{"ordres": {}}', "ordres is not a known section"),
        ('[1, 2]', "the top level must be a mapping"),
        ('{"trading": {"live_armed": true}}',
         "trading.live_armed = True can only be set at runtime"),
        ('{"polygon": {"api_key": "abc"}}', "polygon.api_key looks like a secret"),
    ],
)
def test_bad_hot_config_names_file_and_key(make_store, config_dir, clock, text, message):
    store = make_store()
    old = store.get()
    write_text(config_dir / "config.json", text)
    clock.advance(60.0)
    assert store.get() is old
    assert store.last_error.startswith(str(config_dir / "config.json"))
    assert message in store.last_error


def test_bad_file_at_start_raises(make_store, config_dir):
    write_json(config_dir / "connection.json", {"connection": {"port": 0}})
    with pytest.raises(ConfigError, match=r"connection\.json: connection\.port = 0 is out of"):
        make_store()


def test_section_in_the_wrong_gui_file_is_rejected(make_store, config_dir):
    write_json(config_dir / "connection.json", {"capital": {"cash_reserve_pct": 0.1}})
    with pytest.raises(ConfigError, match="section capital does not belong in this file"):
        make_store()


def test_cross_field_error_names_both_keys_and_their_sources(make_store, config_dir):
    write_json(config_dir / "config.json", {"research": {"labels": {"horizon": 10}}})
    with pytest.raises(ConfigError) as info:
        make_store()
    message = str(info.value)
    assert "research.cv.gap, research.labels.horizon" in message
    assert "built-in default" in message and "config.json" in message


def test_runtime_override_is_validated_and_applied(make_store):
    store = make_store(overrides={"research.labels.horizon": 5})
    seen = []
    store.subscribe(seen.append)
    with pytest.raises(ConfigError, match=r"runtime override: orders\.daily_order_limit = -1"):
        store.set_override("orders.daily_order_limit", -1)
    assert store.get().orders.daily_order_limit == 20 and seen == []
    store.set_override("trading.live_armed", True)
    assert store.get().trading.live_armed is True
    store.clear_override("trading.live_armed")
    assert store.get().trading.live_armed is False
    assert len(seen) == 2


def test_unknown_override_key_is_an_error(make_store):
    with pytest.raises(ConfigError, match=r"runtime override: research\.labels\.horizn is not"):
        make_store(overrides={"research.labels.horizn": 5})


def test_subscriber_failure_is_logged_and_others_still_run(make_store, caplog):
    store = make_store()
    seen = []

    def broken(_settings):
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    unsubscribe = store.subscribe(seen.append)
    with caplog.at_level(logging.ERROR):
        store.set_override("signals.acceptance_threshold", 0.7)
    assert len(seen) == 1
    assert any("subscriber" in r.getMessage() and r.exc_info for r in caplog.records)
    unsubscribe()
    store.set_override("signals.acceptance_threshold", 0.8)
    assert len(seen) == 1


def test_save_file_writes_json_and_applies_it(make_store, config_dir):
    store = make_store()
    write_json(config_dir / "risk_config.json", {"orders": {"daily_order_limit": 30}})
    store.reload()
    s = store.save_file("risk_config.json", {"capital": {"max_single_position_pct": 0.1}})
    assert s.capital.max_single_position_pct == 0.1 and s.orders.daily_order_limit == 30
    on_disk = json.loads((config_dir / "risk_config.json").read_text())
    assert on_disk == {"capital": {"max_single_position_pct": 0.1},
                       "orders": {"daily_order_limit": 30}}
    assert store.reload() is False  # our own write is not reloaded again
    assert [p.name for p in config_dir.iterdir()] == ["risk_config.json"]


def test_save_file_accepts_a_section_object(make_store, config_dir):
    store = make_store()
    connection = store.get().connection
    store.save_file("connection.json", {"connection": connection})
    saved = json.loads((config_dir / "connection.json").read_text())
    assert saved["connection"]["port"] == 7497 and saved["connection"]["host"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("risk_config.json", {"capital": {"max_single_positon_pct": 0.1}}, "is not a known key"),
        ("risk_config.json", {"capital": {"max_single_position_pct": 2}}, "out of range"),
        ("connection.json", {"orders": {"daily_order_limit": 3}}, "does not belong"),
        ("config.json", {"trading": {"live_armed": True}}, "only be set at runtime"),
        ("default.yaml", {"app": {"language": "zh"}}, "not a writable config file"),
    ],
)
def test_save_file_refuses_before_writing_anything(make_store, config_dir, name, values,
                                                   message):
    write_json(config_dir / "risk_config.json", {"orders": {"daily_order_limit": 30}})
    before = (config_dir / "risk_config.json").read_bytes()
    store = make_store()
    with pytest.raises(ConfigError, match=message):
        store.save_file(name, values)
    assert (config_dir / "risk_config.json").read_bytes() == before
    assert sorted(p.name for p in config_dir.iterdir()) == ["risk_config.json"]


def test_save_is_atomic_when_the_rename_fails(make_store, config_dir, monkeypatch):
    store = make_store()
    store.save_file("connection.json", {"connection": {"port": 4002}})
    before = (config_dir / "connection.json").read_bytes()
    staged = []

    def failing_replace(src_path, dst_path):
        staged.append(json.loads(Path(src_path).read_text()))  # complete before the rename
        raise OSError("disk full")

    monkeypatch.setattr("autotrader.config._sources.os.replace", failing_replace)
    with pytest.raises(ConfigError, match="cannot save"):
        store.save_file("connection.json", {"connection": {"port": 4001}})
    assert staged == [{"connection": {"port": 4001}}]
    assert (config_dir / "connection.json").read_bytes() == before
    assert [p.name for p in config_dir.iterdir()] == ["connection.json"]
    assert store.get().connection.port == 4002


def test_db_setting_is_validated_written_and_reloaded_by_others(make_store, tmp_path, clock):
    db = tmp_path / "app.db"
    writer = make_store(db_path=db)
    reader = make_store(db_path=db)
    with pytest.raises(ConfigError, match=r"app\.db \(settings table\): sizing\.per_trade_risk"):
        writer.set_db_setting("sizing", "per_trade_risk_pct", 3)
    writer.set_db_setting("sizing", "per_trade_risk_pct", 0.02)
    assert writer.get().sizing.per_trade_risk_pct == 0.02
    clock.advance(60.0)
    assert reader.get().sizing.per_trade_risk_pct == 0.02
    conn = appdb.connect(db)
    rows = conn.execute("SELECT section, key, value_json FROM settings").fetchall()
    conn.close()
    assert rows == [("sizing", "per_trade_risk_pct", "0.02")]


def test_db_layer_rejects_live_arming(make_store, tmp_path):
    store = make_store(db_path=tmp_path / "app.db")
    with pytest.raises(ConfigError, match="only be set at runtime"):
        store.set_db_setting("trading", "live_armed", True)


def test_initial_load_logs_once_and_quiet_checks_log_nothing(make_store, config_dir, clock,
                                                              caplog):
    write_json(config_dir / "config.json", {"orders": {"daily_order_limit": 30}})
    with caplog.at_level(logging.DEBUG, logger="autotrader.config"):
        store = make_store()
        for _ in range(5):
            clock.advance(60.0)
            store.get()
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith("config loaded from")


def test_store_doctest_style_usage_with_real_clock(tmp_path):
    store = ConfigStore(tmp_path, interval_s=0.0)
    write_json(tmp_path / "config.json", {"signals": {"acceptance_threshold": 0.9}})
    assert store.get().signals.acceptance_threshold == 0.9


def test_deleting_a_file_falls_back_to_the_layers_below(make_store, config_dir, clock):
    write_json(config_dir / "risk_config.json", {"orders": {"daily_order_limit": 30}})
    write_json(config_dir / "config.json", {"orders": {"daily_order_limit": 40}})
    store = make_store()
    assert store.get().orders.daily_order_limit == 40
    (config_dir / "config.json").unlink()
    clock.advance(60.0)
    assert store.get().orders.daily_order_limit == 30


def test_persisting_stat_failure_is_logged_once(make_store, config_dir, clock, monkeypatch,
                                                 caplog):
    store = make_store()
    real_stat = os.stat

    def broken_stat(path, *args, **kwargs):
        # only the config files fail: os.stat is the process-wide function (pytest uses it too)
        if Path(path).parent == config_dir:
            raise PermissionError("permission denied")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr("autotrader.config._sources.os.stat", broken_stat)
    with caplog.at_level(logging.ERROR, logger="autotrader.config.store"):
        for _ in range(3):
            clock.advance(60.0)
            assert store.get() == Settings()
    assert store.stats.rejected == 3
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert "cannot stat" in store.last_error
