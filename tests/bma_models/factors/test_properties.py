"""Hypothesis: features never see later prices; labels see exactly T..T+horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from bma_models.factors import compute_factors
from bma_models.labels import forward_returns, lag_features
from tests.bma_models._market import random_walk_bars

N_SESSIONS = 80
BARS, REFERENCE = random_walk_bars(n_tickers=5, n_sessions=N_SESSIONS, seed=3, missing=0.02)
DATES = pd.DatetimeIndex(np.sort(BARS["date"].unique()))
VALUE_COLUMNS = ["open", "high", "low", "close", "volume", "vwap"]
RAW = compute_factors(BARS, REFERENCE)
LABEL = forward_returns(BARS, 10)


def _perturb(bars: pd.DataFrame, rows: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = bars.copy()
    factors = rng.uniform(0.5, 2.0, (int(rows.sum()), len(VALUE_COLUMNS)))
    out.loc[rows, VALUE_COLUMNS] = out.loc[rows, VALUE_COLUMNS].to_numpy() * factors
    return out


def _assert_same(a: pd.DataFrame | pd.Series, b: pd.DataFrame | pd.Series) -> None:
    x, y = a.to_numpy(), b.to_numpy()
    assert np.array_equal(x, y, equal_nan=True), "values changed"


@settings(max_examples=30, deadline=None)
@given(d=st.integers(0, N_SESSIONS - 2), lag=st.integers(0, 6), seed=st.integers(0, 2**32 - 1))
def test_changing_prices_after_d_never_changes_a_feature_dated_at_or_before_d(d, lag, seed):
    later = (BARS["date"] > DATES[d]).to_numpy()
    changed = compute_factors(_perturb(BARS, later, seed), REFERENCE)
    at_or_before = changed.index.get_level_values("date") <= DATES[d]
    _assert_same(changed[at_or_before], RAW[at_or_before])
    # lagged by `lag` sessions: everything dated up to d + lag is still unchanged
    original, perturbed = lag_features(RAW, lag).features, lag_features(changed, lag).features
    cutoff = DATES[min(d + lag, N_SESSIONS - 1)]
    keep = original.index.get_level_values("date") <= cutoff
    _assert_same(perturbed[keep], original[keep])
    assert not np.array_equal(changed.to_numpy(), RAW.to_numpy(), equal_nan=True)


@settings(max_examples=30, deadline=None)
@given(t=st.integers(0, N_SESSIONS - 11), horizon=st.integers(1, 10),
       seed=st.integers(0, 2**32 - 1), entry=st.sampled_from(["close", "next_open"]))
def test_label_at_t_depends_only_on_prices_in_t_to_t_plus_horizon(t, horizon, seed, entry):
    label = forward_returns(BARS, horizon, entry)
    dates = BARS["date"].to_numpy()
    # a close label buys at close(T); a next-open label at open(T+1), after everything of T
    first = DATES[t] if entry == "close" else DATES[t + 1]
    inside = (dates >= first) & (dates <= DATES[t + horizon])
    outside_changed = forward_returns(_perturb(BARS, ~inside, seed), horizon, entry)
    on_t = label.index.get_level_values("date") == DATES[t]
    _assert_same(outside_changed[on_t], label[on_t])
    end_changed = forward_returns(_perturb(BARS, dates == DATES[t + horizon], seed), horizon,
                                  entry)
    known = on_t & label.notna().to_numpy()
    assert known.any()
    assert (end_changed[known] != label[known]).all()
