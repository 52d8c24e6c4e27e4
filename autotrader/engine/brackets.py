"""Order units: what one planned order becomes at the broker, a single order or a bracket.

Why here (pure): expanding a planned bracket into parent, take-profit and stop
decides what the journal records and what the broker receives as one unit. It
depends only on the plan, so it is tested without a broker or journal. The
expansion dispatches on the plan's :class:`OrderType` through one table
(:data:`UNIT_BUILDERS`), never on how many requests came out of it.

:func:`resume_units` regroups journaled requests the same way after a crash, so
a bracket found untransmitted is sent again as a bracket (its parent never goes
live without its exits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Union

from autotrader.domain.records import OrderRequest, OrderType, Side
from autotrader.engine.planner import OrderPlan


class Bracket(NamedTuple):
    """A parent limit order with its take-profit and protective stop (one OCA group)."""

    parent: OrderRequest
    take_profit: OrderRequest
    stop_loss: OrderRequest


OrderUnit = Union[OrderRequest, Bracket]  # noqa: UP007 (runtime alias)


def _single(plan: OrderPlan, order_ref: str) -> OrderRequest:
    return OrderRequest(order_ref, plan.symbol, plan.side, plan.quantity, plan.order_type,
                        limit_price=plan.limit_price, stop_price=plan.stop_price)


def _bracket(plan: OrderPlan, order_ref: str) -> Bracket:
    oca = f"{order_ref}-oca"
    return Bracket(
        OrderRequest(order_ref, plan.symbol, plan.side, plan.quantity, OrderType.LIMIT,
                     limit_price=plan.limit_price),
        OrderRequest(f"{order_ref}-tp", plan.symbol, Side.SELL, plan.quantity, OrderType.LIMIT,
                     limit_price=plan.take_profit_price, parent_ref=order_ref, oca_group=oca),
        OrderRequest(f"{order_ref}-sl", plan.symbol, Side.SELL, plan.quantity, OrderType.STOP,
                     stop_price=plan.stop_price, parent_ref=order_ref, oca_group=oca),
    )


#: How each planned order type becomes a unit (add a row for a new type).
UNIT_BUILDERS: dict[OrderType, Callable[[OrderPlan, str], OrderUnit]] = {
    OrderType.MARKET: _single,
    OrderType.LIMIT: _single,
    OrderType.STOP: _single,
    OrderType.BRACKET: _bracket,
}


def order_unit(plan: OrderPlan, order_ref: str) -> OrderUnit:
    """Build the unit ``plan`` is sent as, with ``order_ref`` on its (parent) order.

    Raises
    ------
    ValueError
        The plan's order type has no row in :data:`UNIT_BUILDERS`.

    Examples
    --------
    >>> from autotrader.domain.records import OrderIntent
    >>> intent = OrderIntent("AAA", Side.BUY, 10, 50.0)
    >>> plan = OrderPlan(intent, 10, OrderType.BRACKET, limit_price=50.0,
    ...                  take_profit_price=53.0, stop_price=48.0)
    >>> [r.order_ref for r in unit_requests(order_unit(plan, "bma-1"))]
    ['bma-1', 'bma-1-tp', 'bma-1-sl']
    """
    try:
        build = UNIT_BUILDERS[plan.order_type]
    except KeyError as e:
        raise ValueError(f"no order unit for order type {plan.order_type!r}") from e
    return build(plan, order_ref)


def unit_requests(unit: OrderUnit) -> tuple[OrderRequest, ...]:
    """Return the requests of a unit, parent first (the order they are journaled in)."""
    return tuple(unit) if isinstance(unit, Bracket) else (unit,)


def resume_units(requests: Sequence[OrderRequest]) -> list[OrderUnit]:
    """Regroup untransmitted requests: a parent with both its children is one bracket.

    Anything else (a lone child whose parent already went out, a parent whose
    children are not all pending) stays a single request, in the given order.
    """
    children: dict[str, list[OrderRequest]] = {}
    for request in requests:
        if request.parent_ref is not None:
            children.setdefault(request.parent_ref, []).append(request)
    brackets: dict[str, Bracket] = {}
    for request in requests:
        kids = children.get(request.order_ref, [])
        take = [k for k in kids if k.order_type is OrderType.LIMIT]
        stop = [k for k in kids if k.order_type is OrderType.STOP]
        if request.parent_ref is None and len(kids) == 2 and len(take) == len(stop) == 1:
            brackets[request.order_ref] = Bracket(request, take[0], stop[0])
    grouped = {child.order_ref for b in brackets.values() for child in b[1:]}
    return [brackets.get(r.order_ref, r) for r in requests if r.order_ref not in grouped]
