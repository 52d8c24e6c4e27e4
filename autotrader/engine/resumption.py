"""Whether an order found untransmitted at start may still be sent (pure).

A crash between the journal write and the broker call leaves an order that
never reached the broker. The restart may send it only into the session it was
meant for: the same broker, account, paper/live mode and API client id, and
only while the run it came from is the run being traded now. A DEMO run's order
never goes to a live account; an order without a recorded session (written
before sessions were recorded) never goes to a live one either. Everything
else is closed in the journal with the reason returned here, and the next
rebalance recomputes what is still needed.
"""

from __future__ import annotations

from autotrader.domain.records import OrderOrigin, RunIdentity, SessionIdentity

#: Run id of the protective stops the runner places for held positions: they belong to
#: a position, not to a recommendations run, so the run check does not apply to them.
STOP_RUN = "stop"
#: Run id of the orders a trader sends by hand from the GUI (flatten a position). They are
#: never resumed after a restart: the run check refuses them, and the trader decides again.
MANUAL_RUN = "manual"


def resume_refusal(origin: OrderOrigin, session: SessionIdentity,
                   current_run: RunIdentity | None) -> str | None:
    """Why the untransmitted order of ``origin`` must not be sent in ``session`` (None: send).

    Parameters
    ----------
    origin : the run and session recorded with the order.
    session : the session the trader runs now.
    current_run : the run the trader would trade now; None when there is no
        tradable run (missing, unreadable, or a DEMO run on a live account).

    Examples
    --------
    >>> paper = SessionIdentity("ib", "DU1", live=False, client_id=7)
    >>> live = SessionIdentity("ib", "U1", live=True, client_id=7)
    >>> demo = OrderOrigin(RunIdentity("r1", demo=True), paper)
    >>> resume_refusal(demo, paper, RunIdentity("r1", demo=True)) is None
    True
    >>> resume_refusal(demo, live, RunIdentity("r1", demo=True))
    'DEMO run r1: never transmitted to a live account'
    """
    refusal = _session_refusal(origin, session)
    if refusal is None and origin.run.run_id != STOP_RUN:
        refusal = _run_refusal(origin.run, current_run)
    return refusal


def _session_refusal(origin: OrderOrigin, session: SessionIdentity) -> str | None:
    if origin.run.demo and session.live:
        return f"DEMO run {origin.run.run_id}: never transmitted to a live account"
    journaled = origin.session
    if journaled is None:
        if session.live:
            return ("no session recorded with the order (journal older than session "
                    "records): never resumed onto a live account")
        return None
    differences = [
        f"{name} {theirs!r} -> {ours!r}"
        for name, theirs, ours in (
            ("broker", journaled.broker, session.broker),
            ("account", journaled.account, session.account),
            ("mode", _mode(journaled), _mode(session)),
            ("client id", journaled.client_id, session.client_id),
        )
        if theirs != ours
    ]
    if differences:
        return "journaled for another session: " + ", ".join(differences)
    return None


def _run_refusal(run: RunIdentity, current: RunIdentity | None) -> str | None:
    if current is None:
        return f"run {run.run_id} is not tradable now"
    if current.run_id != run.run_id:
        return f"journaled for run {run.run_id}, the current run is {current.run_id}"
    if current.demo != run.demo:
        return f"run {run.run_id} changed its data source since the order was journaled"
    return None


def _mode(session: SessionIdentity) -> str:
    return "LIVE" if session.live else "paper"
