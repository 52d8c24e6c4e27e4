"""The workstation's SQLite database: the settings table and the watchlist.

One file (default ``state/workstation.db``, relative to the working directory,
overridable with ``BMA_STATE_DIR``), opened in WAL mode so the GUI, the
pipeline and the trader can read while one of them writes. The trading
journal lives in its own file (it has its own retention and backup needs).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    section    TEXT NOT NULL,
    key        TEXT NOT NULL,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (section, key)
);
CREATE TABLE IF NOT EXISTS watchlist (
    ticker   TEXT PRIMARY KEY,
    note     TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


def default_state_dir() -> Path:
    """Directory for the app database and journals (``$BMA_STATE_DIR`` or ``./state``)."""
    return Path(os.environ.get("BMA_STATE_DIR", "state"))


def default_db_path() -> Path:
    """Return the app database's default path, ``workstation.db`` in the default state directory."""
    return default_state_dir() / "workstation.db"


def connect(path: str | Path | None = None) -> sqlite3.Connection:
    """Open (and create if needed) the app database with WAL journaling."""
    db_path = Path(path) if path is not None else default_db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn
