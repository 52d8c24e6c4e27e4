"""Atomic run directories: ``result/<run-id>/`` is either complete or absent.

Writers fill a hidden staging directory next to the final one; :meth:`RunDirectory.commit`
renames it into place in one ``os.replace`` (atomic on one filesystem). An
interrupted run leaves only a ``.staging-*`` directory, which readers ignore
and the next run cleans up.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"


class RunDirectory:
    """A run's output directory, staged until :meth:`commit`.

    Use as a context manager: leaving the block normally commits, an exception
    discards the staging directory (and re-raises).
    """

    def __init__(self, output_root: str | Path, run_id: str) -> None:
        self.output_root = Path(output_root)
        self.run_id = run_id
        self.final_path = self.output_root / run_id
        self._staging: Path | None = None

    def __enter__(self) -> RunDirectory:
        self.output_root.mkdir(parents=True, exist_ok=True)
        if self.final_path.exists():
            raise FileExistsError(f"run directory already exists: {self.final_path}")
        self._staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{self.run_id}-",
                                              dir=self.output_root))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    @property
    def path(self) -> Path:
        """The staging directory.

        Raises
        ------
        RuntimeError
            Outside the context (nothing staged, or already committed or discarded).
        """
        if self._staging is None:
            raise RuntimeError("RunDirectory used outside its context")
        return self._staging

    def file(self, name: str) -> Path:
        """Path of a file inside the staging directory."""
        return self.path / name

    def write_json(self, name: str, payload: Any) -> Path:
        """Write ``payload`` as indented JSON to staged file ``name``; return its path."""
        target = self.file(name)
        target.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n",
                          encoding="utf-8")
        return target

    def commit(self) -> Path:
        """Rename the staging directory to the final run directory; return its path.

        Raises
        ------
        RuntimeError
            Nothing is staged (outside the context, or already committed).
        """
        if self._staging is None:
            raise RuntimeError("nothing staged")
        os.replace(self._staging, self.final_path)
        logger.info("run directory complete: %s", self.final_path)
        self._staging = None
        return self.final_path

    def discard(self) -> None:
        """Delete the staging directory, if any, so no partial output is left."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=False)
            logger.warning("run %s discarded; no partial output left", self.run_id)
            self._staging = None


def complete_runs(output_root: str | Path) -> list[Path]:
    """Return the committed run directories (with a ``manifest.json``), oldest first by name."""
    root = Path(output_root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()]
    return sorted(runs, key=lambda p: p.name)


def clean_stale_staging(output_root: str | Path) -> int:
    """Remove staging directories left by interrupted runs; returns how many."""
    root = Path(output_root)
    removed = 0
    if root.is_dir():
        for path in root.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(path)
            logger.info("removed stale staging directory %s", path)
            removed += 1
    return removed
