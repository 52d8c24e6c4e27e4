"""The trader session of the GUI: a worker thread that owns broker, journal and runner.

The session is built by :func:`autotrader.services.session.build_session`, exactly
as ``autotrader run`` builds it. Every broker and journal call happens on this one
thread (SQLite connections and an IB client loop are thread-bound); the Tk thread
only sends commands
(:meth:`TraderWorker.command`) and receives plain messages through ``post``:
:class:`TraderStatus`, :class:`BookSnapshot`, :class:`CycleDone`,
:class:`PreviewReady`. No tkinter here.

Commands: ``auto(on)`` starts/stops periodic cycles, ``state(TradingState)``
is the kill switch (persisted in the journal), ``preview()`` computes the
order list of a cycle without sending (:meth:`TradingRunner.preview`),
``send()`` runs one cycle now (it recomputes the same decision at the current
prices and submits the approved orders), ``cancel(order_ref)``,
``cancel_all()`` and ``flatten(symbol)`` are the blotter's actions
(:meth:`TradingRunner.cancel_order` and friends: journal first, then the
broker; a flatten goes through the risk chain), each answered by
:class:`ActionDone`; ``shutdown()`` disconnects and ends the thread.

Every book snapshot carries the quotes of the held names (last price, previous
close: the positions' market value and P&L), the account's equity marks (one
per cycle, kept in the journal: the equity curve) and the plan versus the book
after the last cycle, read as ``autotrader status`` reads it
(:func:`autotrader.services.plan_view.load_plan_view`).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotrader.config import Settings
from autotrader.domain.orders import Order
from autotrader.domain.records import Account, Fill, Position, Quote
from autotrader.engine.reasons import denial_text
from autotrader.engine.risk import TradingState
from autotrader.services.cycle_records import (
    CycleReport,
    ManualResult,
    PreviewLine,
    TraderSettings,
)
from autotrader.services.cycle_summary import cycle_summary
from autotrader.services.market_session import market_session
from autotrader.services.plan_view import PlanView, load_plan_view
from autotrader.services.session import SessionOptions, TraderSession, build_session
from autotrader.services.trading import TradingRunner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TraderOptions:
    """How the GUI builds its trader session (tests inject the clock and calendar)."""

    state_dir: Path
    result_root: Path
    broker: str = "paper"
    interval_s: float = 60.0
    initial_cash: float = 100_000.0
    clock: Callable[[], dt.datetime] | None = None
    market_open: Callable[[dt.datetime], bool] | None = None
    settings: Settings | None = None  # connection + trading (IB); None = default sections

    def session_options(self) -> SessionOptions:
        """Return the :class:`SessionOptions` of the session this worker builds."""
        return SessionOptions(state_dir=self.state_dir, result_root=self.result_root,
                              broker=self.broker, clock=self.clock,
                              initial_cash=self.initial_cash, market_open=self.market_open)


@dataclass(frozen=True)
class TraderStatus:
    """Session state for the status panel."""

    running: bool
    connected: bool
    broker: str
    data_mode: str
    trading_state: str
    auto: bool
    last_cycle_s: float | None = None
    next_cycle_at: dt.datetime | None = None
    message: str = ""
    account: str = ""
    live: bool | None = None  # the connected account is live (None: not connected yet)


@dataclass(frozen=True)
class BookSnapshot:
    """Account, positions, working orders and recent fills after a command or cycle."""

    account: Account | None
    positions: tuple[Position, ...]
    open_orders: tuple[Order, ...]
    fills: tuple[Fill, ...]
    quotes: dict[str, Quote] | None = None
    equity_marks: tuple[tuple[dt.datetime, float], ...] = ()
    plan: PlanView | None = None


@dataclass(frozen=True)
class CycleDone:
    """One cycle ran (``report`` is the runner's :class:`CycleReport`).

    ``summary`` is the one line that gives every denial's reason
    (:func:`autotrader.services.cycle_summary.cycle_summary`).
    """

    report: CycleReport
    summary: str = ""


@dataclass(frozen=True)
class ActionDone:
    """A blotter action (cancel, cancel all, flatten) finished."""

    result: ManualResult


@dataclass(frozen=True)
class PreviewRow:
    """One line of the order preview: the intent and what the engine would do with it.

    ``outcome`` is ``SEND`` or ``DENY <the check in words>: <its reason>``
    (:func:`autotrader.engine.reasons.denial_text`).
    """

    symbol: str
    side: str
    quantity: int
    current: int
    order_type: str
    limit_price: float | None
    outcome: str


@dataclass(frozen=True)
class PreviewReady:
    """The order list of a cycle computed without sending (``rows`` may be empty).

    Built from :meth:`TradingRunner.preview`; ``failures`` says why it is empty
    or partial (no run, demo run on a live broker, broker/journal errors).
    """

    run_id: str
    rows: tuple[PreviewRow, ...]
    failures: tuple[str, ...] = ()
    at: dt.datetime | None = None  # the session's clock when it was computed


def _outcome_words(line: PreviewLine) -> str:
    # SEND, or DENY with the check's phrase and its own reason (the trader's words, not the code)
    if line.denial is None:
        return line.outcome
    return f"DENY {denial_text(line.denial.check, line.denial.reason)}"


class TraderWorker:
    """Own one trading session on a dedicated thread.

    Parameters
    ----------
    options : TraderOptions
    post : callable
        Thread-safe sink of the messages (the GUI bus ``post``).
    settings_source : callable
        ``() -> TraderSettings``, read at every cycle (hot reload).
    """

    def __init__(self, options: TraderOptions, post: Callable[[object], None],
                 settings_source: Callable[[], TraderSettings]) -> None:
        self.options = options
        self.post = post
        self.settings_source = settings_source
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._runner: TradingRunner | None = None
        self._auto = False
        self._next_at: float | None = None

    def __repr__(self) -> str:
        return f"TraderWorker(broker={self.options.broker!r}, alive={self.alive})"

    @property
    def alive(self) -> bool:
        """True while the session thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the session thread (connect + reconcile happen on it)."""
        if self.alive:
            return
        self._thread = threading.Thread(target=self._main, name="trader", daemon=True)
        self._thread.start()

    def command(self, name: str, value: Any = None) -> None:
        """Queue a command for the session thread.

        ``name`` is ``auto``, ``state``, ``preview``, ``send``, ``cancel``,
        ``cancel_all``, ``flatten``, ``snapshot`` or ``shutdown``.
        """
        self._commands.put((name, value))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop cycles, disconnect and wait for the thread."""
        if self.alive:
            self.command("shutdown")
            assert self._thread is not None
            self._thread.join(timeout)

    # -- the session thread ------------------------------------------------------------------
    def _main(self) -> None:
        session: TraderSession | None = None
        try:
            session = build_session(self.options.settings or Settings(),
                                    self.options.session_options(), self.settings_source)
            session.start()
            self._runner = session.runner
            self._mark_equity(session.runner)
            self._publish("connected")
            self._serve(session.runner)
        except Exception as e:  # session boundary: report, never kill the GUI
            logger.exception("trader session failed")
            self._status(False, f"trader stopped: {type(e).__name__}: {e}")
        finally:
            if session is not None:
                session.close()
            self._runner = None

    def _serve(self, runner: TradingRunner) -> None:
        while True:
            timeout = None
            if self._auto and self._next_at is not None:
                timeout = max(0.0, self._next_at - time.monotonic())
            try:
                name, value = self._commands.get(timeout=timeout)
            except queue.Empty:
                self._cycle(runner)
                continue
            if name == "shutdown":
                self._auto = False
                self._status(False, "stopped")
                return
            self._handle(runner, name, value)

    def _handle(self, runner: TradingRunner, name: str, value: Any) -> None:
        if name == "auto":
            self._auto = bool(value)
            if self._auto:
                self._cycle(runner)
            else:
                self._next_at = None
                self._publish("auto trading stopped")
        elif name == "state":
            runner.set_trading_state(TradingState(value))
            self._publish(f"trading state {TradingState(value).value}")
        elif name == "preview":
            self.post(self._preview(runner))
        elif name == "send":
            self._cycle(runner)
        elif name in ("cancel", "cancel_all", "flatten"):
            self._manual(runner, name, value)
        elif name == "snapshot":
            self._publish("")
        else:
            logger.error("trader: unknown command %r", name)

    def _cycle(self, runner: TradingRunner) -> None:
        report = runner.run_cycle()
        self._next_at = time.monotonic() + self.options.interval_s if self._auto else None
        summary = cycle_summary(report, market_session(report.started_at))
        logger.info("cycle summary: %s", summary)
        self._mark_equity(runner)
        self.post(CycleDone(report, summary))
        self._publish(f"cycle: {summary}")

    def _manual(self, runner: TradingRunner, name: str, value: Any) -> None:
        if name == "cancel":
            result = runner.cancel_order(str(value))
        elif name == "cancel_all":
            result = runner.cancel_all()
        else:
            result = runner.flatten(str(value))
        self.post(ActionDone(result))
        self._publish(result.message)

    def _mark_equity(self, runner: TradingRunner) -> None:
        try:
            account = runner.broker.account()
            runner.journal.record_equity(runner.clock(), account.equity, account.cash)
        except Exception as e:  # noqa: BLE001 - a missing mark must not stop the session
            logger.warning("equity mark not recorded: %s", e)

    def _preview(self, runner: TradingRunner) -> PreviewReady:
        preview = runner.preview()
        rows = tuple(PreviewRow(line.symbol, line.side.value, line.quantity, line.current,
                                line.order_type.value if line.order_type else "-",
                                line.limit_price, _outcome_words(line))
                     for line in preview.lines)
        return PreviewReady(preview.run_id, rows, preview.failures, at=runner.clock())

    def _publish(self, message: str) -> None:
        runner = self._runner
        if runner is None:
            self._status(False, message)
            return
        broker = runner.broker
        fills = broker.executions()
        positions = broker.positions()
        self.post(BookSnapshot(broker.account(), tuple(positions.values()),
                               tuple(broker.open_orders()), tuple(fills[-50:]),
                               quotes=broker.quotes(sorted(positions)),
                               equity_marks=tuple(runner.journal.equity_marks()),
                               plan=load_plan_view(runner.journal.path.parent)))
        self._status(True, message)

    def _status(self, connected: bool, message: str) -> None:
        runner = self._runner
        health = runner.health if runner else None
        next_at = None
        if self._auto and self._next_at is not None:
            next_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
                seconds=max(0.0, self._next_at - time.monotonic()))
        data_mode = "paper/sim prices" if self.options.broker == "paper" else "unknown"
        if runner is not None and hasattr(runner.broker, "data_modes"):
            modes = Counter(runner.broker.data_modes().values())
            data_mode = ", ".join(f"{k} {n}" for k, n in modes.most_common()) or "no quotes yet"
        session = runner.broker.session() if runner is not None and connected else None
        self.post(TraderStatus(
            running=connected and self.alive, connected=connected, broker=self.options.broker,
            data_mode=data_mode,
            trading_state=runner.trading_state.value if runner else "-", auto=self._auto,
            last_cycle_s=health.last_cycle_s if health and health.cycles else None,
            next_cycle_at=next_at, message=message,
            account=session.account if session else "",
            live=session.live if session else None))
