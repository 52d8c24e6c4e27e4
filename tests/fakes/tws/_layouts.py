"""Field-name tables of every message the fake encodes or decodes, at server version 176.

One table drives both the encoder and the decoder, so a layout is written down once.
Names follow ``ib-protocol.md`` (sections 4 and 5); the message id and the version field
are not part of the name lists. ``version`` is ``None`` for messages without one.
"""

from __future__ import annotations

from typing import NamedTuple


class Layout(NamedTuple):
    msg_id: int
    version: int | None
    names: tuple[str, ...]


CONTRACT_12 = (
    "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "multiplier", "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass",
)  # fmt: skip

_CONTRACT_DETAILS = (
    "reqId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "exchange", "currency", "localSymbol", "marketName", "tradingClass", "conId", "minTick",
    "multiplier", "orderTypes", "validExchanges", "priceMagnifier", "underConId", "longName",
    "primaryExchange", "contractMonth", "industry", "category", "subcategory", "timeZoneId",
    "tradingHours", "liquidHours", "evRule", "evMultiplier", "secIdListCount",
    "aggGroup", "underSymbol", "underSecType", "marketRuleIds", "realExpirationDate",
    "stockType", "minSize", "sizeIncrement", "suggestedSizeIncrement",
)  # fmt: skip
CONTRACT_DETAILS_SECID_AT = _CONTRACT_DETAILS.index("secIdListCount")

# openOrder (5) is decoded in three segments: the delta-neutral block is conditional.
OPEN_ORDER_HEAD = (
    "orderId", "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "multiplier", "exchange", "currency", "localSymbol", "tradingClass", "action",
    "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "ocaGroup", "account",
    "openClose", "origin", "orderRef", "clientId", "permId", "outsideRth", "hidden",
    "discretionaryAmt", "goodAfterTime", "sharesAllocation", "faGroup", "faMethod",
    "faPercentage", "faProfile", "modelCode", "goodTillDate", "rule80A", "percentOffset",
    "settlingFirm", "shortSaleSlot", "designatedLocation", "exemptCode", "auctionStrategy",
    "startingPrice", "stockRefPrice", "delta", "stockRangeLower", "stockRangeUpper",
    "displaySize", "blockOrder", "sweepToFill", "allOrNone", "minQty", "ocaType", "eTradeOnly",
    "firmQuoteOnly", "nbboPriceCap", "parentId", "triggerMethod", "volatility",
    "volatilityType", "deltaNeutralOrderType", "deltaNeutralAuxPrice",
)  # fmt: skip
DELTA_NEUTRAL_BLOCK = (
    "deltaNeutralConId", "deltaNeutralSettlingFirm", "deltaNeutralClearingAccount",
    "deltaNeutralClearingIntent", "deltaNeutralOpenClose", "deltaNeutralShortSale",
    "deltaNeutralShortSaleSlot", "deltaNeutralDesignatedLocation",
)  # fmt: skip
OPEN_ORDER_TAIL = (
    "continuousUpdate", "referencePriceType", "trailStopPrice", "trailingPercent",
    "basisPoints", "basisPointsType", "comboLegsDescrip", "comboLegsCount",
    "orderComboLegsCount", "smartComboRoutingParamsCount", "scaleInitLevelSize",
    "scaleSubsLevelSize", "scalePriceIncrement", "hedgeType", "optOutSmartRouting",
    "clearingAccount", "clearingIntent", "notHeld", "deltaNeutralContractPresent",
    "algoStrategy", "solicited", "whatIf", "status", "initMarginBefore", "maintMarginBefore",
    "equityWithLoanBefore", "initMarginChange", "maintMarginChange", "equityWithLoanChange",
    "initMarginAfter", "maintMarginAfter", "equityWithLoanAfter", "commission",
    "minCommission", "maxCommission", "commissionCurrency", "warningText", "randomizeSize",
    "randomizePrice", "conditionsCount", "adjustedOrderType", "triggerPrice",
    "adjustedTrailStopPrice", "lmtPriceOffset", "adjustedStopPrice", "adjustedStopLimitPrice",
    "adjustedTrailingAmount", "adjustableTrailingUnit", "softDollarTierName",
    "softDollarTierValue", "softDollarTierDisplayName", "cashQty", "dontUseAutoPriceForHedge",
    "isOmsContainer", "discretionaryUpToLimitPrice", "usePriceMgmtAlgo", "duration",
    "postToAts", "autoCancelParent", "minTradeQty", "minCompeteSize",
    "competeAgainstBestOffset", "midOffsetAtWhole", "midOffsetAtHalf",
)  # fmt: skip

_COMPLETED_ORDER = (
    "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "multiplier", "exchange", "currency", "localSymbol", "tradingClass", "action",
    "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "ocaGroup", "account",
    "openClose", "origin", "orderRef", "permId", "outsideRth", "hidden", "discretionaryAmt",
    "goodAfterTime", "faGroup", "faMethod", "faPercentage", "faProfile", "modelCode",
    "goodTillDate", "rule80A", "percentOffset", "settlingFirm", "shortSaleSlot",
    "designatedLocation", "exemptCode", "startingPrice", "stockRefPrice", "delta",
    "stockRangeLower", "stockRangeUpper", "displaySize", "sweepToFill", "allOrNone", "minQty",
    "ocaType", "triggerMethod", "volatility", "volatilityType", "deltaNeutralOrderType",
    "deltaNeutralAuxPrice", "continuousUpdate", "referencePriceType", "trailStopPrice",
    "trailingPercent", "comboLegsDescrip", "comboLegsCount", "orderComboLegsCount",
    "smartComboRoutingParamsCount", "scaleInitLevelSize", "scaleSubsLevelSize",
    "scalePriceIncrement", "hedgeType", "clearingAccount", "clearingIntent", "notHeld",
    "deltaNeutralContractPresent", "algoStrategy", "solicited", "status", "randomizeSize",
    "randomizePrice", "conditionsCount", "adjustedTrailStopPrice", "lmtPriceOffset", "cashQty",
    "dontUseAutoPriceForHedge", "isOmsContainer", "autoCancelDate", "filledQuantity",
    "refFuturesConId", "autoCancelParent", "shareholder", "imbalanceOnly",
    "routeMarketableToBbo", "parentPermId", "completedTime", "completedStatus", "minTradeQty",
    "minCompeteSize", "competeAgainstBestOffset", "midOffsetAtWhole", "midOffsetAtHalf",
)  # fmt: skip

_EXEC_DETAILS = (
    "reqId", "orderId", "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike",
    "right", "multiplier", "exchange", "currency", "localSymbol", "tradingClass", "execId",
    "time", "acctNumber", "execExchange", "side", "shares", "price", "permId", "clientId",
    "liquidation", "cumQty", "avgPrice", "orderRef", "evRule", "evMultiplier", "modelCode",
    "lastLiquidity",
)  # fmt: skip

_POSITION_CONTRACT = (
    "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "multiplier", "exchange", "currency", "localSymbol", "tradingClass",
)  # fmt: skip
_PORTFOLIO_CONTRACT = tuple(
    "primaryExchange" if name == "exchange" else name for name in _POSITION_CONTRACT
)

SERVER: dict[str, Layout] = {
    "nextValidId": Layout(9, 1, ("orderId",)),
    "managedAccounts": Layout(15, 1, ("accounts",)),
    "error": Layout(4, 2, ("reqId", "code", "message", "advancedOrderRejectJson")),
    "contractDetails": Layout(10, None, _CONTRACT_DETAILS),
    "contractDetailsEnd": Layout(52, 1, ("reqId",)),
    "openOrder": Layout(5, None, OPEN_ORDER_HEAD + OPEN_ORDER_TAIL),
    "openOrderEnd": Layout(53, 1, ()),
    "orderStatus": Layout(
        3,
        None,
        ("orderId", "status", "filled", "remaining", "avgFillPrice", "permId", "parentId",
         "lastFillPrice", "clientId", "whyHeld", "mktCapPrice"),
    ),  # fmt: skip
    "completedOrder": Layout(101, None, _COMPLETED_ORDER),
    "completedOrdersEnd": Layout(102, None, ()),
    "execDetails": Layout(11, None, _EXEC_DETAILS),
    "execDetailsEnd": Layout(55, 1, ("reqId",)),
    "commissionReport": Layout(
        59, 1, ("execId", "commission", "currency", "realizedPNL", "yield", "yieldRedemptionDate")
    ),
    "position": Layout(61, 3, ("account", *_POSITION_CONTRACT, "position", "avgCost")),
    "positionEnd": Layout(62, 1, ()),
    "accountSummary": Layout(63, 1, ("reqId", "account", "tag", "value", "currency")),
    "accountSummaryEnd": Layout(64, 1, ("reqId",)),
    "updateAccountValue": Layout(6, 2, ("key", "value", "currency", "accountName")),
    "updatePortfolio": Layout(
        7,
        8,
        (*_PORTFOLIO_CONTRACT, "position", "marketPrice", "marketValue", "averageCost",
         "unrealizedPNL", "realizedPNL", "accountName"),
    ),  # fmt: skip
    "updateAccountTime": Layout(8, 1, ("time",)),
    "accountDownloadEnd": Layout(54, 1, ("account",)),
    "accountUpdateMulti": Layout(
        73, 1, ("reqId", "account", "modelCode", "key", "value", "currency")
    ),
    "accountUpdateMultiEnd": Layout(74, 1, ("reqId",)),
    "tickPrice": Layout(1, 6, ("reqId", "tickType", "price", "size", "attrMask")),
    "tickSize": Layout(2, 6, ("reqId", "tickType", "size")),
    "tickGeneric": Layout(45, 6, ("reqId", "tickType", "value")),
    "tickString": Layout(46, 6, ("reqId", "tickType", "value")),
    "tickSnapshotEnd": Layout(57, 1, ("reqId",)),
    "marketDataType": Layout(58, 1, ("reqId", "marketDataType")),
    "tickReqParams": Layout(81, None, ("reqId", "minTick", "bboExchange", "snapshotPermissions")),
    "currentTime": Layout(49, 1, ("time",)),
}

_HISTORICAL_TAIL = (
    "includeExpired", "endDateTime", "barSize", "duration", "useRTH", "whatToShow",
    "formatDate", "keepUpToDate", "chartOptions",
)  # fmt: skip

PLACE_ORDER = (
    "orderId", *CONTRACT_12, "secIdType", "secId", "action", "totalQuantity", "orderType",
    "lmtPrice", "auxPrice", "tif", "ocaGroup", "account", "openClose", "origin", "orderRef",
    "transmit", "parentId", "blockOrder", "sweepToFill", "displaySize", "triggerMethod",
    "outsideRth", "hidden", "sharesAllocation", "discretionaryAmt", "goodAfterTime",
    "goodTillDate", "faGroup", "faMethod", "faPercentage", "faProfile", "modelCode",
    "shortSaleSlot", "designatedLocation", "exemptCode", "ocaType", "rule80A", "settlingFirm",
    "allOrNone", "minQty", "percentOffset", "eTradeOnly", "firmQuoteOnly", "nbboPriceCap",
    "auctionStrategy", "startingPrice", "stockRefPrice", "delta", "stockRangeLower",
    "stockRangeUpper", "overridePercentageConstraints", "volatility", "volatilityType",
    "deltaNeutralOrderType", "deltaNeutralAuxPrice", "continuousUpdate", "referencePriceType",
    "trailStopPrice", "trailingPercent", "scaleInitLevelSize", "scaleSubsLevelSize",
    "scalePriceIncrement", "scaleTable", "activeStartTime", "activeStopTime", "hedgeType",
    "optOutSmartRouting", "clearingAccount", "clearingIntent", "notHeld",
    "deltaNeutralContractPresent", "algoStrategy", "algoId", "whatIf", "orderMiscOptions",
    "solicited", "randomizeSize", "randomizePrice", "conditionsCount", "adjustedOrderType",
    "triggerPrice", "lmtPriceOffset", "adjustedStopPrice", "adjustedStopLimitPrice",
    "adjustedTrailingAmount", "adjustableTrailingUnit", "extOperator", "softDollarTierName",
    "softDollarTierValue", "cashQty", "mifid2DecisionMaker", "mifid2DecisionAlgo",
    "mifid2ExecutionTrader", "mifid2ExecutionAlgo", "dontUseAutoPriceForHedge",
    "isOmsContainer", "discretionaryUpToLimitPrice", "usePriceMgmtAlgo", "duration",
    "postToAts", "autoCancelParent", "advancedErrorOverride", "manualOrderTime",
)  # fmt: skip

# Client -> server. placeOrder (3) is listed for its id; its layout is PLACE_ORDER (no version).
CLIENT: dict[str, Layout] = {
    "startApi": Layout(71, 2, ("clientId", "optionalCapabilities")),
    "reqContractDetails": Layout(
        9, 8, ("reqId", *CONTRACT_12, "includeExpired", "secIdType", "secId", "issuerId")
    ),
    "placeOrder": Layout(3, None, PLACE_ORDER),
    "cancelOrder": Layout(4, 1, ("orderId", "manualCancelOrderTime")),
    "reqMktData": Layout(
        1,
        11,
        ("reqId", *CONTRACT_12, "deltaNeutralContractPresent", "genericTickList", "snapshot",
         "regulatorySnapshot", "mktDataOptions"),
    ),  # fmt: skip
    "cancelMktData": Layout(2, 2, ("reqId",)),
    "reqMarketDataType": Layout(59, 1, ("marketDataType",)),
    "reqPositions": Layout(61, 1, ()),
    "cancelPositions": Layout(64, 1, ()),
    "reqAccountSummary": Layout(62, 1, ("reqId", "groupName", "tags")),
    "cancelAccountSummary": Layout(63, 1, ("reqId",)),
    "reqOpenOrders": Layout(5, 1, ()),
    "reqAllOpenOrders": Layout(16, 1, ()),
    "reqAutoOpenOrders": Layout(15, 1, ("autoBind",)),
    "reqExecutions": Layout(
        7, 3, ("reqId", "clientId", "acctCode", "time", "symbol", "secType", "exchange", "side")
    ),
    "reqIds": Layout(8, 1, ("numIds",)),
    "reqCurrentTime": Layout(49, 1, ()),
    "reqAccountUpdates": Layout(6, 2, ("subscribe", "acctCode")),
    "reqAccountUpdatesMulti": Layout(76, 1, ("reqId", "account", "modelCode", "ledgerAndNLV")),
    "cancelAccountUpdatesMulti": Layout(77, 1, ("reqId",)),
    "reqCompletedOrders": Layout(99, None, ("apiOnly",)),
    "reqGlobalCancel": Layout(58, 1, ()),
    "reqManagedAccts": Layout(17, 1, ()),
    "reqHistoricalData": Layout(20, None, ("reqId", *CONTRACT_12, *_HISTORICAL_TAIL)),
    "cancelHistoricalData": Layout(25, 1, ("reqId",)),
}

SERVER_BY_ID = {layout.msg_id: name for name, layout in SERVER.items()}
CLIENT_BY_ID = {layout.msg_id: name for name, layout in CLIENT.items()}
