"""The trader session: the ONE place that composes journal, broker, prices and runner.

Both composition roots use it: the headless ``autotrader run`` (``autotrader.cli``)
and the GUI's trader worker (:mod:`autotrader.services.trader_worker`). From the
settings and a :class:`SessionOptions` record, :func:`build_session` builds

* the state directory's trader lock (:mod:`autotrader.services.state_lock`: one
  trader per state directory, taken before the journal opens, held until
  :meth:`TraderSession.close`),
* the journal (``<state_dir>/journal.db``),
* the broker (:func:`autotrader.services.brokers.make_broker`: the paper broker
  with simulated prices, or IB with the journal's reconcile after every reconnect
  and Polygon's previous close as the last-resort price),
* the recommendation source (``run_dir`` or the newest run under ``result_root``;
  a DEMO run is refused while the broker is live),
* the price source of the paper broker (each run's ``last_close``, kept for names
  dropped by a later run),
* and the :class:`~autotrader.services.trading.TradingRunner`.

:meth:`TraderSession.start` connects, refuses a simulated clock on a live
session and runs the runner's start (session check, reconcile, resume).

Also here: :func:`trader_settings`, the one mapping from the configuration
sections onto the engine's records, :class:`SimClock` (replays, tests) and
:func:`simulated_quotes` (the paper/sim price source).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autotrader.broker.base import Broker
from autotrader.config import Settings
from autotrader.domain.errors import TraderError
from autotrader.domain.records import Quote
from autotrader.engine.limits import PlannerSettings, RiskLimits, SizingSettings, StopSettings
from autotrader.engine.risk import TradingState
from autotrader.journal import Journal, ReconcileReport
from autotrader.services.brokers import make_broker
from autotrader.services.cycle_records import TraderSettings
from autotrader.services.recommendations import (
    RecommendationSet,
    latest_run_dir,
    load_recommendations,
)
from autotrader.services.state_lock import (
    StateLock,
    acquire_account_lock,
    acquire_state_lock,
    default_lock_dir,
)
from autotrader.services.trading import (
    TradingRunner,
    journal_trading_state,
    set_journal_trading_state,
)

logger = logging.getLogger(__name__)

#: the session's journal in its state directory
JOURNAL_FILE = "journal.db"

__all__ = [
    "SessionOptions",
    "SimClock",
    "TraderSession",
    "build_session",
    "kill_switch",
    "planner_settings",
    "prev_close_source",
    "simulated_quotes",
    "trader_settings",
]


@dataclass(frozen=True)
class SessionOptions:
    """How to build one trader session (everything that is not configuration).

    Parameters
    ----------
    state_dir : journal and paper-account directory (created if missing).
    result_root : where the recommendation runs are; the newest is traded.
    broker : ``"paper"`` or ``"ib"``.
    run_dir : trade this run instead of the newest under ``result_root``.
    clock : aware "now"; None = the wall clock (UTC).
    simulated_clock : ``clock`` is a replay clock with ``advance(seconds)`` (a
        :class:`SimClock`, ``--sim-time``); refused on a live session, where only
        real time may drive orders.
    initial_cash : starting cash of a new paper account.
    market_open : ``now -> bool``; None = the NYSE calendar.
    lock_dir : the per-user directory of the broker-account locks; None =
        :func:`~autotrader.services.state_lock.default_lock_dir`.
    """

    state_dir: Path
    result_root: Path
    broker: str = "paper"
    run_dir: Path | None = None
    clock: Callable[[], dt.datetime] | None = None
    simulated_clock: bool = False
    initial_cash: float = 100_000.0
    market_open: Callable[[dt.datetime], bool] | None = None
    lock_dir: Path | None = None


@dataclass
class TraderSession:
    """A built session: journal, broker, recommendation and price sources, runner."""

    options: SessionOptions
    journal: Journal
    broker: Broker
    recommendations: Callable[[], RecommendationSet]
    closes: Callable[[], dict[str, float]]
    runner: TradingRunner
    clock: Callable[[], dt.datetime] = field(repr=False)
    state_lock: StateLock | None = field(default=None, repr=False)
    account_lock: StateLock | None = field(default=None, repr=False)

    def start(self) -> ReconcileReport:
        """Connect, check the session and run :meth:`TradingRunner.start`.

        Raises
        ------
        AccountBusy
            Another trader trades the broker account this session connected to
            (a paper-broker account lives in the state directory, whose lock
            :func:`build_session` already holds).
        TraderError
            A simulated clock on a live session, a broker that cannot be reached,
            or a journal whose working orders belong to another client id.
        """
        self.broker.connect()
        if self.broker.is_live and self.options.simulated_clock:
            raise TraderError("a simulated clock (--sim-time) is refused on a live IB session")
        identity = self.broker.session()
        if identity.broker != "paper" and identity.account and self.account_lock is None:
            self.account_lock = acquire_account_lock(
                self.options.lock_dir or default_lock_dir(), broker=identity.broker,
                account=identity.account, state_dir=self.options.state_dir)
        logger.info("%r (%s), live armed: %s", self.broker,
                    "LIVE" if self.broker.is_live else "paper",
                    getattr(self.broker, "live_armed", False))
        return self.runner.start()

    def run_loop(self, interval_s: float, max_cycles: int | None = None) -> None:
        """Run cycles every ``interval_s`` seconds (``max_cycles`` None = forever).

        Between cycles a simulated clock moves a whole interval; with IB real
        time passes with the client loop running (reconnects and fills are
        handled between cycles); otherwise the process sleeps.
        """

        def pause(seconds: float) -> None:
            if self.options.simulated_clock:
                if not isinstance(self.clock, SimClock):
                    raise TypeError(f"simulated_clock needs a SimClock, not {self.clock!r}")
                self.clock.advance(interval_s)
            wait = getattr(self.broker, "wait", None)
            if wait is not None:
                wait(seconds)
            elif not self.options.simulated_clock:
                time.sleep(seconds)

        self.runner.run_loop(interval_s, max_cycles, sleep=pause)

    def close(self) -> None:
        """Disconnect the broker, close the journal, release the lock (idempotent)."""
        try:
            self.runner.stop()
        finally:
            try:
                self.journal.close()
            finally:
                for lock in (self.account_lock, self.state_lock):
                    if lock is not None:
                        lock.release()


def build_session(settings: Settings, options: SessionOptions,
                  settings_source: Callable[[], TraderSettings] | None = None) -> TraderSession:
    """Build journal, broker, recommendation and price sources and the runner.

    Parameters
    ----------
    settings : the configuration (``connection`` and ``trading`` feed the broker).
    options : see :class:`SessionOptions`.
    settings_source : ``() -> TraderSettings`` read at every cycle (hot reload);
        None = :func:`trader_settings` of ``settings``.

    Raises
    ------
    StateDirBusy
        Another trader runs on ``options.state_dir`` (nothing was opened).
    TraderError
        The broker cannot be built (unknown kind, IB adapter missing); the journal
        is closed and the lock released again.
    """
    options.state_dir.mkdir(parents=True, exist_ok=True)
    state_lock = acquire_state_lock(options.state_dir, broker=options.broker)
    try:
        return _build_locked_session(settings, options, settings_source, state_lock)
    except BaseException:
        state_lock.release()
        raise


def _build_locked_session(settings: Settings, options: SessionOptions,
                          settings_source: Callable[[], TraderSettings] | None,
                          state_lock: StateLock) -> TraderSession:
    clock = options.clock or (lambda: dt.datetime.now(dt.timezone.utc))
    last_closes: dict[str, float] = {}  # every run seen: names dropped later keep a price
    broker: Broker | None = None  # bound below; read when a run is loaded

    def recommendations() -> RecommendationSet:
        run_dir = options.run_dir or latest_run_dir(options.result_root)
        run = load_recommendations(run_dir, broker_is_live=bool(broker and broker.is_live))
        last_closes.update({r.ticker: r.last_close for r in run.rows})
        return run

    def closes() -> dict[str, float]:
        if not last_closes:
            try:
                recommendations()
            except TraderError as e:
                logger.warning("no run prices yet: %s", e)
        return last_closes

    journal = Journal(options.state_dir / JOURNAL_FILE).open()
    try:
        broker = make_broker(options.broker, state_dir=options.state_dir, settings=settings,
                             quotes=simulated_quotes(closes), clock=clock,
                             initial_cash=options.initial_cash, journal=journal,
                             prev_close=prev_close_source(settings, closes)
                             if options.broker == "ib" else None)
    except BaseException:
        journal.close()
        raise
    if options.broker == "paper":
        logger.info("paper broker with simulated (paper/sim) prices; state in %s",
                    options.state_dir)
    runner = TradingRunner(broker, journal, recommendations, clock=clock,
                           market_open=options.market_open,
                           settings_source=settings_source or (lambda: trader_settings(settings)))
    return TraderSession(options, journal, broker, recommendations, closes, runner, clock,
                         state_lock)


def kill_switch(state_dir: Path, state: TradingState | None = None) -> TradingState:
    """Read (or, with ``state``, set) the kill switch in the journal of ``state_dir``.

    For a GUI with no session running: the switch is the journal's, so HALT set
    here holds for the next session, and the status shows the journal's value
    whether a session runs or not. Opens and closes the journal (call it off
    the Tk thread); raises :class:`~autotrader.domain.errors.JournalError`.
    """
    with Journal(Path(state_dir) / JOURNAL_FILE) as journal:
        if state is not None:
            set_journal_trading_state(journal, state)
        return journal_trading_state(journal)


def trader_settings(settings: Settings) -> TraderSettings:
    """Map the configuration sections onto the engine's parameter records."""
    capital, orders, sizing = settings.capital, settings.orders, settings.sizing
    controls, filters = settings.risk_controls, settings.filters
    stops = controls.stops
    return TraderSettings(
        risk=RiskLimits(
            cash_reserve_pct=capital.cash_reserve_pct,
            max_single_position_pct=capital.max_single_position_pct,
            max_portfolio_exposure=capital.max_portfolio_exposure,
            min_order_value_usd=orders.min_order_value_usd,
            daily_order_limit=orders.daily_order_limit,
            per_cycle_order_limit=orders.per_cycle_order_limit,
            acceptance_threshold=settings.signals.acceptance_threshold,
            max_run_age_sessions=settings.signals.max_run_age_sessions,
            sector_exposure_limit=controls.sector_exposure_limit,
            max_correlation=controls.max_correlation,
            correlation_window=controls.correlation_window,
            max_daily_loss_pct=controls.max_daily_loss_pct,
            min_price=filters.min_price, max_price=filters.max_price,
            trading_start=filters.trading_start, trading_end=filters.trading_end,
            timezone=filters.timezone),
        sizing=SizingSettings(
            per_trade_risk_pct=sizing.per_trade_risk_pct,
            max_position_pct_of_equity=capital.max_single_position_pct,
            notional_round_lots=sizing.notional_round_lots,
            cash_reserve_pct=capital.cash_reserve_pct),
        planner=planner_settings(settings),
        stops=StopSettings(enabled=stops.enabled, atr_multiplier=stops.atr_multiplier,
                           trailing=stops.trailing, max_loss_pct=stops.max_loss_pct,
                           min_atr_multiplier=stops.min_atr_multiplier,
                           decay_per_day=stops.decay_per_day),
    )


def planner_settings(settings: Settings) -> PlannerSettings:
    """Build the planner's record from ``execution`` (plus ``sizing.per_trade_risk_pct``)."""
    execution = settings.execution
    return PlannerSettings(
        min_adv_usd=execution.min_adv_usd, max_spread_bps=execution.max_spread_bps,
        min_expected_alpha_bps=execution.min_expected_alpha_bps,
        volatility_buckets=(execution.volatility_low_max, execution.volatility_medium_max),
        allowed_volatility_buckets=tuple(execution.allowed_volatility_buckets),
        max_limit_offset_bps=execution.max_limit_offset_bps, order_type=execution.order_type,
        take_profit_atr_multiple=execution.take_profit_atr_multiple,
        stop_atr_multiple=execution.stop_atr_multiple,
        per_trade_risk_pct=settings.sizing.per_trade_risk_pct,
        min_seconds_between_orders=execution.min_seconds_between_orders)


class SimClock:
    """A clock that starts at ``start`` and moves only when :meth:`advance` is called."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        """Return the current simulated time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += dt.timedelta(seconds=seconds)


def simulated_quotes(closes: Callable[[], dict[str, float]]) -> Callable[[str, dt.datetime],
                                                                        Quote | None]:
    """Paper/sim price provider: ``last_close`` with a deterministic +-0.5% intraday wave.

    The phase comes from a CRC of the symbol, so every run and every restart
    sees the same prices at the same instant; bid/ask are 2 bps either side.
    """

    def provider(symbol: str, now: dt.datetime) -> Quote | None:
        close = closes().get(symbol)
        if close is None or not close > 0:
            return None
        phase = zlib.crc32(symbol.encode()) % 360 / 57.29578
        minutes = now.timestamp() / 60.0
        last = round(close * (1.0 + 0.005 * math.sin(minutes / 60.0 + phase)), 4)
        return Quote(symbol, last=last, prev_close=close, bid=last * 0.9998, ask=last * 1.0002,
                     time=now)

    return provider


def prev_close_source(settings: Settings,
                       closes: Callable[[], dict[str, float]]) -> Callable[[str], float | None]:
    """IB's last-resort price: Polygon's previous close (with a key), else the run's close."""
    from autotrader.config.secrets import polygon_api_key

    key = polygon_api_key()
    client = None
    if key:  # the Polygon package (and its parquet stack) loads only when it can be used
        from polygon.client import PolygonClient

        client = PolygonClient(base_url=settings.polygon.base_url, api_key=key)

    def prev_close(symbol: str) -> float | None:
        if client is not None:
            from polygon.errors import PolygonError

            try:
                bar = client.get_previous_close(symbol)
            except PolygonError as e:
                logger.warning("Polygon previous close of %s failed: %s", symbol, e)
            else:
                if bar is not None:
                    return bar.close
        price = closes().get(symbol)
        if price is not None:
            logger.warning("previous close of %s taken from the run's last_close", symbol)
        return price

    return prev_close
