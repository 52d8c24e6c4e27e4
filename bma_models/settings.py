"""Typed, frozen research-pipeline settings (the ``research`` section of the config).

Every key is documented in ``config/default.yaml``. Fractions are written as
fractions (``0.03`` = 3 %), horizons, gaps and windows in trading sessions.

The research core never reads config files itself: the composition root (the
``bma`` CLI, the GUI job runner) obtains a :class:`ResearchSettings` - from
:class:`autotrader.config.ConfigStore` or :meth:`ResearchSettings.from_mapping`
- and passes plain keyword parameters to the research components.

Examples
--------
>>> s = ResearchSettings.from_mapping({"labels": {"horizon": 10},
...                                    "cv": {"gap": 10}, "stacking": {"meta_gap": 12}})
>>> s.labels.horizon, s.cv.gap, s.portfolio.top_n
(10, 10, 200)
>>> try:
...     ResearchSettings.from_mapping({"cv": {"gap": 2}})
... except SettingsError as e:
...     print(e.keys)
('cv.gap', 'labels.horizon')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

from bma_models.errors import SettingsError
from bma_models.schema import FieldError, Section, build, setting, to_dict

#: The factor categories the regime weights and the fusion composite are keyed by
#: (each factor family of :mod:`bma_models.factors.registry` belongs to one). Defined
#: here, not in the registry, so reading settings never imports the numba factor engine.
CATEGORIES: tuple[str, ...] = ("momentum", "reversion", "volatility", "liquidity")

__all__ = [
    "MODEL_NAMES",
    "BacktestSettings",
    "CVSettings",
    "CostSettings",
    "DaskSettings",
    "DataSettings",
    "FeatureSettings",
    "LabelSettings",
    "ModelSettings",
    "PortfolioSettings",
    "RegimeSettings",
    "ReportSettings",
    "ResearchSettings",
    "SettingsError",
    "StackingSettings",
]

MODEL_NAMES: tuple[str, ...] = (
    "ridge", "elastic_net", "random_forest", "xgboost", "lightgbm", "lgbm_ranker", "xgb_ranker",
)
#: Measured on real US data (docs/signal.md): the regularised LightGBM, the listwise ranker
#: (whose good years are the others' bad ones) and ridge; elastic net duplicates ridge and the
#: XGBoost regressor added nothing to the average. Every model stays selectable.
DEFAULT_ENABLED: tuple[str, ...] = ("ridge", "lightgbm", "lgbm_ranker")
ModelName = Literal[
    "ridge", "elastic_net", "random_forest", "xgboost", "lightgbm", "lgbm_ranker", "xgb_ranker"
]


@dataclasses.dataclass(frozen=True)
class DataSettings(Section):
    """Where bars come from and which window to load."""

    source: Literal["auto", "demo", "csv", "polygon"] = setting(
        "auto", doc="auto = polygon if a key is set, else demo")
    start_date: dt.date | None = setting(None, doc="first session; null = end - demo_sessions")
    end_date: dt.date | None = setting(None, doc="last session; null = last completed session")
    csv_path: str | None = setting(None, doc="bars CSV file or directory (source: csv)")
    demo_tickers: int = setting(500, ge=10, le=10_000, doc="demo market universe size")
    demo_sessions: int = setting(1260, ge=60, le=20_000, doc="demo market length in sessions")
    demo_seed: int = setting(42, ge=0, doc="demo market random seed")

    def check(self) -> None:
        """Reject ``start_date`` after ``end_date`` and source ``csv`` without ``csv_path``."""
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise FieldError(("start_date", "end_date"), "start_date is after end_date")
        if self.source == "csv" and not self.csv_path:
            raise FieldError(("source", "csv_path"), "source 'csv' needs csv_path")


@dataclasses.dataclass(frozen=True)
class FeatureSettings(Section):
    """Factor computation and cross-sectional processing."""

    base_lag: int = setting(0, ge=0, le=20, doc="feature lag in sessions (total = + safety_gap)")
    safety_gap: int = setting(0, ge=0, le=60, doc="extra feature lag in sessions")
    winsor_lower: float = setting(0.01, ge=0.0, lt=0.5, doc="lower winsorising quantile")
    winsor_upper: float = setting(0.99, gt=0.5, le=1.0, doc="upper winsorising quantile")
    sector_neutral: bool = setting(True, doc="demean factors within sector each date")


@dataclasses.dataclass(frozen=True)
class LabelSettings(Section):
    """Forward-return label."""

    horizon: int = setting(5, ge=1, le=60, doc="forward return window T+1..T+horizon")
    entry: Literal["next_open", "close"] = setting(
        "next_open", doc="entry price of the label: next_open = close(T+h) / open(T+1) - 1 (a "
        "score known after the close of T traded from T+1), close = close(T+h) / close(T) - 1 "
        "(needs a feature lag >= 1)")
    relevance_buckets: int = setting(5, ge=2, le=100, doc="per-date quantile buckets for rankers")


@dataclasses.dataclass(frozen=True)
class CVSettings(Section):
    """Purged group time-series cross-validation (groups = sessions)."""

    n_splits: int = setting(5, ge=2, le=50, doc="number of folds")
    gap: int = setting(5, ge=0, le=250, doc="sessions purged between train and test")
    embargo: int = setting(3, ge=0, le=250, doc="sessions dropped after each test block")
    test_group_size: int | None = setting(None, ge=1, doc="sessions per test fold; null = auto")
    max_train_group_size: int | None = setting(None, ge=1,
                                               doc="rolling train window; null = expanding")


def _empty_params() -> Mapping[str, Mapping[str, Any]]:
    return types.MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class ModelSettings(Section):
    """First-layer models and their pass-through hyperparameters."""

    enabled: tuple[ModelName, ...] = setting(DEFAULT_ENABLED, doc="models to train")
    params: Mapping[str, Mapping[str, Any]] = setting(
        default_factory=_empty_params, doc="model name -> hyperparameters passed through")

    def check(self) -> None:
        """Reject an empty or repeated ``enabled`` list and ``params`` of an unknown model."""
        if not self.enabled:
            raise FieldError(("enabled",), "needs at least one model")
        if len(set(self.enabled)) != len(self.enabled):
            raise FieldError(("enabled",), "lists a model twice", self.enabled)
        for name in self.params:
            if name not in MODEL_NAMES:
                raise FieldError((f"params.{name}",),
                                 f"is not a model name (one of {'|'.join(MODEL_NAMES)})")


@dataclasses.dataclass(frozen=True)
class StackingSettings(Section):
    """Second layer: how first-layer predictions are combined."""

    method: Literal["validated", "ic_weighted", "nonneg_ridge"] = setting(
        "validated", doc="combination method")
    meta_gap: int = setting(10, ge=0, le=250, doc="purge for the meta-model's own CV")
    meta_embargo: int = setting(5, ge=0, le=250, doc="embargo for the meta-model's own CV")
    temperature: float = setting(0.01, gt=0.0, le=10.0, doc="softmax temperature on IC weights")
    min_t: float = setting(2.0, ge=0.0, le=20.0, doc="validated: paired t a member or the "
                           "IC-weighted average needs over the equal average to replace it")


#: Market regimes of :func:`bma_models.regime.detect_regimes`.
REGIMES: tuple[str, ...] = ("Bull", "Bear", "High-vol", "Low-vol", "Normal")

#: Per-regime relative weights of the factor categories: the default of the
#: ``research.regime.weights`` key (``config/default.yaml``), which replaces them.
#: Only the ratios within a row matter: the fusion renormalises each row over
#: the categories that have a factor value. Momentum leads in Bull, reversion
#: in Bear and High-vol, a tilt to momentum in calm Low-vol markets, balanced
#: in Normal. (Until #18 the rows also weighted a "quality" category that had
#: no factor; it was dropped, which leaves every fused score unchanged.)
DEFAULT_REGIME_WEIGHTS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "Bull": MappingProxyType({"momentum": 0.45, "reversion": 0.10, "volatility": 0.10,
                              "liquidity": 0.10}),
    "Bear": MappingProxyType({"momentum": 0.10, "reversion": 0.30, "volatility": 0.15,
                              "liquidity": 0.10}),
    "High-vol": MappingProxyType({"momentum": 0.10, "reversion": 0.40, "volatility": 0.20,
                                  "liquidity": 0.10}),
    "Low-vol": MappingProxyType({"momentum": 0.30, "reversion": 0.15, "volatility": 0.15,
                                 "liquidity": 0.10}),
    "Normal": MappingProxyType({"momentum": 0.20, "reversion": 0.20, "volatility": 0.20,
                                "liquidity": 0.20}),
})


def regime_row_problem(row: Mapping[str, float]) -> str | None:
    """Why one regime's ``{category: weight}`` row is invalid, or None when it is valid."""
    bad = sorted(set(row) - set(CATEGORIES))
    if bad:
        return f"unknown categories {bad} (known: {', '.join(CATEGORIES)})"
    if any(v < 0 for v in row.values()):
        return "weights must be >= 0"
    if sum(row.values()) <= 0:
        return "needs at least one positive weight"
    return None


def _default_regime_weights() -> Mapping[str, Mapping[str, float]]:
    return DEFAULT_REGIME_WEIGHTS


@dataclasses.dataclass(frozen=True)
class RegimeSettings(Section):
    """Blend of the ML score with the regime-weighted factor categories.

    ``weights`` has one row per regime of :data:`bma_models.regime.REGIMES`,
    each ``{category: relative weight}`` over the categories of
    :data:`bma_models.factors.CATEGORIES`; a row is renormalised over the
    categories that have factor values. A positive weight on a category with
    no factor in the run's factor set is refused before training
    (:func:`bma_models.pipeline.check_regime_weights`).
    """

    w_ml: float = setting(0.7, ge=0.0, le=1.0, doc="weight of the ML score")
    vol_window: int = setting(21, ge=2, le=756, doc="sessions of market volatility")
    threshold_window: int | None = setting(None, ge=2, doc="regime threshold window; null = "
                                           "expanding")
    weights: Mapping[str, Mapping[str, float]] = setting(
        default_factory=_default_regime_weights,
        doc="regime -> category -> relative weight of the factor composite")

    def check(self) -> None:
        """Reject invalid regime weights.

        Rejected: an unknown regime or factor category, a negative weight, a
        row without a positive weight (:func:`regime_row_problem`), and a
        missing regime.
        """
        for regime in self.weights:
            if regime not in REGIMES:
                raise FieldError((f"weights.{regime}",),
                                 f"is not a regime (one of {'|'.join(REGIMES)})")
        for regime, row in self.weights.items():
            for category, weight in row.items():
                if category not in CATEGORIES:
                    raise FieldError((f"weights.{regime}.{category}",),
                                     f"is not a factor category (one of "
                                     f"{'|'.join(CATEGORIES)})")
                if weight < 0:
                    raise FieldError((f"weights.{regime}.{category}",), "must be >= 0", weight)
            problem = regime_row_problem(row)
            if problem:
                raise FieldError((f"weights.{regime}",), problem, dict(row))
        missing = [r for r in REGIMES if r not in self.weights]
        if missing:
            raise FieldError(("weights",), f"misses the regimes {missing}")


@dataclasses.dataclass(frozen=True)
class PortfolioSettings(Section):
    """Portfolio construction from the final scores.

    The limits the trader enforces too (position, sector, cash reserve, the
    screens) are not here: they are the trader's keys, read by both sides
    through :class:`bma_models.rules.Rulebook` (docs/trading.md, "One rulebook").
    """

    top_n: int = setting(200, ge=1, le=5000, doc="candidates passed to the optimizer")
    risk_aversion: float = setting(1.0, ge=0.0, le=1000.0, doc="mean-variance lambda")
    turnover_penalty: float = setting(0.0015, ge=0.0, le=100.0,
                                      doc="L1 cost of one-way turnover, daily mu units")
    max_turnover: float | None = setting(None, gt=0.0, le=2.0, doc="hard cap; null = none")
    adv_participation: float = setting(0.05, gt=0.0, le=1.0, doc="max fraction of 20d ADV")
    capital: float = setting(1_000_000.0, gt=0.0, doc="assumed equity (USD) without a book")
    trading_cost_bps: float = setting(10.0, ge=0.0, le=1000.0,
                                      doc="one-way cost of a traded dollar, for the estimate")
    expected_ic: float = setting(0.05, gt=0.0, le=0.5, doc="IC of the mu = IC x vol x z mapping")


_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


@dataclasses.dataclass(frozen=True)
class DaskSettings(Section):
    """Optional Dask cluster for the research run (``pip install ".[dask]"``).

    With ``scheduler`` null nothing changes: the run uses ``jobs`` and
    ``joblib_backend`` on this machine and never imports dask.
    """

    scheduler: str | None = setting(
        None, doc="null = no Dask | local = LocalCluster on this machine | tcp://host:8786")
    workers: int | None = setting(None, ge=1, le=1024,
                                  doc="LocalCluster worker processes; null = CPU cores")
    threads_per_worker: int = setting(1, ge=1, le=256, doc="threads of each local worker")
    memory_limit: str = setting("auto", doc="memory per local worker: auto | 4GiB | 0 = none")
    connect_timeout_s: float = setting(30.0, gt=0.0, le=3600.0,
                                       doc="seconds to reach the scheduler and its workers")
    allowed_failures: int = setting(3, ge=0, le=100,
                                    doc="local cluster: worker deaths a task survives")
    factor_block_tickers: int = setting(500, ge=10, le=100_000,
                                        doc="tickers per factor-computation task")
    native_fit_min_rows: int = setting(
        5_000_000, ge=0, doc="training rows from which LightGBM/XGBoost final fits use "
        "lightgbm.dask / xgboost.dask")

    def check(self) -> None:
        """Reject a ``scheduler`` that is not null, ``local`` or a Dask address.

        An address is ``host:port`` or ``<scheme>://...`` with a known scheme
        (``tcp``, ``tls``, ``inproc``, ``ucx``, ``ws``, ``wss``); empty or
        whitespace-containing text is rejected.
        """
        address = self.scheduler
        if address is None or address == "local":
            return
        if not address.strip() or any(c.isspace() for c in address):
            raise FieldError(("scheduler",), "must be null, 'local' or an address", address)
        rest = next((address[len(p):] for p in _SCHEMES if address.startswith(p)), None)
        if rest is None and "://" in address:
            raise FieldError(("scheduler",), f"has an unknown scheme (use {_SCHEMES[0]}...)",
                             address)
        if rest is None and ":" not in address:
            raise FieldError(("scheduler",), "must be 'local' or host:port / tcp://host:port",
                             address)


@dataclasses.dataclass(frozen=True)
class ReportSettings(Section):
    """Optional files of a run directory (see docs/outputs.md)."""

    csv_predictions: bool = setting(False, doc="also write predictions_oos.csv next to the "
                                    "Parquet file")


#: Dollar-ADV edges (USD, ascending) of the liquidity buckets of the spread cost
DEFAULT_SPREAD_ADV_BREAKS: tuple[float, ...] = (1e6, 5e6, 25e6, 1e8, 5e8)
#: Half bid/ask spread (bps) per bucket: below the first edge, ..., above the last
DEFAULT_HALF_SPREAD_BPS: tuple[float, ...] = (50.0, 25.0, 12.0, 6.0, 3.0, 1.5)


@dataclasses.dataclass(frozen=True)
class CostSettings(Section):
    """Trading costs of the backtest; docs/backtest.md gives the source of every default.

    Each order pays a commission (IBKR Pro Fixed: per share, with a minimum and a
    maximum per order), half the bid/ask spread of its liquidity bucket and a
    square-root market impact ``impact_coefficient x daily vol x sqrt(value / ADV)``.
    """

    commission_per_share: float = setting(0.005, ge=0.0, le=1.0,
                                          doc="USD per share (IBKR Pro Fixed, US stocks)")
    commission_min: float = setting(1.0, ge=0.0, le=1000.0, doc="USD minimum per order")
    commission_max_pct: float = setting(0.01, ge=0.0, le=1.0,
                                        doc="maximum per order, fraction of trade value")
    spread_adv_breaks: tuple[float, ...] = setting(
        DEFAULT_SPREAD_ADV_BREAKS, doc="ascending dollar-ADV edges of the liquidity buckets")
    half_spread_bps: tuple[float, ...] = setting(
        DEFAULT_HALF_SPREAD_BPS, doc="half spread (bps) per bucket, least liquid first")
    impact_coefficient: float = setting(1.0, ge=0.0, le=100.0,
                                        doc="Y of impact = Y x sigma_daily x sqrt(participation)")
    volatility_window: int = setting(20, ge=2, le=252,
                                     doc="sessions of daily-return volatility in the impact")
    adv_window: int = setting(20, ge=1, le=252,
                              doc="sessions of dollar volume in the ADV of spread and impact")

    def check(self) -> None:
        """Reject an invalid half-spread schedule.

        Rejected: ``spread_adv_breaks`` not positive and strictly ascending,
        ``half_spread_bps`` without exactly one value per bucket (one more than
        the breaks), and a half spread outside [0, 10000] bps.
        """
        breaks = self.spread_adv_breaks
        if any(b <= 0 for b in breaks) or list(breaks) != sorted(set(breaks)):
            raise FieldError(("spread_adv_breaks",), "must be positive and strictly ascending",
                             breaks)
        if len(self.half_spread_bps) != len(breaks) + 1:
            raise FieldError(("half_spread_bps", "spread_adv_breaks"),
                             f"half_spread_bps needs one value per bucket: "
                             f"{len(breaks) + 1} for {len(breaks)} edges, got "
                             f"{len(self.half_spread_bps)}")
        if any(not 0 <= b <= 10_000 for b in self.half_spread_bps):
            raise FieldError(("half_spread_bps",), "must lie in [0, 10000] bps",
                             self.half_spread_bps)


@dataclasses.dataclass(frozen=True)
class BacktestSettings(Section):
    """The strategy backtest over a run's out-of-sample span (docs/backtest.md)."""

    enabled: bool = setting(False, doc="bma run also backtests (bma run --backtest)")
    rebalance_every: int = setting(5, ge=1, le=252, doc="sessions between rebalances")
    start: dt.date | None = setting(None, doc="first rebalance; null = first OOS date")
    end: dt.date | None = setting(None, doc="last session; null = last session of the data")
    score: str = setting("fused", doc="predictions_oos column that ranks the names")
    fill_price: Literal["open", "close", "vwap"] = setting(
        "open", doc="fill at the next session's open | close | vwap")
    initial_capital: float | None = setting(None, gt=0.0,
                                            doc="USD; null = research.portfolio.capital")
    risk_refit_every: int = setting(63, ge=1, le=2520,
                                    doc="sessions between point-in-time risk-model fits")
    stale_after: int = setting(5, ge=1, le=252,
                               doc="sessions without a bar before a held name is removed")
    rolling_window: int = setting(252, ge=20, le=2520,
                                  doc="sessions of the rolling Sharpe chart")
    costs: CostSettings = setting(default_factory=CostSettings, doc="")

    def check(self) -> None:
        """Reject ``start`` after ``end`` and a blank ``score`` column name."""
        if self.start and self.end and self.start > self.end:
            raise FieldError(("start", "end"), "start is after end")
        if not self.score.strip():
            raise FieldError(("score",), "must name a predictions_oos column", self.score)


@dataclasses.dataclass(frozen=True)
class ResearchSettings(Section):
    """All research-pipeline settings.

    Cross-field rules (raised as :class:`~bma_models.errors.SettingsError`
    naming both keys) keep the validation leak-free: ``cv.gap >=
    labels.horizon`` (a training label must not overlap the test window),
    ``stacking.meta_gap > cv.gap`` and ``stacking.meta_embargo >= cv.embargo``
    (the meta-model sees out-of-fold predictions whose labels reach further).
    """

    data: DataSettings = setting(default_factory=DataSettings, doc="")
    features: FeatureSettings = setting(default_factory=FeatureSettings, doc="")
    labels: LabelSettings = setting(default_factory=LabelSettings, doc="")
    cv: CVSettings = setting(default_factory=CVSettings, doc="")
    models: ModelSettings = setting(default_factory=ModelSettings, doc="")
    stacking: StackingSettings = setting(default_factory=StackingSettings, doc="")
    regime: RegimeSettings = setting(default_factory=RegimeSettings, doc="")
    portfolio: PortfolioSettings = setting(default_factory=PortfolioSettings, doc="")
    seed: int = setting(42, ge=0, doc="global random seed")
    jobs: int = setting(2, ge=1, le=256, doc="parallel workers")
    joblib_backend: Literal["loky", "threading", "multiprocessing"] = setting(
        "loky", doc="joblib backend for parallel work")
    dask: DaskSettings = setting(default_factory=DaskSettings, doc="")
    report: ReportSettings = setting(default_factory=ReportSettings, doc="")
    backtest: BacktestSettings = setting(default_factory=BacktestSettings, doc="")

    def check(self) -> None:
        """Reject settings that would leak the future into the validation.

        Rejected: ``labels.entry: close`` with a total feature lag
        (``base_lag + safety_gap``) of 0, ``cv.gap < labels.horizon``,
        ``stacking.meta_gap <= cv.gap`` and ``stacking.meta_embargo < cv.embargo``.
        """
        if self.labels.entry == "close" and self.features.base_lag + self.features.safety_gap == 0:
            raise FieldError(
                ("labels.entry", "features.base_lag", "features.safety_gap"),
                "a label bought at close(T) needs features lagged >= 1 session: with "
                "base_lag + safety_gap = 0 they would see that very close (use "
                "labels.entry: next_open for lag 0)")
        if self.cv.gap < self.labels.horizon:
            raise FieldError(
                ("cv.gap", "labels.horizon"),
                f"cv.gap ({self.cv.gap}) must be >= labels.horizon ({self.labels.horizon}) "
                "so training labels cannot overlap the test window")
        if self.stacking.meta_gap <= self.cv.gap:
            raise FieldError(
                ("stacking.meta_gap", "cv.gap"),
                f"stacking.meta_gap ({self.stacking.meta_gap}) must be > cv.gap ({self.cv.gap})")
        if self.stacking.meta_embargo < self.cv.embargo:
            raise FieldError(
                ("stacking.meta_embargo", "cv.embargo"),
                f"stacking.meta_embargo ({self.stacking.meta_embargo}) must be >= "
                f"cv.embargo ({self.cv.embargo})")

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any] | None,
        *,
        source: str | Callable[[str], str] | None = None,
        prefix: str = "",
    ) -> ResearchSettings:
        """Build validated settings from a parsed YAML/JSON mapping.

        Parameters
        ----------
        data : mapping or None
            The ``research`` section; missing keys take their defaults.
        source : str or callable, optional
            File name (or ``dotted_key -> source`` function) named in errors.
        prefix : str
            Dotted path of this section in a larger document (``"research"``).

        Raises
        ------
        bma_models.errors.SettingsError
            Unknown key, wrong type, out-of-range value or failed cross-field rule.
        """
        source_of = (lambda _key: source) if isinstance(source, str) else source
        return build(cls, data, prefix=prefix, source_of=source_of)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready) of every setting."""
        return to_dict(self)
