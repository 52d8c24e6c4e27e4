"""Shared test fixtures: repository paths and the recorded payloads in ``tests/fixtures``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The recorded third-party payloads committed with the tests (``tests/fixtures``).

    Their provenance and licences are in ``tests/fixtures/README.md``.
    """
    return FIXTURES


@pytest.fixture
def artifacts_dir() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def _empty_trader_state(tmp_path_factory):
    """Point ``$BMA_STATE_DIR`` at an empty directory: ``bma run --holdings auto`` (the
    default) must not pick up a developer's ``./state`` book; tests that want one pass it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BMA_STATE_DIR", str(tmp_path_factory.mktemp("empty-state")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _private_account_locks(tmp_path_factory):
    """Point ``$BMA_LOCK_DIR`` (the broker-account locks) away from the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BMA_LOCK_DIR", str(tmp_path_factory.mktemp("account-locks")))
        yield


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
