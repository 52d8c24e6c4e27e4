"""Build server frames (text field lists) from the gateway's state records.

Each function returns the fields of one message via :func:`.codec.encode_server`, so every
frame has exactly the field count of its layout.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ._wire import format_value
from .codec import encode_server
from .model import ContractSpec, Execution, OrderRecord, Position, Quote

ERROR_TEXT = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    1300: "TWS socket port has been reset and this connection is being dropped.",
    2104: "Market data farm connection is OK:usfarm",
    2106: "HMDS data farm connection is OK:ushmds",
    2158: "Sec-def data farm connection is OK:secdefnj",
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
}
DELAYED_TEXT = "Requested market data is not subscribed. Displaying delayed market data."
NO_PERMISSION_TEXT = (
    "Requested market data is not subscribed. Check API status by selecting the Account menu "
    "then under Management choose Market Data Subscription Manager and/or Delayed market data "
    "is available."
)
LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "close": 9}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "close": 75}
LIVE_SIZES = {"bid_size": 0, "ask_size": 3, "last_size": 5, "volume": 8}
DELAYED_SIZES = {"bid_size": 69, "ask_size": 70, "last_size": 71, "volume": 74}
_PRICE_SIZE = {"bid": "bid_size", "ask": "ask_size", "last": "last_size"}


def error(req_id: int, code: int, message: str | None = None) -> list[str]:
    """error (4) with the ``advancedOrderRejectJson`` field required at v166+."""
    text = ERROR_TEXT.get(code, "") if message is None else message
    return encode_server(
        "error", reqId=req_id, code=code, message=text, advancedOrderRejectJson=""
    )


def contract_details(req_id: int, spec: ContractSpec, exchange: str) -> list[str]:
    """contractDetails (10) of one listing, 40 fields, no secIdList."""
    hours = "20250102:0400-20250102:2000;20250103:0400-20250103:2000"
    liquid = "20250102:0930-20250102:1600;20250103:0930-20250103:1600"
    return encode_server(
        "contractDetails",
        reqId=req_id, symbol=spec.symbol, secType="STK", strike=0.0,
        exchange=exchange or "SMART", currency=spec.currency, localSymbol=spec.symbol,
        marketName=spec.trading_class, tradingClass=spec.trading_class, conId=spec.con_id,
        minTick=spec.min_tick, orderTypes="ACTIVETIM,AD,ALERT,ALLOC,DAY,GTC,LMT,MKT,STP",
        validExchanges=f"SMART,{spec.primary_exchange}", priceMagnifier=1, underConId=0,
        longName=spec.long_name or spec.symbol, primaryExchange=spec.primary_exchange,
        timeZoneId="US/Eastern", tradingHours=hours, liquidHours=liquid, secIdListCount=0,
        aggGroup=1, marketRuleIds="26", stockType="COMMON", minSize=1, sizeIncrement=1,
        suggestedSizeIncrement=100,
    )  # fmt: skip


def _contract_fields(spec: ContractSpec, exchange: str) -> dict[str, object]:
    return {
        "conId": spec.con_id, "symbol": spec.symbol, "secType": "STK", "strike": 0.0,
        "exchange": exchange, "currency": spec.currency, "localSymbol": spec.symbol,
        "tradingClass": spec.trading_class,
    }  # fmt: skip


def open_order(order: OrderRecord) -> list[str]:
    """openOrder (5) of a plain order, 128 fields; ``status`` is the order's TWS status."""
    return encode_server(
        "openOrder",
        orderId=order.order_id, **_contract_fields(order.contract, order.exchange),
        action=order.action, totalQuantity=order.total_qty, orderType=order.order_type,
        lmtPrice=_price(order.lmt_price), auxPrice=_price(order.aux_price), tif=order.tif,
        ocaGroup=order.oca_group, account=order.account, openClose="", origin=0,
        orderRef=order.order_ref, clientId=order.client_id, permId=order.perm_id,
        outsideRth=order.outside_rth, hidden=False, discretionaryAmt=0, exemptCode=-1,
        displaySize=0, blockOrder=False, sweepToFill=False, allOrNone=False,
        ocaType=order.oca_type or 3, eTradeOnly=False, firmQuoteOnly=False,
        parentId=order.parent_id, triggerMethod=0, volatilityType=0, continuousUpdate=0,
        comboLegsCount=0, orderComboLegsCount=0, smartComboRoutingParamsCount=0,
        optOutSmartRouting=False, clearingIntent="IB", notHeld=False,
        deltaNeutralContractPresent=False, solicited=False, whatIf=False,
        status=order.status, randomizeSize=False, randomizePrice=False, conditionsCount=0,
        adjustableTrailingUnit=0, dontUseAutoPriceForHedge=True, isOmsContainer=False,
        discretionaryUpToLimitPrice=False, usePriceMgmtAlgo=False, autoCancelParent=False,
    )  # fmt: skip


def order_status(order: OrderRecord) -> list[str]:
    """orderStatus (3), 12 fields, cumulative filled/remaining."""
    return encode_server(
        "orderStatus",
        orderId=order.order_id, status=order.status, filled=order.filled,
        remaining=order.remaining, avgFillPrice=order.avg_fill_price, permId=order.perm_id,
        parentId=order.parent_id, lastFillPrice=order.last_fill_price,
        clientId=order.client_id, whyHeld="", mktCapPrice=0.0,
    )  # fmt: skip


def completed_order(order: OrderRecord) -> list[str]:
    """completedOrder (101), 97 fields, for a Filled / Cancelled / Inactive order."""
    status = order.status
    return encode_server(
        "completedOrder",
        **_contract_fields(order.contract, order.exchange),
        action=order.action, totalQuantity=order.total_qty, orderType=order.order_type,
        lmtPrice=_price(order.lmt_price), auxPrice=_price(order.aux_price), tif=order.tif,
        ocaGroup=order.oca_group, account=order.account, origin=0, orderRef=order.order_ref,
        permId=order.perm_id, outsideRth=order.outside_rth, hidden=False, exemptCode=-1,
        displaySize=0, sweepToFill=False, allOrNone=False, ocaType=order.oca_type or 3,
        triggerMethod=0, volatilityType=0, continuousUpdate=0, comboLegsCount=0,
        orderComboLegsCount=0, smartComboRoutingParamsCount=0, notHeld=False,
        clearingIntent="IB", deltaNeutralContractPresent=False, solicited=False,
        status=status, randomizeSize=False, randomizePrice=False, conditionsCount=0,
        dontUseAutoPriceForHedge=True, isOmsContainer=False, filledQuantity=order.filled,
        refFuturesConId=0, autoCancelParent=False, imbalanceOnly=False,
        routeMarketableToBbo=False, parentPermId=0, completedTime=order.completed_time,
        completedStatus=f"{status} Size: {order.filled:g}",
    )  # fmt: skip


def exec_details(req_id: int, execution: Execution) -> list[str]:
    """execDetails (11), exactly 31 fields; ``req_id`` is -1 for live fills."""
    return encode_server(
        "execDetails",
        reqId=req_id, orderId=execution.order_id,
        **_contract_fields(execution.contract, execution.exchange),
        execId=execution.exec_id, time=execution.time, acctNumber=execution.account,
        execExchange=execution.exchange, side=execution.side, shares=execution.shares,
        price=execution.price, permId=execution.perm_id, clientId=execution.client_id,
        liquidation=0, cumQty=execution.cum_qty, avgPrice=execution.avg_price,
        orderRef=execution.order_ref, lastLiquidity=2,
    )  # fmt: skip


def commission_report(execution: Execution) -> list[str]:
    """commissionReport (59), 8 fields; realized PnL unset when opening."""
    pnl = execution.realized_pnl
    return encode_server(
        "commissionReport",
        execId=execution.exec_id, commission=execution.commission, currency="USD",
        realizedPNL="1.7976931348623157E308" if pnl is None else round(pnl, 6),
        yieldRedemptionDate="",
    )  # fmt: skip


def position(position: Position) -> list[str]:
    """position (61), 16 fields; the contract carries the primary exchange."""
    spec = position.contract
    return encode_server(
        "position",
        account=position.account, **_contract_fields(spec, spec.primary_exchange),
        position=position.quantity, avgCost=position.avg_cost,
    )


def portfolio(position: Position, quote: Quote) -> list[str]:
    """updatePortfolio (7), 20 fields, marked at ``quote.mark``."""
    spec = position.contract
    fields = _contract_fields(spec, "")
    fields.pop("exchange")
    price = quote.mark(position.avg_cost)
    value = position.quantity * price
    return encode_server(
        "updatePortfolio",
        **fields, primaryExchange=spec.primary_exchange, position=position.quantity,
        marketPrice=price, marketValue=round(value, 4), averageCost=position.avg_cost,
        unrealizedPNL=round(value - position.quantity * position.avg_cost, 4),
        realizedPNL=round(position.realized_pnl, 4), accountName=position.account,
    )  # fmt: skip


def ticks(req_id: int, quote: Quote, delayed: bool) -> list[list[str]]:
    """tickPrice/tickSize frames for every available field of ``quote``."""
    prices = DELAYED_TICKS if delayed else LIVE_TICKS
    sizes = DELAYED_SIZES if delayed else LIVE_SIZES
    frames = []
    for name, tick_type in prices.items():
        value = getattr(quote, name)
        if value is None:
            continue
        size = getattr(quote, _PRICE_SIZE[name]) if name in _PRICE_SIZE else 0
        frames.append(
            encode_server(
                "tickPrice", reqId=req_id, tickType=tick_type, price=value, size=size, attrMask=0
            )
        )
    frames.append(
        encode_server("tickSize", reqId=req_id, tickType=sizes["volume"], size=quote.volume)
    )
    return frames


def _price(value: float | None) -> object:
    return "1.7976931348623157E308" if value is None else value


def historical_bars(req_id: int, quote: Quote, end: datetime, count: int = 10) -> list[str]:
    """historicalData (17): ``count`` flat one-minute bars at the mark price.

    Why flat bars: the fake has no price history; the message exists so that a liveness
    probe (ib_async ``Watchdog``) or a smoke test gets a well-formed answer.
    """
    price = quote.mark(0.0)
    fmt = "%Y%m%d %H:%M:%S UTC"
    start = end - timedelta(minutes=count)
    fields = ["17", str(req_id), start.strftime(fmt), end.strftime(fmt), str(count)]
    for i in range(count):
        stamp = (start + timedelta(minutes=i)).strftime(fmt)
        bar = (stamp, price, price, price, price, 100, price, 1)
        fields += [format_value(v) for v in bar]
    return fields
