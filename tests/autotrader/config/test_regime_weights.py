"""``research.regime.weights``: validated keys, no weight on a category without factors."""

from __future__ import annotations

import pytest

from autotrader.config import ConfigError, ConfigStore
from bma_models.errors import SettingsError
from bma_models.factors import FACTORS, factor_specs_from_config
from bma_models.pipeline import check_regime_weights
from bma_models.settings import DEFAULT_REGIME_WEIGHTS


@pytest.mark.parametrize(("key", "value", "message"), [
    ("research.regime.weights.Bull.quality", 0.1,
     r"research\.regime\.weights\.Bull\.quality is not a factor category"),
    ("research.regime.weights.Bullish.momentum", 1.0,
     r"research\.regime\.weights\.Bullish is not a regime"),
    ("research.regime.weights.Bear.momentum", -1.0,
     r"research\.regime\.weights\.Bear\.momentum = -1\.0 must be >= 0"),
])
def test_a_bad_weight_is_an_error_naming_its_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        ConfigStore(None, overrides={key: value}).get()


def test_one_weight_can_be_changed_and_the_others_keep_their_defaults():
    weights = ConfigStore(None, overrides={"research.regime.weights.Bull.momentum": 0.9}
                          ).get().research.regime.weights
    assert dict(weights["Bull"]) == {**DEFAULT_REGIME_WEIGHTS["Bull"], "momentum": 0.9}
    assert weights["Bear"] == DEFAULT_REGIME_WEIGHTS["Bear"]


def test_no_default_weight_points_at_a_category_without_factors():
    check_regime_weights(DEFAULT_REGIME_WEIGHTS, FACTORS)  # every category has factors
    assert {c for row in DEFAULT_REGIME_WEIGHTS.values() for c in row} == \
        {spec.category for spec in FACTORS.values()}


def test_a_positive_weight_on_a_category_the_factor_set_lacks_is_refused():
    momentum_only = factor_specs_from_config({"factors": {"momentum": {"windows": [5]}}})
    with pytest.raises(SettingsError, match=r"research\.regime\.weights\.Bull\.reversion"):
        check_regime_weights(DEFAULT_REGIME_WEIGHTS, momentum_only)
    zeroed = {regime: {c: (w if c == "momentum" else 0.0) for c, w in row.items()}
              for regime, row in DEFAULT_REGIME_WEIGHTS.items()}
    check_regime_weights(zeroed, momentum_only)  # a zero weight on it is fine
