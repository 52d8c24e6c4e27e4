"""The top of the window: the mode banner and the status strip, drawn from one state record.

:class:`ModeBanner` is a full-width colour band: blue ``PAPER``, orange
``LIVE (not armed)``, red ``LIVE (armed)``, with a purple ``DEMO DATA`` tag
when the run on screen (the one the trader trades) was built from demo data.
:class:`StatusStrip` is the line under it: broker connection and account,
market session with the exchange clock and the next open/close, the last
research run and its age (or the run in progress), and the kill switch. Both
only read :class:`~autotrader.gui.state.WorkstationState`; the market session
comes from :func:`autotrader.services.market_session.market_session`, cached
until its next open/close, so the once-a-second clock tick costs a few
microseconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from autotrader.engine.plan_status import signal_text
from autotrader.gui.state import (
    MODE_LIVE_ARMED,
    MODE_LIVE_NOT_ARMED,
    WorkstationState,
    ago_text,
    trading_mode,
)
from autotrader.gui.theme import BANNER, COLOURS
from autotrader.services.market_session import MarketSession, et_clock, run_age_sessions

logger = logging.getLogger(__name__)

__all__ = ["ModeBanner", "StatusStrip"]

_EXPLAIN = {
    "paper": "paper broker: simulated fills, no real money",
    "ib-paper": "Interactive Brokers paper account {account}: no real money",
    MODE_LIVE_NOT_ARMED: "Interactive Brokers {account}: a real account, orders are refused "
                         "until live trading is armed",
    MODE_LIVE_ARMED: "Interactive Brokers {account}: orders reach a REAL account",
}


class ModeBanner(tk.Frame):
    """The colour band with the mode, what it means, and the DEMO DATA tag."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, height=36)
        self.mode = tk.Label(self, font=("TkDefaultFont", 14, "bold"), padx=12)
        self.mode.pack(side="left")
        self.explain = tk.Label(self, font=("TkDefaultFont", 10), anchor="w")
        self.explain.pack(side="left", fill="x", expand=True)
        self.demo = tk.Label(self, text=" DEMO DATA ", font=("TkDefaultFont", 11, "bold"),
                             background=COLOURS["demo"], foreground="#ffffff", padx=8)
        self._drawn: tuple[str, str, bool] | None = None

    def render(self, state: WorkstationState) -> None:
        """Draw ``state``'s mode and demo tag."""
        mode = trading_mode(state)
        background, foreground = BANNER[mode]
        account = state.account or "(account not seen yet: Test connection)"
        if state.broker != "ib":
            text = _EXPLAIN["paper"]
        elif mode == "PAPER":
            text = _EXPLAIN["ib-paper"].format(account=account)
        else:
            text = _EXPLAIN[mode].format(account=account)
        drawn = (mode, text, state.demo_run)
        if drawn == self._drawn:  # called on every progress tick: redraw only on a change
            return
        self._drawn = drawn
        self.configure(background=background)
        self.mode.configure(text=mode, background=background, foreground=foreground)
        self.explain.configure(text=text, background=background, foreground=foreground)
        if state.demo_run:
            self.demo.pack(side="right", padx=8, pady=4)
        else:
            self.demo.pack_forget()

    def texts(self) -> tuple[str, str, bool]:
        """``(mode, explanation, demo tag shown)`` (tests read the banner through this)."""
        return self.mode.cget("text"), self.explain.cget("text"), bool(self.demo.winfo_manager())


class StatusStrip(ttk.Frame):
    """Broker | market | research | kill switch, each a caption and a coloured value."""

    FIELDS = ("kill", "broker", "market", "research")
    CAPTIONS = {"broker": "Broker", "market": "NYSE", "research": "Research",
                "kill": "Kill switch"}

    def __init__(self, master: tk.Misc, clock: Callable[[], dt.datetime],
                 session_of: Callable[[dt.datetime], MarketSession],
                 run_age_of: Callable[[dt.date, dt.datetime], int] = run_age_sessions) -> None:
        super().__init__(master, style="Strip.TFrame", padding=(6, 3))
        self.clock, self.session_of, self.run_age_of = clock, session_of, run_age_of
        self._age: tuple[object, int | None] | None = None  # ((last bar, session), age)
        self.values: dict[str, ttk.Label] = {}
        self.cells: dict[str, ttk.Frame] = {}
        self.session: MarketSession | None = None
        self._wrap = 0  # wraplength of the research text (pixels), set by _flow
        for column, key in enumerate(self.FIELDS):
            cell = ttk.Frame(self, style="Strip.TFrame")
            cell.grid(row=0, column=column, sticky="w", padx=(0, 18))
            ttk.Label(cell, text=self.CAPTIONS[key] + ":", style="Strip.TLabel").pack(
                side="left")
            value = ttk.Label(cell, text="-", style="StripValue.TLabel")
            value.pack(side="left", padx=(4, 0))
            self.values[key], self.cells[key] = value, cell
        self.columnconfigure(len(self.FIELDS), weight=1)
        self.bind("<Configure>", lambda _e: self._flow())

    def _flow(self) -> None:
        # a narrow window puts the research cell on a second line instead of clipping it,
        # and a research text longer than the window wraps within it
        width = self.winfo_width()
        if width > 1:
            caption = self.cells["research"].winfo_children()[0]
            wrap = max(200, width - caption.winfo_reqwidth() - 40)
            if wrap != self._wrap:
                self._wrap = wrap
                self.values["research"].configure(wraplength=wrap)
        needed = sum(c.winfo_reqwidth() + 18 for c in self.cells.values()) + 12
        research = self.cells["research"]
        wanted = (1, 0) if needed > width > 1 else (0, len(self.FIELDS) - 1)
        info = research.grid_info()
        if (int(info.get("row", 0)), int(info.get("column", 0))) != wanted:
            research.grid(row=wanted[0], column=wanted[1], columnspan=len(self.FIELDS)
                          if wanted[0] else 1, sticky="w", padx=(0, 18))

    def market(self, now: dt.datetime) -> MarketSession | None:
        """Return the market session at ``now``, recomputed only when the cached one expired."""
        if self.session is None or not self.session.valid_at(now):
            self.session = self.session_of(now)
        return self.session

    def run_age(self, last_date: dt.date | None, now: dt.datetime,
                session: MarketSession | None) -> int | None:
        """Sessions closed since the run's last bar; recomputed only when the session changes.

        (An age changes only at a close, the edge at which :meth:`market` renews the
        session.) None without a calendar or a last bar, or when the calendar fails.
        """
        if last_date is None or session is None:
            return None
        key = (last_date, session)
        if self._age is None or self._age[0] != key:
            try:
                age: int | None = self.run_age_of(last_date, now)
            except Exception as e:  # noqa: BLE001 - shown as unknown; the trader fails closed
                logger.warning("run age unknown: %s", e)
                age = None
            self._age = (key, age)
        return self._age[1]

    def render(self, state: WorkstationState, calendar_ready: bool = True) -> None:
        """Draw every field from ``state`` and the current time."""
        now = self.clock()
        self._set("broker", *_broker_text(state))
        session = self.market(now) if calendar_ready else None
        if session is None:
            self._set("market", f"{et_clock(now)} (loading the NYSE calendar)", "")
        else:
            style = "Good" if session.is_open else ("Bad" if session.is_open is None else "")
            self._set("market", f"{session.describe()}  ·  {et_clock(now)}", style)
        age = self.run_age(state.run_last_date, now, session)
        if self._set("research", *_research_text(state, time.time(), age)):
            self.after_idle(self._flow)
        kill = state.kill_state
        self._set("kill", kill, {"HALTED": "Bad", "REDUCING": "Warn", "ACTIVE": "Good"}.get(
            kill, ""))

    def _set(self, key: str, text: str, style: str) -> bool:
        # True when the text changed (its width may have changed too)
        label = self.values[key]
        changed = label.cget("text") != text
        if changed:
            label.configure(text=text)
        wanted = f"Strip{style}.TLabel" if style else "StripValue.TLabel"
        if str(label.cget("style")) != wanted:
            label.configure(style=wanted)
        return changed

    def text(self, key: str) -> str:
        """Return the shown text of field ``key`` (tests)."""
        return self.values[key].cget("text")


def _broker_text(state: WorkstationState) -> tuple[str, str]:
    auto = ", auto trading ON" if state.auto else ""
    if state.broker == "paper":
        return ("paper (simulated), " + ("connected" if state.connected else "not connected")
                + auto), "Good" if state.connected else ""
    account = state.account or "account not seen yet"
    kind = "" if state.live_account is None else (", LIVE" if state.live_account else
                                                  ", paper account")
    if not state.connected:
        return f"IB, not connected ({account}{kind})", ""
    return f"IB, connected: {account}{kind}{auto}", "Good"


def _research_text(state: WorkstationState, now: float,
                   age: int | None = None) -> tuple[str, str]:
    if state.research:
        return state.research, "Warn"
    if not state.run_id:
        return "no run yet (Research tab: Run BMA model, F5)", "Warn"
    demo = " (DEMO data)" if state.demo_run and "DEMO" not in state.run_id else ""
    data, style = "", ""
    if state.run_last_date is not None:
        data = f", data to {state.run_last_date:%a %Y-%m-%d}"
        limit = state.max_run_age_sessions
        if limit is not None and age is not None and age > limit:
            data += f" ({age} sessions old, limit {limit}: opens nothing)"
            style = "Warn"
    finished = "" if state.run_finished_at is None else \
        f", finished {ago_text(now - state.run_finished_at)}"
    signal = ""
    if state.run_signal is not None:
        signal = "; " + signal_text(state.run_signal.beats_all_baselines,
                                    state.run_signal.beaten_by)
        if not state.run_signal.beats_all_baselines:  # the fused score loses to a baseline
            style = "Bad"
    return f"run {state.run_id}{demo}{data}{finished}{signal}", style
