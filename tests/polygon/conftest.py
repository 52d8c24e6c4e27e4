"""Fixtures of the Polygon adapter tests: the fake server, clients with injected time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bma_models.data import calendar
from polygon import BarStore, PolygonClient
from tests.fakes.polygon_server import FakePolygonServer

API_KEY = "test-SECRET-key-0123456789"
UNIVERSE = ("SYNA", "SYNB", "SYNC", "SYND", "SYNE")


class FakeTime:
    """A clock whose ``sleep`` records the delay and advances time instead of waiting."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="session")
def recorded_dir(fixtures_dir: Path) -> Path:
    """The official Polygon client's recorded REST mocks that these tests use."""
    return fixtures_dir / "polygon" / "client-python_test_rest_mocks"


@pytest.fixture
def server(recorded_dir: Path) -> Iterator[FakePolygonServer]:
    with FakePolygonServer(api_key=API_KEY, recorded_dir=recorded_dir, universe=UNIVERSE,
                           history_start="2023-01-03", last_session="2024-06-28") as fake:
        yield fake


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(server: FakePolygonServer, fake_time: FakeTime) -> Callable[..., PolygonClient]:
    """Clients against the fake server; backoff sleeps are recorded, not slept."""
    clients: list[PolygonClient] = []

    def factory(**overrides: object) -> PolygonClient:
        options: dict = dict(base_url=server.base_url, api_key=API_KEY, timeout_s=0.5,
                             connect_timeout_s=1.0, backoff_base_s=0.5, max_retries=5,
                             max_concurrency=4, sleep=fake_time.sleep, clock=fake_time.clock,
                             seed=7)
        options.update(overrides)
        client = PolygonClient(**options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def make_store(make_client: Callable[..., PolygonClient],
               tmp_path: Path) -> Callable[..., BarStore]:
    def factory(cache_dir: Path | None = None, client: PolygonClient | None = None,
                **options: object) -> BarStore:
        options.setdefault("calendar", calendar)
        return BarStore(client or make_client(), cache_dir or tmp_path / "cache", **options)

    return factory
