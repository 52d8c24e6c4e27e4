"""Research's portfolio: the rulebook's screens, then the optimizer, from the current book.

:func:`plan_portfolio` is the one call that turns one date's expected returns
into the portfolio the trader will hold. It is pure and needs no run or CLI,
so a backtest calls it on every simulated date with its simulated book:

1. **the book** (:class:`Holdings`, or cash): quantities are valued at the
   date's closes, and the account's equity becomes the capital every dollar
   figure and the liquidity cap use (:func:`current_book`);
2. **the screens** (:func:`screen_names`): every name goes through
   :meth:`bma_models.rules.Rulebook.entry_denial`, the function the trader
   calls before each entry, at the date's close, ADV and ATR; a refused name
   may not be bought (a held one may be kept or trimmed: the trader screens
   entries only, never exits);
3. **the optimizer** (:class:`~bma_models.optimizer.PortfolioOptimizer`) with
   the rulebook's position cap, sector limit (known sectors only), invested
   fraction (one cash reserve) and minimum trade (one minimum order value),
   its turnover penalty and cap measured against the real book.

:func:`check_plan_feasibility` runs the data-only part of the same rules before
any training, so a setting no portfolio can satisfy fails in seconds with
advice naming the key to change.

Examples
--------
>>> snapshot = market_snapshot(bars, atr_window=14)  # doctest: +SKIP
>>> plan = plan_portfolio(mu, horizon_mu, percentile, risk_model, snapshot, sectors,
...                       rules=Rulebook(), settings=PortfolioSettings(),
...                       holdings=Holdings.from_quantities({"AAA": 100}, cash=5e4,
...                                                         source="my book"))  # doctest: +SKIP
>>> plan.trades[plan.trades != 0]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bma_models.data.protocol import to_panel
from bma_models.errors import DataError, InfeasibleError
from bma_models.optimizer import (
    OptimizationResult,
    PortfolioOptimizer,
    expected_returns_from_scores,
)
from bma_models.risk import average_dollar_volume
from bma_models.rules import (
    CHECK_KEYS,
    CONFIG_KEYS,
    UNKNOWN_SECTOR,
    Rulebook,
    liquidity,
    price_band,
    sector_is_capped,
    volatility,
)
from bma_models.settings import PortfolioSettings

logger = logging.getLogger(__name__)

__all__ = [
    "ADV_WINDOW",
    "SETTING_NAMES",
    "Holdings",
    "PortfolioPlan",
    "ScoreExpectations",
    "average_true_range",
    "check_plan_feasibility",
    "current_book",
    "market_snapshot",
    "plan_portfolio",
    "recommendations_table",
    "risk_shares",
    "score_expectations",
    "score_percentile",
    "screen_names",
    "trade_list",
]

#: Sessions in the average daily dollar volume (the ``adv`` column the trader screens on)
ADV_WINDOW = 20
#: The optimizer's parameters -> the settings they are read from (named in its advice)
SETTING_NAMES: dict[str, str] = {
    "top_n": "research.portfolio.top_n",
    "max_turnover": "research.portfolio.max_turnover",
    "adv_participation": "research.portfolio.adv_participation",
    "capital": "research.portfolio.capital (or the book's equity)",
    "max_position": CONFIG_KEYS["max_position"],
    "sector_cap": CONFIG_KEYS["sector_limit"],
    "cash_reserve": CONFIG_KEYS["cash_reserve"],
}
NO_SECTORS_NOTE = (f"no sector data: the sector limit ({CONFIG_KEYS['sector_limit']}) does "
                   "not apply")


@dataclass(frozen=True)
class Holdings:
    """The book a plan starts from: share quantities (plus cash) or weights of equity.

    Build with :meth:`from_quantities` or :meth:`from_weights`. ``prices`` are
    the source's own last prices, used only for a held name the market data
    does not price; ``source`` says where the book came from (shown in the
    workbook), ``as_of`` when it was taken.
    """

    quantities: pd.Series | None = None
    weights: pd.Series | None = None
    cash: float | None = None
    prices: pd.Series | None = None
    source: str = "cash"
    as_of: str | None = None

    @classmethod
    def from_quantities(cls, quantities: Mapping[str, float] | pd.Series,
                        cash: float | None = None, *, source: str,
                        prices: Mapping[str, float] | None = None,
                        as_of: str | None = None) -> Holdings:
        """Shares per ticker; ``cash`` in USD (None: equity is the assumed capital)."""
        q = pd.Series(quantities, dtype="float64")
        return cls(quantities=q[q != 0], cash=cash, source=source, as_of=as_of,
                   prices=None if prices is None else pd.Series(prices, dtype="float64"))

    @classmethod
    def from_weights(cls, weights: Mapping[str, float] | pd.Series, *, source: str,
                     as_of: str | None = None) -> Holdings:
        """Weights of equity per ticker (the capital is then the assumed capital)."""
        w = pd.Series(weights, dtype="float64")
        return cls(weights=w[w != 0], source=source, as_of=as_of)

    @property
    def is_cash(self) -> bool:
        """True when nothing is held."""
        held = self.quantities if self.quantities is not None else self.weights
        return held is None or held.empty


@dataclass(frozen=True)
class PortfolioPlan:
    """One date's plan: target weights, the book it starts from, and why names were left out.

    Attributes
    ----------
    weights, current : Series
        Target and current weight of equity per ticker, on one index (every
        scored name and every holding; 0 = not held).
    screens : Series
        Per scored name, ``""`` when the trader would buy it, else the
        rulebook's ``"check: reason"``.
    optimization : OptimizationResult
        The optimizer's answer (solver, status, turnover, small trades removed).
    capital : float
        The equity (USD) every dollar figure assumes; ``capital_source`` says
        whether it is the book's equity or ``research.portfolio.capital``.
    snapshot, sectors : DataFrame, Series or None
        The :func:`market_snapshot` and sector labels the plan was made with.
    notes : tuple of str
        Fallbacks and exemptions to show (no sector data, a price taken from the
        book's source...).
    """

    weights: pd.Series
    current: pd.Series
    screens: pd.Series
    optimization: OptimizationResult
    capital: float
    capital_source: str
    holdings_source: str
    trading_cost_bps: float
    rules: Rulebook
    snapshot: pd.DataFrame
    sectors: pd.Series | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def trades(self) -> pd.Series:
        """Target minus current weight per ticker (positive = buy)."""
        return (self.weights - self.current).rename("trade_weight")

    @property
    def turnover(self) -> float:
        """One-way turnover ``sum |w - w0|`` against the book (sales of unscored names included)."""
        return float(self.trades.abs().sum())

    @property
    def estimated_cost_usd(self) -> float:
        """``turnover x capital x trading_cost_bps``: the assumed cost of the trade list."""
        return self.turnover * self.capital * self.trading_cost_bps / 1e4


def market_snapshot(bars: pd.DataFrame, atr_window: int,
                    adv_window: int = ADV_WINDOW) -> pd.DataFrame:
    """Per ticker at the last session of ``bars``: ``last_close``, ``adv`` (USD) and ``atr`` (USD).

    ``atr`` is the simple mean of the true range over ``atr_window`` sessions
    (``risk_controls.stops.atr_window``: the ATR the trader's volatility screen
    and stops use), NaN with fewer sessions; ``adv`` the mean close x volume of
    the last ``adv_window`` sessions. A backtest passes the bars up to its date.
    """
    dates = np.sort(bars["date"].unique())
    recent = bars[bars["date"] >= dates[-min(len(dates), max(atr_window, adv_window) + 1)]]
    close = to_panel(recent, "close")  # only the sessions the two windows need: fast
    atr = average_true_range(close, to_panel(recent, "high"), to_panel(recent, "low"),
                             atr_window).iloc[-1]
    last = bars.loc[bars.groupby("ticker")["date"].idxmax(), ["ticker", "close"]]
    last = last.set_index("ticker")["close"].sort_index()  # a stale name keeps its last close
    frame = pd.DataFrame({"last_close": last,
                          "adv": average_dollar_volume(recent, adv_window).reindex(last.index),
                          "atr": atr.reindex(last.index)})
    frame.index.name = "ticker"
    return frame


def average_true_range(close: pd.DataFrame, high: pd.DataFrame, low: pd.DataFrame,
                       window: int) -> pd.DataFrame:
    """Return the average true range, dates x tickers.

    Each row is the simple mean true range of the ``window`` sessions ending at
    it (NaN unless all of them have a bar). :func:`market_snapshot` reads the
    last row, the backtest every row (:class:`bma_models.backtest.MarketPanels`).
    """
    prev = close.shift(1)
    true_range = np.maximum(high - low, np.maximum((high - prev).abs(), (low - prev).abs()))
    return true_range.rolling(window, min_periods=window).mean()


@dataclass(frozen=True)
class ScoreExpectations:
    """One date's scores as the portfolio reads them (see :func:`score_expectations`)."""

    scores: pd.Series
    mu: pd.Series
    horizon_mu: pd.Series
    percentile: pd.Series


def score_expectations(scores: pd.Series, risk_model, expected_ic: float,
                       horizon: int) -> ScoreExpectations:
    """Return the scored names the risk model knows, with their expectations.

    The expectations are the daily and horizon expected returns
    (:func:`~bma_models.optimizer.expected_returns_from_scores`) and the score
    percentiles.

    The inputs of :func:`plan_portfolio`, built once for ``bma run`` and the backtest.
    """
    vol = risk_model.total_volatility()
    scores = scores[scores.index.isin(vol.index)].dropna()
    return ScoreExpectations(
        scores=scores, mu=expected_returns_from_scores(scores, vol, ic=expected_ic),
        horizon_mu=expected_returns_from_scores(scores, vol, ic=expected_ic, horizon=horizon),
        percentile=score_percentile(scores))


def score_percentile(scores: pd.Series) -> pd.Series:
    """``1 - (rank - 1) / n`` with rank 1 = the best score: the trader's ``confidence``.

    Examples
    --------
    >>> score_percentile(pd.Series({"A": 0.1, "B": 0.9, "C": 0.5, "D": 0.3})).tolist()
    [0.25, 1.0, 0.75, 0.5]
    """
    rank = scores.rank(ascending=False, method="first")
    return (1.0 - (rank - 1.0) / max(int(scores.notna().sum()), 1)).rename("score_percentile")


def screen_names(snapshot: pd.DataFrame, expected_return: pd.Series, percentile: pd.Series,
                 rules: Rulebook) -> pd.Series:
    """``""`` for a name the trader would buy, else its first ``"check: reason"`` (per name).

    Names are those of ``expected_return`` (the horizon expected return, the
    recommendations' ``expected_return``); a name missing from ``snapshot``
    fails on its NaN price.
    """
    frame = snapshot.reindex(expected_return.index)
    reasons = [rules.entry_denial(price=row.last_close, adv_usd=row.adv, atr=row.atr,
                                  expected_return=er, percentile=pct)
               for row, er, pct in zip(frame.itertuples(), expected_return.to_numpy(),
                                       percentile.reindex(expected_return.index).to_numpy())]
    return pd.Series(["" if r is None else str(r) for r in reasons],
                     index=expected_return.index, name="screen", dtype=object)


def current_book(holdings: Holdings | None, prices: pd.Series,
                 assumed_capital: float) -> tuple[pd.Series, float, str, list[str]]:
    """Return the current weights, the capital they are weights of, its source, and notes.

    Quantities are valued at ``prices`` (the date's closes; the source's own
    price for a name without one, noted). With cash the capital is the book's
    equity (cash + holdings); without it, or for a weights book, it is
    ``assumed_capital``.

    Raises
    ------
    DataError
        A held name without any price, negative cash, or holdings worth more
        than the assumed capital when the book gives no cash.
    """
    assumed = f"research.portfolio.capital {assumed_capital:,.0f} USD (assumed, no book)"
    if holdings is None or holdings.is_cash:
        if holdings is not None and holdings.cash is not None and holdings.cash > 0:
            cash = holdings.cash
            return pd.Series(dtype="float64"), float(cash), \
                f"account equity {cash:,.0f} USD (all cash, {holdings.source})", []
        return pd.Series(dtype="float64"), float(assumed_capital), assumed, []
    if holdings.weights is not None:
        return holdings.weights.copy(), float(assumed_capital), \
            f"research.portfolio.capital {assumed_capital:,.0f} USD (assumed: the book " \
            f"{holdings.source} gives weights)", []
    values, notes = _position_values(holdings, prices)
    if holdings.cash is not None:
        if holdings.cash < 0:
            raise DataError(f"{holdings.source}: negative cash {holdings.cash:,.2f} USD "
                            "(a margin account is not supported)")
        capital = float(holdings.cash + values.sum())
        source = f"account equity {capital:,.0f} USD ({holdings.source})"
    else:
        capital = float(assumed_capital)
        if values.sum() > capital:
            raise DataError(f"{holdings.source}: the holdings are worth {values.sum():,.0f} USD, "
                            f"more than research.portfolio.capital {capital:,.0f}: give the "
                            "cash (a CASH row) or raise research.portfolio.capital")
        source = assumed
    return (values / capital).rename("current_weight"), capital, source, notes


def _position_values(holdings: Holdings, prices: pd.Series) -> tuple[pd.Series, list[str]]:
    q = holdings.quantities
    # a book that is neither cash nor weights holds quantities (Holdings.is_cash)
    assert q is not None, "a quantities book without quantities"
    price = prices.reindex(q.index)
    own = holdings.prices.reindex(q.index) if holdings.prices is not None else None
    notes: list[str] = []
    missing = price.index[~(price > 0)]
    if len(missing):
        if own is not None:
            price = price.where(price > 0, own)
        still = price.index[~(price > 0)]
        if len(still):
            raise DataError(f"{holdings.source}: no price for held {list(still)[:10]} (not in "
                            "the market data and no price in the book)")
        notes.append(f"held {list(missing)[:10]} valued at the book's own price (not in the "
                     "market data)")
    return q * price, notes


def _bounds(screens: pd.Series, current: pd.Series, snapshot: pd.DataFrame,
            rules: Rulebook) -> pd.Series:
    """Return the per-name upper weight bound.

    A refused name keeps at most what it holds; a passing one may add what one
    entry order may add (bracket risk), up to ``max_position``.
    """
    names = screens.index.union(current.index)
    w0 = current.reindex(names).fillna(0.0)
    frame = snapshot.reindex(names)
    add = np.array([rules.entry_cap(p, a) for p, a in zip(frame["last_close"], frame["atr"])])
    refused = screens.reindex(names).fillna("unscored") != ""
    cap = np.where(refused, np.minimum(w0, rules.max_position),
                   np.minimum(rules.max_position, w0 + add))
    return pd.Series(cap, index=names, name="upper_bound")


def plan_portfolio(mu: pd.Series, horizon_mu: pd.Series, percentile: pd.Series, risk_model,
                   snapshot: pd.DataFrame, sectors: pd.Series | None, *, rules: Rulebook,
                   settings: PortfolioSettings, holdings: Holdings | None = None,
                   solver: str = "clarabel") -> PortfolioPlan:
    """Screen with the rulebook and optimize from the current book.

    Parameters
    ----------
    mu : Series
        Daily expected return per ticker (the optimizer's objective).
    horizon_mu : Series
        Expected return over the label horizon (what the trader's expected-alpha
        screen reads, the recommendations' ``expected_return``).
    percentile : Series
        Score percentile per ticker (:func:`score_percentile`).
    risk_model : FactorRiskModel
        Fitted on returns up to the date.
    snapshot : DataFrame
        :func:`market_snapshot` of the date.
    sectors : Series or None
        Ticker -> sector; None or all unknown: the sector limit does not apply (noted).
    rules, settings : Rulebook, PortfolioSettings
    holdings : Holdings, optional
        The current book (None: cash).

    Raises
    ------
    InfeasibleError
        No portfolio meets the rules; the message names the settings to change.
    DataError
        The book cannot be valued (see :func:`current_book`).
    """
    current, capital, capital_source, notes = current_book(holdings, snapshot["last_close"],
                                                           settings.capital)
    screens = screen_names(snapshot, horizon_mu.reindex(mu.index), percentile, rules)
    known = sectors is not None and any(sector_is_capped(s) for s in pd.Series(sectors).dropna())
    if not known:
        notes.append(NO_SECTORS_NOTE)
        logger.warning(NO_SECTORS_NOTE)
        sectors = pd.Series(UNKNOWN_SECTOR, index=mu.index.union(current.index), dtype=object)
    optimizer = PortfolioOptimizer(
        risk_aversion=settings.risk_aversion, turnover_penalty=settings.turnover_penalty,
        max_position=rules.max_position, sector_cap=rules.sector_limit,
        cash_reserve=1.0 - rules.invested_fraction, max_turnover=settings.max_turnover,
        adv_participation=settings.adv_participation, capital=capital, top_n=settings.top_n,
        solver=solver, min_trade=rules.min_trade_weight(capital), setting_names=SETTING_NAMES)
    bounds = _bounds(screens, current, snapshot, rules)
    refused = int((screens != "").sum())
    logger.info("rulebook: %d of %d scored names refused (%s); book %s, capital %s",
                refused, len(screens), _counts(screens), holdings.source if holdings else
                "cash", capital_source)
    try:
        result = optimizer.optimize(mu, risk_model, sectors=sectors, adv=snapshot["adv"],
                                    current_weights=current, upper_bounds=bounds)
    except InfeasibleError as e:
        raise InfeasibleError(f"{e}; the rulebook refused {refused} of {len(screens)} scored "
                              f"names ({_counts(screens, keys=True)})") from e
    names = screens.index.union(current.index).union(result.weights.index)
    weights = result.weights.reindex(names).fillna(0.0).rename("weight")
    notes += list(result.notes)
    return PortfolioPlan(
        weights=weights, current=current.reindex(names).fillna(0.0).rename("current_weight"),
        screens=screens, optimization=result, capital=capital, capital_source=capital_source,
        holdings_source=holdings.source if holdings is not None else "cash",
        trading_cost_bps=settings.trading_cost_bps, rules=rules, snapshot=snapshot,
        sectors=sectors, notes=tuple(notes))


def _counts(screens: pd.Series, keys: bool = False) -> str:
    checks = screens[screens != ""].str.split(":", n=1).str[0].value_counts()
    return ", ".join(f"{name} {count}" + (f" [{CHECK_KEYS[name]}]" if keys else "")
                     for name, count in checks.items()) or "none"


# -- before training ------------------------------------------------------------------------

def check_plan_feasibility(snapshot: pd.DataFrame, sectors: pd.Series | None, *,
                           rules: Rulebook, settings: PortfolioSettings,
                           holdings: Holdings | None = None) -> list[str]:
    """Fail fast, before any training, when the rules cannot hold any portfolio.

    Uses what is known before the scores: the price band, liquidity and
    volatility screens on the last session, the position and liquidity caps,
    the sector limit, and upper bounds for the score screens (at most the
    names ranked above ``signals.acceptance_threshold``, and above the median
    when ``execution.min_expected_alpha_bps`` > 0). Passing is necessary, not
    sufficient: the optimizer still checks the real scores.

    Returns
    -------
    list of str
        Notes to record (no sector data).

    Raises
    ------
    InfeasibleError
        With the capacity, the target, what each screen removed and the keys to change.
    DataError
        The book cannot be valued.
    """
    current, capital, _, _ = current_book(holdings, snapshot["last_close"], settings.capital)
    target = rules.invested_fraction
    keys = CONFIG_KEYS
    min_trade = rules.min_trade_weight(capital)
    if min_trade > rules.max_position:
        raise InfeasibleError(
            f"the minimum order {keys['min_order_value_usd']} = {rules.min_order_value_usd:,.0f} "
            f"USD is {min_trade:.2%} of the capital {capital:,.0f}, above the position cap "
            f"{keys['max_position']} = {rules.max_position:.2%}: no name could be bought; lower "
            f"the minimum order or raise the cap (or the capital)")
    data = _data_screens(snapshot, rules)
    passing = snapshot.index[data == ""]
    caps = _caps(snapshot.loc[passing], rules, settings, capital)
    n = len(snapshot)
    bound = min(len(passing), settings.top_n, _score_bound(n, rules))
    held = current.clip(upper=rules.max_position)
    capacity = float(np.sort(caps.to_numpy())[::-1][:bound].sum() + held.sum())
    known = sectors is not None and any(sector_is_capped(s) for s in pd.Series(sectors).dropna())
    sector_capacity = _sector_capacity(caps, held, sectors, rules) if known else capacity
    best = min(capacity, sector_capacity)
    if best < target - 1e-9:
        raise InfeasibleError(_advice(best, target, capacity, sector_capacity, data, n, bound,
                                      rules, settings))
    return [] if known else [NO_SECTORS_NOTE]


def _data_screens(snapshot: pd.DataFrame, rules: Rulebook) -> pd.Series:
    out = []
    for row in snapshot.itertuples():
        denial = (price_band(row.last_close, rules.min_price, rules.max_price)
                  or liquidity(row.adv, rules.min_adv_usd)
                  or volatility(row.atr, row.last_close, rules.volatility_low_max,
                                rules.volatility_medium_max, rules.allowed_volatility_buckets))
        out.append("" if denial is None else denial.check)
    return pd.Series(out, index=snapshot.index, dtype=object)


def _caps(frame: pd.DataFrame, rules: Rulebook, settings: PortfolioSettings,
          capital: float) -> pd.Series:
    adv_cap = settings.adv_participation * frame["adv"].fillna(0.0) / capital
    entry = np.array([rules.entry_cap(p, a) for p, a in zip(frame["last_close"], frame["atr"])])
    return np.minimum(np.minimum(adv_cap, rules.max_position), entry).astype(float)


def _score_bound(n: int, rules: Rulebook) -> int:
    bound = n
    if rules.acceptance_threshold > 0:
        bound = min(bound, math.floor(1 + (1 - rules.acceptance_threshold) * n + 1e-9))
    if rules.min_expected_alpha_bps > 0:
        bound = min(bound, n // 2)  # a positive expected return needs a score above the median
    return bound


def _sector_capacity(caps: pd.Series, held: pd.Series, sectors: pd.Series,
                     rules: Rulebook) -> float:
    both = pd.concat([caps, held]).groupby(level=0).sum()
    labels = pd.Series(sectors, dtype=object).reindex(both.index)
    labels = labels.where(labels.map(sector_is_capped), UNKNOWN_SECTOR)
    per_sector = both.groupby(labels.to_numpy()).sum()
    capped = [min(v, rules.sector_limit) if sector_is_capped(s) else v
              for s, v in per_sector.items()]
    return float(sum(capped))


def _advice(best: float, target: float, capacity: float, sector_capacity: float,
            data: pd.Series, n: int, bound: int, rules: Rulebook,
            settings: PortfolioSettings) -> str:
    keys = CONFIG_KEYS
    removed = data[data != ""].value_counts()
    parts = [f"{count} fail {name} ({CHECK_KEYS[name]})" for name, count in removed.items()]
    head = (f"infeasible portfolio settings (checked before training): the rules can invest "
            f"at most {best:.1%} of equity < "
            f"{target:.1%} to invest (1 - {keys['cash_reserve']}, at most "
            f"{keys['max_exposure']}). Of {n} names "
            + (", ".join(parts) if parts else "none fails the data screens")
            + f"; at most {bound} can be candidates (passing names, "
            f"research.portfolio.top_n = {settings.top_n}, {keys['acceptance_threshold']} = "
            f"{rules.acceptance_threshold}, {keys['min_expected_alpha_bps']} > 0 keeps the "
            f"upper half); each holds at most {keys['max_position']} = {rules.max_position:.1%}.")
    if sector_capacity < capacity:
        return (f"{head} The sector limit {keys['sector_limit']} = {rules.sector_limit:.0%} "
                f"leaves {sector_capacity:.1%}: raise it, or loosen the screens.")
    advice = [f"raise {keys['max_position']} or research.portfolio.top_n"]
    score_bound = _score_bound(n, rules)
    if bound == score_bound < min(int((data == "").sum()), settings.top_n):
        advice.insert(0, f"lower {keys['acceptance_threshold']} (only the names above it can "
                         f"be bought: at most {score_bound} of {n})")
    if removed.get("volatility", 0):
        advice.insert(0, f"allow more buckets in {keys['allowed_volatility_buckets']} "
                         f"(now {list(rules.allowed_volatility_buckets)}; "
                         f"{int(removed['volatility'])} names refused)")
    if removed.get("liquidity", 0):
        advice.append(f"lower {keys['min_adv_usd']}")
    if removed.get("price_band", 0):
        advice.append(f"widen {keys['min_price']} / {keys['max_price']}")
    advice.append(f"or raise {keys['cash_reserve']}")
    return f"{head} Change: " + "; ".join(advice) + "."


# -- tables ---------------------------------------------------------------------------------

def recommendations_table(plan: PortfolioPlan, scores: pd.DataFrame, snapshot: pd.DataFrame,
                          sectors: pd.Series | None, risk_model, top_n: int) -> pd.DataFrame:
    """``recommendations.csv``: the top ``top_n`` scored names plus every held or planned one.

    ``scores`` has one row per scored ticker with columns ``score`` (fused),
    ``stack_score``, ``expected_return`` (over the horizon) and
    ``score_percentile``. Weights are fractions of ``plan.capital`` (the USD
    and share columns assume it); ``risk_contribution`` is each name's share of
    the plan's ex-ante variance (the column sums to 1); ``screen`` is empty for a
    name the trader would buy, else the rulebook's reason.
    """
    index = scores.index
    table = pd.DataFrame({
        "ticker": index,
        "sector": _sector_labels(sectors, index),
        "score": scores["score"].to_numpy(), "score_percentile":
            scores["score_percentile"].to_numpy(),
        "stack_score": scores["stack_score"].to_numpy(),
        "expected_return": scores["expected_return"].to_numpy(),
        "current_weight": plan.current.reindex(index).fillna(0.0).to_numpy(),
        "weight": plan.weights.reindex(index).fillna(0.0).to_numpy(),
    })
    table["trade_weight"] = table["weight"] - table["current_weight"]
    table["target_usd"] = table["weight"] * plan.capital
    table["last_close"] = snapshot["last_close"].reindex(index).to_numpy()
    table["target_shares"] = np.floor(table["target_usd"] / table["last_close"]).astype("Int64")
    table["trade_usd"] = table["trade_weight"] * plan.capital
    table["adv"] = snapshot["adv"].reindex(index).to_numpy()
    table["atr"] = snapshot["atr"].reindex(index).to_numpy()
    table["risk_contribution"] = risk_shares(risk_model, plan.weights).reindex(index) \
        .fillna(0.0).to_numpy()
    table["screen"] = plan.screens.reindex(index).fillna("").to_numpy()
    table = table.sort_values(["score", "ticker"], ascending=[False, True], ignore_index=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    keep = (table["rank"] <= top_n) | (table["weight"] > 0) | (table["current_weight"] > 0)
    return table[keep].reset_index(drop=True)


def risk_shares(risk_model, weights: pd.Series) -> pd.Series:
    """Each name's share of the portfolio's ex-ante variance (Euler; the shares sum to 1)."""
    w = weights.reindex(risk_model.B_.index).fillna(0.0)
    contributions = risk_model.risk_contributions(w)
    total = float(contributions.sum())
    return contributions / total if total > 0 else contributions * 0.0


def trade_list(plan: PortfolioPlan) -> pd.DataFrame:
    """Return the plan's trades, one row per traded name.

    Each row gives the side, weights, USD and shares at ``plan.capital``, the
    assumed cost, and why (new, add, trim, sell; a sale's screen reason).

    Sorted by traded value, largest first; includes sales of holdings without
    a score (the trader sells those too).
    """
    trades = plan.trades
    traded = trades.index[trades.abs() > 0]
    price = plan.snapshot["last_close"].reindex(traded)
    frame = pd.DataFrame({
        "ticker": traded, "sector": _sector_labels(plan.sectors, traded),
        "side": np.where(trades[traded] > 0, "BUY", "SELL"),
        "current_weight": plan.current[traded].to_numpy(),
        "weight": plan.weights[traded].to_numpy(),
        "trade_weight": trades[traded].to_numpy(),
    })
    frame["trade_usd"] = frame["trade_weight"] * plan.capital
    frame["last_close"] = price.to_numpy()
    frame["trade_shares"] = np.floor(frame["trade_usd"].abs() / frame["last_close"]) \
        .astype("Int64")
    frame["cost_usd"] = frame["trade_usd"].abs() * plan.trading_cost_bps / 1e4
    frame["reason"] = [_trade_reason(plan, t) for t in traded]
    return frame.sort_values(["trade_usd", "ticker"], key=lambda c: c.abs() if c.name ==
                             "trade_usd" else c, ascending=[False, True], ignore_index=True)


def _trade_reason(plan: PortfolioPlan, ticker: str) -> str:
    current, target = plan.current[ticker], plan.weights[ticker]
    if current == 0:
        return "new"
    if target > current:
        return "add"
    screen = plan.screens.get(ticker)
    if target == 0:
        if screen is None or (isinstance(screen, float) and math.isnan(screen)):
            return "sell all: no score or risk estimate"
        return f"sell all: {screen}" if screen else "sell all"
    return f"trim: {screen}" if screen else "trim"


def _sector_labels(sectors: pd.Series | None, index: pd.Index) -> np.ndarray:
    if sectors is None:
        return np.full(len(index), UNKNOWN_SECTOR, dtype=object)
    labels = pd.Series(sectors, dtype=object).reindex(index)
    return labels.where(labels.notna(), UNKNOWN_SECTOR).to_numpy()
