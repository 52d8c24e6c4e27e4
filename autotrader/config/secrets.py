"""Secrets come from the environment only, and are redacted from logs and errors.

One environment variable per secret: the Polygon key is ``POLYGON_API_KEY``;
``MASSIVE_API_KEY`` (the vendor's new name) is accepted when the first is not
set. No other spellings are read. The value is never written to any config
file or database: :class:`~autotrader.config.ConfigStore` refuses to save it.

Why a process-wide registry: a secret can reach a log line or an exception
message from anywhere (a URL built deep inside an HTTP library), so every
:class:`bma_models.log.RedactingFilter` on the root logger's handlers learns
each secret as soon as it is read, and the store passes its error messages
through :func:`redact_secrets`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Mapping

from bma_models.log import RedactingFilter, redact

__all__ = [
    "MASSIVE_API_KEY",
    "POLYGON_API_KEY",
    "contains_secret",
    "install_redaction",
    "looks_like_secret_key",
    "polygon_api_key",
    "redact_secrets",
    "register_secret",
    "registered_secrets",
]

logger = logging.getLogger(__name__)

POLYGON_API_KEY = "POLYGON_API_KEY"
MASSIVE_API_KEY = "MASSIVE_API_KEY"
# Registering very short values would blank out ordinary words in every log line.
_MIN_SECRET_LENGTH = 8
_SECRET_KEY_NAME = re.compile(r"(api_?key|apikey|secret|token|password|passwd)", re.IGNORECASE)

_lock = threading.Lock()
_secrets: set[str] = set()
_filters: weakref.WeakSet[RedactingFilter] = weakref.WeakSet()
_warned_short = False


def polygon_api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the Polygon (Massive) API key from the environment, or None.

    Reads ``POLYGON_API_KEY``, then ``MASSIVE_API_KEY``; the value found is
    registered for redaction before it is returned.

    Parameters
    ----------
    environ : mapping, optional
        Defaults to :data:`os.environ` (injectable for tests).
    """
    env = os.environ if environ is None else environ
    for name in (POLYGON_API_KEY, MASSIVE_API_KEY):
        value = env.get(name, "").strip()
        if value:
            register_secret(value)
            return value
    return None


def register_secret(value: str) -> None:
    """Redact ``value`` from every log line and store error from now on.

    Values shorter than 8 characters are not registered (they would blank out
    ordinary words in every log line); a warning says so once.
    """
    global _warned_short
    if len(value) < _MIN_SECRET_LENGTH:
        if not _warned_short:
            _warned_short = True
            logger.warning("a secret shorter than %d characters is not redacted; "
                           "it looks malformed", _MIN_SECRET_LENGTH)
        return
    with _lock:
        _secrets.add(value)
        for handler in logging.getLogger().handlers:
            for log_filter in handler.filters:
                if isinstance(log_filter, RedactingFilter):
                    _filters.add(log_filter)
        for log_filter in _filters:
            log_filter.secrets = tuple(sorted(set(log_filter.secrets) | _secrets))


def install_redaction(handler: logging.Handler) -> RedactingFilter:
    """Attach a :class:`RedactingFilter` that tracks every registered secret to ``handler``."""
    with _lock:
        log_filter = RedactingFilter(tuple(sorted(_secrets)))
        _filters.add(log_filter)
    handler.addFilter(log_filter)
    return log_filter


def registered_secrets() -> tuple[str, ...]:
    """Return the secret values registered so far (for :func:`bma_models.log.configure_logging`)."""
    with _lock:
        return tuple(sorted(_secrets))


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret and any ``apiKey=...`` replaced by ``***``."""
    return redact(text, registered_secrets())


def contains_secret(value: object) -> bool:
    """Tell whether ``value`` (searched through mappings and lists) holds a registered secret."""
    if isinstance(value, str):
        return any(secret in value for secret in registered_secrets())
    if isinstance(value, Mapping):
        return any(contains_secret(k) or contains_secret(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_secret(v) for v in value)
    return False


def looks_like_secret_key(key: str) -> bool:
    """Tell whether ``key`` names a secret, such as ``api_key``, ``token`` or ``password``."""
    return bool(_SECRET_KEY_NAME.search(key))
