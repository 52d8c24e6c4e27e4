"""Reading, fingerprinting, merging and atomically writing the config layers."""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from autotrader import appdb
from autotrader.config.errors import ConfigError
from autotrader.config.secrets import looks_like_secret_key, redact_secrets
from autotrader.config.sections import SECTION_NAMES
from bma_models.schema import flatten, to_dict

#: The documented defaults, shipped inside the package (every key, with its comment).
PACKAGED_DEFAULTS = "default.yaml"
#: The user's own YAML layer in the config directory (hand-written; the GUI never writes it).
USER_FILE = "local.yaml"
HOT_FILE = "config.json"
# Which sections each GUI-written file may hold; config.json (hot config) may hold any.
FILE_SECTIONS: dict[str, tuple[str, ...]] = {
    "connection.json": ("connection",),
    "risk_config.json": ("capital", "orders", "signals", "sizing", "risk_controls", "execution",
                         "filters"),
    HOT_FILE: SECTION_NAMES,
}
WRITABLE_FILES: tuple[str, ...] = tuple(FILE_SECTIONS)
# Keys that only a runtime override may change: files and the database may hold only this value.
RUNTIME_ONLY_KEYS: dict[str, Any] = {"trading.live_armed": False}
OVERRIDE_SOURCE = "runtime override"
DEFAULT_SOURCE = "built-in default"

Fingerprint = tuple[Any, ...] | None


def packaged_defaults_path() -> Path:
    """``default.yaml`` inside the installed ``autotrader.config`` package.

    Why a file in the package: a wheel installed with ``pip install .`` has no
    repository ``config/`` directory beside it, and the documented defaults must
    travel with the code that validates them.
    """
    return Path(str(importlib.resources.files("autotrader.config").joinpath(PACKAGED_DEFAULTS)))


def file_fingerprint(path: Path) -> Fingerprint:
    """``(mtime_ns, size, inode)`` of ``path``, or None when it does not exist.

    The inode catches an atomic replace that keeps size and (coarse) mtime.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot stat ({e})") from e
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def db_fingerprint(path: Path) -> Fingerprint:
    # In WAL mode a commit only touches the -wal file until the next checkpoint.
    return (file_fingerprint(path), file_fingerprint(Path(f"{path}-wal")))


def read_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON layer file into a mapping ({} when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from e
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") \
            from e
    except yaml.YAMLError as e:
        raise ConfigError(redact_secrets(f"{path}: invalid YAML: {e}")) from e
    if data is None and path.suffix in (".yaml", ".yml"):
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def read_db(path: Path, name: str) -> dict[str, Any]:
    """Read the settings table as a nested mapping (``section -> dotted key -> value``).

    A database file that does not exist yet reads as ``{}``.

    Raises
    ------
    ConfigError
        The database cannot be read (named by ``name``).
    """
    if not path.exists():
        return {}
    try:
        conn = appdb.connect(path)
        try:
            rows = conn.execute("SELECT section, key, value_json FROM settings").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise ConfigError(f"{name}: cannot read ({e})") from e
    data: dict[str, Any] = {}
    for section, key, value_json in sorted(rows):
        try:
            value = json.loads(value_json)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{name}: {section}.{key} holds invalid JSON ({e.msg})") from e
        set_dotted(data, f"{section}.{key}", value)
    return data


def write_db(path: Path, section: str, key: str, value: Any) -> None:
    """Insert or replace one row of the settings table."""
    try:
        conn = appdb.connect(path)
        try:
            with conn:
                conn.execute(
                    "INSERT OR REPLACE INTO settings (section, key, value_json) VALUES (?, ?, ?)",
                    (section, key, json.dumps(to_dict(value))),
                )
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise ConfigError(f"{path} (settings table): cannot write {section}.{key} ({e})") from e


def atomic_write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to a temp file in the same directory, fsync, then rename.

    Readers (another process, the next hot-reload check) see the old file or
    the new one, never a half-written one.
    """
    text = json.dumps(to_dict(data), indent=2, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as e:
        Path(tmp_name).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot save ({e})") from e


def set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``data["a"]["b"]["c"] = value`` for ``"a.b.c"``, creating mappings on the way."""
    *parents, leaf = dotted_key.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def remove_dotted(data: dict[str, Any], dotted_key: str) -> bool:
    """Remove a dotted key (pruning emptied parents); return whether it was present."""
    *parents, leaf = dotted_key.split(".")
    nodes = [data]
    for part in parents:
        child = nodes[-1].get(part)
        if not isinstance(child, dict):
            return False
        nodes.append(child)
    if leaf not in nodes[-1]:
        return False
    del nodes[-1][leaf]
    for part, node in zip(reversed(parents), reversed(nodes[:-1])):
        if node[part]:
            break
        del node[part]
    return True


def check_layer(name: str, data: Mapping[str, Any], allowed_sections: Iterable[str],
                runtime: bool = False) -> None:
    """Reject sections a layer may not hold, secret-looking keys and runtime-only keys."""
    allowed = set(allowed_sections)
    for section in data:
        if section not in SECTION_NAMES:
            raise ConfigError(f"{name}: {section} is not a known section "
                              f"(one of {', '.join(SECTION_NAMES)})")
        if section not in allowed:
            raise ConfigError(f"{name}: section {section} does not belong in this file "
                              f"(allowed: {', '.join(sorted(allowed))})")
    for key, value in flatten(data).items():
        if looks_like_secret_key(key.rsplit(".", 1)[-1]):
            raise ConfigError(f"{name}: {key} looks like a secret; secrets are read from the "
                              "environment only (POLYGON_API_KEY or MASSIVE_API_KEY)")
        if not runtime and key in RUNTIME_ONLY_KEYS and value != RUNTIME_ONLY_KEYS[key]:
            raise ConfigError(f"{name}: {key} = {value!r} can only be set at runtime (CLI flag "
                              "or GUI), never from a file or the database")


def merge(layers: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[dict[str, Any], dict]:
    """Deep-merge layers (later wins) and record which layer set each dotted key."""
    merged: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for name, data in layers:
        _merge_into(merged, data, name, "", provenance)
    return merged, provenance


def _merge_into(target: dict, data: Mapping, name: str, prefix: str, provenance: dict) -> None:
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        provenance[path] = name
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value, name, path, provenance)
        else:
            target[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
            if isinstance(value, Mapping):
                for sub in flatten(value, path):
                    provenance[sub] = name


def source_finder(provenance: Mapping[str, str]):
    """Return ``dotted_key -> layer name``; keys no layer set are built-in defaults."""

    def source_of(key: str) -> str:
        return provenance.get(key.split("[", 1)[0], DEFAULT_SOURCE)

    return source_of
