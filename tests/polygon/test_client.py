"""Endpoints against recorded responses and synthetic bars; next_url pagination completeness."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from polygon import DailyBar


def test_daily_bars_from_the_recorded_aggregates(server, make_client) -> None:
    bars = make_client().get_daily_bars("AAPL", "2005-04-01", "2005-04-04")
    assert [b.session for b in bars] == [dt.date(2005, 4, 1), dt.date(2005, 4, 4)]
    assert bars[1].close == 1.4675
    (request,) = server.requests
    assert request.params == {"adjusted": "true", "sort": "asc", "limit": "50000"}


def test_grouped_daily_from_the_recorded_response(make_client) -> None:
    (bar,) = make_client().get_grouped_daily("2005-04-04")
    assert isinstance(bar, DailyBar) and bar.ticker == "GIK" and bar.close == 10.02


def test_ticker_details_from_the_recorded_response(server, make_client) -> None:
    details = make_client().get_ticker_details("aapl", date=dt.date(2020, 10, 1))
    assert details.ticker == "AAPL" and details.sic_code == "3571"
    assert server.requests[0].params == {"date": "2020-10-01"}


def test_previous_close_from_the_recorded_response(make_client) -> None:
    bar = make_client().get_previous_close("AAPL")
    assert bar is not None and bar.session == dt.date(2022, 4, 26) and bar.close == 156.8


def test_grouped_daily_on_a_holiday_is_empty(make_client) -> None:
    assert make_client().get_grouped_daily("2024-06-19") == []


def test_pagination_follows_next_url_to_a_complete_gapless_result(server, make_client) -> None:
    server.page_limit = 25
    bars = make_client().get_daily_bars("SYNB", "2023-01-01", "2023-12-31")
    expected = server.expected_bars("SYNB", "2023-01-01", "2023-12-31")
    assert len(bars) == len(expected) == 250
    assert [pd.Timestamp(b.session) for b in bars] == list(expected["date"])
    assert [b.close for b in bars] == list(expected["close"])
    assert len(server.requests) == 10  # ceil(250 / 25) pages, each with the auth header
    assert all(r.status == 200 for r in server.requests)
    assert all("cursor" in r.params for r in server.requests[1:])


def test_pagination_survives_faults_on_cursor_pages(server, make_client, fake_time) -> None:
    server.page_limit = 100
    server.script.add(r"/range/1/day/\d{13}/", "429", times=1, retry_after="2")
    server.script.add(r"/range/1/day/\d{13}/", "503", times=1)
    bars = make_client().get_daily_bars("SYNC", "2023-01-01", "2024-06-28")
    assert len(bars) == len(server.expected_bars("SYNC", "2023-01-01", "2024-06-28"))
    assert len({b.session for b in bars}) == len(bars)
    assert len(fake_time.sleeps) == 2


def test_list_daily_bars_is_lazy(server, make_client) -> None:
    server.page_limit = 10
    pages = make_client().list_daily_bars("SYND", "2024-01-01", "2024-06-28")
    first = next(pages)
    assert first.session == dt.date(2024, 1, 2) and len(server.requests) == 1
