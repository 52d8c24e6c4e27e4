"""The installed package runs from any directory: packaged defaults, optional config dir."""

from __future__ import annotations

import pytest

from autotrader.config import ConfigError, ConfigStore, Settings, resolve_config_dir
from autotrader.config._sources import packaged_defaults_path
from autotrader.research.cli import build_parser
from bma_models import __version__
from bma_models.factors import load_alphas_config


def test_without_a_config_dir_the_packaged_defaults_apply(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_dir(None) is None
    store = ConfigStore(None)
    assert store.get() == Settings()
    with pytest.raises(ConfigError, match="no config directory"):
        store.save_file("connection.json", {"connection": {"port": 4002}})


def test_a_config_dir_here_layers_on_top(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yaml").write_text("orders:\n  daily_order_limit: 70\n")
    config_dir = resolve_config_dir(None)
    assert config_dir is not None and config_dir.name == "config"
    assert ConfigStore(config_dir).get().orders.daily_order_limit == 70


def test_a_missing_config_dir_given_explicitly_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        resolve_config_dir(tmp_path / "absent")


def test_the_packaged_files_are_inside_the_packages():
    path = packaged_defaults_path()
    assert path.is_file() and path.parent.name == "config" and path.parent.parent.name == \
        "autotrader"
    from importlib.resources import files

    alphas = files("bma_models.factors").joinpath("alphas_config.yaml")
    assert load_alphas_config(str(alphas))


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"bma {__version__}"
