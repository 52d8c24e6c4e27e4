"""The codec against recorded real TWS sessions and against ib_async's own encoder/decoder."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timezone

import pytest
import yaml
from ib_async import LimitOrder, MarketOrder, Order, Stock, StopOrder
from ib_async.client import Client
from ib_async.decoder import Decoder

from tests.fakes.tws import ContractSpec, ProtocolError, decode_client, decode_server
from tests.fakes.tws import frames as fake_frames
from tests.fakes.tws._layouts import DELTA_NEUTRAL_BLOCK, SERVER
from tests.fakes.tws._wire import decode_frame, encode_frame
from tests.fakes.tws.codec import encode_server
from tests.fakes.tws.model import Execution, OrderRecord, Position, Quote

JSON_NAME = "ib_insync_tws_stub_request_response_2023-10-21.json"
YAML_NAME = "rust-ibapi_tws_interactions_2025-07-15.yaml"
AAPL = ContractSpec("AAPL", 265598, "NASDAQ", long_name="APPLE INC")


def _recorded_frames(fixtures_dir):
    data = json.loads((fixtures_dir / "ib_tws" / JSON_NAME).read_text())
    for key, frames in data.items():
        for encoded in frames:
            yield key, base64.b64decode(encoded)


def _yaml_interactions(fixtures_dir):
    return yaml.safe_load((fixtures_dir / "ib_tws" / YAML_NAME).read_text())["interactions"]


def test_every_recorded_frame_decodes(fixtures_dir):
    names = {}
    for key, raw in _recorded_frames(fixtures_dir):
        fields = decode_frame(raw)
        if key == "API_":
            assert fields[0] == "176" and len(fields) == 2
            continue
        message = decode_server(fields)
        names[message.name] = names.get(message.name, 0) + 1
    assert names["updateAccountValue"] == 153
    assert names["accountUpdateMulti"] == 156 + 80
    assert names["openOrder"] == 2
    assert {"managedAccounts", "nextValidId", "error", "positionEnd", "openOrderEnd",
            "completedOrdersEnd", "execDetailsEnd", "accountSummaryEnd"} <= set(names)  # fmt: skip


def test_recorded_fixed_layout_frames_reencode_byte_for_byte(fixtures_dir):
    checked = 0
    for key, raw in _recorded_frames(fixtures_dir):
        fields = decode_frame(raw)
        if key == "API_" or fields[0] == "5":
            continue
        message = decode_server(fields)
        assert encode_frame(encode_server(message.name, **message.values)) == raw
        checked += 1
    assert checked > 400


def test_recorded_open_order_layout_matches_ours(fixtures_dir):
    recorded = [decode_frame(raw) for key, raw in _recorded_frames(fixtures_dir) if key == "3_219"]
    values = decode_server(recorded[0]).values
    assert (values["orderId"], values["symbol"], values["status"]) == ("219", "EUR", "PreSubmitted")
    assert (values["permId"], values["whatIf"], values["clientId"]) == ("665616366", "1", "0")
    # Real TWS sent deltaNeutralOrderType="None", so 8 delta-neutral fields follow: 128 + 8.
    assert len(recorded[0]) == 136
    order = OrderRecord(1, 7, 99, AAPL, "SMART", "BUY", 10, "LMT", 101.5, None, "DAY",
                        "DU1", status="Submitted")  # fmt: skip
    ours = fake_frames.open_order(order)
    assert len(ours) == 128
    assert set(decode_server(ours).values) == set(values) - set(DELTA_NEUTRAL_BLOCK)


def test_yaml_recorded_requests_and_responses(fixtures_dir):
    for interaction in _yaml_interactions(fixtures_dir):
        request = interaction["request"]["raw"].split("\0")[:-1]
        decoded = decode_client(request)
        assert decoded.name != "unknown" or interaction["name"] == "pnl"
        for response in interaction["responses"]:
            fields = response["raw"].split("\0")[:-1]
            message = decode_server(fields)
            assert encode_server(message.name, **message.values) == fields
    positions = [r for i in _yaml_interactions(fixtures_dir) for r in i["responses"]
                 if r["raw"].startswith("61\0")]  # fmt: skip
    assert decode_server(positions[0]["raw"].split("\0")[:-1]).values["position"] == "-110"


def test_wrong_field_count_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        decode_server(["9", "1", "7", "extra"])
    with pytest.raises(ProtocolError):
        encode_server("nextValidId", orderId=1, bogus=2)
    with pytest.raises(ProtocolError):
        decode_client(["61"])


# ---------------------------------------------------------------- ib_async encoder
def _captured(call) -> list[str]:
    client = Client(None)
    client._serverVersion = 176
    client.isConnected = lambda: True
    sent: list[str] = []
    client.sendMsg = sent.append
    call(client)
    return sent[-1].split("\0")[:-1]


STOCK = Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ", conId=265598)


@pytest.mark.parametrize(
    "order",
    [
        MarketOrder("BUY", 10, orderRef="m1"),
        LimitOrder("SELL", 2.5, 101.25, tif="GTC", outsideRth=True, orderRef="l1"),
        StopOrder("SELL", 10, 95.0, parentId=41, transmit=False),
        LimitOrder("BUY", 3, 99.0, ocaGroup="g7", ocaType=2),
    ],
    ids=["market", "limit", "held-stop-child", "oca"],
)
def test_place_order_from_ib_async_parses(order):
    fields = _captured(lambda c: c.placeOrder(42, STOCK, order))
    assert len(fields) == 115
    v = decode_client(fields).values
    assert (v["orderId"], v["symbol"], v["conId"], v["primaryExchange"]) == (
        "42", "AAPL", "265598", "NASDAQ")  # fmt: skip
    assert (v["action"], float(v["totalQuantity"]), v["orderType"]) == (
        order.action, order.totalQuantity, order.orderType)  # fmt: skip
    assert v["orderRef"] == order.orderRef and v["ocaGroup"] == order.ocaGroup
    assert v["transmit"] == str(int(order.transmit))
    assert v["parentId"] == str(order.parentId)
    assert v["outsideRth"] == str(int(order.outsideRth))
    if order.ocaGroup:
        assert v["ocaType"] == "2"
    expected_price = "" if order.orderType != "LMT" else str(order.lmtPrice)
    assert v["lmtPrice"] == expected_price


def test_algo_and_bag_orders_are_refused():
    algo = Order(action="BUY", totalQuantity=1, orderType="MKT", algoStrategy="Adaptive")
    with pytest.raises(ProtocolError, match="algo"):
        decode_client(_captured(lambda c: c.placeOrder(1, STOCK, algo)))


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("reqContractDetails", lambda c: c.reqContractDetails(5, STOCK)),
        ("reqMktData", lambda c: c.reqMktData(6, STOCK, "", True, False, [])),
        ("cancelOrder", lambda c: c.cancelOrder(7)),
        ("reqMarketDataType", lambda c: c.reqMarketDataType(3)),
        ("reqAccountSummary", lambda c: c.reqAccountSummary(8, "All", "NetLiquidation")),
        ("reqAccountUpdatesMulti", lambda c: c.reqAccountUpdatesMulti(9, "DU1", "", False)),
        ("reqCompletedOrders", lambda c: c.reqCompletedOrders(False)),
        ("startApi", lambda c: c.send(71, 2, 3, "")),
    ],
)
def test_client_requests_from_ib_async_decode(name, call):
    assert decode_client(_captured(call)).name == name


# ---------------------------------------------------------------- ib_async decoder
class _RecordingWrapper:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self.defaultTimezone = timezone.utc

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def _decode_with_ib_async(fields, caplog):
    wrapper = _RecordingWrapper()
    with caplog.at_level(logging.ERROR, logger="ib_async.decoder"):
        Decoder(wrapper, 176).interpret(fields)
    assert not caplog.records, caplog.text
    return wrapper.calls


def _order(**kwargs) -> OrderRecord:
    base = dict(client_id=3, order_id=11, perm_id=5001, contract=AAPL, exchange="SMART",
                action="BUY", total_qty=10.0, order_type="LMT", lmt_price=101.5,
                aux_price=None, tif="DAY", account="DU1", order_ref="ref-1", parent_id=9,
                status="Submitted", filled=4.0, avg_fill_price=101.5)  # fmt: skip
    base.update(kwargs)
    return OrderRecord(**base)


def test_open_order_and_status_decode_in_ib_async(caplog):
    ((name, (order_id, contract, order, state)),) = _decode_with_ib_async(
        fake_frames.open_order(_order()), caplog
    )
    assert (name, order_id, contract.conId, contract.symbol) == ("openOrder", 11, 265598, "AAPL")
    assert (order.clientId, order.permId, order.orderRef, order.parentId) == (3, 5001, "ref-1", 9)
    assert (order.lmtPrice, order.totalQuantity, state.status) == (101.5, 10, "Submitted")
    assert order.whatIf is False
    ((name, args),) = _decode_with_ib_async(fake_frames.order_status(_order()), caplog)
    assert name == "orderStatus"
    assert args[:4] == (11, "Submitted", 4.0, 6.0)


def test_completed_order_decodes_in_ib_async(caplog):
    done = _order(status="Filled", filled=10.0, completed_time="20250102 10:00:01 UTC")
    ((name, (contract, order, state)),) = _decode_with_ib_async(
        fake_frames.completed_order(done), caplog
    )
    assert (name, contract.symbol, order.permId, order.orderRef) == (
        "completedOrder", "AAPL", 5001, "ref-1")  # fmt: skip
    assert (state.status, order.filledQuantity) == ("Filled", 10.0)


def test_execution_commission_position_portfolio_decode_in_ib_async(caplog):
    execution = Execution("0000f4ce.00000001.01.01", 3, 11, 5001, AAPL, "NASDAQ", "BOT", 4.0,
                          101.5, 4.0, 101.5, "ref-1", "20250102 14:30:05 UTC", "DU1", 1.0)
    ((name, (req_id, contract, exe)),) = _decode_with_ib_async(
        fake_frames.exec_details(-1, execution), caplog
    )
    assert (name, req_id, exe.execId, exe.orderRef, exe.shares, exe.side) == (
        "execDetails", -1, execution.exec_id, "ref-1", 4.0, "BOT")  # fmt: skip
    assert exe.time.year == 2025
    ((name, (report,)),) = _decode_with_ib_async(fake_frames.commission_report(execution), caplog)
    assert (name, report.execId, report.commission) == ("commissionReport", execution.exec_id, 1.0)
    position = Position(AAPL, "DU1", 10.0, 150.0)
    ((name, args),) = _decode_with_ib_async(fake_frames.position(position), caplog)
    assert (name, args[0], args[1].conId, args[2], args[3]) == ("position", "DU1", 265598, 10, 150)
    ((name, args),) = _decode_with_ib_async(
        fake_frames.portfolio(position, Quote(last=160.0)), caplog
    )
    assert name == "updatePortfolio" and args[1:4] == (10.0, 160.0, 1600.0)


def test_contract_details_and_ticks_decode_in_ib_async(caplog):
    ((name, (req_id, details)),) = _decode_with_ib_async(
        fake_frames.contract_details(4, AAPL, "SMART"), caplog
    )
    assert (name, req_id, details.contract.conId, details.minTick) == (
        "contractDetails", 4, 265598, 0.01)  # fmt: skip
    assert details.contract.primaryExchange == "NASDAQ"
    for fields in fake_frames.ticks(4, Quote(last=1.5, bid=1.4, ask=1.6), delayed=True):
        ((name, args),) = _decode_with_ib_async(fields, caplog)
        assert name in ("priceSizeTick", "tickSize")
    assert len(SERVER["execDetails"].names) + 1 == 31
