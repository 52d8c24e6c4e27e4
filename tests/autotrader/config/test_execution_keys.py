"""The ``execution`` section and the stop-decay keys: validation, layering, engine mapping."""

from __future__ import annotations

import pytest

from autotrader.config import ConfigError
from autotrader.services.session import trader_settings
from tests.autotrader.config.conftest import write_json


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"execution": {"volatility_low_max": 0.05, "volatility_medium_max": 0.04}},
         r"execution\.volatility_low_max, execution\.volatility_medium_max: the low bucket"),
        ({"execution": {"allowed_volatility_buckets": ["low", "huge"]}},
         r"execution\.allowed_volatility_buckets\[1\] = 'huge' is not one of low\|medium"),
        ({"execution": {"allowed_volatility_buckets": []}}, "needs at least one bucket"),
        ({"execution": {"order_type": "stop"}}, r"execution\.order_type = 'stop' is not one of"),
        ({"execution": {"max_spread_bps": 0}},
         r"execution\.max_spread_bps = 0\.0 is out of range \(0, 10000\]"),
        ({"risk_controls": {"stops": {"min_atr_multiplier": 5.0}}},
         r"risk_controls\.stops\.min_atr_multiplier, risk_controls\.stops\.atr_multiplier"),
    ],
)
def test_a_bad_execution_value_names_the_file_and_key(make_store, config_dir, values, message):
    write_json(config_dir / "risk_config.json", values)
    with pytest.raises(ConfigError, match=message) as info:
        make_store()
    assert "risk_config.json" in str(info.value)


def test_execution_keys_from_the_gui_file_reach_the_planner_and_the_stops(make_store,
                                                                          config_dir):
    write_json(config_dir / "risk_config.json", {
        "execution": {"min_adv_usd": 5e6, "max_spread_bps": 25, "volatility_low_max": 0.01,
                      "volatility_medium_max": 0.03,
                      "allowed_volatility_buckets": ["low", "medium", "high"],
                      "order_type": "bracket", "take_profit_atr_multiple": 4.0,
                      "min_seconds_between_orders": 60},
        "risk_controls": {"stops": {"min_atr_multiplier": 1.0, "decay_per_day": 0.25}}})
    mapped = trader_settings(make_store().get())
    planner, stops = mapped.planner, mapped.stops
    assert (planner.min_adv_usd, planner.max_spread_bps) == (5e6, 25.0)
    assert planner.volatility_buckets == (0.01, 0.03)
    assert planner.allowed_volatility_buckets == ("low", "medium", "high")
    assert (planner.order_type, planner.take_profit_atr_multiple) == ("bracket", 4.0)
    assert planner.min_seconds_between_orders == 60.0
    assert planner.min_expected_alpha_bps == 10.0  # untouched keys keep their defaults
    assert (stops.min_atr_multiplier, stops.decay_per_day) == (1.0, 0.25)
