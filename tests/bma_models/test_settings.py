"""bma_models.settings: research defaults, ranges and leak-guarding cross-field rules."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from bma_models.errors import SettingsError
from bma_models.settings import DEFAULT_ENABLED, MODEL_NAMES, ResearchSettings


def test_defaults_match_the_documented_values():
    s = ResearchSettings()
    assert (s.data.demo_tickers, s.data.demo_sessions, s.data.demo_seed) == (500, 1260, 42)
    assert (s.cv.n_splits, s.cv.gap, s.cv.embargo) == (5, 5, 3)
    assert (s.stacking.meta_gap, s.stacking.meta_embargo) == (10, 5)
    assert s.models.enabled == DEFAULT_ENABLED
    assert set(DEFAULT_ENABLED) < set(MODEL_NAMES)
    assert (s.seed, s.jobs, s.joblib_backend) == (42, 2, "loky")
    assert s.report.csv_predictions is False  # the Parquet file only, unless asked


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        ({"labels": {"horizon": 10}}, "research.cv.gap, research.labels.horizon"),
        ({"stacking": {"meta_gap": 5}}, "research.stacking.meta_gap, research.cv.gap"),
        ({"stacking": {"meta_embargo": 2}}, "research.stacking.meta_embargo, research.cv.embargo"),
        ({"data": {"start_date": "2024-02-01", "end_date": "2024-01-01"}},
         "research.data.start_date, research.data.end_date"),
        ({"data": {"source": "csv"}}, "research.data.source, research.data.csv_path"),
        ({"models": {"enabled": []}}, "research.models.enabled"),
        ({"models": {"enabled": ["ridge", "ridge"]}}, "research.models.enabled"),
        ({"models": {"params": {"svm": {"C": 1}}}}, "research.models.params.svm"),
    ],
)
def test_cross_field_rules_raise_settings_error_naming_keys(data, keys):
    with pytest.raises(SettingsError) as info:
        ResearchSettings.from_mapping(data, source="research.yaml", prefix="research")
    assert str(info.value).startswith(f"research.yaml: {keys}")


def test_consistent_longer_horizon_is_accepted():
    s = ResearchSettings.from_mapping({
        "labels": {"horizon": 10}, "cv": {"gap": 10, "embargo": 5},
        "stacking": {"meta_gap": 15, "meta_embargo": 5},
        "data": {"start_date": dt.date(2020, 1, 2)},
        "models": {"enabled": ["ridge", "lightgbm"], "params": {"lightgbm": {"num_leaves": 15}}},
    })
    assert s.cv.gap == 10 and s.data.start_date == dt.date(2020, 1, 2)
    assert dict(s.models.params["lightgbm"]) == {"num_leaves": 15}
    assert ResearchSettings.from_mapping(s.to_dict()) == s


def test_bma_models_settings_does_not_import_autotrader():
    code = ("import sys, bma_models.settings; "
            "print(any(m.split('.')[0] in ('autotrader', 'polygon') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_close_label_needs_lagged_features_and_next_open_allows_lag_zero():
    with pytest.raises(SettingsError) as info:
        ResearchSettings.from_mapping({"labels": {"entry": "close"},
                                       "features": {"base_lag": 0, "safety_gap": 0}})
    assert set(info.value.keys) == {"labels.entry", "features.base_lag", "features.safety_gap"}
    fresh = ResearchSettings.from_mapping({"labels": {"entry": "next_open"},
                                           "features": {"base_lag": 0, "safety_gap": 0}})
    assert fresh.labels.entry == "next_open"
    with pytest.raises(SettingsError):
        ResearchSettings.from_mapping({"labels": {"entry": "vwap"}})
