"""Fixtures: small seeded random-walk markets for the factor and label tests."""

from __future__ import annotations

import pytest

from tests.factors._market import random_walk_bars


@pytest.fixture
def market():
    return random_walk_bars()


@pytest.fixture
def market_with_halts():
    return random_walk_bars(n_tickers=8, n_sessions=120, seed=7, missing=0.03)
