"""Pure parts of the adapter: live detection, backoff, historical pacing, ticks, error map."""

from __future__ import annotations

import os
import random

import pytest

from autotrader.broker import _ib_translate as tr
from autotrader.broker._ib_session import HistoricalPacer, ReconnectPolicy, is_live_session
from autotrader.broker.ib import LIBRARY, _lib
from autotrader.domain.errors import BrokerError
from autotrader.domain.orders import OrderStatus
from autotrader.domain.records import OrderRequest, OrderType, Side


@pytest.mark.parametrize(("port", "accounts", "live"), [
    (7497, ["DU1234567"], False), (4002, ["DU1"], False), (7496, ["DU1"], True),
    (4001, [], True), (7497, ["U1234567"], True), (5555, ["DF12", "DU3"], False),
])
def test_live_session_is_a_live_port_or_a_non_paper_account(port, accounts, live):
    assert is_live_session(port, accounts) is live


def test_reconnect_delays_grow_with_jitter_and_stay_capped():
    policy = ReconnectPolicy(base_delay_s=1.0, factor=2.0, max_delay_s=5.0, jitter=0.5,
                             max_attempts=6)
    delays = list(policy.delays(random.Random(1)))
    assert len(delays) == 6 and delays[0] == 0.0
    tops = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert all(top * 0.5 <= d <= top for d, top in zip(delays[1:], tops))
    assert len(set(delays[1:])) == 5  # jittered: not the bare curve


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_historical_pacer_waits_for_identical_same_contract_and_window_rules():
    clock = _Clock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep)
    assert pacer.acquire("AAPL", "AAPL|1D") == 0.0
    assert pacer.wait_time("AAPL", "AAPL|1D") == pytest.approx(15.0)  # identical within 15 s
    for i in range(4):
        assert pacer.acquire("AAPL", f"AAPL|{i}") == 0.0
    assert pacer.wait_time("AAPL", "AAPL|new") == pytest.approx(2.0)  # 6th same-contract in 2 s
    assert pacer.wait_time("MSFT", "MSFT|x") == 0.0
    clock.now += 20
    for i in range(55):
        clock.now += 0.5
        pacer.acquire(f"S{i}", f"S{i}")
    assert pacer.wait_time("ZZZ", "ZZZ") > 500  # 60 requests in 10 minutes


def test_prices_round_to_the_contract_tick_never_more_aggressive():
    assert tr.round_price(180.004, 0.01, Side.BUY, "limit") == 180.0
    assert tr.round_price(180.004, 0.01, Side.SELL, "limit") == 180.01
    assert tr.round_price(180.07, 0.05, Side.SELL, "stop") == 180.05
    assert tr.round_price(180.01, 0.05, Side.BUY, "stop") == 180.05
    assert tr.round_price(0.12345, 0.0001, Side.BUY, "limit") == 0.1234
    with pytest.raises(BrokerError):
        tr.round_price(float("nan"), 0.01, Side.BUY, "limit")


def test_build_order_sets_order_ref_oca_parent_and_transmit():
    request = OrderRequest("r-sl", "AAPL", Side.SELL, 7, OrderType.STOP, stop_price=180.017,
                           parent_ref="r", oca_group="r-oca")
    order = tr.build_order(_lib, request, 0.01, parent_id=41, transmit=True)
    assert (order.orderType, order.action, order.totalQuantity) == ("STP", "SELL", 7)
    assert (order.auxPrice, order.orderRef, order.parentId) == (180.01, "r-sl", 41)
    assert (order.ocaGroup, order.ocaType, order.transmit) == ("r-oca", 1, True)
    with pytest.raises(BrokerError, match="bracket"):
        tr.build_order(_lib, OrderRequest("b", "AAPL", Side.BUY, 1, OrderType.BRACKET), 0.01)


def test_ib_statuses_map_to_domain_statuses():
    assert tr.domain_status("PreSubmitted", 0, awaiting_parent=True) == OrderStatus.INACTIVE
    assert tr.domain_status("PreSubmitted", 0, awaiting_parent=False) == OrderStatus.SUBMITTED
    assert tr.domain_status("Submitted", 3, False) == OrderStatus.PARTIALLY_FILLED
    assert tr.domain_status("ApiCancelled", 0, False) == OrderStatus.CANCELLED
    assert tr.domain_status("ValidationError", 0, False) is None


def test_error_codes_map_to_domain_meanings():
    assert tr.rule_for(201).status == OrderStatus.REJECTED
    assert tr.rule_for(202).status == OrderStatus.CANCELLED
    assert tr.rule_for(103).status == tr.rule_for(110).status == OrderStatus.REJECTED
    assert tr.rule_for(200).status == OrderStatus.REJECTED
    assert tr.rule_for(1100).kind == "connectivity_lost"
    assert tr.rule_for(1101).kind == "data_lost" and tr.rule_for(2104).kind == "info"
    assert {354, 10089} <= tr.NO_LIVE_DATA_CODES


def test_library_is_one_of_the_two_supported_and_the_one_ci_expects():
    assert LIBRARY in ("ib_async", "ib_insync") and _lib.__name__ == LIBRARY
    # .ci/run-ib-insync sets this, so its rerun cannot silently test ib_async again
    expected = os.environ.get("AUTOTRADER_EXPECT_IB_LIBRARY")
    if expected:
        assert LIBRARY == expected
