"""NYSE calendar helpers: sessions, last completed session, market hours (early closes)."""

import datetime as dt

import pandas as pd

from bma_models.data.calendar import (
    is_open,
    last_completed_session,
    sessions,
    sessions_completed_after,
)

UTC = dt.timezone.utc


def test_sessions_skip_weekends_and_holidays():
    days = sessions("2025-12-22", "2026-01-05")
    assert pd.Timestamp("2025-12-25") not in days  # Christmas
    assert pd.Timestamp("2026-01-01") not in days  # New Year
    assert pd.Timestamp("2025-12-27") not in days  # Saturday
    assert days.dtype == "datetime64[ns]" and days.tz is None
    assert len(days) == 9


def test_last_completed_session_waits_for_the_close():
    assert last_completed_session(dt.datetime(2026, 11, 23, 20, 59, tzinfo=UTC)) == pd.Timestamp(
        "2026-11-20")
    assert last_completed_session(dt.datetime(2026, 11, 23, 21, 0, tzinfo=UTC)) == pd.Timestamp(
        "2026-11-23")
    # Thanksgiving: the last completed session is the Wednesday before
    assert last_completed_session(dt.datetime(2026, 11, 26, 22, 0, tzinfo=UTC)) == pd.Timestamp(
        "2026-11-25")


def test_market_hours_fail_closed_outside_sessions_and_honour_early_closes():
    assert is_open(dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC))  # 09:30 New York
    assert not is_open(dt.datetime(2026, 11, 23, 14, 29, tzinfo=UTC))
    assert not is_open(dt.datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # Thanksgiving
    assert is_open(dt.datetime(2026, 11, 27, 17, 59, tzinfo=UTC))  # early close 13:00 ET
    assert not is_open(dt.datetime(2026, 11, 27, 18, 0, tzinfo=UTC))


def test_sessions_completed_after_counts_closes_not_days():
    thanksgiving_friday_10am = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.timezone.utc)
    # Tuesday's bars: Wednesday closed since, Thursday was a holiday, Friday is still open
    assert sessions_completed_after("2026-11-24", thanksgiving_friday_10am) == 1
    after_close = dt.datetime(2026, 11, 27, 18, 30, tzinfo=dt.timezone.utc)  # early close 13:00
    assert sessions_completed_after("2026-11-24", after_close) == 2
    assert sessions_completed_after("2026-12-31", after_close) == 0  # data after the clock
