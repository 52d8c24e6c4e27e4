"""ConfigStore: the one layered, validated, hot-reloading configuration store."""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from autotrader.config import _sources as src
from autotrader.config.errors import ConfigError
from autotrader.config.secrets import contains_secret, polygon_api_key, redact_secrets
from autotrader.config.sections import SECTION_NAMES, Settings
from bma_models.errors import SettingsError
from bma_models.schema import build, to_dict

__all__ = ["DEFAULT_CONFIG_DIR", "ConfigStore", "StoreStats", "resolve_config_dir"]

logger = logging.getLogger(__name__)

Subscriber = Callable[[Settings], None]
#: The user's config directory when none is given, relative to the working directory.
DEFAULT_CONFIG_DIR = Path("config")
_DB = "settings table"
_PACKAGED = "packaged default.yaml"
# Layer order, lowest precedence first; runtime overrides come on top of all of these.
_LAYERS: tuple[str, ...] = (_PACKAGED, src.USER_FILE, "connection.json", "risk_config.json",
                            _DB, src.HOT_FILE)


@dataclasses.dataclass(frozen=True)
class StoreStats:
    """Counters for tests and diagnostics.

    Attributes
    ----------
    mtime_checks : int
        Times the sources' mtimes were looked at.
    reloads : int
        Times a source's content really changed and a new config was built.
    swaps : int
        Times a new config replaced the current one (subscribers notified).
    rejected : int
        Reloads rejected because a source was unreadable or invalid.
    """

    mtime_checks: int = 0
    reloads: int = 0
    swaps: int = 0
    rejected: int = 0


@dataclasses.dataclass(frozen=True)
class _Cached:
    fingerprint: Any
    data: dict[str, Any]


def resolve_config_dir(given: str | Path | None) -> Path | None:
    """Return the user's config directory: the one given, else ``./config`` when it exists.

    Why optional: after ``pip install .`` the commands run from any directory;
    the packaged defaults apply and a ``config/`` directory, when present,
    layers on top.

    Raises
    ------
    ConfigError
        If a directory was given explicitly and does not exist.
    """
    if given is not None:
        path = Path(given)
        if not path.is_dir():
            raise ConfigError(f"config directory {path}: no such directory")
        return path
    if DEFAULT_CONFIG_DIR.is_dir():
        return DEFAULT_CONFIG_DIR
    logger.info("no %s/ directory here: using the packaged defaults", DEFAULT_CONFIG_DIR)
    return None


class ConfigStore:
    """One configuration shared by the GUI, the research pipeline and the trader.

    Sources, lowest to highest precedence: built-in defaults (the dataclass
    defaults) < the packaged ``autotrader/config/default.yaml`` (the same values,
    every key documented) < the config directory's ``local.yaml`` <
    ``connection.json`` < ``risk_config.json`` < the app database's
    ``settings`` table < ``config.json`` (hot config) < runtime overrides.

    Parameters
    ----------
    config_dir : str or Path or None
        Directory holding the user's layer files (any of them may be missing);
        None = no directory, only the packaged defaults, the database and the
        overrides.
    db_path : str or Path, optional
        App database (:mod:`autotrader.appdb`); None = no database layer.
    overrides : mapping, optional
        Runtime overrides as dotted keys, e.g. ``{"research.labels.horizon": 5}``.
    clock : callable
        Monotonic seconds; injectable so tests control the reload interval.
    interval_s : float, optional
        Minimum seconds between mtime checks; None = ``app.hot_reload_interval_s``.

    Raises
    ------
    ConfigError
        If the sources do not form a valid configuration at construction time
        (there is no previous good config to fall back to).

    Notes
    -----
    Why debounce on the clock instead of watching files: :meth:`get` is called
    from hot paths (every trading cycle, every GUI refresh), so it costs one
    clock read and, at most once per interval, a few ``stat`` calls. Only a
    changed fingerprint (mtime, size, inode) leads to reading files, and only
    changed *content* leads to building a new config.

    A reload builds and validates a complete new :class:`Settings` before the
    single reference assignment that publishes it, so readers see the old or
    the new object, never a mix. A bad source keeps the last good config,
    logs the error once and exposes it as :attr:`last_error`.

    Subscribers run on the thread that caused the change (a :meth:`get` that
    noticed it, or a setter), with the store's lock held: keep them short, e.g.
    post the new settings to the GUI queue.

    Examples
    --------
    >>> import tempfile
    >>> store = ConfigStore(tempfile.mkdtemp(), overrides={"orders.daily_order_limit": 30})
    >>> store.get().orders.daily_order_limit
    30
    """

    def __init__(
        self,
        config_dir: str | Path | None,
        db_path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float | None = None,
    ) -> None:
        self._config_dir = Path(config_dir) if config_dir is not None else None
        self._db_path = Path(db_path) if db_path is not None else None
        self._clock = clock
        self._interval_s = interval_s
        self._lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self._stats = StoreStats()
        self._last_error: str | None = None
        self._overrides = self._overrides_from(overrides or {})
        self._cache = self._read_all()
        self._fingerprints = {name: c.fingerprint for name, c in self._cache.items()}
        self._settings = self._build(self._cache, self._overrides)
        self._last_check = clock()
        logger.info("config loaded from %s", ", ".join(self._present_sources()) or "defaults")

    # ------------------------------------------------------------------ reading

    def get(self) -> Settings:
        """Return the current settings, reloading first if a source changed.

        Looks at source mtimes at most once per interval. Never blocks on a
        reload running in another thread: it then returns the current config.
        """
        now = self._clock()
        if now - self._last_check >= self._interval() and self._lock.acquire(blocking=False):
            try:
                if now - self._last_check >= self._interval():
                    self._last_check = now
                    self._check_sources()
            finally:
                self._lock.release()
        return self._settings

    def reload(self) -> bool:
        """Check the sources now, ignoring the interval; True if a new config was swapped in."""
        with self._lock:
            self._last_check = self._clock()
            return self._check_sources()

    @property
    def last_error(self) -> str | None:
        """Message of the last rejected reload; None once a good config was loaded after it."""
        return self._last_error

    @property
    def stats(self) -> StoreStats:
        """A snapshot of the check/reload counters."""
        return self._stats

    @property
    def config_dir(self) -> Path | None:
        """Directory of the user's layer files (None: packaged defaults only)."""
        return self._config_dir

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(new_settings)`` after every swap; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ writing

    def set_override(self, dotted_key: str, value: Any) -> Settings:
        """Set a runtime override (highest precedence); validated before it applies.

        Raises
        ------
        ConfigError
            Unknown key, wrong type or out-of-range value; nothing changes.
        """
        self._refuse_secret(src.OVERRIDE_SOURCE, {dotted_key: value})
        with self._lock:
            overrides = copy.deepcopy(self._overrides)
            src.set_dotted(overrides, dotted_key, to_dict(value))
            candidate = self._build(self._cache, overrides)
            self._overrides = overrides
            self._swap(candidate, src.OVERRIDE_SOURCE)
            return self._settings

    def clear_override(self, dotted_key: str) -> Settings:
        """Remove a runtime override; the key falls back to the lower layers."""
        with self._lock:
            overrides = copy.deepcopy(self._overrides)
            if src.remove_dotted(overrides, dotted_key):
                candidate = self._build(self._cache, overrides)
                self._overrides = overrides
                self._swap(candidate, src.OVERRIDE_SOURCE)
            return self._settings

    def save_file(self, name: str, section_values: Mapping[str, Any]) -> Settings:
        """Atomically write sections to a GUI-owned file and apply the result.

        Each given section replaces that section of the file; other sections
        in the file are kept. Everything is validated - allowed sections,
        unknown keys, types, ranges, no secrets - before anything is written.

        Parameters
        ----------
        name : {"connection.json", "risk_config.json", "config.json"}
        section_values : mapping
            ``section -> mapping of keys`` (or a section dataclass).

        Raises
        ------
        ConfigError
            Invalid content or a failed write; the file is left untouched.
        """
        if name not in src.WRITABLE_FILES:
            raise ConfigError(f"{name} is not a writable config file "
                              f"(one of {', '.join(src.WRITABLE_FILES)})")
        if self._config_dir is None:
            raise ConfigError(f"cannot save {name}: this ConfigStore has no config directory")
        path = self._config_dir / name
        values = to_dict(dict(section_values))
        self._refuse_secret(str(path), values)
        with self._lock:
            existing = self._existing_file_data(path)
            data = {**existing, **values}
            src.check_layer(str(path), data, src.FILE_SECTIONS[name])
            cache = dict(self._cache)
            cache[name] = _Cached(None, data)
            candidate = self._build(cache, self._overrides)
            src.atomic_write_json(path, data)
            self._commit_source(name, data)
            self._swap(candidate, str(path))
            return self._settings

    def set_db_setting(self, section: str, key: str, value: Any) -> Settings:
        """Validate, then write one ``settings`` table row (``key`` may be dotted).

        Raises
        ------
        ConfigError
            No database configured, invalid value or a failed write.
        """
        if self._db_path is None:
            raise ConfigError("this ConfigStore has no database (db_path=None)")
        if section not in SECTION_NAMES:
            raise ConfigError(f"{self._db_name()}: {section} is not a known section")
        self._refuse_secret(self._db_name(), {f"{section}.{key}": value})
        with self._lock:
            data = copy.deepcopy(self._cache[_DB].data)
            src.set_dotted(data, f"{section}.{key}", to_dict(value))
            cache = dict(self._cache)
            cache[_DB] = _Cached(None, data)
            candidate = self._build(cache, self._overrides)
            src.write_db(self._db_path, section, key, value)
            self._commit_source(_DB, data)
            self._swap(candidate, self._db_name())
            return self._settings

    # ------------------------------------------------------------------ internals

    def _interval(self) -> float:
        if self._interval_s is not None:
            return self._interval_s
        return self._settings.app.hot_reload_interval_s

    def _check_sources(self) -> bool:
        self._count(mtime_checks=1)
        try:
            fingerprints = self._scan()
        except ConfigError as e:
            return self._reject(e)
        if fingerprints == self._fingerprints:
            return False
        self._fingerprints = fingerprints  # a bad file is reported once, not every interval
        try:
            cache = self._read_changed(fingerprints)
            changed = [n for n in _LAYERS if cache[n].data != self._cache[n].data]
            if not changed:
                self._cache = cache
                return False
            self._count(reloads=1)
            candidate = self._build(cache, self._overrides)
        except ConfigError as e:
            return self._reject(e)
        self._cache = cache
        return self._swap(candidate, ", ".join(self._source_name(n) for n in changed))

    def _reject(self, error: ConfigError) -> bool:
        self._count(rejected=1)
        if str(error) != self._last_error:  # the same persisting problem is logged once
            logger.error("config reload rejected, keeping the previous config: %s", error)
        self._last_error = str(error)
        return False

    def _swap(self, candidate: Settings, cause: str) -> bool:
        self._last_error = None
        old = self._settings
        if candidate == old:
            return False
        self._settings = candidate  # the one atomic publish
        self._count(swaps=1)
        changed = [n for n in SECTION_NAMES if getattr(old, n) != getattr(candidate, n)]
        logger.info("config updated from %s: changed %s", cause, ", ".join(changed))
        for callback in list(self._subscribers):
            try:
                callback(candidate)
            except Exception:
                logger.exception("config subscriber %r failed; other subscribers still run",
                                 callback)
        return True

    def _count(self, **increments: int) -> None:
        self._stats = dataclasses.replace(
            self._stats, **{k: getattr(self._stats, k) + v for k, v in increments.items()})

    def _path(self, name: str) -> Path | None:
        if name == _DB:
            return self._db_path
        if name == _PACKAGED:
            return src.packaged_defaults_path()
        return self._config_dir / name if self._config_dir is not None else None

    def _source_name(self, name: str) -> str:
        if name == _DB:
            return self._db_name()
        if name == _PACKAGED:
            return f"{src.DEFAULT_SOURCE} (packaged {src.PACKAGED_DEFAULTS})"
        return str(self._path(name) or name)

    def _db_name(self) -> str:
        return f"{self._db_path} ({_DB})"

    def _scan(self) -> dict[str, Any]:
        fingerprints: dict[str, Any] = {}
        for name in _LAYERS:
            path = self._path(name)
            if path is None:
                fingerprints[name] = None
            elif name == _DB:
                fingerprints[name] = src.db_fingerprint(path)
            else:
                fingerprints[name] = src.file_fingerprint(path)
        return fingerprints

    def _read(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        if path is None:
            return {}
        if name == _DB:
            return src.read_db(path, self._db_name())
        return src.read_file(path)

    def _read_all(self) -> dict[str, _Cached]:
        fingerprints = self._scan()
        return {name: _Cached(fingerprints[name], self._read(name)) for name in _LAYERS}

    def _read_changed(self, fingerprints: Mapping[str, Any]) -> dict[str, _Cached]:
        cache = dict(self._cache)
        for name in _LAYERS:
            if fingerprints[name] != cache[name].fingerprint:
                cache[name] = _Cached(fingerprints[name], self._read(name))
        return cache

    def _commit_source(self, name: str, data: dict[str, Any]) -> None:
        # After our own write: record the new fingerprint so the next check does not re-read it.
        fingerprint = self._scan()[name]
        self._cache = {**self._cache, name: _Cached(fingerprint, data)}
        self._fingerprints = {**self._fingerprints, name: fingerprint}

    def _existing_file_data(self, path: Path) -> dict[str, Any]:
        try:
            return src.read_file(path)
        except ConfigError as e:
            logger.warning("replacing unreadable %s on save: %s", path, e)
            return {}

    def _present_sources(self) -> list[str]:
        names = [self._source_name(n) for n in _LAYERS if self._cache[n].data]
        return names + ([src.OVERRIDE_SOURCE] if self._overrides else [])

    def _layers(self, cache: Mapping[str, _Cached], overrides: Mapping[str, Any]):
        layers: list[tuple[str, Mapping[str, Any]]] = []
        for name in _LAYERS:
            display = self._source_name(name)
            allowed = src.FILE_SECTIONS.get(name, SECTION_NAMES)  # YAML files, DB: any
            src.check_layer(display, cache[name].data, allowed)
            layers.append((display, cache[name].data))
        src.check_layer(src.OVERRIDE_SOURCE, overrides, SECTION_NAMES, runtime=True)
        layers.append((src.OVERRIDE_SOURCE, overrides))
        return layers

    def _build(self, cache: Mapping[str, _Cached], overrides: Mapping[str, Any]) -> Settings:
        try:
            merged, provenance = src.merge(self._layers(cache, overrides))
            return build(Settings, merged, source_of=src.source_finder(provenance))
        except (SettingsError, ConfigError) as e:
            raise ConfigError(redact_secrets(str(e))) from e

    def _overrides_from(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        self._refuse_secret(src.OVERRIDE_SOURCE, overrides)
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            src.set_dotted(nested, key, to_dict(value))
        return nested

    @staticmethod
    def _refuse_secret(source: str, values: Mapping[str, Any]) -> None:
        polygon_api_key()  # registers the environment's key, if any, before the check
        if contains_secret(values):
            raise ConfigError(f"{source}: refusing to store a secret value; secrets are read "
                              "from the environment only (POLYGON_API_KEY or MASSIVE_API_KEY)")
