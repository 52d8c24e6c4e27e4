"""One trader per state directory: an OS lock held for the whole trader session.

Two traders on one state directory (a second ``autotrader run``, or the GUI's
"Start auto trading" while a headless trader runs) would share one journal and
one paper account: both would resume the same untransmitted orders and both
would trade the same plan, i.e. send every order twice. :func:`acquire_state_lock`
refuses the second one before it opens the journal.

The lock is an advisory OS lock on ``<state_dir>/trader.lock``: ``flock`` on
POSIX, ``msvcrt.locking`` of its first byte on Windows. The operating system
releases it when the process ends, however it ends, so a crash or ``kill -9``
never leaves a stale lock behind; the next trader starts normally. A file
system that cannot lock is refused, not worked around (no marker-file
fallback that a killed process could leave behind; that is why this is not
the ``filelock`` package, whose soft fallback does exactly that). Who holds it
(pid, host, broker, start time) is written to ``trader.owner.json`` beside it,
only to name the holder in the refusal message; the lock, not that file, decides.

Read-only readers (``autotrader status``, ``bma run --holdings state``) and the
kill switch (HALT must work while a trader runs) do not take the lock.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import socket
from pathlib import Path

from autotrader.domain.errors import TraderError

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    _BUSY = (errno.EACCES, errno.EDEADLK)

    def _try_lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    _BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

logger = logging.getLogger(__name__)

#: the lock file in the state directory
LOCK_FILE = "trader.lock"
#: who holds the lock (informational; written after the lock is taken)
OWNER_FILE = "trader.owner.json"

__all__ = ["LOCK_FILE", "OWNER_FILE", "StateDirBusy", "StateLock", "acquire_state_lock"]


class StateDirBusy(TraderError):
    """Another trader holds the state directory's lock."""


class StateLock:
    """A held state-directory lock; :meth:`release` (idempotent) gives it back."""

    def __init__(self, state_dir: Path, fd: int) -> None:
        self.state_dir = state_dir
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Remove the owner record and release the OS lock (no-op when already released)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            (self.state_dir / OWNER_FILE).unlink(missing_ok=True)
        except OSError as e:  # the lock below is what matters; say why the record stays
            logger.warning("could not remove %s: %s", self.state_dir / OWNER_FILE, e)
        finally:
            _close_locked(fd)
        logger.info("state directory %s released", self.state_dir)


def acquire_state_lock(state_dir: Path, *, broker: str,
                       now: dt.datetime | None = None) -> StateLock:
    """Take the exclusive trader lock of ``state_dir`` without waiting.

    Parameters
    ----------
    state_dir : Path
        The trader's state directory (must exist).
    broker : str
        The session's broker kind, recorded for the refusal message of the next one.
    now : datetime, optional
        Start time recorded in the owner file (default: the wall clock, UTC).

    Returns
    -------
    StateLock
        Held until :meth:`StateLock.release` or the end of the process.

    Raises
    ------
    StateDirBusy
        Another trader (this process or another) holds the lock; the message
        names the state directory and, when known, the holder.
    """
    state_dir = Path(state_dir)
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise TraderError(f"cannot open the trader lock {path}: {e}") from e
    try:
        _try_lock(fd)
    except OSError as e:
        os.close(fd)
        if e.errno not in _BUSY:
            raise TraderError(f"cannot lock {path} ({e}); this file system does not "
                              "support locks, use a local state directory") from e
        raise StateDirBusy(
            f"another trader is running on state directory {state_dir} "
            f"({_describe_owner(state_dir)}); stop it first, or give this trader "
            "its own state directory (--state-dir)") from e
    started = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "broker": broker,
             "started": started}
    try:
        _write_owner(state_dir / OWNER_FILE, owner)
    except OSError as e:
        _close_locked(fd)
        raise TraderError(f"cannot write {state_dir / OWNER_FILE}: {e}") from e
    logger.info("state directory %s locked by pid %d", state_dir, owner["pid"])
    return StateLock(state_dir, fd)


def _close_locked(fd: int) -> None:
    try:
        _unlock(fd)
    finally:
        os.close(fd)  # closing drops the lock even if the explicit unlock failed


def _write_owner(path: Path, owner: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(owner), encoding="utf-8")
    os.replace(tmp, path)


def _describe_owner(state_dir: Path) -> str:
    path = state_dir / OWNER_FILE
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        return (f"pid {owner['pid']} on {owner['host']}, broker {owner['broker']}, "
                f"since {owner['started']}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        logger.info("owner of %s unknown: %s", state_dir, e)
        return "holder unknown"
