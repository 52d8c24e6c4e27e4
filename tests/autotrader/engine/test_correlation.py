"""The max_correlation pre-trade check, its return history and the run's returns_recent.csv."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from autotrader.domain import OrderIntent, Side
from autotrader.domain.errors import RecommendationsError
from autotrader.engine import PortfolioSnapshot, ReturnHistory, RiskContext, RiskLimits, risk
from autotrader.engine.correlation import MIN_OVERLAP
from autotrader.services.recommendations import (
    RecommendationSet,
    ReturnsForCycles,
    load_recent_returns,
)
from bma_models.report.run import recent_returns

NOON_NY = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.timezone.utc)


def _history(n: int = 60, seed: int = 3) -> ReturnHistory:
    # TWIN follows HELD closely (corr ~0.98), LOOSE is independent, MIRROR is -HELD
    rng = np.random.default_rng(seed)
    held = rng.normal(0, 0.01, n)
    columns = {"HELD": held, "TWIN": held + rng.normal(0, 0.002, n),
               "LOOSE": rng.normal(0, 0.01, n), "MIRROR": -held}
    dates = tuple(str(d.date()) for d in pd.bdate_range("2026-01-01", periods=n))
    return ReturnHistory(dates, tuple(columns), np.column_stack(list(columns.values())))


def _ctx(history: ReturnHistory | None, held: dict[str, float]) -> RiskContext:
    portfolio = PortfolioSnapshot(equity=100_000.0, cash=50_000.0, position_values=held)
    return RiskContext(NOON_NY, RiskLimits(max_correlation=0.7), portfolio, market_open=True,
                       returns=history)


def _buy(symbol: str) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, 10, 50.0, sector="Tech", confidence=0.9)


def test_correlation_equals_numpy_on_the_common_dates():
    history = _history()
    expected = np.corrcoef(history.returns[:, 0], history.returns[:, 1])[0, 1]
    assert history.correlation("HELD", "TWIN") == pytest.approx(expected, abs=1e-12)
    assert history.correlation("HELD", "MIRROR") == pytest.approx(-1.0)
    # the window keeps the last rows only
    last = replace(history, window=30)
    expected_last = np.corrcoef(history.returns[-30:, 0], history.returns[-30:, 2])[0, 1]
    assert last.correlation("HELD", "LOOSE") == pytest.approx(expected_last, abs=1e-12)


def test_too_few_common_dates_or_an_unknown_name_give_no_correlation():
    history = _history()
    sparse = history.returns.copy()
    sparse[: len(sparse) - MIN_OVERLAP + 1, 1] = np.nan  # TWIN has MIN_OVERLAP - 1 returns
    short = replace(history, returns=sparse)
    assert short.correlation("HELD", "TWIN") is None
    assert history.correlation("HELD", "NOPE") is None
    assert history.most_correlated("TWIN", ["HELD", "LOOSE", "NOPE"])[0] == "HELD"


def test_a_new_name_correlated_with_a_held_one_is_denied():
    denial = risk.check_max_correlation(_buy("TWIN"), _ctx(_history(), {"HELD": 10_000.0}))
    assert denial.check == "max_correlation"
    assert "TWIN" in denial.reason and "HELD" in denial.reason


@pytest.mark.parametrize("symbol", ["LOOSE", "MIRROR", "NEW"])
def test_uncorrelated_anticorrelated_or_unknown_names_pass(symbol):
    assert risk.check_max_correlation(_buy(symbol), _ctx(_history(), {"HELD": 10_000.0})) is None


def test_adding_to_a_holding_exits_and_a_missing_history_are_not_checked():
    history = _history()
    assert risk.check_max_correlation(
        _buy("TWIN"), _ctx(history, {"HELD": 10_000.0, "TWIN": 5_000.0})) is None
    sell = OrderIntent("TWIN", Side.SELL, 10, 50.0, sector="Tech", reduces_position=True)
    assert risk.check_max_correlation(sell, _ctx(history, {"HELD": 10_000.0})) is None
    assert risk.check_max_correlation(_buy("TWIN"), _ctx(None, {"HELD": 10_000.0})) is None
    # a position sold out (value 0) no longer counts as held
    assert risk.check_max_correlation(_buy("TWIN"), _ctx(history, {"HELD": 0.0})) is None


def test_the_check_is_in_the_chain():
    assert risk.check_max_correlation in risk.RISK_CHECKS
    denial = risk.check_order(_buy("TWIN"), _ctx(_history(), {"HELD": 10_000.0}))
    assert denial is not None and denial.check == "max_correlation"


def _write_returns(run_dir, text: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "returns_recent.csv").write_text(text, encoding="utf-8")


def test_the_returns_file_is_read_with_gaps_and_a_bad_line_is_named(tmp_path):
    run = tmp_path / "run"
    _write_returns(run, "date,aaa,BBB\n2026-01-02,0.01,\n2026-01-05,-0.02,0.03\n")
    history = load_recent_returns(run, window=60)
    assert history.symbols == ("AAA", "BBB") and history.dates == ("2026-01-02", "2026-01-05")
    assert np.isnan(history.returns[0, 1]) and history.returns[1, 1] == 0.03
    assert load_recent_returns(tmp_path / "none") is None
    _write_returns(run, "date,AAA\n2026-01-02,0.01\n2026-01-05,abc\n")
    with pytest.raises(RecommendationsError, match=r"returns_recent.csv line 3: bad value"):
        load_recent_returns(run)
    _write_returns(run, "date,AAA\n2026-01-02,0.01,0.2\n")
    with pytest.raises(RecommendationsError, match=r"line 2: 3 fields, expected 2"):
        load_recent_returns(run)


def test_the_runner_source_records_why_the_check_could_not_run(tmp_path):
    source, fallbacks, failures = ReturnsForCycles(), {}, []
    recs = RecommendationSet("r1", tmp_path / "r1", "demo", ())
    assert source.for_cycle(recs, 60, ["AAA"], fallbacks, failures) is None
    assert fallbacks == {"correlation_check_skipped": 1} and failures == []
    _write_returns(tmp_path / "r2", "date,AAA\n2026-01-02,x\n")
    bad = RecommendationSet("r2", tmp_path / "r2", "demo", ())
    assert source.for_cycle(bad, 60, ["AAA"], fallbacks, failures) is None
    assert fallbacks["correlation_check_skipped"] == 2 and "line 2" in failures[0]
    _write_returns(tmp_path / "r3", "date,AAA\n2026-01-02,0.01\n")
    good = RecommendationSet("r3", tmp_path / "r3", "demo", ())
    history = source.for_cycle(good, 60, ["AAA", "ZZZ"], fallbacks, failures)
    assert history.symbols == ("AAA",) and fallbacks["correlation_no_history"] == 1


def test_recent_returns_are_close_to_close_without_filling_gaps_and_ignore_nothing_later():
    dates = pd.bdate_range("2026-01-01", periods=6)
    bars = pd.DataFrame({"date": np.repeat(dates, 2), "ticker": ["B", "A"] * 6,
                         "close": np.arange(1.0, 13.0)})
    bars = bars.drop(index=[4])  # B has no bar on the third session
    table = recent_returns(bars, sessions=3)
    assert list(table.columns) == ["A", "B"] and list(table.index) == list(dates[-3:])
    a = bars[bars.ticker == "A"].set_index("date")["close"]
    assert table["A"].tolist() == pytest.approx((a / a.shift(1) - 1).iloc[-3:].tolist())
    b = bars[bars.ticker == "B"].set_index("date")["close"].reindex(dates)
    assert np.isnan(table.loc[dates[3], "B"])  # its previous session has no close
    assert table.loc[dates[4], "B"] == pytest.approx(b[dates[4]] / b[dates[3]] - 1)
    # perturbing a later bar never changes an earlier return
    later = bars.copy()
    later.loc[later.date == dates[-1], "close"] *= 3.0
    assert recent_returns(later, sessions=3).iloc[:-1].equals(table.iloc[:-1])


def _returns_csv(n: int = 60, seed: int = 5) -> str:
    # BBB follows AAA (corr ~0.98); CCC and DDD are independent of both
    rng = np.random.default_rng(seed)
    aaa = rng.normal(0, 0.01, n)
    table = pd.DataFrame({"AAA": aaa, "BBB": aaa + rng.normal(0, 0.002, n),
                          "CCC": rng.normal(0, 0.01, n), "DDD": rng.normal(0, 0.01, n)},
                         index=[str(d.date()) for d in pd.bdate_range("2025-12-01", periods=n)])
    return table.to_csv(index_label="date")


def test_a_cycle_buys_the_first_of_two_correlated_names_and_denies_the_second(
        broker, journal, clock, tmp_path):
    from autotrader.domain.records import OrderType
    from tests.autotrader.conftest import write_run
    from tests.autotrader.services.test_preview import _runner

    run = write_run(tmp_path / "result", "20260301-run")
    (run / "returns_recent.csv").write_text(_returns_csv(), encoding="utf-8")
    runner = _runner(broker, journal, run, clock)
    preview = runner.preview()
    outcomes = {line.symbol: line.outcome for line in preview.lines}
    assert outcomes["AAA"] == outcomes["CCC"] == outcomes["DDD"] == "SEND"
    assert outcomes["BBB"].startswith("DENY max_correlation: BBB return correlation 0.9")
    assert "with held AAA > 0.7" in outcomes["BBB"]
    report = runner.run_cycle()
    assert report.denials["max_correlation"] == 1 and "correlation_check_skipped" not in \
        report.fallbacks
    sent = {o.symbol for o in journal.orders() if o.order_type is not OrderType.STOP}
    assert sent == {"AAA", "CCC", "DDD"}


def test_a_run_without_the_returns_file_trades_and_says_the_check_was_skipped(
        broker, journal, run_dir, clock):
    from tests.autotrader.services.test_preview import _runner

    report = _runner(broker, journal, run_dir, clock).run_cycle()
    assert report.fallbacks["correlation_check_skipped"] == 1
    assert "max_correlation" not in report.denials and len(report.submitted) > 0
