"""Contract qualification fallback and the live -> delayed -> previous-close price chain."""

from __future__ import annotations

import math

import pytest

from autotrader.domain.errors import BrokerError


def test_qualification_falls_back_through_primary_exchanges_and_is_cached(gateway, broker):
    hint = broker.qualify("HINT")  # SMART alone: error 200; only a primaryExchange hint works
    assert hint.primary_exchange == "AMEX"
    assert hint.attempts == ("SMART:0", "NASDAQ:0", "NYSE:0", "ARCA:0", "AMEX:1")
    dual = broker.qualify("DUAL")  # SMART: two listings (ambiguous)
    assert dual.attempts[0] == "SMART:2" and dual.attempts[-1].endswith(":1")
    assert broker.qualify("AAPL").attempts == ("SMART:1",)
    asked = len(gateway.requests("reqContractDetails"))
    broker.qualify("HINT"), broker.qualify("AAPL")
    assert len(gateway.requests("reqContractDetails")) == asked  # cached


def test_primary_exchange_hint_is_tried_first(broker, gateway):
    info = broker.qualify("DUAL", primary_exchange="ARCA")
    assert (info.primary_exchange, info.attempts) == ("ARCA", ("ARCA:1",))


def test_unknown_symbol_raises_and_has_no_quote(broker):
    with pytest.raises(BrokerError, match="NOPE could not be qualified"):
        broker.qualify("NOPE")
    assert set(broker.quotes(["AAPL", "NOPE"])) == {"AAPL"}


def test_live_quotes_when_permitted(broker):
    quotes = broker.quotes(["AAPL", "MSFT"])
    assert (quotes["AAPL"].last, quotes["AAPL"].bid, quotes["AAPL"].ask) == \
        (190.0, 189.99, 190.01)
    assert broker.data_modes == {"AAPL": "live", "MSFT": "live"}


def test_no_permission_switches_to_delayed_data_for_the_refused_symbol(gateway, broker):
    gateway.set_live_permission(False, symbol="MSFT")
    quotes = broker.quotes(["AAPL", "MSFT"])
    assert quotes["MSFT"].last == 410.0
    assert broker.data_modes == {"AAPL": "live", "MSFT": "delayed"}
    assert [r.values["marketDataType"] for r in gateway.requests("reqMarketDataType")] == ["3"]


def test_delayed_disabled_falls_back_to_the_previous_close(make_gateway, make_broker):
    gw = make_gateway(live_permission=False)
    broker = make_broker(gw, use_delayed=False, prev_close={"AAPL": 188.5}.get)
    quotes = broker.quotes(["AAPL", "MSFT"])
    assert math.isnan(quotes["AAPL"].last) and quotes["AAPL"].reference_price == 188.5
    assert "MSFT" not in quotes  # no source could price it
    assert broker.data_modes == {"AAPL": "prev_close"}
    assert gw.requests("reqMarketDataType") == []


def test_delayed_mode_is_restored_after_a_reconnect_and_after_1101(gateway, broker):
    gateway.set_live_permission(False)
    broker.quotes(["AAPL"])
    gateway.disconnect_clients()
    gateway.wait_for_requests("reqMarketDataType", 1)
    assert broker.quotes(["AAPL"])["AAPL"].last == 190.0
    assert broker.reconnects == 1 and broker.data_modes == {"AAPL": "delayed"}
    gateway.send_notice(1101)
    broker.wait(0.1)
    broker.quotes(["AAPL"])
    assert len(gateway.requests("reqMarketDataType")) == 3


def test_historical_bars_go_through_the_pacer(gateway, broker):
    bars = broker.history("AAPL", duration="5 D", bar_size="1 day")
    assert bars and all(len(bar) == 6 and bar[4] > 0 for bar in bars)
    assert broker._pacer.wait_time("AAPL", "AAPL|5 D|1 day|TRADES") > 10  # identical: 15 s
    assert len(gateway.requests("reqHistoricalData")) == 1
