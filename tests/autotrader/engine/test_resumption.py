"""What a restart may resume (the rule) and what one plan is sent as (order units); pure."""

from __future__ import annotations

import pytest

from autotrader.domain.records import (
    OrderIntent,
    OrderOrigin,
    OrderType,
    RunIdentity,
    SessionIdentity,
    Side,
)
from autotrader.engine.brackets import (
    UNIT_BUILDERS,
    Bracket,
    order_unit,
    resume_units,
    unit_requests,
)
from autotrader.engine.planner import OrderPlan
from autotrader.engine.resumption import STOP_RUN, resume_refusal

PAPER_IB = SessionIdentity("ib", "DU1", live=False, client_id=7)
LIVE_IB = SessionIdentity("ib", "U1", live=True, client_id=7)
RUN = RunIdentity("20260301-run")


# -- the rule -------------------------------------------------------------------------------
@pytest.mark.parametrize(("origin", "session", "current", "refused_for"), [
    (OrderOrigin(RUN, PAPER_IB), PAPER_IB, RUN, None),
    (OrderOrigin(RunIdentity("r", demo=True), PAPER_IB), LIVE_IB, RunIdentity("r", True),
     "DEMO run r"),
    (OrderOrigin(RUN, PAPER_IB), LIVE_IB, RUN, "account 'DU1' -> 'U1', mode 'paper' -> 'LIVE'"),
    (OrderOrigin(RUN, PAPER_IB), SessionIdentity("ib", "DU1", False, 8), RUN,
     "client id 7 -> 8"),
    (OrderOrigin(RUN, PAPER_IB), SessionIdentity("paper", "PAPER", False), RUN, "broker 'ib'"),
    (OrderOrigin(RUN, PAPER_IB), PAPER_IB, RunIdentity("20260302-run"),
     "the current run is 20260302-run"),
    (OrderOrigin(RUN, PAPER_IB), PAPER_IB, None, "not tradable"),
    (OrderOrigin(RUN, None), LIVE_IB, RUN, "never resumed onto a live account"),
    (OrderOrigin(RUN, None), PAPER_IB, RUN, None),  # no session recorded: paper only
    (OrderOrigin(RunIdentity(STOP_RUN), PAPER_IB), PAPER_IB, None, None),  # a stop: no run
])
def test_resume_refusal_names_what_differs(origin, session, current, refused_for):
    reason = resume_refusal(origin, session, current)
    if refused_for is None:
        assert reason is None
    else:
        assert reason is not None and refused_for in reason


# -- order units ------------------------------------------------------------------------------
def _plan(kind: OrderType) -> OrderPlan:
    intent = OrderIntent("AAA", Side.BUY, 10, 50.0)
    return OrderPlan(intent, 10, kind, limit_price=50.0, take_profit_price=53.0,
                     stop_price=48.0)


@pytest.mark.parametrize("kind", list(OrderType))
def test_every_order_type_has_a_unit_and_only_a_bracket_expands(kind):
    assert set(UNIT_BUILDERS) == set(OrderType)
    unit = order_unit(_plan(kind), "ref")
    requests = unit_requests(unit)
    if kind is OrderType.BRACKET:
        assert isinstance(unit, Bracket)
        assert [(r.order_ref, r.side, r.order_type, r.parent_ref) for r in requests] == [
            ("ref", Side.BUY, OrderType.LIMIT, None),
            ("ref-tp", Side.SELL, OrderType.LIMIT, "ref"),
            ("ref-sl", Side.SELL, OrderType.STOP, "ref")]
        assert {r.oca_group for r in requests[1:]} == {"ref-oca"}
    else:
        assert requests == (unit,) and unit.order_type is kind


def test_resume_units_regroup_a_whole_bracket_and_leave_parts_single():
    bracket = order_unit(_plan(OrderType.BRACKET), "b")
    single = order_unit(_plan(OrderType.LIMIT), "s")
    # children listed before their parent still make one bracket, nothing twice
    units = resume_units([bracket.stop_loss, single, bracket.parent, bracket.take_profit])
    assert units == [single, bracket]
    lone_child = resume_units([bracket.take_profit])
    assert lone_child == [bracket.take_profit]
    parent_and_one_child = resume_units([bracket.parent, bracket.stop_loss])
    assert parent_and_one_child == [bracket.parent, bracket.stop_loss]
