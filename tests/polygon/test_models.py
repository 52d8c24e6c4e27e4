"""Typed records: wire keys -> names, epoch ms -> NYSE session date, bad shapes rejected."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from polygon.errors import BadResponseError
from polygon.models import DailyBar, TickerDetails, results_list, session_date


@pytest.mark.parametrize(
    ("epoch_ms", "expected"),
    [
        (1112331600000, dt.date(2005, 4, 1)),  # 05:00 UTC, EST (the docs/data.md example)
        (1112587200000, dt.date(2005, 4, 4)),  # 04:00 UTC, EDT after the DST switch
        (1735621200000, dt.date(2024, 12, 31)),
        (1719547200000, dt.date(2024, 6, 28)),
    ],
)
def test_session_date_is_the_new_york_calendar_date(epoch_ms: int, expected: dt.date) -> None:
    assert session_date(epoch_ms) == expected


def test_daily_bar_maps_terse_keys_of_the_recorded_aggregates(recorded_dir: Path) -> None:
    path = recorded_dir / "v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04.json"
    body = json.loads(path.read_text())
    bars = [DailyBar.from_json(item, ticker="aapl") for item in results_list(body)]
    assert [b.session for b in bars] == [dt.date(2005, 4, 1), dt.date(2005, 4, 4)]
    first = bars[0]
    assert (first.ticker, first.open, first.high, first.low, first.close) == (
        "AAPL", 1.5032, 1.5064, 1.4489, 1.4604)
    assert (first.volume, first.vwap, first.transactions) == (642646396.0, 1.469, 82132)


def test_grouped_bar_takes_its_ticker_from_the_T_key(recorded_dir: Path) -> None:
    path = recorded_dir / "v2/aggs/grouped/locale/us/market/stocks/2005-04-04&adjusted=true.json"
    (bar,) = [DailyBar.from_json(i) for i in results_list(json.loads(path.read_text()))]
    assert bar.ticker == "GIK" and bar.session == dt.date(2020, 10, 14)


@pytest.mark.parametrize(
    "item",
    [
        {"o": 1, "h": 1, "l": 1, "c": 1, "v": 1},  # no t
        {"o": "x", "h": 1, "l": 1, "c": 1, "v": 1, "t": 0},
        {"o": 1, "h": 1, "l": 1, "c": None, "v": 1, "t": 0},
        [1, 2, 3],
    ],
)
def test_malformed_bar_raises_bad_response(item: object) -> None:
    with pytest.raises(BadResponseError):
        DailyBar.from_json(item, ticker="X")


def test_missing_vwap_becomes_nan_not_an_error() -> None:
    bar = DailyBar.from_json({"o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10, "t": 1112331600000},
                             ticker="X")
    assert bar.vwap != bar.vwap and bar.transactions is None


def test_ticker_details_from_recorded_response(recorded_dir: Path) -> None:
    body = json.loads((recorded_dir / "v3/reference/tickers/AAPL&date=2020-10-01.json").read_text())
    details = TickerDetails.from_json(body)
    assert details.ticker == "AAPL" and details.sic_code == "3571"
    assert details.market_cap == 1916103105630.0
    assert details.shares_outstanding == 16319440000.0
    assert details.primary_exchange == "XNAS" and details.active is True


def test_shares_outstanding_falls_back_to_weighted() -> None:
    body = {"results": {"ticker": "X", "weighted_shares_outstanding": 5}}
    assert TickerDetails.from_json(body).shares_outstanding == 5.0


@pytest.mark.parametrize(
    "body",
    [{"status": "OK"}, {"results": []}, {"results": {"name": "no ticker"}}, []],
)
def test_ticker_details_of_unexpected_shape_raise_bad_response(body: object) -> None:
    with pytest.raises(BadResponseError):
        TickerDetails.from_json(body)


def test_results_list_accepts_absent_results_and_rejects_other_shapes() -> None:
    assert results_list({"status": "OK", "resultsCount": 0}) == []
    with pytest.raises(BadResponseError):
        results_list({"status": "OK", "results": {"o": 1}})
    with pytest.raises(BadResponseError):
        results_list({"status": "ERROR", "results": []})
