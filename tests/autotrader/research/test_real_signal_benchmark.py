"""``benchmarks.real_signal``: skips without the data, and its figures match the run's files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import real_signal
from bma_models.data.demo import demo_market

SMALL = {"research": {"models": {"enabled": ["ridge", "lightgbm"]},
                      "portfolio": {"top_n": 60}},
         # an 80-name market: the rulebook lets every percentile and volatility bucket in
         "capital": {"max_single_position_pct": 0.05}, "signals": {"acceptance_threshold": 0.0},
         "execution": {"allowed_volatility_buckets": ["low", "medium", "high"]}}


def test_benchmark_skips_with_a_message_when_the_real_data_is_absent(tmp_path, capsys):
    assert real_signal.main(["--data-dir", str(tmp_path / "nowhere")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["name"] == "real_signal" and "not found" in line["skipped"]


@pytest.mark.slow
def test_benchmark_on_a_stand_in_folder_reports_every_row_and_recomputes_equal(
        tmp_path, capsys, repo_root):
    # a stand-in for the real folder, same file names and layout (Yahoo-style adj_close)
    market = demo_market(n_tickers=80, n_sessions=420, seed=5, end="2025-06-30")
    bars = market.bars.drop(columns="vwap").assign(adj_close=lambda b: b["close"] * 0.9)
    folder = tmp_path / "real"
    folder.mkdir()
    bars.to_csv(folder / real_signal.BARS_FILE, index=False)
    market.reference[["ticker", "sector"]].to_csv(folder / real_signal.SECTORS_FILE, index=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps(SMALL))
    code = real_signal.main(["--data-dir", str(folder), "--end-date", "2025-06-30",
                             "--config", str(config), "--jobs", "1"])
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["equal"] is True
    assert set(line["scores"]) == {"fused", "stack", "best_member", "reversal_5",
                                   "momentum_20", "low_vol_60", "lightgbm_plain"}
    for name, row in line["scores"].items():
        assert set(row) >= {"rank_ic", "icir", "nw_t", "long_short", "paired_t"}, name
        assert np.isfinite(row["rank_ic"]) and np.isfinite(row["nw_t"])
    assert line["fused_vs_plain_lightgbm_t"] == line["scores"]["lightgbm_plain"]["paired_t"]
    assert isinstance(line["fused_beats_all"], bool)
    assert line["canaries"]["shuffled_label"]["passed"]
    assert line["ours_s"] > 0 and line["peak_mb"] > 0
