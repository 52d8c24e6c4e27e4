"""Translation between IB library objects and the trader's domain records.

Never imports ib_async/ib_insync: the library module is passed in as ``lib``
(``ib.py`` is the only importer). Both libraries expose the same names
(``Order``, ``Trade``, ``Fill``, ``Execution``), so one translation serves both.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Any

from autotrader.domain.errors import BrokerError
from autotrader.domain.orders import Order, OrderStatus
from autotrader.domain.records import Fill, OrderRequest, OrderType, Side

# IB order status -> our status. PendingSubmit/ApiPending mean "not acknowledged yet"
# and ValidationError (ib_async: a warning on a live order) keeps the previous status.
_STATUS = {
    "ApiPending": OrderStatus.PENDING_SUBMIT,
    "PendingSubmit": OrderStatus.PENDING_SUBMIT,
    "PreSubmitted": OrderStatus.SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "PendingCancel": OrderStatus.PENDING_CANCEL,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Filled": OrderStatus.FILLED,
    "Inactive": OrderStatus.INACTIVE,
}


@dataclass(frozen=True)
class ErrorRule:
    """What an IB error code means for us: ``kind`` and, for orders, the status it implies."""

    kind: str  # order_rejected | order_cancelled | order_warning | contract | market_data |
    #            connectivity_lost | connectivity_restored | data_lost | pacing | client_id | info
    status: str | None = None
    text: str = ""


#: IB error code -> domain meaning (see ``docs/interactive-brokers.md`` for the table).
ERROR_RULES: dict[int, ErrorRule] = {
    100: ErrorRule("pacing", None, "max message rate exceeded"),
    103: ErrorRule("order_rejected", OrderStatus.REJECTED, "duplicate order id"),
    104: ErrorRule("order_warning", None, "cannot modify a filled order"),
    105: ErrorRule("order_warning", None, "modify does not match the original order"),
    110: ErrorRule("order_rejected", OrderStatus.REJECTED, "price off the minimum tick"),
    135: ErrorRule("order_warning", None, "order id not found (modify/cancel)"),
    161: ErrorRule("order_warning", None, "cancel of an order not cancellable"),
    162: ErrorRule("pacing", None, "historical data pacing violation"),
    200: ErrorRule("order_rejected", OrderStatus.REJECTED, "no security definition"),
    201: ErrorRule("order_rejected", OrderStatus.REJECTED, "order rejected"),
    202: ErrorRule("order_cancelled", OrderStatus.CANCELLED, "order cancelled"),
    326: ErrorRule("client_id", None, "client id already in use"),
    354: ErrorRule("market_data", None, "market data not subscribed"),
    434: ErrorRule("order_rejected", OrderStatus.REJECTED, "order size zero"),
    1100: ErrorRule("connectivity_lost", None, "TWS lost connectivity to IB"),
    1101: ErrorRule("data_lost", None, "connectivity restored, data lost"),
    1102: ErrorRule("connectivity_restored", None, "connectivity restored, data kept"),
    1300: ErrorRule("connectivity_lost", None, "socket port reset"),
    2110: ErrorRule("connectivity_lost", None, "TWS to server connectivity broken"),
    10089: ErrorRule("market_data", None, "market data requires a subscription"),
    10090: ErrorRule("market_data", None, "part of the market data not subscribed"),
    10091: ErrorRule("market_data", None, "market data requires a subscription"),
    10147: ErrorRule("order_warning", None, "order to cancel not found"),
    10148: ErrorRule("order_warning", None, "order cannot be cancelled in its state"),
    10167: ErrorRule("info", None, "displaying delayed market data"),
    10168: ErrorRule("market_data", None, "delayed market data not enabled"),
}
#: Codes that mean "no live permission for this symbol": ask for delayed data instead.
NO_LIVE_DATA_CODES = frozenset({354, 10089, 10090, 10091})
#: The delayed request failed too: fall back to the previous close.
NO_DELAYED_DATA_CODES = frozenset({10168})


def rule_for(code: int) -> ErrorRule:
    """Return the :class:`ErrorRule` of ``code``; 2100-2199 are informational farm notices."""
    if code in ERROR_RULES:
        return ERROR_RULES[code]
    if 2100 <= code < 2200:
        return ErrorRule("info", None, "farm status")
    return ErrorRule("order_warning", None, "unmapped error")


def domain_status(ib_status: str, filled: float, awaiting_parent: bool) -> str | None:
    """Our status for an IB status; ``None`` when it carries no news (e.g. ValidationError).

    A bracket child still waiting for its parent (IB ``PreSubmitted``) is
    ``Inactive``, as the paper broker reports it, so the runner does not treat
    a not-yet-armed stop as the position's live stop.
    """
    status = _STATUS.get(ib_status)
    if status is None:
        return None
    if status == OrderStatus.SUBMITTED:
        if awaiting_parent:
            return OrderStatus.INACTIVE
        if filled > 0:
            return OrderStatus.PARTIALLY_FILLED
    return status


def round_price(price: float, min_tick: float, side: Side, kind: str) -> float:
    """Round to the contract's minimum tick, never in the trader's favour of filling worse.

    Buy limits round down and sell limits up (never pay more than asked);
    stops round away from the market (a sell stop down, a buy stop up), so a
    rounded order is never more aggressive than the planner's.

    Examples
    --------
    >>> round_price(190.057, 0.01, Side.BUY, "limit")
    190.05
    >>> round_price(190.051, 0.01, Side.SELL, "limit")
    190.06
    >>> round_price(180.009, 0.05, Side.SELL, "stop")
    180.0
    """
    if not (math.isfinite(price) and price > 0 and min_tick > 0):
        raise BrokerError(f"cannot round price {price!r} to tick {min_tick!r}")
    ticks = price / min_tick
    down = (side is Side.BUY) == (kind == "limit")
    n = math.floor(ticks + 1e-9) if down else math.ceil(ticks - 1e-9)
    decimals = max(0, -math.floor(math.log10(min_tick)) + 2)
    return round(n * min_tick, decimals)


def build_order(lib: Any, request: OrderRequest, min_tick: float, *, order_id: int = 0,
                parent_id: int = 0, transmit: bool = True, account: str = "") -> Any:
    """Build a library ``Order`` for ``request`` with its ``orderRef`` and rounded prices."""
    side = request.side.value
    common = {"orderRef": request.order_ref, "tif": request.tif, "transmit": transmit,
              "orderId": order_id, "parentId": parent_id, "account": account}
    if request.oca_group:
        common.update(ocaGroup=request.oca_group, ocaType=1)
    if request.order_type is OrderType.MARKET:
        return lib.MarketOrder(side, request.quantity, **common)
    if request.order_type is OrderType.LIMIT:
        limit = request.limit_price
        if limit is None or not limit > 0:
            raise BrokerError(f"{request.order_ref}: a limit order needs a positive limit")
        price = round_price(limit, min_tick, request.side, "limit")
        return lib.LimitOrder(side, request.quantity, price, **common)
    if request.order_type is OrderType.STOP:
        stop = request.stop_price
        if stop is None or not stop > 0:
            raise BrokerError(f"{request.order_ref}: a stop order needs a positive stop")
        price = round_price(stop, min_tick, request.side, "stop")
        return lib.StopOrder(side, request.quantity, price, **common)
    raise BrokerError(f"{request.order_ref}: send a bracket with place_bracket or as "
                      "parent + children")


def _order_type(ib_type: str) -> OrderType:
    return {"MKT": OrderType.MARKET, "LMT": OrderType.LIMIT,
            "STP": OrderType.STOP}.get(ib_type, OrderType.LIMIT)


def _price(value: Any) -> float | None:
    # IB marks "unset" prices with UNSET_DOUBLE (~1.8e308) or 0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0 < number < 1e300 else None


def to_domain_order(trade: Any, filled: float, parent_refs: dict[int, str],
                    awaiting_parent: bool, previous: str | None,
                    completed_status: str | None = None) -> Order:
    """Convert a library ``Trade`` to a domain :class:`Order` (``filled`` from its executions).

    ``completed_status`` is IB's final status from a later ``reqCompletedOrders``
    (the libraries do not merge it into a trade they already hold); an order whose
    executions cover its quantity is Filled whatever its last status message said.
    """
    order, status = trade.order, trade.orderStatus
    kind = _order_type(order.orderType)
    filled = max(filled, float(status.filled or 0))
    ib_status = completed_status if completed_status and not trade.isDone() else status.status
    mapped = domain_status(ib_status, filled, awaiting_parent) or previous \
        or OrderStatus.SUBMITTED
    if mapped in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED) \
            and 0 < order.totalQuantity <= filled:
        mapped = OrderStatus.FILLED
    return Order(
        order_ref=order.orderRef, symbol=trade.contract.symbol, side=Side(order.action),
        quantity=int(order.totalQuantity), order_type=kind,
        limit_price=_price(order.lmtPrice) if kind is OrderType.LIMIT else None,
        stop_price=_price(order.auxPrice) if kind is OrderType.STOP else None,
        status=mapped, filled_qty=int(min(filled, order.totalQuantity)),
        avg_fill_price=float(status.avgFillPrice or 0.0),
        broker_order_id=str(order.orderId), parent_ref=parent_refs.get(order.parentId),
        oca_group=order.ocaGroup or None)


def to_domain_fill(fill: Any, order_ref: str) -> Fill:
    """Convert a library ``Fill`` to a domain :class:`Fill` (commission 0 until reported)."""
    execution = fill.execution
    report = fill.commissionReport
    commission = 0.0
    if report is not None and report.execId == execution.execId:
        commission = float(report.commission or 0.0)
    when = execution.time if isinstance(execution.time, dt.datetime) else None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return Fill(exec_id=execution.execId, order_ref=order_ref, symbol=fill.contract.symbol,
                side=Side.BUY if execution.side == "BOT" else Side.SELL,
                quantity=int(execution.shares), price=float(execution.price),
                commission=commission, time=when)


def book_executions(trades: list[Any], fills: list[Any]) -> list[Fill]:
    """Domain fills of the session, one per ``execId``, each with its ``orderRef``."""
    refs = {t.order.orderId: t.order.orderRef for t in trades}
    out: dict[str, Fill] = {}
    for fill in fills:
        ref = fill.execution.orderRef or refs.get(fill.execution.orderId, "")
        if ref:
            out.setdefault(fill.execution.execId, to_domain_fill(fill, ref))
    return list(out.values())


def book_orders(trades: list[Any], fills: list[Any], reported: dict[str, str],
                completed: dict[int, str] | None = None) -> list[Order]:
    """Domain orders of the session, one per ``orderRef`` (the working one wins).

    ``reported`` (ref -> last status sent as an event) fills in when IB's status
    carries no news (ib_async ``ValidationError``); ``completed`` (permId -> IB
    status) holds final statuses learnt from ``reqCompletedOrders`` after a gap.
    """
    completed = completed or {}
    trades = [t for t in trades if t.order.orderRef]
    by_ref: dict[str, list[Fill]] = {}
    for fill in book_executions(trades, fills):
        by_ref.setdefault(fill.order_ref, []).append(fill)
    # completed orders synced after a reconnect carry orderId 0 (keyed by permId in the lib)
    by_id = {t.order.orderId: t for t in trades if t.order.orderId > 0}
    parent_refs = {oid: t.order.orderRef for oid, t in by_id.items()}
    exec_order_ids = {f.execution.execId: f.execution.orderId for f in fills}
    out: dict[str, Order] = {}
    for trade in sorted(trades, key=lambda t: (not t.isDone(), t.order.orderId)):
        parent = by_id.get(trade.order.parentId)
        awaiting = parent is not None and parent.orderStatus.status != "Filled"
        ref = trade.order.orderRef
        own = by_ref.get(ref, [])
        order = to_domain_order(trade, sum(f.quantity for f in own), parent_refs, awaiting,
                                reported.get(ref), completed.get(trade.order.permId))
        out[ref] = _with_fill_facts(order, trade, own, exec_order_ids)
    return list(out.values())


def _with_fill_facts(order: Order, trade: Any, fills: list[Fill],
                     exec_order_ids: dict[str, int]) -> Order:
    broker_id = order.broker_order_id
    if trade.order.orderId <= 0:
        ids = [exec_order_ids[f.exec_id] for f in fills if exec_order_ids.get(f.exec_id, 0) > 0]
        broker_id = str(ids[0]) if ids else f"perm:{trade.order.permId}"
    avg = order.avg_fill_price
    if fills and not avg > 0:
        avg = sum(f.price * f.quantity for f in fills) / sum(f.quantity for f in fills)
    return replace(order, broker_order_id=broker_id, avg_fill_price=avg)
