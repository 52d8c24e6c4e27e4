"""The trading runner: one cycle = refresh prices -> rebalance -> risk -> plan -> submit -> monitor.

The runner is the only place where the pure engine meets the journal and the
broker. Its one hard rule is *write before transmit*: every order is journaled
(state ``PendingSubmit``) before :meth:`Broker.place` is called, and on start
the journal is reconciled with the broker so that an order the broker already
knows (by ``order_ref``) is never sent again, while one that never reached it
is sent exactly once.

Every order is journaled with the session and the run that created it, and a
restart resumes an untransmitted order only into that session
(:mod:`autotrader.engine.resumption`); a DEMO run's order is refused on a live
account on every path (:meth:`TradingRunner._transmit_unit`).

Every decision is logged on one line (``DECISION ... SUBMIT`` or
``DECISION ... DENY <check>: <reason>``) and counted in :class:`HealthMetrics`.
After every cycle the book is written to ``<state>/book.json`` (the journal's
directory; :mod:`autotrader.services.book`) and the plan-versus-book table is
logged (:mod:`autotrader.engine.plan_status`): what ``autotrader status`` prints
and what research reads as the current book.

Checkpoints: the runner calls ``checkpoint("after-journal")`` right after an
order unit is journaled and before it is placed, and ``checkpoint("after-place")``
right after the broker accepted it and before the journal marks it transmitted.
Production passes nothing (a no-op); the crash tests install a callback that
kills the process there (``tests/autotrader/crash_entry.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from zoneinfo import ZoneInfo

from autotrader.broker.base import Broker
from autotrader.domain.errors import (
    BrokerError,
    JournalError,
    RecommendationsError,
    SessionError,
)
from autotrader.domain.orders import Order, OrderStatus
from autotrader.domain.records import (
    Fill,
    OrderOrigin,
    OrderRequest,
    OrderStatusEvent,
    OrderType,
    Position,
    RunIdentity,
    SessionIdentity,
    Side,
)
from autotrader.engine.brackets import (
    Bracket,
    OrderUnit,
    order_unit,
    resume_units,
    unit_requests,
)
from autotrader.engine.cycle import BookState, Decision, decide, decide_exit, market_inputs
from autotrader.engine.plan_status import format_status, plan_vs_book
from autotrader.engine.resumption import MANUAL_RUN, STOP_RUN, resume_refusal
from autotrader.engine.risk import TradingState
from autotrader.engine.stops import StopAction, plan_stop_update, trailing_stop_price
from autotrader.journal import Journal, ReconcileReport
from autotrader.services.book import BOOK_FILE, write_book
from autotrader.services.cycle_records import (
    CycleReport,
    HealthMetrics,
    ManualResult,
    OrderPreview,
    PreviewLine,
    TraderSettings,
    book_snapshot,
)
from autotrader.services.market_session import run_age_sessions
from autotrader.services.recommendations import RecommendationSet, ReturnsForCycles

logger = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")


#: the journal's key of the kill switch
TRADING_STATE_KEY = "trading_state"


def journal_trading_state(journal: Journal) -> TradingState:
    """Return the kill switch recorded in ``journal`` (ACTIVE when never set)."""
    return TradingState(journal.get_value(TRADING_STATE_KEY, TradingState.ACTIVE.value))


def set_journal_trading_state(journal: Journal, state: TradingState) -> None:
    """Record the kill switch in ``journal`` (the runner reads it at every cycle)."""
    logger.warning("trading state -> %s", TradingState(state).value)
    journal.set_value(TRADING_STATE_KEY, TradingState(state).value)


def _no_checkpoint(stage: str) -> None:
    return None


def _is_exit_order(order: Order) -> bool:
    return order.side is Side.SELL and (order.parent_ref is not None
                                        or order.order_type is OrderType.STOP)


def _another_trader_text(orders: Mapping[str, int]) -> str:
    refs = sorted(orders)
    ids = ", ".join(str(i) for i in sorted(set(orders.values())))
    shown = ", ".join(refs[:3]) + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")
    return (f"{len(refs)} working order(s) of another trader on this account (client id {ids}: "
            f"{shown}) are not in this journal: trading now would double them. Stop the other "
            "trader (another state directory or machine), or cancel its orders in TWS; this "
            "trader sends no order meanwhile.")


def _default_market_open(now: dt.datetime) -> bool:
    from bma_models.data import calendar

    return calendar.is_open(now)


class TradingRunner:
    """Drive trading cycles against one broker and one journal.

    Parameters
    ----------
    broker : any :class:`autotrader.broker.base.Broker`.
    journal : an opened :class:`autotrader.journal.Journal`.
    recommendations : returns the run to trade (raises ``RecommendationsError``).
    settings : engine parameters (:class:`TraderSettings`).
    clock : returns the current timezone-aware time (inject a fake one in tests).
    market_open : ``now -> bool``; default is the NYSE calendar. An exception
        counts as "unknown" and the risk chain fails closed.
    run_age : ``(run's last bar date, now) -> int``, the NYSE sessions completed
        since the run's data; default is the NYSE calendar. An exception counts as
        "unknown" and the risk chain's ``run_age`` check fails closed.
    settings_source : optional ``() -> TraderSettings`` called at the start of
        every cycle (hot reload: a new config applies from the next cycle).
    checkpoint : optional ``stage -> None`` called at ``"after-journal"`` and
        ``"after-place"`` (see the module docstring); a test seam, None in production.
    """

    def __init__(self, broker: Broker, journal: Journal,
                 recommendations: Callable[[], RecommendationSet],
                 settings: TraderSettings | None = None,
                 clock: Callable[[], dt.datetime] | None = None,
                 market_open: Callable[[dt.datetime], bool] | None = None,
                 settings_source: Callable[[], TraderSettings] | None = None,
                 checkpoint: Callable[[str], None] | None = None,
                 run_age: Callable[[dt.date, dt.datetime], int] | None = None) -> None:
        self.broker = broker
        self.journal = journal
        self.recommendations = recommendations
        self.settings = settings or TraderSettings()
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.market_open = market_open or _default_market_open
        self.run_age = run_age or run_age_sessions
        self._stale_runs_warned: set[str] = set()
        self._losing_runs_warned: set[str] = set()
        self.settings_source = settings_source
        self.checkpoint = checkpoint or _no_checkpoint
        self.health = HealthMetrics()
        self._returns = ReturnsForCycles()

    # -- life cycle --------------------------------------------------------------------------
    @property
    def trading_state(self) -> TradingState:
        """The kill switch, persisted in the journal so HALTED survives a restart."""
        return journal_trading_state(self.journal)

    def set_trading_state(self, state: TradingState) -> None:
        """Record the kill switch ``state`` in the journal (:func:`set_journal_trading_state`)."""
        set_journal_trading_state(self.journal, state)

    def start(self) -> ReconcileReport:
        """Connect, check the session, reconcile the journal and resume what never reached it.

        1. Orders of this journal still working at the broker under another API
           client id stop the start with :class:`SessionError` naming both ids:
           only their own client may cancel or modify them (IB), so trading on
           with this id would leave them unmanaged. A client id change with none
           of them working is logged at WARNING and accepted.
        2. The journal is reconciled with the broker by ``order_ref`` and the
           session is recorded in it.
        3. An order journaled but never transmitted is sent now only when
           :func:`~autotrader.engine.resumption.resume_refusal` allows it (same
           broker, account, mode and client id; its run is the run traded now
           and tradable here; a DEMO run's order never onto a live account),
           it was journaled today, the market is open and the kill switch allows
           it. Otherwise it is closed in the journal with the reason (WARNING);
           the next rebalance recomputes what is still needed. Either way it is
           never sent twice: the broker did not know its ``order_ref``.

        Raises
        ------
        SessionError
            The journal's working orders belong to another client id.
        BrokerError
            The broker cannot be reached (after its retry policy).
        """
        self.broker.connect()
        session = self.broker.session()
        self._refuse_foreign_orders(session)
        others = self._other_traders_orders()
        if others:
            raise SessionError(_another_trader_text(others))
        now = self.clock()
        report = self.journal.reconcile(self.broker, now)
        self.journal.record_session(session)
        cycle = CycleReport(now)
        if report.to_transmit:
            self._resume(report.to_transmit, session, now, cycle)
        self._ingest_events(cycle)
        return report

    def _other_traders_orders(self) -> dict[str, int]:
        """``order_ref -> client id`` of working orders that another trader of this product placed.

        Refs of this product's scheme (``<order_ref_prefix>-...``) worked by another API
        client and never written by this journal: a second workstation (another state
        directory, or another machine, which the account lock cannot see) trading the
        account. Its working buys are invisible to this trader's rebalance, which would
        buy the same names again. (A ref this journal wrote but another client id works
        is a client id change: :meth:`_refuse_foreign_orders`.)
        """
        prefix = f"{self.settings.order_ref_prefix}-"
        return {ref: client for ref, client in self.broker.foreign_working_orders().items()
                if ref.startswith(prefix) and self.journal.order(ref) is None}

    def _another_trader(self, report: CycleReport) -> bool:
        """Record and log another trader's working orders; True when this cycle must not trade."""
        others = self._other_traders_orders()
        if others:
            text = _another_trader_text(others)
            logger.error("%s", text)
            report.failures.append(f"another trader: {text}")
        return bool(others)

    def _refuse_foreign_orders(self, session: SessionIdentity) -> None:
        foreign = self.broker.foreign_working_orders()
        ours = {o.order_ref for o in self.journal.orders(active_only=True)}
        clash = sorted(ref for ref in foreign if ref in ours)
        if clash:
            ids = ", ".join(str(i) for i in sorted({foreign[ref] for ref in clash}))
            shown = ", ".join(clash[:5]) + (f" and {len(clash) - 5} more" if len(clash) > 5
                                            else "")
            raise SessionError(
                f"{len(clash)} order(s) of this journal are working at the broker under client "
                f"id {ids} ({shown}), but this session connects as client id "
                f"{session.client_id}. Only the client that placed an order may cancel or "
                "modify it, so this session could not manage them. Restart with "
                f"connection.client_id = {ids}, or cancel those orders in TWS first (the next "
                "start then reconciles them as cancelled).")
        previous = self.journal.recorded_session()
        if previous is not None and previous.broker == session.broker \
                and previous.client_id != session.client_id:
            logger.warning("client id changed from %s to %s: no order of this journal is "
                           "working under another client id at the broker; continuing",
                           previous.client_id, session.client_id)

    def _resume(self, requests: list[OrderRequest], session: SessionIdentity,
                now: dt.datetime, report: CycleReport) -> None:
        current = self._current_run(report)
        dropped: set[str] = set()
        for request in requests:  # parents come before their children
            reason = self._resume_refusal(request, session, current, now, report)
            if reason is None and request.parent_ref in dropped:
                reason = "parent not resumed"
            if reason is not None:
                dropped.add(request.order_ref)
                logger.warning("not resuming untransmitted %s: %s", request.order_ref, reason)
                self.journal.mark_cancelled(request.order_ref, now, f"not resumed: {reason}")
        for unit in resume_units([r for r in requests if r.order_ref not in dropped]):
            logger.warning("resuming untransmitted order %s", unit_requests(unit)[0].order_ref)
            self._transmit_unit(unit, now, report)

    def _current_run(self, report: CycleReport) -> RunIdentity | None:
        recs = self._load_recommendations(report)
        return None if recs is None else RunIdentity(recs.run_id, recs.is_demo)

    def _resume_refusal(self, request: OrderRequest, session: SessionIdentity,
                        current: RunIdentity | None, now: dt.datetime,
                        report: CycleReport) -> str | None:
        origin = self.journal.origin(request.order_ref)
        reason = resume_refusal(origin, session, current)
        if reason is not None:
            return reason
        if self.journal.intent_day(request.order_ref) != now.astimezone(NEW_YORK).date():
            return "journaled on an earlier day"
        state = self.trading_state
        if state is TradingState.HALTED or (state is TradingState.REDUCING
                                            and request.side is Side.BUY):
            return f"trading state {state.value}"
        if not self._market_open(now, report):
            return "market closed or calendar unavailable"
        if origin.session is None:
            logger.warning("%s has no recorded session (journal older than session records); "
                           "resuming it on the paper session %s", request.order_ref,
                           session.describe())
        return None

    def stop(self) -> None:
        """Disconnect from the broker."""
        self.broker.disconnect()

    def run_loop(self, interval_s: float, max_cycles: int | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        """Run cycles every ``interval_s`` seconds (``max_cycles`` None = forever)."""
        sleep = sleep or time.sleep
        done = 0
        while max_cycles is None or done < max_cycles:
            started = time.monotonic()
            self.run_cycle()
            done += 1
            if max_cycles is None or done < max_cycles:
                sleep(max(0.0, interval_s - (time.monotonic() - started)))

    # -- one cycle ---------------------------------------------------------------------------
    def preview(self) -> OrderPreview:
        """Return the orders the next cycle would send now, without journaling or sending them.

        The same inputs and the same engine call as :meth:`run_cycle` (target
        portfolio of the newest run vs the current book, then the risk chain and
        the planner), stopped before any order is journaled or placed. Broker
        events already waiting are ingested first, as a cycle does, so the book
        is current; the only other write is the day's start-of-day equity mark,
        which the cycle would record the same way.

        Why a separate entry point: a trader checks the list before pressing
        "Send"; the list must come from the exact code path of the cycle, not a
        copy of it. A cycle run right after recomputes it at the prices of that
        moment, so the submitted orders equal the preview's ``SEND`` lines only
        while prices, the book and the kill switch are unchanged.

        Returns
        -------
        OrderPreview
            Never raises for broker, journal or recommendation failures: they
            are in ``failures`` (and ``lines`` is then empty or partial).

        Examples
        --------
        >>> preview = runner.preview()  # doctest: +SKIP
        >>> [line.outcome for line in preview.lines]  # doctest: +SKIP
        ['SEND', 'DENY market_hours: market closed']
        """
        now = self.clock()
        report = CycleReport(now)
        if self.settings_source is not None:
            self.settings = self.settings_source()
        lines: list[PreviewLine] = []
        try:
            self._ingest_events(report)
            recs = self._load_recommendations(report)
            if recs is not None and not self._another_trader(report):
                held = self.broker.positions()
                for d in self._decisions(recs, now, report):
                    current = held[d.intent.symbol].quantity if d.intent.symbol in held else 0
                    plan = d.plan
                    lines.append(PreviewLine(
                        d.intent.symbol, d.intent.side,
                        plan.quantity if plan else d.intent.quantity, current,
                        plan.order_type if plan else None, plan.limit_price if plan else None,
                        d.denial))
        except (BrokerError, JournalError) as e:
            logger.error("preview aborted: %s", e)
            report.failures.append(f"{type(e).__name__}: {e}")
        logger.info("preview %s: %d intents, %d would be sent, failures %d", report.run_id,
                    len(lines), sum(line.sends for line in lines), len(report.failures))
        return OrderPreview(report.run_id, now, tuple(lines), tuple(report.failures),
                            dict(report.fallbacks))

    def run_cycle(self) -> CycleReport:
        """Run one full cycle; never raises for broker, journal or input failures (recorded)."""
        started = time.perf_counter()
        now = self.clock()
        report = CycleReport(now)
        if self.settings_source is not None:
            self.settings = self.settings_source()
        try:
            self._ingest_events(report)
            recs = self._load_recommendations(report)
            if recs is not None and not self._another_trader(report):
                self._trade(recs, now, report)
            self._ingest_events(report)
            self._update_stops(recs, now, report)
            self._ingest_events(report)
            self._record_book(recs, now, report)
        except (BrokerError, JournalError) as e:
            logger.error("cycle aborted: %s", e)
            report.failures.append(f"{type(e).__name__}: {e}")
        report.cycle_time_s = time.perf_counter() - started
        self.health.record(report)
        logger.info("cycle %s: %d intents, %d submitted, denials %s, fallbacks %s, "
                    "failures %d, %.3fs", now.isoformat(timespec="seconds"), report.intents,
                    len(report.submitted), dict(report.denials), report.fallbacks,
                    len(report.failures), report.cycle_time_s)
        return report

    def _load_recommendations(self, report: CycleReport) -> RecommendationSet | None:
        try:
            recs = self.recommendations()
        except RecommendationsError as e:
            logger.error("no recommendations this cycle: %s", e)
            report.failures.append(f"recommendations: {e}")
            return None
        if recs.is_demo and self.broker.is_live:
            report.failures.append(f"recommendations: demo run {recs.run_id} on a live broker")
            logger.error("refusing demo run %s on a live broker", recs.run_id)
            return None
        report.run_id = recs.run_id
        signal = recs.signal
        if (signal is not None and not signal.beats_all_baselines
                and recs.run_id not in self._losing_runs_warned):
            self._losing_runs_warned.add(recs.run_id)  # once per run, not every cycle
            logger.warning("run %s: its fused score does NOT beat every baseline (loses to %s, "
                           "the run's Baselines sheet); trading its plan as configured",
                           recs.run_id, ", ".join(signal.beaten_by) or "a baseline")
        return recs

    def _ingest_events(self, report: CycleReport) -> None:
        now = self.clock()
        for event in self.broker.poll_events():
            report.events += 1
            if isinstance(event, Fill):
                self.journal.apply_fill(event)
            elif isinstance(event, OrderStatusEvent):
                self.journal.apply_status(event, now)

    def _market_open(self, now: dt.datetime, report: CycleReport) -> bool | None:
        try:
            return bool(self.market_open(now))
        except Exception as e:  # noqa: BLE001 - any calendar failure means "unknown" -> closed
            logger.error("market calendar failed, failing closed: %s", e)
            report.failures.append(f"calendar: {e}")
            return None

    def _run_age(self, recs: RecommendationSet, now: dt.datetime,
                  report: CycleReport) -> int | None:
        """Sessions completed since the run's last bar; None when unknown (fails closed)."""
        age = None
        if recs.last_date is not None:
            try:
                age = int(self.run_age(recs.last_date, now))
            except Exception as e:  # noqa: BLE001 - any calendar failure: "unknown" -> closed
                logger.error("run age unknown, failing closed: %s", e)
                report.failures.append(f"calendar: {e}")
        report.run_age_sessions = age
        limit = self.settings.risk.max_run_age_sessions
        stale = limit is not None and (age is None or age > limit)
        if stale and recs.run_id not in self._stale_runs_warned:
            self._stale_runs_warned.add(recs.run_id)  # once per run, not every cycle
            logger.warning("run %s (data to %s) is %s sessions old (limit %s): no new buys "
                           "until research runs again", recs.run_id,
                           recs.last_date or "an unrecorded date",
                           "an unknown number of" if age is None else age, limit)
        return age

    def _book(self, prices: dict[str, float]) -> BookState:
        account = self.broker.account()
        positions = self.broker.positions()
        active = self.journal.orders(active_only=True)
        entries = [o for o in active if not _is_exit_order(o)]
        in_flight: dict[str, int] = {}
        for order in entries:
            in_flight[order.symbol] = in_flight.get(order.symbol, 0) + order.side.sign * \
                order.remaining
        pending_buys = sum(o.remaining * (o.limit_price or prices.get(o.symbol, 0.0))
                           for o in entries if o.side is Side.BUY)
        local = self.clock().astimezone(NEW_YORK)
        day = local.date()
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        key = f"day_start_equity:{day.isoformat()}"
        day_start = self.journal.get_value(key)
        if day_start is None:
            day_start = repr(account.equity)
            self.journal.set_value(key, day_start)
        return BookState(
            account=account, positions=positions, in_flight=in_flight,
            open_order_keys=frozenset((o.symbol, o.side.value) for o in entries),
            exit_order_symbols=frozenset(o.symbol for o in active if _is_exit_order(o)),
            pending_buy_value=pending_buys, daily_orders=self.journal.daily_orders(day),
            day_start_equity=float(day_start),
            stopped_out=frozenset(self.journal.stopped_out_symbols(midnight)))

    def _decisions(self, recs: RecommendationSet, now: dt.datetime,
                   report: CycleReport) -> list[Decision]:
        symbols = {r.ticker for r in recs.rows} | set(self.broker.positions())
        quotes = self.broker.quotes(sorted(symbols))
        inputs = market_inputs(recs.rows, quotes, sorted(self.broker.positions()),
                               self.settings.default_atr_pct, report.fallbacks)
        prices = {s: q.reference_price for s, q in inputs.quotes.items()}
        report.prices = prices
        book = self._book(prices)
        returns = self._returns.for_cycle(recs, self.settings.risk.correlation_window, symbols,
                                          report.fallbacks, report.failures)
        return decide(
            recs.rows, book, inputs, now=now, market_open=self._market_open(now, report),
            limits=self.settings.risk, sizing=self.settings.sizing,
            planner=self.settings.planner, trading_state=self.trading_state,
            last_order_at=self.journal.last_order_times(), returns=returns,
            run_age_sessions=self._run_age(recs, now, report))

    def _trade(self, recs: RecommendationSet, now: dt.datetime, report: CycleReport) -> None:
        decisions = self._decisions(recs, now, report)
        report.decisions = decisions
        report.intents = len(decisions)
        run = RunIdentity(recs.run_id, recs.is_demo)
        for decision in decisions:
            self._act(decision, run, now, report)

    def _act(self, decision: Decision, run: RunIdentity, now: dt.datetime,
             report: CycleReport) -> None:
        intent = decision.intent
        head = f"DECISION {intent.side.value} {intent.quantity} {intent.symbol} ({intent.reason})"
        if decision.denial is not None:
            report.denials[decision.denial.check] += 1
            report.denial_reasons.setdefault(decision.denial.check, decision.denial.reason)
            logger.info("%s -> DENY %s: %s", head, decision.denial.check, decision.denial.reason)
            if decision.denial.check == "exit_orders_working":
                report.exiting.add(intent.symbol)
                self._cancel_exit_orders(intent.symbol, now, report)
            return
        plan = decision.plan
        assert plan is not None
        day = now.astimezone(NEW_YORK).date()
        ref = self.journal.next_order_ref(day, run.run_id, plan.symbol,
                                          self.settings.order_ref_prefix)
        unit = order_unit(plan, ref)
        logger.info("%s -> SUBMIT %s %d @ %s%s as %s", head, plan.order_type.value,
                    plan.quantity, plan.limit_price,
                    f" tp {plan.take_profit_price} sl {plan.stop_price}"
                    if plan.order_type is OrderType.BRACKET else "", ref)
        self.journal.record_unit(unit_requests(unit), now, day,
                                 OrderOrigin(run, self.broker.session()))
        self.checkpoint("after-journal")
        self._transmit_unit(unit, now, report)

    def _transmit_unit(self, unit: OrderUnit, now: dt.datetime, report: CycleReport) -> None:
        # the one way out to the broker: every path (cycle, resume, stops) goes through here
        requests = unit_requests(unit)
        origin = self.journal.origin(requests[0].order_ref)
        if origin.run.demo and self.broker.is_live:
            reason = f"DEMO run {origin.run.run_id}: never transmitted to a live account"
            logger.error("refusing %s: %s", requests[0].order_ref, reason)
            report.failures.append(f"place: {requests[0].order_ref}: {reason}")
            for request in requests:
                self.journal.mark_cancelled(request.order_ref, now, reason)
            return
        if isinstance(unit, Bracket):
            self._transmit_bracket(unit, now, report)
        else:
            self._transmit(unit, now, report)

    def _transmit(self, request: OrderRequest, now: dt.datetime, report: CycleReport) -> bool:
        try:
            broker_id = self.broker.place(request)
        except BrokerError as e:
            logger.error("place %s failed: %s", request.order_ref, e)
            report.failures.append(f"place: {request.order_ref}: {e}")
            self.journal.mark_failed(request.order_ref, now, str(e))
            return False
        self.checkpoint("after-place")
        self.journal.mark_transmitted(request.order_ref, broker_id, now)
        report.submitted.append(request.order_ref)
        return True

    def _transmit_bracket(self, bracket: Bracket, now: dt.datetime,
                          report: CycleReport) -> None:
        try:
            broker_ids = self.broker.place_bracket(*bracket)
        except BrokerError as e:
            logger.error("bracket %s failed: %s", bracket.parent.order_ref, e)
            report.failures.append(f"place: {bracket.parent.order_ref}: {e}")
            for request in bracket:  # never leave parts to be resumed later
                self.journal.mark_failed(request.order_ref, now, f"bracket not placed: {e}")
            return
        self.checkpoint("after-place")
        for request, broker_id in zip(bracket, broker_ids, strict=True):
            self.journal.mark_transmitted(request.order_ref, broker_id, now)
            report.submitted.append(request.order_ref)

    def _cancel_exit_orders(self, symbol: str, now: dt.datetime, report: CycleReport) -> None:
        for order in self.journal.orders(active_only=True):
            if order.symbol == symbol and _is_exit_order(order) and \
                    order.status != OrderStatus.PENDING_CANCEL:
                self._cancel(order.order_ref, now, report)

    def _cancel(self, order_ref: str, now: dt.datetime, report: CycleReport) -> None:
        try:
            self.broker.cancel(order_ref)
        except BrokerError as e:
            report.failures.append(f"cancel: {order_ref}: {e}")
            logger.error("cancel %s failed: %s", order_ref, e)
            return
        self.journal.apply_status(OrderStatusEvent(order_ref, "PendingCancel"), now)
        logger.info("cancel requested for %s", order_ref)

    # -- plan versus book --------------------------------------------------------------------
    def _record_book(self, recs: RecommendationSet | None, now: dt.datetime,
                     report: CycleReport) -> None:
        """Write ``book.json`` next to the journal and log the plan-versus-book table."""
        account, positions = self.broker.account(), self.broker.positions()
        unpriced = [s for s in positions if s not in report.prices]
        if unpriced:
            report.fallbacks["book_price_from_avg_cost"] = len(unpriced)
        working = {o.symbol for o in self.journal.orders(active_only=True)
                   if not _is_exit_order(o)}
        snapshot = book_snapshot(account, positions, recs, report, working, now,
                                 broker=self.broker.session().broker,
                                 sizing=self.settings.sizing,
                                 tolerance_usd=self.settings.risk.min_order_value_usd)
        path = self.journal.path.parent / BOOK_FILE
        try:
            write_book(path, snapshot)
        except OSError as e:
            report.failures.append(f"book: {path}: {e}")
            logger.error("book snapshot %s not written: %s", path, e)
        report.status = plan_vs_book(snapshot)
        logger.info("%s", format_status(report.status))

    # -- the trader's own actions (GUI blotter) --------------------------------------------
    def cancel_order(self, order_ref: str) -> ManualResult:
        """Cancel one working order of this journal (noted in the journal before it is sent)."""
        now = self.clock()
        report = CycleReport(now)
        try:
            self._ingest_events(report)
            order = self.journal.order(order_ref)
            if order is None:
                return ManualResult("cancel", False, f"{order_ref} is not an order of this "
                                                     "journal: cancel it where it was placed")
            if order.is_done or order.status == OrderStatus.PENDING_CANCEL:
                return ManualResult("cancel", False, f"{order_ref} is already {order.status}")
            self._manual_cancel(order, now, report)
            self._ingest_events(report)
        except (BrokerError, JournalError) as e:
            report.failures.append(f"{type(e).__name__}: {e}")
        return self._manual_result("cancel", report, f"cancel requested for {order_ref}")

    def cancel_all(self) -> ManualResult:
        """Cancel every working order of this journal, protective stops included."""
        now = self.clock()
        report = CycleReport(now)
        try:
            self._ingest_events(report)
            orders = [o for o in self.journal.orders(active_only=True)
                      if o.status != OrderStatus.PENDING_CANCEL]
            for order in sorted(orders, key=lambda o: o.parent_ref is not None):
                current = self.journal.order(order.order_ref) or order
                if not current.is_done:  # a parent took it along
                    self._manual_cancel(order, now, report)
                    self._ingest_events(report)
        except (BrokerError, JournalError) as e:
            report.failures.append(f"{type(e).__name__}: {e}")
        if not report.submitted and not report.failures:
            return ManualResult("cancel all", False, "no working order to cancel")
        return self._manual_result("cancel all", report,
                                   f"cancel requested for {len(report.submitted)} orders")

    def flatten(self, symbol: str, settle_s: float = 3.0) -> ManualResult:
        """Sell the whole position in ``symbol`` through the risk chain and the journal.

        Every working order of the symbol is cancelled first (a buy would
        re-open the position, a stop could sell the same shares twice); a
        broker that confirms cancels later (IB) gets up to ``settle_s`` seconds.
        Then :func:`~autotrader.engine.cycle.decide_exit` runs the risk chain and
        the planner, and an approved order is journaled (run ``manual``: never
        resumed after a restart) before it is transmitted, like any other.
        """
        now = self.clock()
        report = CycleReport(now)
        try:
            self._ingest_events(report)
            if symbol not in self.broker.positions():
                return ManualResult("flatten", False, f"no position in {symbol}")
            for order in self.journal.orders(active_only=True):
                if order.symbol == symbol and order.status != OrderStatus.PENDING_CANCEL:
                    self._manual_cancel(order, now, report)
            cancelled, report.submitted = list(report.submitted), []
            if report.failures:  # a working order could not be cancelled: sell nothing
                return self._manual_result("flatten", report, "")
            self._settle_cancels(symbol, settle_s, report)
            decision = self._exit_decision(symbol, now, report)
            if decision is not None:
                self._act(decision, RunIdentity(MANUAL_RUN), now, report)
                if decision.denial is not None:
                    return ManualResult("flatten", False, f"flatten {symbol} denied: "
                                        f"{decision.denial.reason}", tuple(cancelled))
            self._ingest_events(report)
        except (BrokerError, JournalError) as e:
            report.failures.append(f"{type(e).__name__}: {e}")
        sent = f"sell order for {symbol} sent" + (
            f" after cancelling {len(cancelled)} working orders" if cancelled else "")
        return self._manual_result("flatten", report, sent)

    def _manual_cancel(self, order: Order, now: dt.datetime, report: CycleReport) -> None:
        self.journal.note(order.order_ref, now, "CANCEL_REQUEST", "by the trader (GUI)")
        failures = len(report.failures)
        self._cancel(order.order_ref, now, report)
        if len(report.failures) == failures:
            report.submitted.append(order.order_ref)

    def _settle_cancels(self, symbol: str, settle_s: float, report: CycleReport) -> None:
        # a broker confirming cancels asynchronously (IB) gets a few seconds of its loop
        wait = getattr(self.broker, "wait", None)
        deadline = time.monotonic() + settle_s
        self._ingest_events(report)
        while any(o.symbol == symbol for o in self.journal.orders(active_only=True)):
            if wait is None or time.monotonic() >= deadline:
                return
            wait(0.2)
            self._ingest_events(report)

    def _exit_decision(self, symbol: str, now: dt.datetime,
                       report: CycleReport) -> Decision | None:
        quotes = self.broker.quotes([symbol])
        inputs = market_inputs((), quotes, [symbol], self.settings.default_atr_pct,
                               report.fallbacks)
        if symbol not in inputs.quotes:
            report.failures.append(f"flatten: no price for {symbol}: the exit cannot be priced")
            return None
        prices = {s: q.reference_price for s, q in inputs.quotes.items()}
        return decide_exit(symbol, self._book(prices), inputs, now=now,
                           market_open=self._market_open(now, report),
                           limits=self.settings.risk, planner=self.settings.planner,
                           trading_state=self.trading_state,
                           last_order_at=self.journal.last_order_times(),
                           reason="flatten (trader)")

    def _manual_result(self, action: str, report: CycleReport, done: str) -> ManualResult:
        if report.failures:
            logger.error("%s: %s", action, "; ".join(report.failures))
            return ManualResult(action, False, f"{action} failed: {report.failures[0]}",
                                tuple(report.submitted))
        logger.info("%s by the trader: %s (%s)", action, done, ", ".join(report.submitted))
        return ManualResult(action, True, done, tuple(report.submitted))

    # -- dynamic stops -----------------------------------------------------------------------
    def _update_stops(self, recs: RecommendationSet | None, now: dt.datetime,
                      report: CycleReport) -> None:
        if not self.settings.stops.enabled:
            return
        positions = self.broker.positions()
        quotes = self.broker.quotes(sorted(positions))
        atr_of = {r.ticker: r.atr for r in recs.rows} if recs else {}
        stops: dict[str, list[Order]] = {}
        active = self.journal.orders(active_only=True)
        # a symbol being sold down gets no new or moved stop: the sell is the exit
        exiting = report.exiting | {o.symbol for o in active
                                    if o.side is Side.SELL and not _is_exit_order(o)}
        for order in active:
            if (order.order_type is OrderType.STOP and order.side is Side.SELL
                    and order.status != OrderStatus.INACTIVE):  # inactive: parent not filled
                stops.setdefault(order.symbol, []).append(order)
        for symbol in sorted((set(positions) | set(stops)) - exiting):
            live = [o for o in stops.get(symbol, []) if o.status != OrderStatus.PENDING_CANCEL]
            for extra in live[1:]:  # safety net: one live stop per position, keep the oldest
                self._cancel(extra.order_ref, now, report)
            quantity = positions[symbol].quantity if symbol in positions else 0
            if quantity <= 0:
                self.journal.delete_value(f"trail:{symbol}")
            new_stop = 0.0
            if quantity > 0:
                quote = quotes.get(symbol)
                if quote is None:
                    report.failures.append(f"stops: no price for {symbol}")
                    continue
                new_stop = self._trail(positions[symbol], quote.reference_price,
                                       atr_of.get(symbol), now, report)
            current = live[0] if live else next(iter(stops.get(symbol, [])), None)
            action = plan_stop_update(new_stop, quantity, current, self.broker.supports_modify)
            self._apply_stop_action(symbol, action, now, report)

    def _trail(self, position: Position, price: float, atr: float | None, now: dt.datetime,
               report: CycleReport) -> float:
        # The high-water mark belongs to one position: a new average cost (a re-entry or an
        # add) starts a new trail, so a stale high never puts a stop above a fresh entry.
        key = f"trail:{position.symbol}"
        state = json.loads(self.journal.get_value(key, "{}"))
        if abs(state.get("avg_cost", -1.0) - position.avg_cost) > 1e-9:
            state = {"avg_cost": position.avg_cost, "high": price, "since": now.isoformat()}
        state["high"] = max(state["high"], price)
        self.journal.set_value(key, json.dumps(state))
        if atr is None or not atr > 0:
            atr = price * self.settings.default_atr_pct
            report.fallbacks["stop_atr_from_default_pct"] = \
                report.fallbacks.get("stop_atr_from_default_pct", 0) + 1
        days = (now - dt.datetime.fromisoformat(state["since"])).total_seconds() / 86400.0
        return trailing_stop_price(position.avg_cost, state["high"], atr, days,
                                   self.settings.stops)

    def _apply_stop_action(self, symbol: str, action: StopAction, now: dt.datetime,
                           report: CycleReport) -> None:
        if action.kind in ("NONE", "WAIT"):
            return
        report.stop_actions.append(f"{action.kind} {symbol} {action.stop_price}")
        logger.info("STOP %s %s qty=%d stop=%s ref=%s", action.kind, symbol, action.quantity,
                    action.stop_price, action.order_ref)
        if action.kind == "PLACE":
            day = now.astimezone(NEW_YORK).date()
            ref = self.journal.next_order_ref(day, STOP_RUN, symbol,
                                              self.settings.order_ref_prefix)
            request = OrderRequest(ref, symbol, Side.SELL, action.quantity, OrderType.STOP,
                                   stop_price=action.stop_price)
            self.journal.record_unit((request,), now, day,
                                     OrderOrigin(RunIdentity(STOP_RUN), self.broker.session()),
                                     count_as_order=False)
            self._transmit_unit(request, now, report)
            return
        live_ref = action.order_ref  # CANCEL and MODIFY name the live stop
        if live_ref is None:
            raise ValueError(f"stop {action.kind} for {symbol} names no live order")
        if action.kind == "CANCEL":
            self._cancel(live_ref, now, report)
        elif action.kind == "MODIFY":
            try:
                self.broker.modify(live_ref, quantity=action.quantity,
                                   stop_price=action.stop_price)
            except BrokerError as e:
                report.failures.append(f"modify: {live_ref}: {e}")
                return
            self.journal.record_modification(live_ref, now, action.quantity, action.stop_price)
