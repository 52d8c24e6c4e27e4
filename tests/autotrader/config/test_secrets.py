"""Secrets come from the environment only and never reach a file, log line or error."""

from __future__ import annotations

import logging

import pytest

from autotrader.config import ConfigError, ConfigStore
from autotrader.config import secrets as config_secrets
from bma_models.log import configure_logging

KEY = "pk_TEST_9f8e7d6c5b4a39281706"


def test_polygon_key_prefers_polygon_name_then_massive():
    assert config_secrets.polygon_api_key({"POLYGON_API_KEY": "a" * 12,
                                           "MASSIVE_API_KEY": "b" * 12}) == "a" * 12
    assert config_secrets.polygon_api_key({"MASSIVE_API_KEY": "b" * 12}) == "b" * 12
    assert config_secrets.polygon_api_key({"POLYGON_KEY": "c" * 12}) is None  # no other aliases
    assert config_secrets.polygon_api_key({"POLYGON_API_KEY": "  "}) is None


def _remove_installed_handlers(root: logging.Logger, level: int) -> None:
    for handler in list(root.handlers):
        if getattr(handler, "_bma_installed", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_registered_secret_is_redacted_from_logging_handlers(tmp_path):
    root = logging.getLogger()
    level = root.level
    configure_logging(level=logging.INFO, log_dir=tmp_path)
    try:
        config_secrets.polygon_api_key({"POLYGON_API_KEY": KEY})
        logging.getLogger("polygon.client").info("GET /v2/aggs?key=%s failed", KEY)
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = (tmp_path / "workstation.log").read_text()
    finally:
        _remove_installed_handlers(root, level)
    assert KEY not in text
    assert "GET /v2/aggs?key=*** failed" in text


def test_install_redaction_tracks_secrets_registered_later():
    handler = logging.NullHandler()
    log_filter = config_secrets.install_redaction(handler)
    other = "zz_LATER_SECRET_0123456789"
    config_secrets.register_secret(other)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (other,), None)
    log_filter.filter(record)
    assert record.getMessage() == "token ***"


@pytest.mark.parametrize(
    "attempt",
    [
        lambda s: s.save_file("config.json", {"polygon": {"api_key": KEY}}),
        lambda s: s.save_file("config.json", {"polygon": {"base_url": f"https://x/?k={KEY}"}}),
        lambda s: s.save_file("connection.json", {"connection": {"account_id": KEY}}),
        lambda s: s.set_db_setting("connection", "account_id", KEY),
        lambda s: s.set_override("connection.account_id", KEY),
    ],
)
def test_secret_never_lands_in_a_file_log_or_error(tmp_path, monkeypatch, caplog, attempt):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    config_dir = tmp_path / "config"
    store = ConfigStore(config_dir, db_path=tmp_path / "app.db")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ConfigError) as info:
            attempt(store)
    assert KEY not in str(info.value)
    assert "environment" in str(info.value)
    assert all(KEY not in r.getMessage() for r in caplog.records)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert store.get().connection.account_id == ""


def test_secret_in_a_hand_edited_file_is_redacted_from_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    config_secrets.polygon_api_key()
    (tmp_path / "config.json").write_text(f'{{"connection": {{"port": "{KEY}"}}}}')
    with pytest.raises(ConfigError) as info:
        ConfigStore(tmp_path)
    assert KEY not in str(info.value)
    assert "connection.port = '***' is not an integer" in str(info.value)
