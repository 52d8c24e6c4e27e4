"""Trading engine tab: broker and connection, auto trading, kill switch, arming, the book.

The controls drive a :class:`~autotrader.services.trader_worker.TraderWorker`
(commands only; every broker and journal call happens on its thread) and keep
the workstation's :class:`~autotrader.gui.state.WorkstationState` true to what
the session reports: broker, account (paper or live), auto trading, the kill
switch. Rules a trader relies on:

* buttons follow the state: Start is disabled while auto trading runs, Stop
  while nothing runs, the IB fields while the paper broker is selected, the
  broker choice while a session runs, Cancel / Flatten without a selection;
* Send, Flatten, Cancel, Cancel all and closing with auto trading on ask first;
* arming is possible only with IB and a live account detected (Test
  connection or a session); auto trading / Send on IB need the account seen
  first, and a live one armed;
* the kill switch works with no session: it is written to the journal, which
  the next session reads, and the status shows the journal's value;
* every cycle's summary gives the reason of every denial in one line, and a
  preview on screen is recomputed after every cycle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import tkinter as tk
from tkinter import ttk

from autotrader.config import ConfigError, Settings
from autotrader.engine.risk import TradingState
from autotrader.gui.state import arm_refusal
from autotrader.gui.trading_book import BookPanel
from autotrader.services import brokers
from autotrader.services.market_session import et_clock
from autotrader.services.plan_view import load_plan_view
from autotrader.services.session import kill_switch, trader_settings
from autotrader.services.trader_worker import (
    ActionDone,
    BookSnapshot,
    CycleDone,
    PreviewReady,
    TraderOptions,
    TraderStatus,
    TraderWorker,
)

logger = logging.getLogger(__name__)

KILL_SWITCH = (("ACTIVE", TradingState.ACTIVE), ("REDUCE-ONLY", TradingState.REDUCING),
               ("HALT", TradingState.HALTED))
CONNECTION_FIELDS = (("host", "Host", 14), ("port", "Port", 6), ("client_id", "Client id", 5),
                     ("account_id", "Account", 11))


class TradingView(ttk.Frame):
    """Controls, status and the book of one trader session."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.worker: TraderWorker | None = None
        self.preview: PreviewReady | None = None
        self.cycles = 0
        self.auto = False
        self.connected = False
        self.book_msg: BookSnapshot | None = None
        self.message = tk.StringVar(self, value="")
        self.summary = tk.StringVar(self, value="no cycle yet")
        self.session_line = tk.StringVar(self, value="no session")
        self._build_connection()
        self._build_actions()
        self._build_kill_switch()
        self._build_lines()
        self.book = BookPanel(self, app.stall, {"flatten": self.flatten,
                                                "cancel": self.cancel_selected,
                                                "cancel_all": self.cancel_all})
        self.book.pack(fill="both", expand=True, padx=6, pady=(0, 6))
        self.positions, self.orders = self.book.positions, self.book.orders
        self.fills, self.preview_table = self.book.fills, self.book.preview
        for table in (self.positions, self.orders):
            table.tree.bind("<<TreeviewSelect>>", lambda _e: self.sync_buttons(), add="+")
        for kind, handler in ((TraderStatus, self._on_status), (BookSnapshot, self._on_book),
                              (CycleDone, self._on_cycle), (PreviewReady, self._on_preview),
                              (ActionDone, self._on_action)):
            app.bus.subscribe(kind, handler)
        self._on_broker_change()
        self.after_idle(self._read_kill_switch)
        self.after_idle(self._read_plan)

    # -- layout ----------------------------------------------------------------------------
    def _build_connection(self) -> None:
        row = ttk.Frame(self)
        row.pack(fill="x", padx=6, pady=(6, 2))
        ttk.Label(row, text="Broker", style="Heading.TLabel").pack(side="left")
        self.broker = tk.StringVar(self, value=self.app.settings.trading.broker)
        self.broker_box = ttk.Combobox(row, textvariable=self.broker, values=brokers.BROKERS,
                                       state="readonly", width=7)
        self.broker_box.pack(side="left", padx=(4, 14))
        self.broker_box.bind("<<ComboboxSelected>>", lambda _e: self._on_broker_change())
        conn = self.app.settings.connection
        self.vars: dict[str, tk.StringVar] = {}
        self.entries: dict[str, ttk.Entry] = {}
        for key, text, width in CONNECTION_FIELDS:
            ttk.Label(row, text=text).pack(side="left")
            var = tk.StringVar(self, value=str(getattr(conn, key)))
            entry = ttk.Entry(row, textvariable=var, width=width)
            entry.pack(side="left", padx=(3, 10))
            var.trace_add("write", lambda *_: self._connection_edited())
            self.vars[key], self.entries[key] = var, entry

    def _build_kill_switch(self) -> None:
        kill = ttk.Frame(self)
        kill.pack(fill="x", padx=6, pady=2)
        ttk.Label(kill, text="Kill switch", style="Heading.TLabel").pack(side="left")
        self.kill = tk.StringVar(self, value="")
        self.kill_buttons = {}
        for text, state in KILL_SWITCH:
            button = ttk.Radiobutton(kill, text=text, value=state.value, variable=self.kill,
                                     command=self.apply_kill_switch)
            button.pack(side="left", padx=(8, 0))
            self.kill_buttons[state] = button
        ttk.Label(kill, text="(HALT: no order at all; REDUCE-ONLY: only sells of held "
                             "names)", style="Small.TLabel").pack(side="left", padx=10)

    def _build_actions(self) -> None:
        row = ttk.Frame(self)
        row.pack(fill="x", padx=6, pady=2)
        t = self.app.t
        self.test_button = ttk.Button(row, text=t("trading.test"), command=self.test)
        self.start_button = ttk.Button(row, text=t("trading.start"), command=self.start,
                                       style="Accent.TButton")
        self.stop_button = ttk.Button(row, text=t("trading.stop"), command=self.stop)
        self.preview_button = ttk.Button(row, text=t("trading.preview") + " (Ctrl+P)",
                                         command=self.request_preview)
        self.send_button = ttk.Button(row, text=t("trading.send") + "...", command=self.send_orders)
        for button in (self.test_button, self.start_button, self.stop_button,
                       self.preview_button, self.send_button):
            button.pack(side="left", padx=(0, 4))
        self.armed = tk.BooleanVar(self, value=self.app.settings.trading.live_armed)
        self.arm_check = ttk.Checkbutton(row, text=t("trading.arm"), variable=self.armed,
                                         command=self.toggle_arm)
        self.arm_check.pack(side="left", padx=(14, 0))

    def _build_lines(self) -> None:
        lines = ttk.Frame(self)
        lines.pack(fill="x", padx=6, pady=(2, 4))
        ttk.Label(lines, textvariable=self.session_line, style="Muted.TLabel").pack(anchor="w")
        self.summary_label = ttk.Label(lines, textvariable=self.summary, style="Big.TLabel",
                                       wraplength=1000)
        self.summary_label.pack(anchor="w")
        self.message_label = ttk.Label(lines, textvariable=self.message, wraplength=1000)
        self.message_label.pack(anchor="w")

    # -- messages and button state -----------------------------------------------------------
    def say(self, text: str, level: str = "info") -> None:
        """Show one line under the summary: ``info``, ``good``, ``warn`` or ``error``."""
        self.message.set(text)
        style = {"error": "Error.TLabel", "warn": "Warn.TLabel", "good": "Good.TLabel"}
        self.message_label.configure(style=style.get(level, "TLabel"))

    @property
    def running(self) -> bool:
        """True while the session thread runs."""
        return self.worker is not None and self.worker.alive

    def sync_buttons(self) -> None:
        """Enable exactly the actions that make sense now."""
        running, paper = self.running, self.broker.get() == "paper"
        _enable(self.start_button, not self.auto)
        _enable(self.stop_button, running)
        _enable(self.broker_box, not running, "readonly")
        for entry in self.entries.values():
            _enable(entry, not paper and not running)
        _enable(self.arm_check, self.armed.get() or arm_refusal(self.app.state) is None)
        connected = running and self.connected
        _enable(self.book.flatten_button, connected and bool(self.positions.selected()))
        _enable(self.book.cancel_button, connected and bool(self.orders.selected()))
        _enable(self.book.cancel_all_button, connected and bool(self.orders.rows()))

    # -- actions ---------------------------------------------------------------------------
    def connection(self) -> Settings:
        """Return the current settings with the connection fields applied.

        Raises
        ------
        ValueError
            A port or client id that is not a whole number.
        bma_models.errors.SettingsError
            A connection field the settings schema rejects (e.g. an empty host).
        """
        v = {key: var.get().strip() for key, var in self.vars.items()}
        for key in ("port", "client_id"):
            if not v[key].isdigit():
                raise ValueError(f"{key.replace('_', ' ')} must be a whole number, got "
                                 f"{v[key]!r}")
        settings = self.app.settings
        conn = dataclasses.replace(settings.connection, host=v["host"], port=int(v["port"]),
                                   client_id=int(v["client_id"]), account_id=v["account_id"])
        return dataclasses.replace(settings, connection=conn)

    def _on_broker_change(self) -> None:
        kind = self.broker.get()
        state = self.app.state
        if kind != state.broker:
            state.broker, state.account = kind, ""
            state.live_account = False if kind == "paper" else None
            if self.armed.get():
                self._disarm("broker changed: live trading disarmed")
        elif kind == "paper":
            state.live_account = False
        self.app.refresh_header()
        self.sync_buttons()

    def _connection_edited(self) -> None:
        # another host, port, client or account may be another account: seen again, re-armed
        state = self.app.state
        if state.broker != "ib" or (state.live_account is None and not self.armed.get()):
            return
        state.account, state.live_account = "", None
        if self.armed.get():
            self._disarm("connection changed: live trading disarmed (Test connection, then "
                         "arm again)")
        self.app.refresh_header()
        self.sync_buttons()

    def test(self) -> None:
        """Test the selected broker on a helper thread (paper: its account; IB: a connect)."""
        try:
            conn = self.connection()
        except ValueError as e:
            self.say(str(e), "error")
            return
        kind = self.broker.get()
        where = "the paper account" if kind == "paper" else \
            f"{conn.connection.host}:{conn.connection.port}"
        self.say(f"testing {where}...")
        state_dir = self.trader_options().state_dir
        self.app.run_background(
            "test-connection",
            lambda: brokers.test_broker(kind, conn, state_dir,
                                        self.trader_options().initial_cash),
            self._on_tested)

    def _on_tested(self, outcome) -> None:
        if outcome.error is not None:
            self.say(f"test failed: {outcome.error}", "error")
            return
        result = outcome.value
        self.say(("OK: " if result.ok else "FAILED: ") + result.message,
                 "good" if result.ok else "error")
        if result.ok and result.live is not None and self.broker.get() == "ib":
            self._account_seen(result.account, result.live)

    def _account_seen(self, account: str, live: bool) -> None:
        state = self.app.state
        state.account, state.live_account = account, live
        if not live and self.armed.get():
            self._disarm(f"account {account} is a paper account: live trading disarmed")
        self.app.refresh_header()
        self.sync_buttons()

    def trader_options(self) -> TraderOptions:
        """Return the session options (the app's test overrides, else the workstation's paths)."""
        return self.app.trader_options or TraderOptions(
            state_dir=self.app.paths.state_dir, result_root=self.app.paths.result_root,
            interval_s=self.app.settings.trading.cycle_interval_s,
            initial_cash=self.app.settings.research.portfolio.capital)  # the one capital

    def _orders_refusal(self) -> str | None:
        # why orders may not be sent on the selected broker now (None: they may)
        state = self.app.state
        if self.broker.get() != "ib" or state.live_account is False:
            return None
        if state.live_account is None:
            return ("IB: the account has not been seen yet. Press Test connection first: a "
                    "live account must be armed before orders are sent")
        if not self.armed.get():
            return f"IB account {state.account} is LIVE: arm live trading first"
        return None

    def _started_worker(self) -> TraderWorker:
        # the actions call this once ensure_worker() or running said a session exists
        if self.worker is None:
            raise RuntimeError("no trader session: ensure_worker() or running comes first")
        return self.worker

    def ensure_worker(self) -> bool:
        """Start the session thread if needed; False (with a message) if it cannot start."""
        if self.running:
            return True
        try:
            conn = self.connection()
        except ValueError as e:
            self.say(str(e), "error")
            return False
        options = dataclasses.replace(self.trader_options(), broker=self.broker.get(),
                                      settings=conn)
        self.worker = TraderWorker(options, self.app.bus.post,
                                   lambda: trader_settings(self.app.store.get()))
        self.worker.start()
        self.sync_buttons()
        return True

    def start(self) -> None:
        """Start auto trading (asks first on an armed live account)."""
        refusal = self._orders_refusal()
        if refusal:
            self.say(refusal, "error")
            return
        if self.armed.get() and not self.app.confirm(
                "Start auto trading", f"Start auto trading on the LIVE account "
                                      f"{self.app.state.account}? Orders reach a real account."):
            return
        if self.ensure_worker():
            self._started_worker().command("auto", True)
            self.auto = True
            self.app.state.auto = True
            self.say(f"auto trading started ({self.broker.get()})", "good")
            self.app.refresh_header()
            self.sync_buttons()

    def stop(self) -> None:
        """Stop auto trading and end the session (disconnect)."""
        if self.running:
            self._started_worker().command("shutdown")
            self.say("stopping the session...")

    def request_preview(self) -> None:
        """Compute the order list of a cycle without sending anything."""
        if self.ensure_worker():
            self._started_worker().command("preview")
            self.say("computing the order preview...")

    def send_orders(self) -> None:
        """Run one cycle now, after a confirmation: the orders that still pass are submitted."""
        refusal = self._orders_refusal()
        if refusal:
            self.say(refusal, "error")
            return
        count = sum(1 for r in self.preview.rows if r.outcome == "SEND") if self.preview else None
        what = f"about {count} orders" if count is not None else \
            "the orders of a cycle (no preview on screen: Ctrl+P shows them first)"
        target = "a simulated paper account" if self.app.state.live_account is False else \
            f"the LIVE account {self.app.state.account}"
        if not self.app.confirm("Send orders", f"Send {what} to {target} now?"):
            return
        if self.ensure_worker():
            self._started_worker().command("send")
            self.say("running one cycle...")

    def flatten(self) -> None:
        """Sell the selected positions, after a confirmation (risk chain and journal)."""
        symbols = [row[0] for row in self.positions.selected() if row[1] != "0"]
        if not symbols or not self.running:
            self.say("select a held position first (and start a session)", "warn")
            return
        if not self.app.confirm("Flatten", f"Sell the whole position in {', '.join(symbols)}? "
                                           "Its working orders are cancelled first; the sell "
                                           "goes through the risk checks."):
            return
        worker = self._started_worker()
        for symbol in symbols:
            worker.command("flatten", symbol)
        self.say(f"flattening {', '.join(symbols)}...")

    def cancel_selected(self) -> None:
        """Cancel the selected working orders after a confirmation (journal, then broker)."""
        refs = [row[0] for row in self.orders.selected()]
        if not refs or not self.running:
            self.say("select a working order first", "warn")
            return
        if not self.app.confirm("Cancel orders", f"Cancel {', '.join(refs)}?"):
            return
        worker = self._started_worker()
        for ref in refs:
            worker.command("cancel", ref)
        self.say(f"cancelling {len(refs)} order(s)...")

    def cancel_all(self) -> None:
        """Cancel every working order, protective stops included, after a confirmation."""
        if not self.running:
            return
        count = len(self.orders.rows())
        if not self.app.confirm("Cancel all", f"Cancel all {count} working orders, protective "
                                              "stops included?"):
            return
        self._started_worker().command("cancel_all")
        self.say("cancelling every working order...")

    def toggle_arm(self) -> None:
        """Arm live trading (runtime override only) after an explicit confirmation."""
        if not self.armed.get():
            self._disarm("live trading disarmed")
            return
        refusal = arm_refusal(self.app.state)
        if refusal is not None:
            self.armed.set(False)
            self.say(f"cannot arm: {refusal}", "error")
            return
        conn = self.app.settings.connection
        if not self.app.confirm("Arm live trading",
                                f"Orders will reach the REAL account {self.app.state.account} "
                                f"at {conn.host}:{conn.port}. Arm live trading for this "
                                "session?"):
            self.armed.set(False)
            return
        try:
            self.app.store.set_override("trading.live_armed", True)
        except ConfigError as e:
            self.armed.set(False)
            self.say(f"cannot arm: {e}", "error")
            return
        self.app.state.armed = True
        self.say("LIVE trading ARMED for this session: orders reach a real account", "error")
        self.app.refresh_header()
        self.sync_buttons()

    def _disarm(self, text: str) -> None:
        self.armed.set(False)
        self.app.state.armed = False
        try:
            self.app.store.clear_override("trading.live_armed")
        except ConfigError as e:
            logger.error("cannot clear trading.live_armed: %s", e)
        self.say(text, "warn")
        self.app.refresh_header()

    # -- kill switch -----------------------------------------------------------------------
    def apply_kill_switch(self) -> None:
        """Send the kill switch to the session, or write it to the journal when none runs."""
        state = TradingState(self.kill.get())
        if self.running:
            self._started_worker().command("state", state)
            self.say(f"kill switch -> {state.value}", "warn" if state is not
                     TradingState.ACTIVE else "info")
            return
        state_dir = self.trader_options().state_dir
        self.app.run_background("kill-switch", lambda: kill_switch(state_dir, state),
                                self._on_kill_written)

    def _on_kill_written(self, outcome) -> None:
        if outcome.error is not None:
            self.say(f"kill switch NOT changed: {outcome.error}", "error")
            self._read_kill_switch()
            return
        self._show_kill(outcome.value.value)
        self.say(f"kill switch {outcome.value.value} recorded in the journal (no session "
                 "running: the next one starts with it)",
                 "warn" if outcome.value is not TradingState.ACTIVE else "info")

    def _read_kill_switch(self) -> None:
        state_dir = self.trader_options().state_dir
        self.app.run_background("kill-switch-read", lambda: kill_switch(state_dir),
                                self._on_kill_read)

    def _on_kill_read(self, outcome) -> None:
        if outcome.error is not None:
            self.say(f"cannot read the kill switch from the journal: {outcome.error}", "error")
            return
        if not self.running:
            self._show_kill(outcome.value.value)

    def _read_plan(self) -> None:
        # plan versus book of the last cycle (autotrader status), shown before any session
        state_dir = self.trader_options().state_dir
        self.app.run_background("plan-status", lambda: load_plan_view(state_dir),
                                self._on_plan_read)

    def _on_plan_read(self, outcome) -> None:
        if outcome.error is not None:
            self.say(f"plan versus book not read: {outcome.error}", "error")
        elif self.book_msg is None:  # a session's snapshot is newer
            self.book.show_plan(outcome.value)

    def _show_kill(self, value: str) -> None:
        self.kill.set(value)
        self.app.state.kill_state = value
        self.app.refresh_header()

    # -- bus handlers ----------------------------------------------------------------------
    def _on_status(self, msg: TraderStatus) -> None:
        self.connected, self.auto = msg.connected, msg.auto and msg.running
        state = self.app.state
        state.connected, state.auto = msg.connected, self.auto
        if msg.connected and msg.trading_state in TradingState._value2member_map_:
            self.kill.set(msg.trading_state)
            state.kill_state = msg.trading_state
        if msg.live is not None:
            self._account_seen(msg.account, msg.live)
        where = f"{msg.broker}, {msg.account}" if msg.account and msg.broker != "paper" \
            else f"{msg.broker} broker"
        parts = [f"session: {'connected' if msg.connected else 'not connected'} ({where})",
                 f"market data: {msg.data_mode}",
                 f"auto trading: {'ON' if self.auto else 'off'}"]
        if msg.next_cycle_at:
            parts.append(f"next cycle {et_clock(msg.next_cycle_at)}")
        if msg.last_cycle_s is not None:
            parts.append(f"last cycle took {msg.last_cycle_s:.2f} s")
        self.session_line.set("   ·   ".join(parts))
        if msg.message and msg.message != "connected" and not msg.message.startswith("cycle:"):
            self.say(msg.message, "error" if msg.message.startswith("trader stopped")
                     else "info")
        if not msg.running:
            self.connected = False
            self.after(300, self._after_session)  # the thread is ending
        self.app.refresh_header()
        self.sync_buttons()

    def _after_session(self) -> None:
        if self.worker is not None and self.worker.alive:
            self.after(300, self._after_session)
            return
        self.sync_buttons()
        self._read_kill_switch()

    def _on_book(self, msg: BookSnapshot) -> None:
        self.book_msg = msg
        self.book.show_book(msg)
        self.sync_buttons()

    def _on_cycle(self, msg: CycleDone) -> None:
        self.cycles += 1
        report = msg.report
        at = et_clock(report.started_at)
        self.summary.set(f"Last cycle {at}: {msg.summary}")
        tone = "Bad" if report.failures else ("Warn" if not report.submitted
                                               and report.denials else "")
        self.summary_label.configure(style=f"Big{tone}.TLabel")
        if self.preview is not None and self.running:
            self._started_worker().command("preview")  # the preview on screen follows the book

    def _on_preview(self, msg: PreviewReady) -> None:
        self.preview = msg
        self.book.show_preview(msg, et_clock(msg.at or dt.datetime.now(dt.timezone.utc)))
        if msg.failures:
            self.say("preview: " + "; ".join(msg.failures[:3]), "error")
        else:
            sends = sum(1 for r in msg.rows if r.outcome == "SEND")
            self.say(f"preview of run {msg.run_id or '-'}: {len(msg.rows)} intents, "
                     f"{sends} would be sent")

    def _on_action(self, msg: ActionDone) -> None:
        result = msg.result
        self.say(f"{result.action}: {result.message}", "good" if result.ok else "error")

    # -- closing ---------------------------------------------------------------------------
    def close_question(self) -> str | None:
        """Return what to ask before the window closes (None: nothing to ask)."""
        if self.auto and self.running:
            return ("Auto trading is running. Closing stops it and disconnects the session "
                    "(working orders stay at the broker). Close anyway?")
        return None

    def shutdown(self) -> None:
        """Stop the trader worker, if any, waiting up to 5 s for its thread."""
        if self.worker is not None:
            self.worker.shutdown(timeout=5.0)


def _enable(widget: ttk.Widget, enabled: bool, normal: str = "!disabled") -> None:
    if isinstance(widget, ttk.Combobox):
        widget.configure(state=normal if enabled else "disabled")
    elif enabled:
        widget.state(["!disabled"])
    else:
        widget.state(["disabled"])


def register(app) -> None:
    """Add the Trading engine tab."""
    app.add_view("trading", "tab.trading", TradingView)
