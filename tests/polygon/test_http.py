"""Transport behaviour against the fake server: retries, backoff timing, errors, redaction."""

from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Callable

import pytest

from polygon import PolygonClient
from polygon._http import RateLimiter, RetryPolicy, parse_retry_after, redact
from polygon.client import api_key_from_env
from polygon.errors import (
    AuthError,
    BadResponseError,
    NotFoundError,
    PolygonError,
    RateLimitedError,
    ServiceError,
)
from tests.fakes.polygon_server import FakePolygonServer
from tests.polygon.conftest import API_KEY, FakeTime

AGGS = "/v2/aggs/ticker/SYNA/range/1/day/2024-06-03/2024-06-28"  # 19 sessions (Juneteenth)


def _bars(client: PolygonClient) -> list:
    return client.get_daily_bars("SYNA", "2024-06-03", "2024-06-28")


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after(email.utils.formatdate(now + 42, usegmt=True), now) == 42.0
    assert parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None


def test_retry_policy_delay_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(max_retries=10, base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(0)
    for attempt, ceiling in enumerate([1, 2, 4, 8, 8, 8]):
        delay = policy.delay(attempt, None, rng)
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(0, 5.0, rng) == 5.0  # Retry-After wins over a shorter backoff


def test_rate_limiter_spaces_requests_to_the_configured_rate(fake_time: FakeTime) -> None:
    limiter = RateLimiter(5, burst=1, clock=fake_time.clock, sleep=fake_time.sleep)
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == [0.0, 12.0, 12.0, 12.0]
    fake_time.now += 100  # idle time refills the bucket, but only up to the burst
    assert [limiter.acquire(), limiter.acquire()] == [0.0, 12.0]


def test_rate_limiter_allows_a_burst_then_spaces() -> None:
    clock = FakeTime()
    limiter = RateLimiter(60, burst=3, clock=clock.clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_unlimited_rate_limiter_never_waits(fake_time: FakeTime) -> None:
    limiter = RateLimiter(None, clock=fake_time.clock, sleep=fake_time.sleep)
    assert sum(limiter.acquire() for _ in range(100)) == 0.0 and fake_time.sleeps == []


def test_client_rate_limit_applies_to_every_request(make_client, fake_time) -> None:
    client = make_client(rate_limit_per_min=5)
    for ticker in ("SYNA", "SYNB", "SYNC"):
        client.get_ticker_details(ticker)
    assert fake_time.sleeps == [12.0, 12.0]


def test_429_retry_after_seconds_is_honoured(server, make_client, fake_time) -> None:
    server.script.add(AGGS, "429", times=2, retry_after="3")
    bars = _bars(make_client())
    assert len(bars) == 19
    assert len(fake_time.sleeps) == 2 and all(3.0 <= s <= 3.0 + 1.0 for s in fake_time.sleeps)
    assert [r.fault for r in server.requests] == ["429", "429", None]


def test_429_retry_after_http_date_is_honoured(server, make_client, fake_time) -> None:
    wall = 1_700_000_000.0
    server.script.add(AGGS, "429", retry_after=email.utils.formatdate(wall + 20, usegmt=True))
    _bars(make_client(wall_clock=lambda: wall))
    assert fake_time.sleeps == [20.0]


def test_503_backoff_grows_exponentially_with_jitter(server, make_client, fake_time) -> None:
    server.script.add(AGGS, "503", times=4)
    assert len(_bars(make_client(backoff_base_s=1.0, backoff_max_s=60.0))) == 19
    for attempt, delay in enumerate(fake_time.sleeps):
        assert 2**attempt / 2 <= delay <= 2**attempt
    assert len(fake_time.sleeps) == 4


def test_persistent_503_gives_up_after_max_retries(server, make_client, fake_time, caplog) -> None:
    server.script.add(AGGS, "503", times=100)
    with caplog.at_level(logging.WARNING, logger="polygon"), pytest.raises(ServiceError) as info:
        _bars(make_client(max_retries=3))
    assert len(server.requests) == 4 and len(fake_time.sleeps) == 3
    assert info.value.status == 503 and info.value.request_id.startswith("fake")
    final = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(final) == 1
    assert "status=503" in final[0].getMessage() and "request_id=fake" in final[0].getMessage()
    assert "message=Service error" in final[0].getMessage()


def test_persistent_429_raises_rate_limited(server, make_client) -> None:
    server.script.add(AGGS, "429", times=100, retry_after="1")
    with pytest.raises(RateLimitedError) as info:
        _bars(make_client(max_retries=2))
    assert info.value.status == 429


def test_retry_after_beyond_the_cap_fails_at_once(server, make_client, fake_time) -> None:
    server.script.add(AGGS, "429", retry_after="3600")
    with pytest.raises(RateLimitedError):
        _bars(make_client(max_retry_after_s=60))
    assert fake_time.sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize("kind", ["timeout", "reset", "truncated", "500", "502"])
def test_transient_fault_is_retried_and_recovers(server, make_client, fake_time, kind) -> None:
    server.script.add(AGGS, kind, delay_s=1.0)
    bars = _bars(make_client(timeout_s=0.2))
    assert len(bars) == 19 and len(fake_time.sleeps) == 1


def test_persistent_truncated_json_raises_bad_response(server, make_client) -> None:
    server.script.add(AGGS, "truncated", times=100)
    with pytest.raises(BadResponseError, match="malformed JSON"):
        _bars(make_client(max_retries=1))


def test_persistent_timeout_raises_service_error(server, make_client) -> None:
    server.script.add(AGGS, "timeout", times=100, delay_s=0.5)
    with pytest.raises(ServiceError, match="ReadTimeout"):
        _bars(make_client(max_retries=1, timeout_s=0.1))


def test_unexpected_shape_is_a_bad_response_without_retry(tmp_path, fake_time) -> None:
    bad = tmp_path / "v2/aggs/ticker/ODD/range/1/day/2024-01-02/2024-01-03.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"status": "OK", "results": {"o": 1}, "request_id": "r-odd"}')
    with FakePolygonServer(api_key=API_KEY, recorded_dir=tmp_path) as fake:
        client = PolygonClient(base_url=fake.base_url, api_key=API_KEY, sleep=fake_time.sleep)
        with pytest.raises(BadResponseError) as info:
            client.get_daily_bars("ODD", "2024-01-02", "2024-01-03")
        assert info.value.request_id == "r-odd" and len(fake.requests) == 1


def test_401_raises_auth_error_with_a_hint_and_no_retry(server, make_client, fake_time) -> None:
    with pytest.raises(AuthError) as info:
        _bars(make_client(api_key="wrong-key"))
    assert info.value.status == 401 and "POLYGON_API_KEY" in str(info.value)
    assert len(server.requests) == 1 and fake_time.sleeps == []


def test_scripted_401_with_the_right_key_is_also_an_auth_error(server, make_client) -> None:
    server.script.add(AGGS, "401")
    with pytest.raises(AuthError):
        _bars(make_client())


def test_404_raises_not_found(server, make_client) -> None:
    server.unknown_tickers.add("NOPE")
    with pytest.raises(NotFoundError) as info:
        make_client().get_ticker_details("NOPE")
    assert info.value.status == 404 and "Data not found" in str(info.value)


def test_api_key_comes_from_polygon_then_massive_env_var() -> None:
    assert api_key_from_env({"POLYGON_API_KEY": "p", "MASSIVE_API_KEY": "m"}) == "p"
    assert api_key_from_env({"MASSIVE_API_KEY": "m"}) == "m"
    with pytest.raises(AuthError, match="POLYGON_API_KEY or MASSIVE_API_KEY"):
        api_key_from_env({})


def test_redact_removes_key_query_params_and_bearer_tokens() -> None:
    text = redact("GET /x?apiKey=abc123&y=1 Authorization: Bearer abc123 raw abc123", "abc123")
    assert "abc123" not in text and "apiKey=***" in text


def test_no_key_in_any_captured_log_or_exception(
    server, make_client: Callable[..., PolygonClient], caplog, tmp_path
) -> None:
    # a cursor that (wrongly) carries the key must neither leak it nor forward it
    page = tmp_path / "v3/reference/tickers.json"
    page.parent.mkdir(parents=True)
    page.write_text('{"status": "OK", "results": [], "request_id": "p1", "next_url": '
                    f'"{server.base_url}/v3/reference/tickers?cursor=abc&apiKey={API_KEY}"}}')
    (page.parent / "tickers&cursor=abc.json").write_text('{"status": "OK", "results": []}')
    server.script.add(AGGS, "429", retry_after="1")
    server.script.add(AGGS, "reset")
    server.script.add(AGGS, "timeout", delay_s=0.5)
    server.script.add(AGGS, "truncated")
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        client = make_client(timeout_s=0.1)
        _bars(client)
        for call in (lambda: make_client(api_key=API_KEY + "x").get_ticker_details("SYNA"),
                     lambda: _bars(make_client(max_retries=0, base_url="http://127.0.0.1:9"))):
            with pytest.raises(Exception) as info:
                call()
            errors.append(repr(info.value) + str(info.value))
        with FakePolygonServer(api_key=API_KEY, recorded_dir=tmp_path) as fake:
            pages = list(make_client(base_url=fake.base_url)._http.iter_pages(
                "/v3/reference/tickers"))
            assert len(pages) == 2 and "apiKey" not in fake.requests[1].params
    assert len(caplog.records) > 5
    assert API_KEY not in caplog.text and all(API_KEY not in e for e in errors)


def test_invalid_base_url_raises_a_polygon_error_not_a_requests_one(fake_time) -> None:
    client = PolygonClient(base_url="127.0.0.1:1", api_key=API_KEY, sleep=fake_time.sleep)
    with pytest.raises(PolygonError, match="InvalidSchema"):
        client.get_ticker_details("SYNA")
    assert fake_time.sleeps == []
