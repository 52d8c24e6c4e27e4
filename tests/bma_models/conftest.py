"""Fixtures of the research-core tests (generated once where they are expensive, seeded).

* ``market`` / ``market_with_halts``: small random-walk bars (factors, labels, panel);
* ``small_demo`` / ``full_demo``: demo markets (data sources, the models' demo recovery);
* ``asset_market`` / ``risk_model``: synthetic returns with a known factor structure
  (risk model, optimizer, regimes);
* ``dask_local``: a LocalCluster of 2 worker processes (the Dask tests), started on first use
  and closed when the last test of this package has run.
"""

from __future__ import annotations

import pytest

from bma_models.cluster import open_session
from bma_models.data.demo import demo_market
from bma_models.risk import FactorRiskModel
from bma_models.settings import DaskSettings
from tests.bma_models._assets import simulate_market
from tests.bma_models._market import random_walk_bars


@pytest.fixture
def market():
    return random_walk_bars()


@pytest.fixture
def market_with_halts():
    return random_walk_bars(n_tickers=8, n_sessions=120, seed=7, missing=0.03)


@pytest.fixture(scope="session")
def small_demo():
    return demo_market(n_tickers=120, n_sessions=300, seed=3)


@pytest.fixture(scope="session")
def full_demo():
    """The default 500 x 1260 market (seed 42): the size the pipeline runs on."""
    return demo_market()


@pytest.fixture(scope="session")
def asset_market():
    return simulate_market()


@pytest.fixture(scope="session")
def risk_model(asset_market):
    return FactorRiskModel(lookback=252).fit(
        asset_market["returns"], market_cap=asset_market["market_cap"],
        sectors=asset_market["sectors"])


@pytest.fixture(scope="package")
def dask_local():
    """A :class:`~bma_models.cluster.DaskSession` on 2 single-threaded worker processes."""
    session = open_session(DaskSettings(scheduler="local", workers=2, threads_per_worker=1,
                                        memory_limit="0"))
    yield session
    session.close()
