"""Registry and alphas_config: the packaged file is the one default list, strict validation."""

from __future__ import annotations

import pytest

from bma_models.errors import SettingsError
from bma_models.factors import (
    CATEGORIES,
    DEFAULT_FACTOR_SET,
    FACTORS,
    FAMILIES,
    PACKAGED_ALPHAS_CONFIG,
    factor_specs_from_config,
    load_alphas_config,
    load_factor_set,
)

REQUIRED = {
    "ma_ratio_5", "ma_ratio_10", "ma_ratio_20", "ma_ratio_60", "vol_5", "vol_20", "vol_60",
    "rsi_14", "hl_pos_20", "hl_pos_60", "mom_5", "mom_10", "mom_20", "mom_60",
    "mom_20_skip5", "mom_60_skip5", "reversal_1", "volume_trend_20", "adv_20", "adv_60",
    "amihud_20", "atr_ratio_14", "overnight_gap", "intraday_range", "clv", "vwap_distance",
    "turnover_20",
}


def test_registry_lists_every_specified_factor_with_a_category():
    assert set(FACTORS) == REQUIRED
    for spec in FACTORS.values():
        assert spec.category in CATEGORIES
        assert spec.description
        assert spec.family in FAMILIES


def test_the_default_factors_are_the_packaged_file(repo_root, tmp_path):
    path = repo_root / "bma_models" / "factors" / "alphas_config.yaml"
    assert PACKAGED_ALPHAS_CONFIG == path
    specs = load_alphas_config(path)
    assert list(specs) == list(FACTORS)
    assert all(specs[n].params == FACTORS[n].params for n in specs)
    # the registry holds no second list: without the file a family has no windows
    assert not any(hasattr(family, "windows") for family in FAMILIES.values())
    with pytest.raises(SettingsError, match=r"factors\.momentum\.windows"):
        FAMILIES["momentum"].specs()


def test_a_factor_set_round_trips_through_its_recorded_config(tmp_path):
    import yaml

    config = DEFAULT_FACTOR_SET.to_config()
    path = tmp_path / "alphas_config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    again = load_factor_set(path)
    assert list(again.specs) == list(FACTORS)
    assert again.source == str(path)
    assert all(again.specs[n].params == FACTORS[n].params for n in FACTORS)


def test_config_lists_the_families_their_windows_and_fixed_params():
    specs = factor_specs_from_config({"factors": {
        "momentum": {"windows": [3, 120]},
        "momentum_skip": {"windows": [40], "skip": 10},
        "volatility": {"enabled": False, "windows": [5]},
    }})
    assert {"mom_3", "mom_120", "mom_40_skip10"} <= set(specs)
    assert not any(name.startswith(("vol_", "mom_5")) for name in specs)
    assert specs["mom_40_skip10"].params == {"window": 40, "skip": 10}
    assert specs["mom_120"].lookback == 121
    assert {spec.family for spec in specs.values()} == {"momentum", "momentum_skip"}


@pytest.mark.parametrize(("mapping", "message"), [
    ({"factors": {"alpha_magic": {}}}, r"unknown factor families \['factors.alpha_magic'\]"),
    ({"factors": {"momentum": {}}}, r"factors\.momentum\.windows"),
    ({"factors": {"momentum_skip": {"windows": [20]}}}, r"factors\.momentum_skip: missing.*skip"),
    ({"version": 2, "factors": {"rsi": {"windows": [3]}}}, "version must be 1"),
    ({"factors": {"momentum": {"window": [5]}}}, "unknown keys"),
    ({"factors": {"overnight_gap": {"windows": [5]}}}, "unknown keys"),
    ({"factors": {"momentum": {"windows": [0]}}}, "positive integer"),
    ({"factors": {"momentum": {"windows": []}}}, "positive integer"),
    ({"factors": {"momentum": {"enabled": "yes"}}}, "true or false"),
    ({"factors": {"momentum_skip": {"windows": [5], "skip": 5}}}, "smaller than"),
    ({"factors": {"volume_trend": {"windows": [20], "short": 30}}}, "smaller than"),
    ({"factorz": {}}, "unknown top-level"),
    ({"factors": {name: {"enabled": False} for name in FAMILIES}}, "selects no factor"),
    ({"factors": {}}, "selects no factor"),
    (["momentum"], "must be a mapping"),
])
def test_invalid_config_raises_settings_error_naming_the_problem(mapping, message):
    with pytest.raises(SettingsError, match=message):
        factor_specs_from_config(mapping)


def test_unreadable_yaml_raises_settings_error_with_the_path(tmp_path):
    path = tmp_path / "alphas.yaml"
    path.write_text("factors: [unclosed\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="alphas.yaml"):
        load_alphas_config(path)
    path.write_text("factors:\n  momentum: {windows: [5], windos: 3}\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"alphas.yaml: factors\.momentum: unknown keys"):
        load_alphas_config(path)
    with pytest.raises(SettingsError, match="cannot read"):
        load_alphas_config(tmp_path / "absent.yaml")


def test_labels_and_factors_import_in_either_order():
    import subprocess
    import sys

    for first, second in (("bma_models.labels", "bma_models.factors"),
                          ("bma_models.factors", "bma_models.labels")):
        code = f"import {first}, {second}; {second}.__name__"
        subprocess.run([sys.executable, "-c", code], check=True)
