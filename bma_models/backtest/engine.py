"""The strategy backtest: the product replayed session by session, with costs.

On every rebalance date ``d`` (every ``rebalance_every`` sessions of the
out-of-sample span) the engine knows what the live system would know at the
close of ``d`` and nothing else:

* the scores of ``d`` from ``predictions_oos`` (walk-forward OOS: each model
  was fitted on data before the date, never the final model);
* a factor risk model fitted on returns up to ``d`` (refitted every
  ``risk_refit_every`` sessions, on the trailing window only);
* prices, ADV, ATR and volatility up to ``d`` (:class:`MarketPanels`; the
  snapshot the portfolio reads is ``market_snapshot`` of the bars up to ``d``);
* the simulated book (shares and cash).

It asks the product for its plan (:func:`~bma_models.backtest.construction.target_weights`,
the one adapter: ``plan_portfolio`` with the trader's rulebook, as ``bma run``),
turns the target weights into share orders with the trader's own sizing
(the injected :class:`OrderRule`: lot rounding, position cap, cash reserve,
minimum order value), and fills them at the *next* session's open (or close,
or VWAP), paying commission, half spread and square-root impact
(:mod:`bma_models.backtest.costs`). Every session the positions and cash are
marked to the close.

Accounting identity (tested to the cent): ``equity_t = equity_{t-1} + pnl_t -
costs_t`` where ``pnl_t`` is the mark-to-market change of the positions held
before the session's fills plus ``shares x (close - fill price)`` of the
fills. Missing bars: a held name without a bar is marked at its last close; after
``stale_after`` sessions without one it is removed at that last close (a
delisting, recorded); an order for a name without a bar on the fill session is
not filled (recorded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from bma_models.backtest.construction import BOOK_SOURCE, target_weights
from bma_models.backtest.costs import order_costs
from bma_models.backtest.market import MarketPanels
from bma_models.data.protocol import MarketData
from bma_models.errors import BMAError, DataError
from bma_models.portfolio import Holdings
from bma_models.risk import FactorRiskModel
from bma_models.rules import Rulebook
from bma_models.settings import BacktestSettings, PortfolioSettings

logger = logging.getLogger(__name__)

__all__ = ["DAILY_COLUMNS", "RISK_HISTORY", "Backtest", "BacktestResult", "OrderRule",
           "backtest_panels", "rebalance_rows"]

#: Sessions of history handed to each point-in-time risk-model fit: the model's
#: ``lookback`` (252) plus the warm-up of its style factors (momentum 126 + 21
#: skip, volatility 60), so the fit equals a fit on the full history up to the date.
RISK_HISTORY = FactorRiskModel().lookback + 160
#: Columns of :attr:`BacktestResult.daily` (``backtest.parquet`` adds ``date`` first)
DAILY_COLUMNS = ("equity", "cash", "gross_exposure", "turnover", "traded_value", "costs",
                 "commission", "spread_cost", "impact_cost", "pnl", "benchmark_equity",
                 "holdings_count")


class BacktestError(BMAError):
    """The backtest cannot run: no scores in the span, an unknown score column..."""


class OrderRule(Protocol):
    """Turns target weights into share orders the way the live trader does.

    Called with the target weights of equity (held names missing = sell all),
    the equity (USD), the decision prices (ticker -> last close) and the
    held shares (ticker -> shares); returns signed share quantities per ticker
    (positive = buy), zero quantities left out. The composition root passes the
    trader's (``autotrader.services.backtest_orders``): lot rounding, position
    cap, cash reserve and minimum order value are then the trader's own code.
    """

    def __call__(self, weights: pd.Series, equity: float, prices: pd.Series,
                 held: pd.Series) -> pd.Series:
        """Return the signed shares per ticker that move ``held`` towards ``weights``."""


@dataclass
class BacktestResult:
    """Everything one backtest computed (the report writers turn it into files).

    Attributes
    ----------
    daily : DataFrame
        One row per session (DatetimeIndex ``date``), :data:`DAILY_COLUMNS`.
    trades : DataFrame
        One row per fill: ``date`` (fill session), ``decision_date``, ``ticker``,
        ``shares`` (signed), ``price``, ``value``, ``commission``, ``spread_cost``,
        ``impact_cost``.
    holdings : DataFrame
        Per rebalance date and ticker, the planned book after the orders at the
        decision prices: ``date``, ``ticker``, ``shares``, ``price``, ``weight``
        and ``target_weight`` (what the optimizer asked for).
    rebalances : DataFrame
        Per rebalance date: ``date``, ``status``, ``fallback``, ``n_orders``,
        ``planned_turnover`` (one-way, against the book), ``n_refused`` (scored
        names the rulebook's screens refused), ``error`` (why no orders were
        made, else empty).
    events : DataFrame
        ``date``, ``ticker``, ``event`` (``removed`` / ``unfilled``), ``detail``,
        ``value`` (USD credited to cash by a removal; 0 for an unfilled order).
    initial_capital : float
    settings : BacktestSettings
    conventions : dict
        Score column, fill timing, label convention of the run (for the report).
    timings_s : dict
    """

    daily: pd.DataFrame
    trades: pd.DataFrame
    holdings: pd.DataFrame
    rebalances: pd.DataFrame
    events: pd.DataFrame
    initial_capital: float
    settings: BacktestSettings
    conventions: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)


def rebalance_rows(dates: pd.DatetimeIndex, score_dates: pd.DatetimeIndex,
                   start: pd.Timestamp | None, end_row: int, every: int) -> np.ndarray:
    """Rows of ``dates`` where the backtest rebalances.

    Every ``every``-th session from the first scored session on or after
    ``start``, up to the last scored session, keeping only sessions that have
    scores and leave a session to fill in (``< end_row``).

    Examples
    --------
    >>> dates = pd.bdate_range("2024-01-01", periods=12)
    >>> rebalance_rows(dates, dates[2:10], None, 11, 3).tolist()
    [2, 5, 8]
    """
    scored = dates.isin(score_dates)
    if start is not None:
        scored &= dates >= start
    rows = np.flatnonzero(scored)
    if len(rows) == 0:
        return rows
    grid = np.arange(rows[0], rows[-1] + 1, every)
    return grid[scored[grid] & (grid < end_row)]


class Backtest:
    """Replay the product over history.

    Parameters
    ----------
    settings : BacktestSettings
        ``research.backtest``.
    portfolio : PortfolioSettings
        ``research.portfolio`` (what the live recommendations are built with).
    rules : Rulebook
        The trader's rulebook (``autotrader.config.trading_rules``): screens,
        caps, cash reserve, minimum order, ATR window.
    order_rule : OrderRule
        The trader's sizing (see :class:`OrderRule`).
    horizon : int
        Label horizon of the scores (sessions; the expected-alpha screen's horizon).
    initial_capital : float, optional
        Starting equity in USD (default: ``settings.initial_capital``, else
        ``portfolio.capital``).
    n_jobs : int
        Processes for the point-in-time risk-model fits (they do not depend on
        the simulated path, so they run before the simulation, in parallel).
    progress : callable, optional
        ``progress(stage, done, total)``: ``"backtest:risk"`` and ``"backtest:rebalances"``
        (a task-style stage name: the CLI shows it as its own bar).
    risk_cache : dict, optional
        Point-in-time risk models by refit sessions, shared by backtests of the
        SAME market panels that differ in rules or sizing only (the risk models
        depend on the market and the rebalance dates, not on the rules): the
        first backtest fills it, the others reuse it (rule attribution).
    """

    def __init__(self, settings: BacktestSettings, portfolio: PortfolioSettings,
                 rules: Rulebook, order_rule: OrderRule, horizon: int = 5,
                 initial_capital: float | None = None, n_jobs: int = 1,
                 progress: Callable[[str, int, int], None] | None = None,
                 risk_cache: dict | None = None) -> None:
        self.settings = settings
        self.portfolio = portfolio
        self.rules = rules
        self.order_rule = order_rule
        self.horizon = horizon
        self.initial_capital = initial_capital
        self.n_jobs = n_jobs
        self.progress = progress
        self.risk_cache = risk_cache

    def run(self, market: MarketData | MarketPanels, predictions: pd.DataFrame,
            conventions: dict[str, Any] | None = None) -> BacktestResult:
        """Simulate the strategy on ``market`` with the scores of ``predictions``.

        Parameters
        ----------
        market : MarketData or MarketPanels
            The bars the run was made on (panels: already pivoted with this
            backtest's fill price and cost windows).
        predictions : DataFrame on a ``(date, ticker)`` index
            ``predictions_oos`` (or any frame with the ``settings.score`` column).
        conventions : dict, optional
            Recorded as is (the run's label convention, feature lag...).

        Raises
        ------
        BacktestError
            No score column, or no scored session in the span.
        """
        s = self.settings
        timings: dict[str, float] = {}
        start = time.perf_counter()
        panels = market if isinstance(market, MarketPanels) else backtest_panels(
            market, s, self.rules.atr_window)
        scores = _scores_by_date(predictions, s.score)
        end_row = _end_row(panels.dates, s.end)
        start_ts = pd.Timestamp(s.start) if s.start else None
        rows = rebalance_rows(panels.dates, pd.DatetimeIndex(list(scores)), start_ts, end_row,
                              s.rebalance_every)
        if len(rows) == 0:
            first = s.start or "the first OOS date"
            raise BacktestError(f"no session with {s.score!r} scores between {first} and "
                                f"{panels.dates[end_row].date()}")
        timings["prepare"] = time.perf_counter() - start
        start = time.perf_counter()
        refit = _refit_rows(rows, s.risk_refit_every)
        cache, key = self.risk_cache, tuple(refit.tolist())
        if cache is not None and key in cache:
            risk_models = cache[key]
        else:
            risk_models = self._risk_models(panels, refit)
            if cache is not None:
                cache[key] = risk_models
        timings["risk_models"] = time.perf_counter() - start
        start = time.perf_counter()
        capital = float(self.initial_capital or s.initial_capital or self.portfolio.capital)
        state = _Simulation(panels, capital, s)
        for row in range(rows[0], end_row + 1):
            state.session(row)
            if row in risk_models:
                state.risk_model = risk_models[row]
            if state.is_rebalance(row, rows):
                state.rebalance(row, scores[panels.dates[row]], self)
                if self.progress is not None:
                    self.progress("backtest:rebalances", int(np.searchsorted(rows, row)) + 1,
                                  len(rows))
        timings["simulate"] = time.perf_counter() - start
        result = state.result(conventions or {}, {k: round(v, 3) for k, v in timings.items()})
        logger.info("backtest: %d sessions, %d rebalances, final equity %.2f (%s)",
                    len(result.daily), len(rows), result.daily["equity"].iloc[-1], timings)
        return result

    def _risk_models(self, panels: MarketPanels, refit: np.ndarray) -> dict[int, Any]:
        from joblib import Parallel, delayed

        shared = _shares_known(panels.reference)
        tasks = []
        for rows in _same_universe(panels, refit):
            first = max(0, rows[0] - RISK_HISTORY + 1)
            factors = None
            if shared and len(rows) > 1:
                factors = FactorRiskModel().factor_returns(
                    **panels.risk_inputs(rows[-1], RISK_HISTORY, first=first))
            for row in rows:
                inputs = panels.risk_inputs(row, RISK_HISTORY)
                if factors is not None:
                    inputs["factor_returns"] = factors.loc[inputs["returns"].index]
                tasks.append(delayed(_fit_risk_model)(inputs))
        jobs = min(max(1, int(self.n_jobs)), len(tasks))
        fitted = Parallel(n_jobs=jobs, prefer="threads")(tasks)
        if self.progress is not None:
            self.progress("backtest:risk", len(refit), len(refit))
        return dict(zip(refit.tolist(), fitted))


def backtest_panels(market: MarketData, settings: BacktestSettings,
                    atr_window: int) -> MarketPanels:
    """Pivot ``market`` with the backtest's fill price, cost windows and ``atr_window``.

    Backtests of one market whose rules share the ATR window can share these panels.
    """
    return MarketPanels.from_market(
        market, settings.fill_price, adv_window=settings.costs.adv_window,
        atr_window=atr_window, volatility_window=settings.costs.volatility_window)


def _same_universe(panels: MarketPanels, refit: np.ndarray) -> list[list[int]]:
    """Consecutive refit rows whose known universe is the same (listings only add names)."""
    groups: list[list[int]] = []
    last = None
    for row in refit.tolist():
        size = int(panels.known(row).sum())
        if size != last:
            groups.append([])
            last = size
        groups[-1].append(row)
    return groups


def _shares_known(reference: pd.DataFrame) -> bool:
    """Return True when the risk model's size is point-in-time at every date.

    Then the fits of one universe can share one factor-return computation.

    Why: the factor returns are half of a fit's cost, and row ``t`` only uses
    data up to ``t`` -- except when market caps come without share counts: the
    risk inputs then imply the shares from the *last* close of their window
    (the pipeline's constant-shares approximation), and each fit must compute
    its own factor returns.
    """
    def column(name):
        if name not in reference:
            return pd.Series(np.nan, index=reference.index)
        return pd.to_numeric(reference[name], errors="coerce")

    implied = (column("market_cap") > 0) & ~(column("shares_outstanding") > 0)
    if implied.any():
        logger.info("backtest: %d names have a market cap without a share count: each "
                    "risk-model fit computes its own factor returns", int(implied.sum()))
    return not implied.any()


def _fit_risk_model(inputs: dict) -> FactorRiskModel | str:
    try:
        return FactorRiskModel().fit(**inputs)
    except DataError as e:  # recorded on each rebalance that needs it, never swallowed
        return f"risk model: {e}"


def _refit_rows(rows: np.ndarray, every: int) -> np.ndarray:
    refit = [int(rows[0])]
    for row in rows[1:]:
        if row - refit[-1] >= every:
            refit.append(int(row))
    return np.asarray(refit, dtype=int)


def _scores_by_date(predictions: pd.DataFrame, column: str) -> dict[pd.Timestamp, pd.Series]:
    if column not in predictions.columns:
        raise BacktestError(f"predictions have no {column!r} column (research.backtest.score);"
                            f" columns: {list(predictions.columns)}")
    col = predictions[column].astype("float64").dropna()
    tickers = col.index.get_level_values(-1).to_numpy(dtype=object)
    dates = col.index.get_level_values(0)
    values = col.to_numpy()
    out = {}
    for date, rows in pd.Series(np.arange(len(col))).groupby(dates.to_numpy()).indices.items():
        out[pd.Timestamp(date)] = pd.Series(values[rows], index=pd.Index(tickers[rows],
                                                                          dtype=object))
    return out


def _end_row(dates: pd.DatetimeIndex, end) -> int:
    if end is None:
        return len(dates) - 1
    row = int(dates.searchsorted(pd.Timestamp(end), side="right")) - 1
    if row < 0:
        raise BacktestError(f"backtest end {end} is before the first session {dates[0].date()}")
    return row


class _Simulation:
    """The book and the ledgers, advanced one session at a time."""

    def __init__(self, panels: MarketPanels, capital: float, settings: BacktestSettings):
        n = len(panels.tickers)
        self.panels, self.settings, self.capital = panels, settings, capital
        self.shares = np.zeros(n)
        self.mark = np.full(n, np.nan)
        self.missing = np.zeros(n, dtype=int)
        self.cash = capital
        self.equity = capital
        self.benchmark = capital
        self.pending: np.ndarray | None = None
        self.decision: tuple[int, np.ndarray, np.ndarray] | None = None
        self.risk_model: Any = None
        self.daily: list[tuple] = []
        self.trades: list[pd.DataFrame] = []
        self.holdings: list[tuple] = []
        self.rebalances: list[dict] = []
        self.events: list[dict] = []
        self.first_row: int | None = None

    # -- one session ---------------------------------------------------------------------

    def session(self, row: int) -> None:
        p = self.panels
        equity_before = self.equity
        before = self.shares.copy()
        old_mark = self.mark
        close = p.close_values[row]
        fills = self._fill(row) if self.pending is not None else None
        has_bar = np.isfinite(close)
        mark = np.where(has_bar, close, old_mark)
        if fills is not None:
            idx, q, price, _ = fills
            mark[idx] = np.where(np.isfinite(mark[idx]), mark[idx], price)
        held_before = before != 0
        pnl = float(np.sum(before[held_before] * (mark[held_before] - old_mark[held_before])))
        costs = np.zeros(3)
        traded = 0.0
        if fills is not None:
            idx, q, price, cost = fills
            pnl += float(np.sum(q * (mark[idx] - price)))
            costs = np.array([cost.commission.sum(), cost.spread.sum(), cost.impact.sum()])
            traded = float(np.sum(np.abs(q) * price))
        self.mark = mark
        self.missing = np.where(has_bar, 0, self.missing + 1)
        self._remove_stale(row)
        held = self.shares != 0
        value = float(np.sum(self.shares[held] * mark[held]))
        first = self.first_row is None
        if first:
            self.first_row = row
        else:
            self.benchmark *= 1.0 + p.benchmark_return[row]
        self.equity = self.cash + value
        base = equity_before if equity_before > 0 else np.nan
        self.daily.append((p.dates[row], self.equity, self.cash,
                           float(np.sum(np.abs(self.shares[held] * mark[held]))) / self.equity,
                           traded / base, traded, float(costs.sum()), *costs.tolist(), pnl,
                           self.benchmark, int(held.sum())))

    def _fill(self, row: int):
        p = self.panels
        pending, self.pending = self.pending, None
        # called only with orders pending, which rebalance sets together with the decision
        assert pending is not None and self.decision is not None, "no pending orders to fill"
        decision_row, adv, sigma = self.decision
        price = p.fill[row]
        wanted = np.flatnonzero(pending)
        ok = np.isfinite(price[wanted]) & (price[wanted] > 0)
        for i in wanted[~ok]:
            self.events.append({"date": p.dates[row], "ticker": p.tickers[i],
                                "event": "unfilled",
                                "detail": f"order of {pending[i]:+.0f} shares: no bar to fill",
                                "value": 0.0})
        idx = wanted[ok]
        q, fill = pending[idx], price[idx]
        cost = order_costs(q, fill, adv[idx], sigma[idx], self.settings.costs)
        self.cash -= float(np.sum(q * fill)) + float(cost.total.sum())
        self.shares[idx] += q
        self.trades.append(pd.DataFrame({
            "date": p.dates[row], "decision_date": p.dates[decision_row],
            "ticker": p.tickers[idx], "shares": q, "price": fill, "value": q * fill,
            "commission": cost.commission, "spread_cost": cost.spread,
            "impact_cost": cost.impact}))
        return idx, q, fill, cost

    def _remove_stale(self, row: int) -> None:
        stale = np.flatnonzero((self.shares != 0) & (self.missing >= self.settings.stale_after))
        for i in stale:
            proceeds = self.shares[i] * self.mark[i]
            self.events.append({
                "date": self.panels.dates[row], "ticker": self.panels.tickers[i],
                "event": "removed",
                "detail": f"{self.shares[i]:.0f} shares removed at the last close "
                          f"{self.mark[i]:.4f} after {self.missing[i]} sessions without a bar",
                "value": float(proceeds)})
            self.cash += float(proceeds)
            self.shares[i] = 0.0

    # -- one rebalance -------------------------------------------------------------------

    def is_rebalance(self, row: int, rows: np.ndarray) -> bool:
        i = int(np.searchsorted(rows, row))
        return i < len(rows) and rows[i] == row

    def rebalance(self, row: int, scores: pd.Series, backtest: Backtest) -> None:
        p = self.panels
        date = p.dates[row]
        record = {"date": date, "status": "", "fallback": None, "n_orders": 0,
                  "planned_turnover": 0.0, "n_refused": 0, "error": ""}
        self.rebalances.append(record)
        if isinstance(self.risk_model, str) or self.risk_model is None:
            record["error"] = self.risk_model or "no risk model fitted yet"
            return
        held = self.shares != 0
        prices = pd.Series(self.mark, index=p.tickers)
        shares = pd.Series(self.shares[held], index=p.tickers[held])
        # the book's own prices (the marks) value a held name the snapshot does not price
        book = Holdings.from_quantities(shares, cash=self.cash, source=BOOK_SOURCE,
                                        prices=prices[held])
        try:
            plan = target_weights(scores, self.risk_model, p.snapshot(row), p.sectors, book,
                                  rules=backtest.rules, settings=backtest.portfolio,
                                  horizon=backtest.horizon)
        except BMAError as e:  # infeasible date: keep the book, say why
            record["error"] = f"{type(e).__name__}: {e}"
            logger.warning("backtest %s: no rebalance: %s", date.date(), e)
            return
        names = plan.weights.index.union(shares.index)
        known = prices.reindex(names).dropna()
        orders = backtest.order_rule(plan.weights, self.equity, known, shares.astype(int))
        orders = orders[orders != 0].reindex(p.tickers).fillna(0.0).to_numpy()
        record.update(status=plan.optimization.status, fallback=plan.optimization.fallback,
                      n_orders=int(np.count_nonzero(orders)), planned_turnover=plan.turnover,
                      n_refused=int((plan.screens != "").sum()))
        self.pending = orders if orders.any() else None
        self.decision = (row, p.adv[row], p.sigma[row])
        after = self.shares + orders
        target = plan.weights.reindex(p.tickers).fillna(0.0).to_numpy()
        kept = np.flatnonzero((after != 0) | (target != 0))
        self.holdings.append((date, kept, after[kept], self.mark[kept],
                              after[kept] * self.mark[kept] / self.equity, target[kept]))

    # -- the result ----------------------------------------------------------------------

    def _holdings_frame(self) -> pd.DataFrame:
        if not self.holdings:
            return pd.DataFrame(columns=_HOLDING_COLUMNS)
        dates, kept, shares, price, weight, target = zip(*self.holdings)
        sizes = [len(k) for k in kept]
        return pd.DataFrame({
            "date": np.repeat(np.asarray(dates, dtype="datetime64[ns]"), sizes),
            "ticker": self.panels.tickers.to_numpy()[np.concatenate(kept)],
            "shares": np.concatenate(shares), "price": np.concatenate(price),
            "weight": np.concatenate(weight), "target_weight": np.concatenate(target)})

    def result(self, conventions: dict[str, Any], timings: dict[str, float]) -> BacktestResult:
        daily = pd.DataFrame.from_records(self.daily, columns=("date",) + DAILY_COLUMNS)
        daily = daily.set_index("date")
        return BacktestResult(
            daily=daily, trades=_concat(self.trades, _TRADE_COLUMNS),
            holdings=self._holdings_frame(),
            rebalances=pd.DataFrame(self.rebalances, columns=_REBALANCE_COLUMNS),
            events=pd.DataFrame(self.events, columns=["date", "ticker", "event", "detail",
                                                      "value"]),
            initial_capital=self.capital, settings=self.settings, conventions=conventions,
            timings_s=timings)


_TRADE_COLUMNS = ["date", "decision_date", "ticker", "shares", "price", "value", "commission",
                  "spread_cost", "impact_cost"]
_HOLDING_COLUMNS = ["date", "ticker", "shares", "price", "weight", "target_weight"]
_REBALANCE_COLUMNS = ["date", "status", "fallback", "n_orders", "planned_turnover",
                      "n_refused", "error"]


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
