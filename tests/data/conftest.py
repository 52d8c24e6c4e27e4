"""Demo markets shared by the data tests (generated once per session, seeded)."""

from __future__ import annotations

import pytest

from bma_models.data.demo import demo_market


@pytest.fixture(scope="session")
def small_demo():
    return demo_market(n_tickers=120, n_sessions=300, seed=3)


@pytest.fixture(scope="session")
def full_demo():
    """The default 500 x 1260 market (seed 42): the size the pipeline runs on."""
    return demo_market()
