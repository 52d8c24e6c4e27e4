"""The book half of the Trading tab: tiles, equity curve, positions, blotter, gaps, fills, preview.

:class:`BookPanel` only draws what the trader session posted
(:class:`~autotrader.services.trader_worker.BookSnapshot`,
:class:`~autotrader.services.trader_worker.PreviewReady`); the actions on it
(flatten, cancel, cancel all) are buttons whose commands the Trading view
supplies. Rows come from :mod:`autotrader.gui.book_rows` (pure, tested).
"""

from __future__ import annotations

import datetime as dt
import math
import tkinter as tk
from collections.abc import Callable, Sequence
from tkinter import ttk
from typing import Any

from autotrader.gui.book_rows import (
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    BookFigures,
    book_figures,
    fill_rows,
    money,
    order_rows,
    pct,
    position_rows,
    signed,
)
from autotrader.gui.equity_chart import EquityChart
from autotrader.gui.theme import COLOURS
from autotrader.gui.widgets import Table
from autotrader.services.market_session import et_clock
from autotrader.services.plan_view import PlanView
from autotrader.services.trader_worker import BookSnapshot, PreviewReady

__all__ = ["BookPanel"]

TILES = (("equity", "Equity (USD)"), ("cash", "Cash"), ("invested", "Invested / planned"),
         ("unrealised", "Unrealised P&L"), ("day_pnl", "Day P&L (vs prev close)"),
         ("positions", "Positions"), ("open_orders", "Working orders"),
         ("coverage", "Plan coverage"))
POSITION_HEADINGS = {"qty": "qty", "avg_cost": "avg cost", "last": "last",
                     "market_value": "market value", "unrealised": "unrealised P&L",
                     "day_pnl": "day P&L", "weight": "weight", "planned": "planned"}


class BookPanel(ttk.Frame):
    """Everything below the controls of the Trading tab."""

    def __init__(self, master: tk.Misc, timer: object,
                 actions: dict[str, Callable[[], None]]) -> None:
        super().__init__(master)
        self.tiles: dict[str, ttk.Label] = {}
        self._build_top()
        self._build_positions(actions)
        self._build_orders(actions)
        self._build_gaps_and_fills()
        self._build_preview(timer)
        self.columnconfigure(0, weight=1)

    # -- layout ----------------------------------------------------------------------------
    def _build_top(self) -> None:
        top = ttk.Frame(self)
        top.grid(row=0, column=0, sticky="ew", pady=(2, 6))
        tiles = ttk.Frame(top)
        tiles.pack(side="left", anchor="n")
        for index, (key, caption) in enumerate(TILES):
            tile = ttk.Frame(tiles, style="Tile.TFrame", padding=(8, 4))
            tile.grid(row=index // 4, column=index % 4, sticky="nsew", padx=3, pady=3)
            ttk.Label(tile, text=caption, style="TileCaption.TLabel").pack(anchor="w")
            value = ttk.Label(tile, text="-", style="TileValue.TLabel",
                              width=13 if key == "invested" else 11)
            value.pack(anchor="w")
            self.tiles[key] = value
        self.chart = EquityChart(top, width=310, height=132)
        self.chart.pack(side="left", fill="x", expand=True, padx=(8, 0), anchor="n")

    def _heading(self, row: int, text: str) -> ttk.Frame:
        bar = ttk.Frame(self)
        bar.grid(row=row, column=0, sticky="ew", pady=(6, 1))
        ttk.Label(bar, text=text, style="Heading.TLabel").pack(side="left")
        return bar

    def _build_positions(self, actions: dict[str, Callable[[], None]]) -> None:
        bar = self._heading(1, "Positions")
        self.flatten_button = ttk.Button(bar, text="Flatten selected...",
                                         command=actions["flatten"], style="Danger.TButton")
        self.flatten_button.pack(side="right")
        self.positions = Table(self, POSITION_COLUMNS, height=7, headings=POSITION_HEADINGS,
                               widths={"symbol": 80, "qty": 60, "avg_cost": 85, "last": 85,
                                       "market_value": 110, "unrealised": 120, "day_pnl": 95,
                                       "weight": 70, "planned": 70},
                               numeric=POSITION_COLUMNS[1:], stretch=POSITION_COLUMNS)
        self.positions.tag("gain", foreground=COLOURS["good"])
        self.positions.tag("loss", foreground=COLOURS["bad"])
        self.positions.tag("planned", foreground=COLOURS["muted"])
        self.positions.grid(row=2, column=0, sticky="ew")

    def _build_orders(self, actions: dict[str, Callable[[], None]]) -> None:
        bar = self._heading(3, "Working orders")
        self.cancel_all_button = ttk.Button(bar, text="Cancel all...",
                                            command=actions["cancel_all"],
                                            style="Danger.TButton")
        self.cancel_all_button.pack(side="right")
        self.cancel_button = ttk.Button(bar, text="Cancel selected",
                                        command=actions["cancel"])
        self.cancel_button.pack(side="right", padx=4)
        self.orders = Table(self, ORDER_COLUMNS, height=5,
                            widths={"order_ref": 250, "symbol": 70, "side": 50, "qty": 55,
                                    "type": 65, "limit": 75, "stop": 75, "status": 105,
                                    "filled": 55},
                            numeric=("qty", "limit", "stop", "filled"), stretch=ORDER_COLUMNS)
        self.orders.grid(row=4, column=0, sticky="ew")

    def _build_gaps_and_fills(self) -> None:
        # full width each: a gap's reason is a sentence, a fill's order ref is long
        ttk.Label(self, text="Plan vs book: gaps and why", style="Heading.TLabel").grid(
            row=5, column=0, sticky="w", pady=(6, 0))
        self.gap_note = ttk.Label(self, text="", style="Small.TLabel", wraplength=900)
        self.gap_note.grid(row=6, column=0, sticky="w")
        # the reason is the sentence to read: it takes the spare width
        self.gaps = Table(self, ("symbol", "weight", "planned", "gap", "reason"), height=5,
                          widths={"symbol": 70, "weight": 65, "planned": 70, "gap": 160,
                                  "reason": 460}, numeric=("weight", "planned"),
                          stretch=("reason",))
        self.gaps.grid(row=7, column=0, sticky="ew")
        self._heading(8, "Recent fills")
        self.fills = Table(self, ("time", "symbol", "side", "qty", "price", "order_ref"),
                           height=5, headings={"time": "time (ET)"},
                           widths={"time": 110, "symbol": 70, "side": 50, "qty": 60,
                                   "price": 80, "order_ref": 380},
                           numeric=("qty", "price"))
        self.fills.grid(row=9, column=0, sticky="ew")

    def _build_preview(self, timer: object) -> None:
        bar = self._heading(10, "Order preview (target vs book, not sent)")
        self.preview_note = ttk.Label(bar, text="Ctrl+P to compute; refreshed after every "
                                                "cycle once shown", style="Small.TLabel")
        self.preview_note.pack(side="left", padx=8)
        self.preview = Table(self, ("symbol", "side", "quantity", "current", "type", "limit",
                                    "outcome"), height=6, timer=timer,
                             widths={"symbol": 70, "side": 50, "quantity": 70, "current": 70,
                                     "type": 70, "limit": 80, "outcome": 440},
                             numeric=("quantity", "current", "limit"))
        self.preview.tag("deny", foreground=COLOURS["muted"])
        self.preview.grid(row=11, column=0, sticky="ew")

    # -- drawing ---------------------------------------------------------------------------
    def show_book(self, msg: BookSnapshot) -> BookFigures:
        """Draw a book snapshot; returns its totals."""
        quotes = msg.quotes or {}
        rows = position_rows(msg.positions, quotes, msg.account, msg.plan)
        self.positions.set_rows(rows, tag_of=_pnl_tag)
        self.orders.set_rows(order_rows(msg.open_orders))
        self.fills.set_rows(fill_rows(msg.fills))
        self.show_plan(msg.plan)
        figures = book_figures(msg.positions, quotes, msg.account, len(msg.open_orders))
        self._tiles(figures, msg.plan)
        self.chart.draw(msg.equity_marks)
        return figures

    def show_plan(self, plan: PlanView | None) -> None:
        """Show ``plan``: the coverage tile, the gaps table and the line above it.

        Without a plan (or one without a run) the table is emptied and the line
        says why.
        """
        coverage = plan.coverage if plan is not None else None
        self.tiles["coverage"].configure(
            text=pct(coverage, 1) if coverage is not None else "-",
            style=f"Tile{_coverage_tone(coverage) or 'Value'}.TLabel")
        if plan is None or not plan.run_id:
            self.gaps.set_rows(())
            self.gap_note.configure(text=plan.note if plan is not None else
                                    "no session: plan versus book is read after a cycle")
            return
        self.gaps.set_rows((g.symbol, pct(g.weight), pct(g.planned_weight), g.kind_text,
                            g.reason_text) for g in plan.gaps)
        self.gap_note.configure(text=plan_line(plan))

    def _tiles(self, figures: BookFigures, plan: PlanView | None) -> None:
        planned = plan.planned_invested if plan is not None else None
        invested = pct(figures.invested, 1) + (f" / {pct(planned, 1)}" if planned is not None
                                               else "")
        values = {"equity": (money(figures.equity, 0), ""), "cash": (money(figures.cash, 0), ""),
                  "invested": (invested, ""),
                  "unrealised": (signed(figures.unrealised), _sign(figures.unrealised)),
                  "day_pnl": (signed(figures.day_pnl), _sign(figures.day_pnl)),
                  "positions": (str(figures.positions), ""),
                  "open_orders": (str(figures.open_orders), "")}
        for key, (text, tone) in values.items():
            self.tiles[key].configure(text=text, style=f"Tile{tone}.TLabel" if tone
                                      else "TileValue.TLabel")

    def show_preview(self, msg: PreviewReady, at: str) -> None:
        """Draw the order preview computed at ``at``."""
        self.preview.set_rows(((r.symbol, r.side, r.quantity, r.current, r.order_type,
                                money(r.limit_price) if r.limit_price else "-", r.outcome)
                               for r in msg.rows),
                              tag_of=lambda row: None if row[-1] == "SEND" else "deny")
        sends = sum(1 for r in msg.rows if r.outcome == "SEND")
        self.preview_note.configure(text=f"run {msg.run_id or '-'} at {at}: {len(msg.rows)} "
                                         f"intents, {sends} would be sent")


def plan_line(plan: PlanView) -> str:
    """Summarise ``plan`` in the line above the gaps table.

    For example ``run R, last cycle Tue 10:00:00 ET: coverage 93.4%, invested
    88.1% of 92.0% planned, 3 gaps`` (the figures of ``autotrader status``).
    """
    try:
        when = et_clock(dt.datetime.fromisoformat(plan.as_of))
    except ValueError:
        when = plan.as_of or "?"
    return (f"run {plan.run_id}, last cycle {when}: coverage {pct(plan.coverage, 1)}, invested "
            f"{pct(plan.invested, 1)} of {pct(plan.planned_invested, 1)} planned, "
            f"{len(plan.gaps)} gap{'' if len(plan.gaps) == 1 else 's'}"
            + ("" if plan.gaps else " (every name at plan)"))


def _coverage_tone(coverage: float | None) -> str:
    # green at plan (the done-criterion, 95 %), orange below
    if coverage is None:
        return ""
    return "Good" if coverage >= 0.95 else "Warn"


def _sign(value: float) -> str:
    if not math.isfinite(value) or abs(value) < 0.005:
        return ""
    return "Good" if value > 0 else "Bad"


def _pnl_tag(row: Sequence[Any]) -> str | None:
    unrealised = row[POSITION_COLUMNS.index("unrealised")]
    if row[1] == 0:
        return "planned"
    if unrealised.startswith("+") and unrealised != "+0.00":
        return "gain"
    return "loss" if unrealised.startswith("-") and unrealised != "-" else None
