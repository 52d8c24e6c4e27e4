"""Fixtures for the config store tests: a temp config dir, a fake clock, a store factory."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from autotrader.config import ConfigStore


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    return path


@pytest.fixture
def make_store(config_dir: Path, clock: FakeClock, tmp_path: Path):
    def factory(**kwargs) -> ConfigStore:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("interval_s", 60.0)
        return ConfigStore(config_dir, **kwargs)

    return factory


_MTIME_NS = itertools.count(1_700_000_000_000_000_000, 1_000_000_000)


def write_text(path: Path, text: str) -> None:
    """Rewrite a layer file in place, like an editor, with a strictly newer mtime.

    Filesystem timestamps can be coarser than the time between two test writes,
    so the mtime is set explicitly to keep every write distinguishable.
    """
    path.write_text(text, encoding="utf-8")
    stamp = next(_MTIME_NS)
    os.utime(path, ns=(stamp, stamp))


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data))
