"""Trading engine tab: connection, broker choice, auto trading, kill switch, book, preview."""

from __future__ import annotations

import dataclasses
import logging
import tkinter as tk
from tkinter import ttk

from autotrader.config import ConfigError, Settings
from autotrader.engine.risk import TradingState
from autotrader.gui.widgets import Form, Table
from autotrader.services import brokers
from autotrader.services.session import trader_settings
from autotrader.services.trader_worker import (
    BookSnapshot,
    CycleDone,
    PreviewReady,
    TraderOptions,
    TraderStatus,
    TraderWorker,
)

logger = logging.getLogger(__name__)

KILL_SWITCH = (("Active", TradingState.ACTIVE), ("REDUCE-ONLY", TradingState.REDUCING),
               ("HALT", TradingState.HALTED))


class TradingView(ttk.Frame):
    """Drive a :class:`TraderWorker` and show its status, book and order preview."""

    def __init__(self, master: tk.Misc, app) -> None:
        super().__init__(master)
        self.app = app
        self.worker: TraderWorker | None = None
        self.preview: PreviewReady | None = None
        self.cycles = 0
        self._pending_state: TradingState | None = None
        self.message = tk.StringVar(self, value="")
        self._build_controls()
        self._build_status()
        self._build_tables()
        for kind, handler in ((TraderStatus, self._on_status), (BookSnapshot, self._on_book),
                              (CycleDone, self._on_cycle), (PreviewReady, self._on_preview)):
            app.bus.subscribe(kind, handler)

    # -- layout ----------------------------------------------------------------------------
    def _build_controls(self) -> None:
        top = ttk.Frame(self)
        top.pack(fill="x", padx=6, pady=4)
        conn = self.app.settings.connection
        self.form = Form(ttk.LabelFrame(top, text="Connection"))
        self.form.master.pack(side="left", anchor="n")
        self.form.pack()
        self.form.add("host", "Host", conn.host)
        self.form.add("port", "Port", conn.port)
        self.form.add("client_id", "Client id", conn.client_id)
        self.form.add("account_id", "Account", conn.account_id)
        self.broker = tk.StringVar(self, value=self.app.settings.trading.broker)
        ttk.Label(self.form, text="Broker").grid(row=4, column=0, sticky="w", padx=4)
        ttk.Combobox(self.form, textvariable=self.broker, values=brokers.BROKERS,
                     state="readonly", width=16).grid(row=4, column=1, sticky="w", padx=4)
        actions = ttk.Frame(top)
        actions.pack(side="left", anchor="n", padx=10)
        t = self.app.t
        self.test_button = ttk.Button(actions, text=t("trading.test"), command=self.test)
        self.start_button = ttk.Button(actions, text=t("trading.start"), command=self.start)
        self.stop_button = ttk.Button(actions, text=t("trading.stop"), command=self.stop)
        self.preview_button = ttk.Button(actions, text=t("trading.preview"),
                                         command=self.request_preview)
        self.send_button = ttk.Button(actions, text=t("trading.send"), command=self.send)
        for button in (self.test_button, self.start_button, self.stop_button,
                       self.preview_button, self.send_button):
            button.pack(fill="x", pady=2)
        self.armed = tk.BooleanVar(self, value=self.app.settings.trading.live_armed)
        self.arm_check = ttk.Checkbutton(actions, text=t("trading.arm"), variable=self.armed,
                                         command=self.toggle_arm)
        self.arm_check.pack(anchor="w", pady=2)
        kill = ttk.LabelFrame(top, text="Kill switch")
        kill.pack(side="left", anchor="n", padx=10)
        self.kill = tk.StringVar(self, value=TradingState.ACTIVE.value)
        self.kill_buttons = {}
        for text, state in KILL_SWITCH:
            button = ttk.Radiobutton(kill, text=text, value=state.value, variable=self.kill,
                                     command=self.apply_kill_switch)
            button.pack(anchor="w")
            self.kill_buttons[state] = button
        ttk.Label(top, textvariable=self.message, wraplength=420).pack(side="left", padx=10)

    def _build_status(self) -> None:
        box = ttk.LabelFrame(self, text="Status")
        box.pack(fill="x", padx=6, pady=2)
        self.status = {k: tk.StringVar(self, value="-") for k in
                       ("connected", "data", "state", "auto", "cycle", "next", "equity")}
        for i, (key, text) in enumerate((("connected", "Connected"), ("data", "Market data"),
                                         ("state", "Trading state"), ("auto", "Auto"),
                                         ("cycle", "Cycle time"), ("next", "Next cycle"),
                                         ("equity", "Equity / cash"))):
            row, col = divmod(i, 4)
            ttk.Label(box, text=text + ":").grid(row=row, column=2 * col, sticky="e", padx=2)
            ttk.Label(box, textvariable=self.status[key], width=24).grid(
                row=row, column=2 * col + 1, sticky="w", padx=4)

    def _build_tables(self) -> None:
        # positions | recent fills on top; open orders and the order preview full width
        grid = ttk.Frame(self)
        grid.pack(fill="both", expand=True, padx=6, pady=4)
        self.positions = Table(grid, ("symbol", "quantity", "avg_cost"), height=6,
                               widths={"symbol": 90, "quantity": 90, "avg_cost": 100},
                               numeric=("quantity", "avg_cost"))
        self.fills = Table(grid, ("time", "symbol", "side", "qty", "price", "order_ref"),
                           height=6, widths={"time": 120, "symbol": 80, "side": 50,
                                             "qty": 60, "price": 80, "order_ref": 300},
                           numeric=("qty", "price"))
        self.orders = Table(grid, ("order_ref", "symbol", "side", "qty", "type", "limit",
                                   "stop", "status", "filled"), height=6,
                            widths={"order_ref": 300, "symbol": 80, "side": 50, "qty": 60,
                                    "type": 70, "limit": 80, "stop": 80, "status": 110,
                                    "filled": 60},
                            numeric=("qty", "limit", "stop", "filled"))
        self.preview_table = Table(grid, ("symbol", "side", "quantity", "current", "type",
                                          "limit", "outcome"), height=6,
                                   widths={"symbol": 80, "side": 50, "quantity": 70,
                                           "current": 70, "type": 70, "limit": 80,
                                           "outcome": 520},
                                   numeric=("quantity", "current", "limit"))
        layout = (("Positions", self.positions, 0, 0, 1), ("Recent fills", self.fills, 0, 1, 1),
                  ("Open orders", self.orders, 2, 0, 2),
                  ("Order preview (target vs book)", self.preview_table, 4, 0, 2))
        for title, table, row, column, span in layout:
            ttk.Label(grid, text=title).grid(row=row, column=column, sticky="w")
            table.grid(row=row + 1, column=column, columnspan=span, sticky="nsew", padx=3)
        grid.columnconfigure(0, weight=1)
        grid.columnconfigure(1, weight=2)

    # -- actions ---------------------------------------------------------------------------
    def connection(self) -> Settings:
        """Current settings with the connection fields applied (``ValueError`` if bad)."""
        v = self.form.values()
        for key in ("port", "client_id"):
            if not v[key].isdigit():
                raise ValueError(f"{key.replace('_', ' ')} must be a whole number, got "
                                 f"{v[key]!r}")
        settings = self.app.settings
        conn = dataclasses.replace(settings.connection, host=v["host"], port=int(v["port"]),
                                   client_id=int(v["client_id"]), account_id=v["account_id"])
        return dataclasses.replace(settings, connection=conn)

    def test(self) -> None:
        """Test the TWS/Gateway connection on a helper thread."""
        try:
            conn = self.connection()
        except ValueError as e:
            self.message.set(str(e))
            return
        self.message.set(f"testing {conn.connection.host}:{conn.connection.port}...")
        self.app.run_background("test-connection", lambda: brokers.test_connection(conn),
                                self._on_tested)

    def _on_tested(self, outcome) -> None:
        if outcome.error is not None:
            self.message.set(f"test failed: {outcome.error}")
        else:
            self.message.set(("OK: " if outcome.value.ok else "FAILED: ") + outcome.value.message)

    def _trader_options(self, settings: Settings) -> TraderOptions:
        base = self.app.trader_options or TraderOptions(
            state_dir=self.app.paths.state_dir, result_root=self.app.paths.result_root,
            interval_s=self.app.settings.trading.cycle_interval_s,
            initial_cash=self.app.settings.research.portfolio.capital)  # the one capital
        return dataclasses.replace(base, broker=self.broker.get(), settings=settings)

    def ensure_worker(self) -> bool:
        """Start the session thread if needed; False (with a message) if it cannot start."""
        if self.worker is not None and self.worker.alive:
            return True
        try:
            conn = self.connection()
        except ValueError as e:
            self.message.set(str(e))
            return False
        if self.broker.get() == "ib" and not self.app.settings.trading.live_armed:
            self.message.set("the IB broker trades a real account: arm live trading first")
            return False
        self.worker = TraderWorker(self._trader_options(conn), self.app.bus.post,
                                   lambda: trader_settings(self.app.store.get()))
        self.worker.start()
        if self._pending_state is not None:
            self.worker.command("state", self._pending_state)
            self._pending_state = None
        return True

    def start(self) -> None:
        if self.ensure_worker():
            self.worker.command("auto", True)
            self.message.set(f"auto trading started ({self.broker.get()})")

    def stop(self) -> None:
        if self.worker is not None and self.worker.alive:
            self.worker.command("shutdown")
            self.message.set("stopping: no new cycles")
        self.worker = None

    def apply_kill_switch(self) -> None:
        state = TradingState(self.kill.get())
        if self.worker is not None and self.worker.alive:
            self.worker.command("state", state)
        else:
            self._pending_state = state
        self.message.set(f"kill switch: {state.value}")

    def request_preview(self) -> None:
        if self.ensure_worker():
            self.worker.command("preview")

    def send(self) -> None:
        """Run one cycle now: the previewed orders that still pass are submitted."""
        if not self.ensure_worker():
            return
        count = sum(1 for r in self.preview.rows if r.outcome == "SEND") if self.preview else 0
        if self.worker.options.broker != "paper" and not self.app.confirm(
                "Send orders", f"Send about {count} orders to the {self.broker.get()} broker?"):
            return
        self.worker.command("send")

    def toggle_arm(self) -> None:
        """Arm live trading (runtime override only) after an explicit confirmation."""
        try:
            if self.armed.get():
                if not self.app.confirm("Arm live trading",
                                        "Orders will reach a real account. Arm live trading?"):
                    self.armed.set(False)
                    return
                self.app.store.set_override("trading.live_armed", True)
                self.message.set("LIVE trading armed (this session only)")
            else:
                self.app.store.clear_override("trading.live_armed")
                self.message.set("live trading disarmed")
        except ConfigError as e:
            self.armed.set(False)
            self.message.set(f"cannot arm: {e}")

    # -- bus handlers ----------------------------------------------------------------------
    def _on_status(self, msg: TraderStatus) -> None:
        s = self.status
        s["connected"].set(f"{'yes' if msg.connected else 'no'} ({msg.broker})")
        s["data"].set(msg.data_mode)
        s["state"].set(msg.trading_state)
        s["auto"].set("on" if msg.auto else "off")
        if msg.trading_state in TradingState._value2member_map_:
            self.kill.set(msg.trading_state)
        if msg.last_cycle_s is not None:
            s["cycle"].set(f"{msg.last_cycle_s:.3f}s")
        s["next"].set(msg.next_cycle_at.strftime("%H:%M:%S UTC") if msg.next_cycle_at else "-")
        if msg.message:
            self.message.set(msg.message)

    def _on_book(self, msg: BookSnapshot) -> None:
        if msg.account is not None:
            self.status["equity"].set(f"{msg.account.equity:,.0f} / {msg.account.cash:,.0f}")
        self.positions.set_rows((p.symbol, p.quantity, p.avg_cost) for p in msg.positions)
        self.orders.set_rows((o.order_ref, o.symbol, o.side.value, o.quantity,
                              o.order_type.value, o.limit_price, o.stop_price, o.status,
                              o.filled_qty) for o in msg.open_orders)
        self.fills.set_rows((f.time.strftime("%m-%d %H:%M:%S") if f.time else "",
                             f.symbol, f.side.value, f.quantity, f.price, f.order_ref)
                            for f in reversed(msg.fills))

    def _on_cycle(self, msg: CycleDone) -> None:
        self.cycles += 1
        if msg.report.failures:
            self.message.set("cycle failures: " + "; ".join(msg.report.failures[:3]))

    def _on_preview(self, msg: PreviewReady) -> None:
        self.preview = msg
        self.preview_table.set_rows((r.symbol, r.side, r.quantity, r.current, r.order_type,
                                     r.limit_price, r.outcome) for r in msg.rows)
        sends = sum(1 for r in msg.rows if r.outcome == "SEND")
        text = (f"preview of run {msg.run_id or '-'}: {len(msg.rows)} intents, "
                f"{sends} would be sent")
        if msg.failures:
            text += "; " + "; ".join(msg.failures[:3])
        self.message.set(text)

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.shutdown(timeout=5.0)


def register(app) -> None:
    """Add the Trading engine tab."""
    app.add_view("trading", "tab.trading", TradingView)
