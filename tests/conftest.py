"""Shared test fixtures: repository paths and the recorded data in ../shared."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BMA_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The recorded Polygon responses and TWS sessions (``../shared/data``)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.fail(f"recorded fixtures not found at {path}; set BMA_SHARED_DIR")
    return path


@pytest.fixture
def artifacts_dir() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _drop_installed_log_handlers():
    """After each test, undo a CLI ``main()``'s ``configure_logging``: handlers, root level."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_bma_installed", False):
            root.removeHandler(handler)
            handler.close()
