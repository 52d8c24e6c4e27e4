"""One trader per state directory and per IB account: OS locks held for the whole session.

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

Two traders with two state directories on ONE Interactive Brokers account (the
CLI started in one folder, the GUI in another: the default state directory is
``./state``) would also trade the same plan twice, each under its own client
id. :func:`acquire_account_lock` therefore takes a second lock, per broker
account, in a per-user lock directory (:func:`default_lock_dir`:
``$BMA_LOCK_DIR`` or ``~/.bma-workstation/locks``) once the session knows its
account, i.e. after it connected and before it trades.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import socket
import sys
from pathlib import Path

from autotrader.domain.errors import TraderError

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    _BUSY: tuple[int, ...] = (errno.EACCES, errno.EDEADLK)

    def _try_lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    _BUSY: tuple[int, ...] = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

logger = logging.getLogger(__name__)

#: the lock file in the state directory
LOCK_FILE = "trader.lock"
#: who holds the lock (informational; written after the lock is taken)
OWNER_FILE = "trader.owner.json"

__all__ = ["LOCK_FILE", "OWNER_FILE", "AccountBusy", "StateDirBusy", "StateLock",
           "acquire_account_lock", "acquire_state_lock", "default_lock_dir"]


class StateDirBusy(TraderError):
    """Another trader holds the state directory's lock."""


class AccountBusy(TraderError):
    """Another trader holds the lock of the broker account this session connected to."""


class StateLock:
    """A held trader lock; :meth:`release` (idempotent) gives it back."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
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
        owner = _owner_path(self.path)
        try:
            owner.unlink(missing_ok=True)
        except OSError as e:  # the lock below is what matters; say why the record stays
            logger.warning("could not remove %s: %s", owner, e)
        finally:
            _close_locked(fd)
        logger.info("trader lock %s released", self.path)


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

    def busy(holder: str) -> TraderError:
        return StateDirBusy(
            f"another trader is running on state directory {state_dir} ({holder}); stop it "
            "first, or give this trader its own state directory (--state-dir)")

    return _acquire(state_dir / LOCK_FILE, {"broker": broker, "state_dir": str(state_dir)},
                    busy, now)


def acquire_account_lock(lock_dir: Path, *, broker: str, account: str, state_dir: Path,
                         now: dt.datetime | None = None) -> StateLock:
    """Take the exclusive lock of one broker account without waiting.

    Parameters
    ----------
    lock_dir : Path
        The per-user lock directory (created if missing; :func:`default_lock_dir`).
    broker, account : str
        The session's broker kind and the account it connected to.
    state_dir : Path
        This session's state directory (named in the next one's refusal).
    now : datetime, optional
        Start time recorded in the owner file.

    Raises
    ------
    AccountBusy
        Another trader holds the account; the message names the account, the
        holder's state directory and process.
    """
    lock_dir = Path(lock_dir)
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TraderError(f"cannot create the lock directory {lock_dir}: {e}") from e
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{broker}-{account}")

    def busy(holder: str) -> TraderError:
        return AccountBusy(
            f"another trader is trading {broker} account {account} ({holder}); two traders "
            "on one account would send every order twice: stop the other one first")

    return _acquire(lock_dir / f"account-{safe}.lock",
                    {"broker": broker, "account": account, "state_dir": str(state_dir)},
                    busy, now)


def default_lock_dir() -> Path:
    """Return the directory of the account locks: ``$BMA_LOCK_DIR``, else per user.

    The per-user default is ``~/.bma-workstation/locks``: every trader of this
    user on this machine sees the same account locks, whatever its state
    directory.
    """
    configured = os.environ.get("BMA_LOCK_DIR")
    return Path(configured) if configured else Path.home() / ".bma-workstation" / "locks"


def _acquire(path: Path, record: dict, busy, now: dt.datetime | None) -> StateLock:
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
        raise busy(_describe_owner(path)) from e
    started = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    owner = {"pid": os.getpid(), "host": socket.gethostname(), **record, "started": started}
    try:
        _write_owner(_owner_path(path), owner)
    except OSError as e:
        _close_locked(fd)
        raise TraderError(f"cannot write {_owner_path(path)}: {e}") from e
    logger.info("trader lock %s taken by pid %d", path, owner["pid"])
    return StateLock(path, fd)


def _owner_path(lock_path: Path) -> Path:
    # trader.lock -> trader.owner.json; account-ib-DU1.lock -> account-ib-DU1.owner.json
    return lock_path.with_name(lock_path.stem + ".owner.json")


def _close_locked(fd: int) -> None:
    try:
        _unlock(fd)
    finally:
        os.close(fd)  # closing drops the lock even if the explicit unlock failed


def _write_owner(path: Path, owner: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(owner), encoding="utf-8")
    os.replace(tmp, path)


def _describe_owner(lock_path: Path) -> str:
    path = _owner_path(lock_path)
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        where = f", state directory {owner['state_dir']}" if "account" in owner else ""
        return (f"pid {owner['pid']} on {owner['host']}, broker {owner['broker']}{where}, "
                f"since {owner['started']}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        logger.info("owner of %s unknown: %s", lock_path, e)
        return "holder unknown"
