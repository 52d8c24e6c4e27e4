"""Fixtures: a running FakeGateway per test and a factory of connected ib_async clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.tws import FakeGateway

CONNECT_TIMEOUT_S = 3.0


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway().start()
    try:
        yield gw
    finally:
        gw.stop()
    assert gw.internal_errors == [], "the fake itself failed; see the log"


@pytest.fixture
def connect(gateway: FakeGateway) -> Iterator[Callable[..., Any]]:
    """``connect(client_id=1, **kw)`` -> a connected ib_async IB; disconnected at teardown.

    ib_async is imported here, not at module level, so that this conftest also loads in
    the separate ib_insync venv (where only the ib_insync smoke test runs).
    """
    from ib_async import IB

    clients: list[IB] = []

    def _connect(client_id: int = 1, timeout: float = CONNECT_TIMEOUT_S, **kwargs) -> IB:
        ib = IB()
        ib.RequestTimeout = 3
        clients.append(ib)
        ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=timeout, **kwargs)
        return ib

    yield _connect
    for ib in clients:
        if ib.isConnected():
            ib.disconnect()


def wait_until(ib: Any, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Run the client's loop until ``predicate()`` holds; fail the test on timeout.

    ``ib.sleep`` raises ConnectionError when the socket closes while it runs (ib_async
    emits its global error event); that is expected in disconnect tests, so the
    predicate is simply checked again.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        try:
            ib.sleep(0.02)
        except ConnectionError:
            time.sleep(0.02)


def wait_for_gateway(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll gateway-side state from the test thread (no client loop involved)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gateway condition not met within {timeout}s")
        time.sleep(0.01)
