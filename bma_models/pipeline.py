"""``ResearchPipeline``: the research subsystem's one public entry point.

bars -> factors -> lagged, processed features and labels -> purged CV of the
first layer -> stacked meta-learner -> regime fusion -> OOS evaluation ->
factor risk model -> constrained optimizer. Pure computation: it takes a
:class:`~bma_models.data.MarketData` and settings, returns a
:class:`ResearchResult`, and writes nothing (the report writers do).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bma_models.baselines import (
    BASELINE_COLUMNS,
    PLAIN_LIGHTGBM,
    baseline_report,
    baseline_scores,
    describe_verdict,
    plain_lightgbm,
)
from bma_models.cv import PurgedGroupTimeSeriesSplit
from bma_models.data.protocol import MarketData
from bma_models.dataset import build_dataset
from bma_models.errors import BMAError, SettingsError
from bma_models.evaluation import (
    DateRanks,
    PerDateScores,
    evaluate,
    grouped_correlation,
    rank_ic,
    within_date_ranks,
)
from bma_models.factors import DEFAULT_FACTOR_SET, FactorSet, FactorSpec
from bma_models.factors.distributed import compute_factors_by_blocks
from bma_models.models import (
    ICWeightedAverage,
    NonNegativeRidgeStack,
    StackedModel,
    ValidatedStack,
    make_first_layer,
    threads_per_model,
)
from bma_models.models.distributed import native_final_fits
from bma_models.optimizer import OptimizationResult
from bma_models.portfolio import (
    Holdings,
    PortfolioPlan,
    check_plan_feasibility,
    market_snapshot,
    plan_portfolio,
    recommendations_table,
    score_expectations,
)
from bma_models.regime import RegimeFusion, detect_regimes, market_index
from bma_models.risk import FactorRiskModel, risk_inputs_from_bars
from bma_models.rules import Rulebook
from bma_models.settings import ResearchSettings

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("features", "train", "fusion", "evaluate", "risk", "optimize")
#: dtype of the OOS scores and labels: the precision ``predictions_oos.parquet`` stores
#: them in, and the precision every reported OOS metric is computed from (see
#: :func:`stored_precision`)
OOS_FLOAT = np.float32
ProgressCallback = Callable[[str, int, int], None]


class PipelineCancelled(BMAError):
    """The run was cancelled between stages; nothing was written."""


@dataclass
class ResearchResult:
    """Everything a run computed; the report writers turn it into files.

    ``predictions_oos`` holds its scores and ``label`` as :data:`OOS_FLOAT`, the
    values ``metrics`` were computed from and ``predictions_oos.parquet`` stores.
    ``plan`` is the portfolio (target and current weights, screens, capital;
    ``portfolio`` is its optimizer answer).
    """

    market: MarketData
    settings: ResearchSettings
    prediction_date: pd.Timestamp
    predictions_oos: pd.DataFrame
    metrics: dict[str, dict]
    canaries: dict[str, Any]
    stack_weights: pd.Series
    factor_ic: pd.DataFrame
    regimes: pd.DataFrame
    recommendations: pd.DataFrame
    portfolio: OptimizationResult
    risk: dict[str, Any]
    dataset: dict[str, Any]
    baselines: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    plan: PortfolioPlan = field(kw_only=True)
    #: the per-date figures of ``predictions_oos`` (its score columns against ``label``)
    #: behind ``metrics`` and ``baselines``, cached for the charts
    per_date: PerDateScores | None = None


class ResearchPipeline:
    """Run the whole research pipeline on one market.

    Parameters
    ----------
    settings : ResearchSettings
        The ``research`` section of the config.
    progress : callable, optional
        ``progress(stage, done, total)`` after each stage (tqdm in the CLI,
        the GUI's queue in the workstation).
    cancel : threading.Event, optional
        Checked between stages; when set, :class:`PipelineCancelled` is raised.
    cluster : bma_models.cluster.DaskSession, optional
        A connected Dask session (opened by the composition root): factors by
        ticker blocks, folds x models through joblib's Dask backend, native
        Dask final fits above ``dask.native_fit_min_rows`` rows; ``progress``
        then also receives ``("features:tasks", done, total)`` per ticker block.
        With or without a cluster, training reports ``("train:tasks", done,
        total)`` as each fold x model fit ends, and ``cancel`` is also checked
        between those tasks.
    rules : bma_models.rules.Rulebook, optional
        The trader's screens and limits (default: the packaged defaults); the
        portfolio obeys them (:func:`bma_models.portfolio.plan_portfolio`).
    holdings : bma_models.portfolio.Holdings, optional
        The current book the portfolio trades from (None: cash).
    factors : bma_models.factors.FactorSet, optional
        The factor set (default: the packaged ``alphas_config.yaml``,
        :data:`~bma_models.factors.DEFAULT_FACTOR_SET`); the composition root
        passes the config directory's copy when there is one.
    """

    def __init__(self, settings: ResearchSettings, progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, cluster: Any = None,
                 rules: Rulebook | None = None, holdings: Holdings | None = None,
                 factors: FactorSet | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self.cancel = cancel
        self.cluster = cluster
        self.rules = rules
        self.holdings = holdings
        self.factors = factors

    def run(self, market: MarketData) -> ResearchResult:
        """Run every stage on ``market``: features, train, fusion, evaluate, risk, optimize.

        Parameters
        ----------
        market : MarketData
            Bars and reference data of the universe (any source).

        Returns
        -------
        ResearchResult
            Predictions, OOS frame, metrics, risk model, portfolio plan and the
            timings of every stage; nothing is written (see
            :func:`bma_models.report.run.run_and_report`).

        Raises
        ------
        PipelineCancelled
            When the ``cancel`` event is set between stages or tasks.
        bma_models.errors.BMAError
            Bad data or settings, or an infeasible portfolio setting.
        """
        s = self.settings
        timings: dict[str, float] = {}
        factor_set = self.factors or DEFAULT_FACTOR_SET
        check_regime_weights(s.regime.weights, factor_set.specs)
        snapshot = self._check_plan_feasible(market)
        with _stage(timings, "features", self):
            reference, specs, data_notes = _factor_inputs(market, factor_set.specs)
            X, y, _, meta = self._dataset(market.bars, reference, specs)
        with _stage(timings, "train", self):
            model = self._stacked_model().fit(X, y)
            oos = _oos_frame(model)
            latest_stack = _on_date(model.predict_latest(meta.X_infer), meta.prediction_date)
        with _stage(timings, "fusion", self):
            regimes = self._regimes(market)
            # the factors are ranked once for the factor-IC table and the fusion's composite
            factor_ranks = DateRanks.of(X)
            factor_ics = factor_rank_ics(X, y, factor_ranks)
            prices = baseline_scores(market.bars, meta.lag)  # the price baselines' scores
            fusion, signs = self._fusion(X, factor_ics, oos, factor_set.specs)
            oos["fused"] = fusion.fuse(oos["stack"], X, regimes["state"],
                                       factor_ranks=factor_ranks)
            del factor_ranks
            latest_fused = fusion.fuse(latest_stack, meta.X_infer, regimes["state"])
        with _stage(timings, "evaluate", self):
            models = [*model.model_names_, "stack", "fused"]
            oos = _with_baselines(oos, model, prices)
            oos["label"] = y.reindex(oos.index)
            oos = stored_precision(oos)
            scores = oos.drop(columns=["fold", "label"])
            # metrics, baseline table and charts share one ranking of each column
            per_date = PerDateScores(scores, oos["label"])
            metrics = evaluate(oos[models], oos["label"], oos["fold"], scores=per_date)
            baselines = baseline_report(scores, oos["label"], horizon=s.labels.horizon,
                                        members=list(model.model_names_), per_date=per_date)
            _log_verdict(baselines)
            oos_dates = oos.index.get_level_values(0).unique()
            factor_ic = _factor_ic(factor_ics.loc[factor_ics.index.isin(oos_dates)], signs,
                                   factor_set.specs)
        with _stage(timings, "risk", self):
            risk_model = FactorRiskModel().fit(**risk_inputs_from_bars(market.bars,
                                                                       market.reference))
        with _stage(timings, "optimize", self):
            recs, plan = self._portfolio(market, latest_stack, latest_fused, risk_model, snapshot)
            result = plan.optimization
        return ResearchResult(
            market=market, settings=s, prediction_date=meta.prediction_date,
            predictions_oos=oos, metrics=metrics, canaries=model.canaries_,
            stack_weights=model.weights_, factor_ic=factor_ic, regimes=regimes,
            recommendations=recs, portfolio=result,
            risk=_risk_summary(risk_model, plan.weights),
            dataset={"training_rows": len(X), "dropped_rows": meta.dropped_rows,
                     "features": list(X.columns), "lag": meta.lag, "horizon": meta.horizon,
                     "label_entry": s.labels.entry,
                     "n_tickers": market.bars["ticker"].nunique(), "notes": data_notes,
                     "n_dates": len(meta.market_dates),
                     "factor_set": {"file": factor_set.source, **factor_set.to_config()}},
            baselines=baselines, timings_s=timings, plan=plan, per_date=per_date,
        )

    # -- stages ---------------------------------------------------------------------------

    def _dataset(self, bars: pd.DataFrame, reference: pd.DataFrame, specs: list[FactorSpec]):
        """Factors (ticker blocks on a cluster), lagged features and labels (build_dataset)."""
        s = self.settings
        raw = None if self.cluster is None else compute_factors_by_blocks(
            bars, reference, specs, client=self.cluster.client,
            block_tickers=s.dask.factor_block_tickers, on_task=self._tasks("features"))
        return build_dataset(
            bars, reference, specs=specs, horizon=s.labels.horizon,
            base_lag=s.features.base_lag, safety_gap=s.features.safety_gap,
            n_buckets=s.labels.relevance_buckets, lower=s.features.winsor_lower,
            upper=s.features.winsor_upper, sector_neutral=s.features.sector_neutral,
            n_jobs=max(1, int(s.jobs)), factors=raw, entry=s.labels.entry)

    def _regimes(self, market: MarketData) -> pd.DataFrame:
        """Detect the market's regime per date (:func:`~bma_models.regime.detect_regimes`)."""
        s = self.settings
        return detect_regimes(market_index(market.bars, market.reference),
                              vol_window=s.regime.vol_window,
                              threshold_window=s.regime.threshold_window)

    def _stacked_model(self) -> StackedModel:
        s = self.settings
        n_jobs = max(1, int(s.jobs))
        parallel, threads = self._parallel(n_jobs)
        # params of a model that is switched off stay in the config for when it is switched
        # back on (config/default.yaml tunes lgbm_ranker); only enabled models get theirs
        params: dict[str, Mapping[str, Any]] = {
            k: v for k, v in s.models.params.items() if k in s.models.enabled}
        first_layer = make_first_layer(s.models.enabled, params, seed=s.seed,
                                       n_jobs_per_model=threads)
        if s.stacking.method == "nonneg_ridge":
            meta = NonNegativeRidgeStack()
        elif s.stacking.method == "validated":
            meta = ValidatedStack(temperature=s.stacking.temperature, min_t=s.stacking.min_t,
                                  horizon=s.labels.horizon)
        else:
            meta = ICWeightedAverage(temperature=s.stacking.temperature)
        cv = PurgedGroupTimeSeriesSplit(
            n_splits=s.cv.n_splits, gap=s.cv.gap, embargo=s.cv.embargo,
            test_group_size=s.cv.test_group_size, max_train_group_size=s.cv.max_train_group_size)
        meta_cv = PurgedGroupTimeSeriesSplit(
            n_splits=s.cv.n_splits, gap=s.stacking.meta_gap, embargo=s.stacking.meta_embargo)
        reference = {PLAIN_LIGHTGBM: plain_lightgbm(seed=s.seed, n_jobs=threads)}
        return StackedModel(first_layer, meta, cv, meta_cv, label_horizon=s.labels.horizon,
                            reference_models=reference, **parallel)

    def _parallel(self, n_jobs: int) -> tuple[dict[str, Any], int]:
        """StackedModel's parallel options and the threads per model."""
        if self.cluster is None:
            return {"backend": self.settings.joblib_backend, "n_jobs": n_jobs,
                    "on_task": self._tasks("train")}, threads_per_model(n_jobs)
        # on a cluster the tasks are the parallelism: one thread per model and task slot
        fitter = functools.partial(native_final_fits, client=self.cluster.client,
                                   min_rows=self.settings.dask.native_fit_min_rows)
        return {"backend": self.cluster.joblib_backend, "n_jobs": self.cluster.n_threads,
                "final_fitter": fitter, "on_task": self._tasks("train")}, 1

    def _tasks(self, stage: str) -> Callable[[int, int], None]:
        # per-task progress (training everywhere, factor blocks on a cluster); a cancel also
        # stops the stage between two tasks, not only at the next stage boundary
        def on_task(done: int, total: int) -> None:
            if self.cancel is not None and self.cancel.is_set():
                raise PipelineCancelled(f"cancelled during stage {stage!r} "
                                        f"after {done} of {total} tasks")
            if self.progress is not None:
                self.progress(f"{stage}:tasks", done, total)
        return on_task

    def _fusion(self, X: pd.DataFrame, factor_ics: pd.DataFrame, oos: pd.DataFrame,
                specs: Mapping[str, FactorSpec]):
        """Fuse the stack with the factors, their signs learned strictly before the first OOS date.

        Why: a factor's direction (does a high value predict a high or a low
        return?) differs between markets. It is estimated from the mean rank IC
        of labelled rows whose label window ended before the first stack OOS
        date (a purge of ``horizon`` sessions), so the fused OOS score never
        uses a label from its own evaluation period.
        """
        s = self.settings
        first_oos = oos.index.get_level_values(0).min()
        all_dates = pd.Index(np.unique(X.index.get_level_values(0)))
        cutoff = all_dates[max(0, all_dates.searchsorted(first_oos) - s.labels.horizon - 1)]
        daily = factor_ics.loc[factor_ics.index <= cutoff]
        signs = {name: -1 if daily[name].mean() < 0 else 1 for name in X.columns}
        categories = {name: specs[name].category for name in X.columns}
        fusion = RegimeFusion(w_ml=s.regime.w_ml, regime_weights=s.regime.weights,
                              factor_categories=categories, factor_signs=signs)
        return fusion, signs

    def _check_plan_feasible(self, market: MarketData) -> pd.DataFrame:
        """Return the last session's prices, ADV and ATR after the rulebook's pre-training check."""
        rules = self.rules or Rulebook()
        snapshot = market_snapshot(market.bars, rules.atr_window)
        check_plan_feasibility(snapshot, _sectors(market), rules=rules,
                               settings=self.settings.portfolio, holdings=self.holdings)
        return snapshot

    def _portfolio(self, market, latest_stack, latest_fused, risk_model, snapshot):
        p = self.settings.portfolio
        fused = latest_fused.droplevel(0) if isinstance(latest_fused.index, pd.MultiIndex) \
            else latest_fused
        stack = latest_stack.droplevel(0) if isinstance(latest_stack.index, pd.MultiIndex) \
            else latest_stack
        expect = score_expectations(fused, risk_model, p.expected_ic,
                                    self.settings.labels.horizon)
        fused = expect.scores
        sectors = _sectors(market)
        plan = plan_portfolio(expect.mu, expect.horizon_mu, expect.percentile, risk_model,
                              snapshot, sectors, rules=self.rules or Rulebook(), settings=p,
                              holdings=self.holdings)
        scores = pd.DataFrame({"score": fused, "score_percentile": expect.percentile,
                               "stack_score": stack.reindex(fused.index),
                               "expected_return": expect.horizon_mu.reindex(fused.index)})
        recs = recommendations_table(plan, scores, snapshot, sectors, risk_model, p.top_n)
        return recs, plan


class _stage:
    """Time a stage, report progress and honour cancellation between stages."""

    def __init__(self, timings: dict[str, float], name: str, pipeline: ResearchPipeline):
        self.timings, self.name, self.pipeline = timings, name, pipeline

    def __enter__(self):
        if self.pipeline.cancel is not None and self.pipeline.cancel.is_set():
            raise PipelineCancelled(f"cancelled before stage {self.name!r}")
        logger.info("stage %s ...", self.name)
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.timings[self.name] = round(time.perf_counter() - self.start, 3)
        if exc_type is None:
            logger.info("stage %s done in %.2fs", self.name, self.timings[self.name])
            if self.pipeline.progress is not None:
                self.pipeline.progress(self.name, STAGES.index(self.name) + 1, len(STAGES))
        return False


def check_regime_weights(weights: Mapping[str, Mapping[str, float]],
                         specs: Mapping[str, FactorSpec]) -> None:
    """Refuse a positive regime weight on a category without a factor in the set.

    Why: such a weight would silently do nothing (the fusion renormalises over
    the categories present), so a user who puts weight on it is told, before
    any training, which key to change.

    Raises
    ------
    SettingsError
        Naming ``research.regime.weights.<regime>.<category>``.
    """
    present = {spec.category for spec in specs.values()}
    for regime, row in weights.items():
        for category, weight in row.items():
            if weight > 0 and category not in present:
                raise SettingsError(
                    f"research.regime.weights.{regime}.{category} = {weight:g}, but the factor "
                    f"set has no {category!r} factor (categories present: {sorted(present)}): "
                    "set the weight to 0 or enable a factor of that category")


def _factor_inputs(market: MarketData, factors: Mapping[str, FactorSpec]):
    """Select the reference data and the factors the dataset can actually use.

    Turnover needs shares outstanding. A user's sectors file often has market
    caps but no share counts: the shares are then derived as ``market_cap /
    last close`` (recorded). With neither, the turnover factors would be NaN for
    the whole cross-section and every row would be dropped as warm-up, so they
    are left out (recorded) instead of failing with "0 training rows".
    """
    ref = market.reference.copy()
    shares, caps = (pd.to_numeric(ref[c], errors="coerce") if c in ref
                    else pd.Series(np.nan, index=ref.index)
                    for c in ("shares_outstanding", "market_cap"))
    if (shares > 0).any():
        return ref, list(factors.values()), []
    last_close = market.bars.sort_values("date").groupby("ticker")["close"].last()
    if (caps > 0).any():
        ref["shares_outstanding"] = (caps / ref["ticker"].map(last_close)).where(caps > 0)
        note = "shares_outstanding derived as market_cap / last close (no share counts given)"
        logger.warning(note)
        return ref, list(factors.values()), [note]
    specs = [spec for spec in factors.values() if spec.family != "turnover"]
    note = (f"no shares outstanding or market caps: factors "
            f"{[n for n, spec in factors.items() if spec.family == 'turnover']} left out")
    logger.warning(note)
    return ref, specs, [note]


def _on_date(scores: pd.Series, date: pd.Timestamp) -> pd.Series:
    """Index ticker-indexed scores by ``(date, ticker)`` (as the fusion expects)."""
    if isinstance(scores.index, pd.MultiIndex):
        return scores
    index = pd.MultiIndex.from_product([[date], scores.index], names=["date", "ticker"])
    return pd.Series(scores.to_numpy(), index=index, name=scores.name)


def _oos_frame(model: StackedModel) -> pd.DataFrame:
    """Rows the meta split tested: first-layer OOF columns, ``stack`` and the meta ``fold``."""
    stack = model.stack_oof_
    first = model.oof_.drop(columns=["fold"]).reindex(stack.index)
    out = first.copy()
    out["stack"] = stack["stack"]
    out.insert(0, "fold", stack["fold"].astype(int))
    return out


def stored_precision(oos: pd.DataFrame) -> pd.DataFrame:
    """Round every score and the label of the OOS frame to :data:`OOS_FLOAT`.

    Why: ``predictions_oos`` is by far the largest output of a run, and its
    float64 mantissas do not compress; float32 halves it and lets Parquet's
    byte-stream split compress the exponents (docs/outputs.md has the sizes).
    Seven significant digits are more than a model score or a return computed
    from prices quoted to 4-6 digits carries. The rounding happens here, before
    the evaluation, so every OOS metric of the run is computed from exactly the
    values the run directory stores and the files reproduce it to the last bit.
    Models, stacking and fusion still compute in float64 (nothing upstream
    changes, the recommendations are identical); the rounding can only merge
    two values of one date that differ beyond the 7th significant digit into a
    tie. On the default demo run that is 37 of 3.3 million values (23 of them
    ``fused`` scores equal in exact arithmetic, apart by float64 rounding noise),
    and the OOS metrics move by at most 5e-8 (rank IC) and 1.2e-10 (IC):
    ``python -m benchmarks.outputs``.
    """
    floats = [c for c in oos.columns if c != "fold"]
    return oos.astype(dict.fromkeys(floats, OOS_FLOAT))


def _with_baselines(oos: pd.DataFrame, model: StackedModel,
                    price_scores: pd.DataFrame) -> pd.DataFrame:
    """``oos`` plus one ``baseline_*`` column per baseline, on the same rows.

    ``price_scores`` is :func:`~bma_models.baselines.baseline_scores` of the bars.
    """
    out = oos.copy()
    prices = price_scores.reindex(oos.index)
    for name in prices.columns:
        out[BASELINE_COLUMNS[name]] = prices[name]
    for name in model.reference_oof_.columns:
        out[BASELINE_COLUMNS[name]] = model.reference_oof_[name].reindex(oos.index)
    return out


def _log_verdict(report: dict[str, Any]) -> None:
    """WARNING when the fused score does not beat every baseline, INFO otherwise."""
    if report["beats_all_baselines"]:
        logger.info("baselines: %s", describe_verdict(report))
    else:
        logger.warning("baselines: %s", describe_verdict(report))


def factor_rank_ics(X: pd.DataFrame, y: pd.Series,
                    ranks: DateRanks | None = None) -> pd.DataFrame:
    """Per-date Spearman rank IC of every feature column with ``y`` (dates x columns).

    Equal to :func:`bma_models.evaluation.rank_ic` column by column (NaN where a
    date has fewer than 3 names or a constant side), but every column and the
    label are ranked once for all dates. Why: the fusion (factor signs before the
    first OOS date) and the factor-IC report (OOS dates) both read this table;
    ranking 27 factors x 590k rows once instead of per use saves ~2/3 of the time.
    ``ranks`` (``DateRanks.of(X)``, which the fusion reuses) saves ranking the
    columns here. Columns with missing values are scored by ``rank_ic`` itself
    (its row dropping).
    """
    codes, dates = pd.factorize(X.index.get_level_values(0), sort=True)
    label_rank = within_date_ranks(y.to_numpy(dtype=float), codes, first=False)[0]
    complete = [c for c in X.columns if not X[c].isna().any()]
    if ranks is not None and not (ranks.index.equals(X.index)
                                  and ranks.columns.equals(X.columns)):
        raise BMAError("factor_rank_ics: ranks were not computed on X")
    table = {c: grouped_correlation(
        within_date_ranks(X[c].to_numpy(dtype=float), codes, first=False)[0]
        if ranks is None else ranks.column(c), label_rank, codes) for c in complete}
    index = pd.Index(dates, name="date")
    for name in X.columns:
        if name not in table:
            table[name] = rank_ic(X[name], y).reindex(index).to_numpy()
    return pd.DataFrame({c: table[c] for c in X.columns}, index=index)


def _factor_ic(daily: pd.DataFrame, signs: dict[str, int],
               specs: Mapping[str, FactorSpec]) -> pd.DataFrame:
    rows = []
    for name in daily.columns:
        ric = daily[name].dropna()
        rows.append({"factor": name, "category": specs[name].category,
                     "sign_used": signs[name], "rank_ic": float(ric.mean()),
                     "rank_icir": float(ric.mean() / ric.std()) if ric.std() > 0 else np.nan,
                     "n_dates": int(len(ric))})
    return pd.DataFrame(rows).sort_values("rank_ic", key=np.abs, ascending=False,
                                          ignore_index=True)


def _sectors(market: MarketData) -> pd.Series | None:
    ref = market.reference
    return ref.set_index("ticker")["sector"] if "sector" in ref else None


def _risk_summary(risk_model: FactorRiskModel, weights: pd.Series) -> dict[str, Any]:
    w = weights.reindex(risk_model.B_.index).fillna(0.0)
    exposures = risk_model.B_.T @ w
    variance = risk_model.portfolio_variance(w)
    return {"ex_ante_vol_daily": float(np.sqrt(variance)),
            "ex_ante_vol_annual": float(np.sqrt(variance * 252)),
            "factor_exposures": {str(k): float(v) for k, v in exposures.items()},
            "shrinkage": float(risk_model.shrinkage_), "size_source": risk_model.size_source_}
