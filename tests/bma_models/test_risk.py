"""Factor risk model: Huber IRLS vs scikit-learn, Ledoit-Wolf, PD projection, look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.linear_model import HuberRegressor

from bma_models._risk_math import (
    huber_objective,
    huber_regression,
    ledoit_wolf_covariance,
    project_to_positive_definite,
)
from bma_models.errors import DataError
from bma_models.risk import (
    FactorRiskModel,
    average_dollar_volume,
    build_factor_returns,
    risk_inputs_from_bars,
)
from tests.bma_models._assets import simulate_market


def _regression_data(seed, n_obs=80, n_features=3, n_outliers=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_obs, n_features))
    y = X @ rng.normal(size=n_features) + 0.3 + rng.standard_t(3, n_obs) * 0.5
    y[:n_outliers] += 10.0
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.0, 1e-4, 0.5])
def test_huber_irls_matches_sklearn_huber_regressor(seed, alpha):
    X, y = _regression_data(seed)
    ref = HuberRegressor(epsilon=1.35, alpha=alpha, max_iter=10000, tol=1e-12).fit(X, y)
    fit = huber_regression(X, y, epsilon=1.35, alpha=alpha)
    # sklearn stops L-BFGS-B at its own tolerance: coefficients agree to ~1e-5,
    # and our objective is never worse than sklearn's (same loss, same penalty).
    np.testing.assert_allclose(fit.coef, ref.coef_, atol=1e-4)
    assert abs(fit.intercept - ref.intercept_) < 1e-4
    assert abs(fit.scale - ref.scale_) < 1e-4
    ours = huber_objective(X, y, fit.coef, fit.intercept, fit.scale, 1.35, alpha)
    theirs = huber_objective(X, y, ref.coef_, ref.intercept_, ref.scale_, 1.35, alpha)
    assert ours <= theirs * (1 + 1e-9)


def test_huber_batched_equals_one_fit_per_asset_and_ignores_nan():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 60, 2))
    y = np.einsum("ntp,np->nt", X, rng.normal(size=(5, 2))) + rng.standard_t(3, (5, 60)) * 0.2
    y[1, :10] = np.nan
    batch = huber_regression(X, y)
    for i in range(5):
        keep = np.isfinite(y[i])
        single = huber_regression(X[i][keep], y[i][keep])
        np.testing.assert_allclose(batch.coef[i], single.coef, atol=1e-8)
        np.testing.assert_allclose(batch.scale[i], single.scale, rtol=1e-8)
    assert batch.converged.all()


def test_ledoit_wolf_matches_sklearn():
    X = np.random.default_rng(5).normal(size=(40, 7)) @ np.diag([1, 2, 3, 1, 1, 0.5, 4])
    cov, shrinkage = ledoit_wolf_covariance(X)
    ref = LedoitWolf().fit(X)
    np.testing.assert_allclose(cov, ref.covariance_, rtol=1e-12, atol=1e-14)
    assert shrinkage == pytest.approx(ref.shrinkage_, rel=1e-12)


def test_pd_projection_raises_negative_eigenvalues_and_keeps_pd_matrices():
    indefinite = np.array([[1.0, 2.0], [2.0, 1.0]])
    projected, n_clipped = project_to_positive_definite(indefinite, 1e-6)
    assert n_clipped == 1
    assert np.linalg.eigvalsh(projected).min() >= 3.0 * 1e-6 * (1 - 1e-9)
    pd_matrix = np.array([[2.0, 0.5], [0.5, 1.0]])
    same, n_clipped = project_to_positive_definite(pd_matrix)
    assert n_clipped == 0
    np.testing.assert_array_equal(same, pd_matrix)


def test_factor_returns_at_t_do_not_change_when_later_data_changes(asset_market):
    returns, sectors = asset_market["returns"], asset_market["sectors"]
    caps = asset_market["market_cap"]
    base = build_factor_returns(returns, caps, sectors)
    cut = returns.index[200]
    later_returns = returns.copy()
    later_returns.loc[returns.index > cut] *= -3.0
    later_caps = caps.copy()
    later_caps.loc[caps.index >= cut] = later_caps.loc[caps.index >= cut].to_numpy()[:, ::-1]
    changed = build_factor_returns(later_returns, later_caps, sectors)
    pd.testing.assert_frame_equal(base.loc[:cut], changed.loc[:cut])


def test_size_factor_sorts_on_previous_day_cap():
    dates = pd.bdate_range("2024-01-01", periods=3)
    returns = pd.DataFrame([[0.0, 0.0, 0.0], [0.01, 0.02, 0.03], [0.01, 0.02, 0.03]],
                           index=dates, columns=["A", "B", "C"])
    caps = pd.DataFrame([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0]],
                        index=dates, columns=["A", "B", "C"])
    sectors = pd.Series("X", index=returns.columns)
    size = build_factor_returns(returns, caps, sectors, style_factors=())["size"]
    # day 2 sorts on day-1 caps (A smallest): 0.01 - 0.03; day 3 on day-2 caps (C smallest)
    assert size.iloc[1] == pytest.approx(-0.02)
    assert size.iloc[2] == pytest.approx(0.02)


def test_model_recovers_market_betas_and_loads_only_own_sector(asset_market, risk_model):
    # Without style factors the market loading is the beta; with them the
    # volatility factor (high minus low vol = high minus low beta) shares it.
    plain = FactorRiskModel(style_factors=()).fit(
        asset_market["returns"], market_cap=asset_market["market_cap"],
        sectors=asset_market["sectors"])
    # standard error of a beta here is about 0.013 / (0.01 * sqrt(252)) = 0.08
    estimated = plain.B_["market"].to_numpy()
    assert np.corrcoef(estimated, asset_market["betas"])[0, 1] > 0.8
    assert np.mean(np.abs(estimated - asset_market["betas"])) < 0.1
    B = risk_model.B_
    sector_cols = [c for c in B.columns if c.startswith("sector:")]
    own = asset_market["sectors"].map(lambda s: f"sector:{s}")
    for ticker, column in own.items():
        others = [c for c in sector_cols if c != column]
        assert (B.loc[ticker, others] == 0).all()
        assert B.loc[ticker, column] > 0.3
    assert risk_model.size_source_ == "market_cap"
    assert np.linalg.eigvalsh(risk_model.F_.to_numpy()).min() > 0


def test_portfolio_variance_and_risk_contributions_match_dense_covariance(risk_model):
    w = pd.Series(np.linspace(1.0, 2.0, len(risk_model.B_)), index=risk_model.B_.index)
    w /= w.sum()
    dense = risk_model.covariance().to_numpy()
    expected = float(w.to_numpy() @ dense @ w.to_numpy())
    assert risk_model.portfolio_variance(w) == pytest.approx(expected, rel=1e-12)
    contributions = risk_model.risk_contributions(w)
    assert contributions.sum() == pytest.approx(expected, rel=1e-12)
    vol = risk_model.total_volatility()
    np.testing.assert_allclose(vol.to_numpy() ** 2, np.diag(dense), rtol=1e-12)


def test_specific_variance_is_residual_variance_of_simulated_noise(risk_model):
    # noise is t(5) * 0.008: variance 0.008^2 * 5/3; robust fit leaves it in the residuals
    expected = 0.008**2 * 5 / 3
    assert np.median(risk_model.specific_var_) == pytest.approx(expected, rel=0.25)


def test_dollar_volume_drives_size_when_caps_unknown_and_thin_history_gets_medians(asset_market):
    returns = asset_market["returns"].copy()
    returns.iloc[:-30, 0] = np.nan
    model = FactorRiskModel(lookback=200, style_factors=()).fit(
        returns, dollar_volume=asset_market["market_cap"] * 0.01, sectors=asset_market["sectors"])
    assert model.size_source_ == "dollar_volume"
    assert model.thin_history_ == ["T00"]
    others = model.B_.drop(index="T00")
    assert model.B_.loc["T00", "market"] == pytest.approx(others["market"].median())


def test_an_asset_with_a_single_return_gets_the_median_specific_variance_without_warnings(
        asset_market, recwarn):
    returns = asset_market["returns"].copy()
    returns.iloc[:-1, 0] = np.nan  # a listing from yesterday: no sample variance at all
    model = FactorRiskModel(lookback=200, style_factors=()).fit(
        returns, market_cap=asset_market["market_cap"], sectors=asset_market["sectors"])
    assert model.thin_history_ == ["T00"]
    others = model.specific_var_.drop(index="T00")
    assert model.specific_var_["T00"] == pytest.approx(np.median(others))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_fit_without_size_input_or_enough_history_raises(asset_market):
    with pytest.raises(DataError, match="market_cap or dollar_volume"):
        FactorRiskModel().fit(asset_market["returns"], sectors=asset_market["sectors"])
    short = asset_market["returns"].iloc[:50]
    with pytest.raises(DataError, match="min_obs"):
        FactorRiskModel(style_factors=()).fit(short, market_cap=asset_market["market_cap"])


def test_inputs_from_bars_build_caps_from_shares_and_close():
    sim = simulate_market(n_assets=6, n_dates=30, n_sectors=2, seed=1)
    tickers = list(sim["returns"].columns)
    dates = sim["returns"].index
    close = pd.DataFrame(sim["prices"], index=dates, columns=tickers)
    long = close.stack().rename("close").reset_index()
    long.columns = ["date", "ticker", "close"]
    bars = long.assign(open=long["close"], high=long["close"], low=long["close"],
                       vwap=long["close"], volume=1000.0)
    reference = pd.DataFrame({"ticker": tickers, "sector": sim["sectors"].to_numpy(),
                              "market_cap": np.nan, "shares_outstanding": sim["shares"]})
    inputs = risk_inputs_from_bars(bars, reference)
    np.testing.assert_allclose(inputs["market_cap"].to_numpy(), sim["prices"] * sim["shares"])
    assert inputs["sectors"].tolist() == sim["sectors"].tolist()
    adv = average_dollar_volume(bars, window=5)
    np.testing.assert_allclose(adv.to_numpy(), close.tail(5).mean().to_numpy() * 1000.0)
