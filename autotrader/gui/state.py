"""What the workstation shows at a glance, as plain data: mode, account, kill switch, last run.

:class:`WorkstationState` is the one record the banner, the status strip and
the window title are drawn from; the views update it from their bus handlers
(Tk thread) and call :meth:`Workstation.refresh_header`. The functions here are
pure (no tkinter), so every mode and wording is unit-tested without a display.

Mode rules (money safety first):

* the paper broker is ``PAPER``;
* IB is ``PAPER`` only once an IB paper account (``DU...``) was seen, by Test
  connection or the session; until then, or on a live account, it is
  ``LIVE (not armed)`` or ``LIVE (armed)``: an account not yet seen is treated
  as live;
* arming is possible only with IB selected and a live account detected
  (:func:`arm_refusal`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from autotrader.services.recommendations import RunSignal

__all__ = ["MODE_LIVE_ARMED", "MODE_LIVE_NOT_ARMED", "MODE_PAPER", "WorkstationState",
           "age_text", "ago_text", "arm_refusal", "duration_text", "trading_mode", "window_title"]

MODE_PAPER = "PAPER"
MODE_LIVE_ARMED = "LIVE (armed)"
MODE_LIVE_NOT_ARMED = "LIVE (not armed)"
TITLE = "BMA workstation"


@dataclass
class WorkstationState:
    """The facts behind the banner, the status strip and the title (Tk thread only)."""

    broker: str = "paper"
    armed: bool = False
    connected: bool = False
    account: str = ""
    live_account: bool | None = None  # None: no account seen yet for this broker
    kill_state: str = "?"  # the journal's kill switch; "?" until read
    auto: bool = False
    run_id: str = ""
    run_finished_at: float | None = None  # epoch seconds of the run shown / traded
    run_last_date: dt.date | None = None  # session of that run's last bar
    max_run_age_sessions: int | None = None  # signals.max_run_age_sessions (None: no limit)
    demo_run: bool = False
    run_signal: RunSignal | None = None  # that run's signal check (None: no baselines)
    research: str = ""  # "train 12/40 tasks, ETA 1:10" while a run is in progress


def trading_mode(state: WorkstationState) -> str:
    """``PAPER``, ``LIVE (armed)`` or ``LIVE (not armed)``.

    Examples
    --------
    >>> trading_mode(WorkstationState(broker="paper", armed=True))
    'PAPER'
    >>> trading_mode(WorkstationState(broker="ib"))  # no account seen yet: treated as live
    'LIVE (not armed)'
    >>> trading_mode(WorkstationState(broker="ib", live_account=False))
    'PAPER'
    >>> trading_mode(WorkstationState(broker="ib", live_account=True, armed=True))
    'LIVE (armed)'
    """
    if state.broker != "ib" or state.live_account is False:
        return MODE_PAPER
    return MODE_LIVE_ARMED if state.armed else MODE_LIVE_NOT_ARMED


def window_title(state: WorkstationState) -> str:
    """``"BMA workstation — PAPER — DEMO DATA"``.

    Examples
    --------
    >>> window_title(WorkstationState(demo_run=True))
    'BMA workstation — PAPER — DEMO DATA'
    """
    parts = [TITLE, trading_mode(state)]
    if state.demo_run:
        parts.append("DEMO DATA")
    return " — ".join(parts)


def arm_refusal(state: WorkstationState) -> str | None:
    """Why live trading cannot be armed now (None: it can).

    Examples
    --------
    >>> arm_refusal(WorkstationState(broker="paper"))
    'the paper broker never trades a real account: select IB to arm live trading'
    >>> arm_refusal(WorkstationState(broker="ib", live_account=True)) is None
    True
    """
    if state.broker != "ib":
        return "the paper broker never trades a real account: select IB to arm live trading"
    if state.live_account is None:
        return "no live account detected yet: press Test connection (or Start) first"
    if not state.live_account:
        return f"account {state.account or '-'} is an IB paper account: nothing to arm"
    return None


def duration_text(seconds: float | None) -> str:
    """``"0:42"``, ``"12:05"``, ``"1:02:05"`` (``"-"`` when unknown).

    Examples
    --------
    >>> duration_text(42.4), duration_text(725), duration_text(3725), duration_text(None)
    ('0:42', '12:05', '1:02:05', '-')
    """
    if seconds is None or seconds != seconds:
        return "-"
    total = int(round(max(0.0, seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def age_text(seconds: float) -> str:
    """How old something is: ``"just now"``, ``"12 min"``, ``"3 h 05 min"``, ``"2 days"``.

    Examples
    --------
    >>> age_text(20), age_text(720), age_text(3 * 3600 + 300), age_text(2.5 * 86400)
    ('just now', '12 min', '3 h 05 min', '2 days')
    """
    if seconds < 60:
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{int(seconds // 86400)} days"


def ago_text(seconds: float) -> str:
    """``"just now"`` or ``"3 h 05 min ago"``.

    Examples
    --------
    >>> ago_text(5), ago_text(720)
    ('just now', '12 min ago')
    """
    age = age_text(seconds)
    return age if age == "just now" else f"{age} ago"
