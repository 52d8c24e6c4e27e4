"""A host that cannot be reached fails fast with PolygonUnreachable; rate limits keep backing off.

Everything runs the real client over loopback: a refused port (a socket bound, then closed),
a ``.invalid`` name (RFC 6761: never resolves), and socket-level failures for the cases
loopback cannot produce (network unreachable, connect timeout).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from bma_models.data import calendar
from polygon import BarStore, PolygonClient, PolygonUnreachable, ServiceError
from tests.polygon.conftest import API_KEY, FakeTime

AGGS = "/v2/aggs/ticker/SYNA/range/1/day/2024-06-03/2024-06-28"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # a proxy would answer for the unreachable host (502) and hide the connect failure
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def offline_client(fake_time: FakeTime) -> Iterator[Callable[..., PolygonClient]]:
    clients: list[PolygonClient] = []

    def factory(base_url: str, **options: object) -> PolygonClient:
        client = PolygonClient(base_url=base_url, api_key=API_KEY, rate_limit_per_min=5,
                               connect_timeout_s=1.0, sleep=fake_time.sleep,
                               clock=fake_time.clock, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def _bars(client: PolygonClient) -> list:
    return client.get_daily_bars("SYNA", "2024-06-03", "2024-06-28")


def test_refused_port_raises_unreachable_naming_the_host_after_two_quick_retries(
    offline_client, closed_port: int, fake_time: FakeTime
) -> None:
    client = offline_client(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(PolygonUnreachable) as info:
        _bars(client)
    error = info.value
    assert error.host == f"127.0.0.1:{closed_port}" and error.reason == "connection refused"
    assert f"cannot reach 127.0.0.1:{closed_port}" in str(error)
    # 3 connect attempts, 0.5 s and 1 s apart, inside one rate-limiter slot (no 12 s wait)
    assert client.request_count == 3 and fake_time.sleeps == [0.5, 1.0]
    assert isinstance(error.__cause__, OSError)


def test_unresolvable_host_raises_unreachable(offline_client, fake_time: FakeTime) -> None:
    client = offline_client("http://bma-fixture-test.invalid")
    with pytest.raises(PolygonUnreachable) as info:
        client.get_ticker_details("SYNA")
    assert info.value.host == "bma-fixture-test.invalid"
    assert info.value.reason == "DNS lookup failed"
    assert "cannot reach bma-fixture-test.invalid (DNS lookup failed" in str(info.value)
    assert client.request_count <= 3 and all(s < 2 for s in fake_time.sleeps)


@pytest.mark.parametrize(("failure", "reason"), [
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "network unreachable"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "network unreachable"),
    (TimeoutError("timed out"), "connect timeout"),
])
def test_socket_level_connect_failures_are_unreachable(
    offline_client, closed_port: int, fake_time: FakeTime, monkeypatch, failure, reason
) -> None:
    def connect(self, address):  # what the kernel would say on a machine without a route
        raise failure

    monkeypatch.setattr(socket.socket, "connect", connect)
    client = offline_client(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(PolygonUnreachable) as info:
        _bars(client)
    assert info.value.reason == reason and client.request_count == 3


def test_connect_retries_stop_at_the_window(offline_client, closed_port, fake_time,
                                            monkeypatch) -> None:
    # a connect attempt that takes 5 s (a dropping firewall): no retry may start after 8 s
    real_connect = socket.socket.connect

    def slow_connect(self, address):
        fake_time.now += 5.0
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", slow_connect)
    client = offline_client(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(PolygonUnreachable, match=r"after 2 attempts in 10\.5s"):
        _bars(client)
    assert fake_time.sleeps == [0.5]


def test_no_connect_retry_when_disabled(offline_client, closed_port, fake_time) -> None:
    client = offline_client(f"http://127.0.0.1:{closed_port}", connect_retries=0)
    with pytest.raises(PolygonUnreachable, match="after 1 attempt in"):
        _bars(client)
    assert client.request_count == 1 and fake_time.sleeps == []


def test_429_then_503_still_back_off_and_succeed(server, make_client, fake_time) -> None:
    server.script.add(AGGS, "429", retry_after="2")
    server.script.add(AGGS, "503")
    assert len(_bars(make_client())) == 19
    assert [r.fault for r in server.requests] == ["429", "503", None]
    assert len(fake_time.sleeps) == 2 and fake_time.sleeps[0] >= 2.0


def test_a_reset_connection_is_a_service_error_with_backoff_not_unreachable(
    server, make_client, fake_time
) -> None:
    server.script.add(AGGS, "reset", times=100)
    with pytest.raises(ServiceError) as info:
        _bars(make_client(max_retries=2, backoff_base_s=4.0))
    assert not isinstance(info.value, PolygonUnreachable)
    assert len(server.requests) == 3 and all(s >= 2.0 for s in fake_time.sleeps)


def test_refresh_stops_at_the_first_unreachable_request(offline_client, closed_port,
                                                        fake_time, tmp_path) -> None:
    client = offline_client(f"http://127.0.0.1:{closed_port}", max_concurrency=4)
    store = BarStore(client, tmp_path / "cache", calendar=calendar, max_concurrency=4)
    tickers = [f"T{i:03d}" for i in range(400)]
    with pytest.raises(PolygonUnreachable, match="download stopped after 0 of 400") as info:
        store.refresh(tickers, "2024-06-03", "2024-06-28")
    assert info.value.host == f"127.0.0.1:{closed_port}"
    assert client.request_count == 3  # the first ticker's three connect attempts, no other
    assert 12.0 not in fake_time.sleeps


def test_refresh_stops_when_the_host_goes_away_mid_download(server, make_client,
                                                            tmp_path) -> None:
    client = make_client(max_concurrency=2)
    tickers = [f"T{i:03d}" for i in range(40)]

    def progress(done: int, total: int, label: str) -> None:
        if done == 1:  # the first ticker arrived; from now on every connect is refused
            server.stop()
            client.close()  # drop the kept-alive connection the server's thread still serves

    store = BarStore(client, tmp_path / "cache", calendar=calendar, max_concurrency=2,
                     progress=progress)
    with pytest.raises(PolygonUnreachable, match="download stopped after 1 of 40"):
        store.refresh(tickers, "2024-06-03", "2024-06-28")
    # only the jobs already running (at most one per worker) try; none starts after the
    # first failure: at most 1 + 2 x 3 attempts, not 1 + 39 x 3
    assert client.request_count <= 1 + 2 * 3
    assert store.cached_tickers() == ["T000"]


@pytest.mark.slow
def test_bma_run_polygon_without_a_network_exits_non_zero_naming_the_host(
    tmp_path, closed_port
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    stocks = tmp_path / "stocks.txt"
    stocks.write_text("\n".join(f"T{i:03d}" for i in range(400)) + "\n")
    host = f"127.0.0.1:{closed_port}"
    (config / "config.json").write_text(json.dumps({
        "app": {"stocks_file": str(stocks)},
        "polygon": {"base_url": f"http://{host}", "requests_per_minute": 5,
                    "cache_dir": str(tmp_path / "cache")},
    }))
    env = {k: v for k, v in os.environ.items()
           if k not in PROXY_VARS and k != "MASSIVE_API_KEY"}
    env["POLYGON_API_KEY"] = API_KEY
    done = subprocess.run(
        [sys.executable, "-m", "autotrader.research", "run", "--source", "polygon",
         "--config", str(config), "--output", str(tmp_path / "result"),
         "--start-date", "2024-01-02", "--end-date", "2024-06-28"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"cannot reach {host} (connection refused" in output
    assert "download stopped after 0 of 400" in output
    assert API_KEY not in output
