"""End-to-end smoke test with ib_insync 0.9.86 (skipped unless ib_insync is importable).

ib_insync clashes with ib_async in one venv, so this runs from the separate venv:
``.venv-ib_insync/bin/python -m pytest tests/ib_fake/test_ib_insync_smoke.py -p no:cacheprovider``.
"""

from __future__ import annotations

import pytest

from tests.fakes.tws.conftest import wait_for_gateway, wait_until

ib_insync = pytest.importorskip("ib_insync")


def _connect(gateway, client_id: int):
    ib = ib_insync.IB()
    ib.RequestTimeout = 3
    ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=3)
    return ib


def test_ib_insync_full_session(gateway):
    gateway.set_position("MSFT", 20, 400.0)
    ib = _connect(gateway, 1)
    try:
        assert [p.position for p in ib.positions()] == [20.0]
        assert ib.accountValues()
        qualified = ib.qualifyContracts(
            ib_insync.Stock("AAPL", "SMART", "USD"), ib_insync.Stock("ZZZZ", "SMART", "USD")
        )
        assert [c.conId for c in qualified] == [265598]  # ib_insync drops the unknown one
        contract = qualified[0]
        trade = ib.placeOrder(contract, ib_insync.MarketOrder("BUY", 5, orderRef="ins-1"))
        wait_until(ib, lambda: trade.isDone() and trade.fills)
        wait_until(ib, lambda: trade.fills[0].commissionReport.commission == 1.0)
        parent, take_profit, stop_loss = ib.bracketOrder("BUY", 10, 190.05, 200.0, 180.0)
        trades = [ib.placeOrder(contract, o) for o in (parent, take_profit, stop_loss)]
        wait_until(ib, lambda: trades[0].orderStatus.status == "Filled")
        gateway.set_price("AAPL", last=200.5, bid=200.4, ask=200.6)
        wait_until(ib, lambda: [t.orderStatus.status for t in trades]
                   == ["Filled", "Filled", "Cancelled"])  # fmt: skip
        resting = ib.placeOrder(contract, ib_insync.LimitOrder("BUY", 1, 150.0, orderRef="rest"))
        wait_until(ib, lambda: resting.orderStatus.status == "Submitted")
        gateway.set_live_permission(False)
        ib.reqMarketDataType(3)
        ticker = ib.reqMktData(contract)
        wait_until(ib, lambda: ticker.last == 200.5)
        assert ticker.marketDataType == 3
    finally:
        gateway.disconnect_clients()
        # Let the old client process its disconnect before a new connect runs the loop.
        wait_until(ib, lambda: not ib.isConnected())
    wait_for_gateway(lambda: gateway.connected_client_ids() == [])
    again = _connect(gateway, 1)
    try:
        assert [t.order.orderRef for t in again.openTrades()] == ["rest"]
        assert "ins-1" in {f.execution.orderRef for f in again.fills()}
        with pytest.raises((TimeoutError, ConnectionError)):
            _connect(gateway, 1)  # duplicate clientId: 326, then the socket closes
        assert gateway.connected_client_ids() == [1]
    finally:
        again.disconnect()


class _RecordingWrapper:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        if name.startswith("__") or name == "ib":
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def test_ib_insync_encoder_and_decoder_agree_with_the_fake(caplog):
    from tests.fakes.tws import ContractSpec, decode_client
    from tests.fakes.tws import frames as fake_frames
    from tests.fakes.tws.model import Execution, OrderRecord

    client = ib_insync.client.Client(None)
    client._serverVersion = 176
    client.isConnected = lambda: True
    sent: list[str] = []
    client.sendMsg = sent.append
    stock = ib_insync.Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")
    client.placeOrder(9, stock, ib_insync.LimitOrder("SELL", 3, 101.5, orderRef="x", parentId=8))
    values = decode_client(sent[-1].split("\0")[:-1]).values
    assert (values["orderId"], values["lmtPrice"], values["orderRef"], values["parentId"]) == (
        "9", "101.5", "x", "8")  # fmt: skip

    spec = ContractSpec("AAPL", 265598, "NASDAQ")
    order = OrderRecord(1, 9, 77, spec, "SMART", "SELL", 3, "LMT", 101.5, None, "DAY", "DU1",
                        order_ref="x", status="Filled", filled=3.0)  # fmt: skip
    execution = Execution("e.1", 1, 9, 77, spec, "NASDAQ", "SLD", 3.0, 101.5, 3.0, 101.5, "x",
                          "20250102 14:30:05 UTC", "DU1", 1.0)  # fmt: skip
    wrapper = _RecordingWrapper()
    decoder = ib_insync.decoder.Decoder(wrapper, 176)
    with caplog.at_level("ERROR"):
        for fields in (fake_frames.open_order(order), fake_frames.completed_order(order),
                       fake_frames.exec_details(-1, execution),
                       fake_frames.commission_report(execution)):  # fmt: skip
            decoder.interpret(fields)
    assert not caplog.records, caplog.text
    assert [name for name, _ in wrapper.calls] == [
        "openOrder", "completedOrder", "execDetails", "commissionReport"]  # fmt: skip
