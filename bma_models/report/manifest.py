"""``manifest.json``: what a run was made from, so it can be reproduced and audited."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

_PACKAGES = (
    "bma-workstation", "numpy", "pandas", "scipy", "scikit-learn", "lightgbm", "xgboost-cpu",
    "pyarrow", "exchange_calendars", "cvxpy", "clarabel", "osqp", "openpyxl", "matplotlib",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run's numbers depend on."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def config_hash(settings: Any) -> str:
    """SHA-256 of the canonical JSON of a settings mapping (or dataclass ``as_dict``)."""
    payload = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def data_fingerprint(bars: pd.DataFrame) -> dict[str, Any]:
    """Shape, date range and a content hash of the bars a run used.

    The hash covers every value (``pd.util.hash_pandas_object`` row hashes,
    folded with SHA-256), so two runs on identical data carry the same digest.
    """
    row_hashes = pd.util.hash_pandas_object(bars, index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes()).hexdigest()
    return {
        "rows": int(len(bars)),
        "tickers": int(bars["ticker"].nunique()) if len(bars) else 0,
        "first_date": str(bars["date"].min().date()) if len(bars) else None,
        "last_date": str(bars["date"].max().date()) if len(bars) else None,
        "sha256": digest,
    }


def file_inventory(directory: str | Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file in a run directory, by file name (sorted).

    ``manifest.json`` is written last and cannot list itself; it is left out.
    Why: the manifest says which files a complete run holds (the optional ones
    included, e.g. ``predictions_oos.csv``) and lets anyone check that a
    file is the one the run wrote.
    """
    inventory = {}
    for path in sorted(Path(directory).iterdir()):
        if path.is_file() and path.name != "manifest.json":
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            inventory[path.name] = {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
    return inventory


def build_manifest(
    run_id: str,
    source_label: str,
    settings: Any,
    bars: pd.DataFrame,
    seed: int,
    argv: list[str],
) -> dict[str, Any]:
    """Build a run's ``manifest.json`` payload.

    It records the run id, data source, settings and their hash, the bars'
    fingerprint, the seed, the command line and the installed package versions.
    """
    return {
        "run_id": run_id,
        "source": source_label,
        "config_sha256": config_hash(settings),
        "data": data_fingerprint(bars),
        "seed": seed,
        "command_line": [sys.argv[0].rsplit("/", 1)[-1], *argv],
        "packages": package_versions(),
        "settings": settings,
    }
