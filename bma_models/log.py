"""The one place where logging is configured (console + rotating file).

Library modules only ever call ``logging.getLogger(__name__)``; the entry points
(``bma``, ``autotrader``, the GUI) call :func:`configure_logging` once.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_SECRET_PATTERNS = (
    re.compile(r"(apiKey=)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[A-Za-z0-9_\-\.]+"),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return ``text`` with API keys and the given secret values replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactingFilter(logging.Filter):
    """Redact secrets from every record that passes through a handler.

    Why a filter on the handler and not only care at call sites: a secret can
    reach a log line through an exception message or a URL built deep inside a
    library, and this is the last point before it is written anywhere.
    """

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message and exception text in place; never drop the record."""
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = redact(str(exc), self.secrets)
            if text != str(exc):
                record.exc_text = f"{type(exc).__name__}: {text}"
        return True


def configure_logging(
    level: int | str = logging.INFO,
    log_dir: str | Path | None = "logs",
    secrets: tuple[str, ...] = (),
    filename: str = "workstation.log",
) -> None:
    """Install a console handler and a rotating file handler on the root logger.

    Idempotent: calling it again replaces the handlers it installed before.
    """
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_bma_installed", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_dir is not None:
        path = Path(log_dir)
        path.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path / filename, maxBytes=5_000_000, backupCount=5, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(RedactingFilter(secrets))
        handler._bma_installed = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.captureWarnings(True)
