"""Fixtures: a FakeGateway per test and a factory of connected :class:`IBBroker` instances.

Nothing here imports ib_async or ib_insync directly: the adapter picks the library, so
the same tests run in the main venv (ib_async) and in ``.venv-ib_insync``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autotrader.broker._ib_session import ReconnectPolicy
from autotrader.broker.ib import IBBroker
from autotrader.journal import Journal
from autotrader.services.trading import TradingRunner
from tests.autotrader.conftest import FakeClock, write_run
from tests.fakes.tws import FakeGateway

# Monday 2 March 2026, 10:30 New York: a regular session for the engine's clock.
SESSION = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.timezone.utc)

RECOMMENDATIONS = """rank,ticker,sector,score,expected_return,weight,last_close,adv,atr
1,AAPL,Tech,0.95,0.020,0.04,190.00,50000000,3.0
2,MSFT,Tech,0.90,0.015,0.04,410.00,80000000,6.0
3,IBM,Tech,0.80,0.012,0.04,170.00,20000000,2.5
4,XOM,Energy,0.70,0.010,0.04,110.00,20000000,1.6
"""

FAST_RECONNECT = ReconnectPolicy(base_delay_s=0.05, max_delay_s=0.2, max_attempts=6)


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., FakeGateway]]:
    """``make_gateway(**FakeGateway kwargs)`` -> a started gateway, stopped at teardown."""
    started: list[FakeGateway] = []

    def _make(**kwargs: Any) -> FakeGateway:
        gw = FakeGateway(**kwargs).start()
        started.append(gw)
        return gw

    yield _make
    for gw in started:
        gw.stop()
        assert gw.internal_errors == [], "the fake itself failed; see the log"


@pytest.fixture
def gateway(make_gateway) -> FakeGateway:
    return make_gateway()


@pytest.fixture
def make_broker() -> Iterator[Callable[..., IBBroker]]:
    """``make_broker(gateway, client_id=1, connect=True, **IBBroker kwargs)``."""
    brokers: list[IBBroker] = []

    def _make(gw: FakeGateway, client_id: int = 1, connect: bool = True,
              **kwargs: Any) -> IBBroker:
        kwargs.setdefault("reconnect", FAST_RECONNECT)
        kwargs.setdefault("fill_grace_s", 0.3)
        # a refused handshake (outage, duplicate clientId) costs one connect timeout
        kwargs.setdefault("connect_timeout_s", 1.5)
        kwargs.setdefault("request_timeout_s", 3.0)
        broker = IBBroker("127.0.0.1", gw.port, client_id, **kwargs)
        brokers.append(broker)
        if connect:
            broker.connect()
        return broker

    yield _make
    for broker in brokers:
        broker.disconnect()


@pytest.fixture
def broker(gateway, make_broker) -> IBBroker:
    return make_broker(gateway)


def wait_for(broker: IBBroker, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Run the broker's client loop until ``predicate()`` holds; fail on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        broker.wait(0.02)


def wait_for_gateway(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gateway condition not met within {timeout}s")
        time.sleep(0.01)


def refs_at_gateway(gw: FakeGateway) -> dict[str, int]:
    """How many gateway orders carry each orderRef (the exactly-once measure)."""
    counts: dict[str, int] = {}
    for order in gw.orders():
        counts[order.order_ref] = counts.get(order.order_ref, 0) + 1
    return counts


def make_runner(tmp_path: Path, broker: IBBroker, clock: FakeClock) -> TradingRunner:
    """A runner on ``broker`` with a fresh journal whose reconnect hook reconciles it."""
    run_dir = write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    journal = Journal(tmp_path / "journal.db").open()
    broker.on_reconnect = lambda b: journal.reconcile(b, clock())
    from autotrader.services.recommendations import load_recommendations

    return TradingRunner(broker, journal,
                         lambda: load_recommendations(run_dir, broker_is_live=broker.is_live),
                         clock=clock, market_open=lambda _now: True)
