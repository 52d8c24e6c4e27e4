"""Broker choice for the workstation: one small factory, so the IB adapter plugs in.

``make_broker("paper", ...)`` builds the embedded :class:`PaperBroker`;
``make_broker("ib", ...)`` builds ``autotrader.broker.ib.IBBroker`` when that
module is installed and raises :class:`BrokerUnavailable` with a clear message
otherwise. :func:`test_connection` checks a TWS/Gateway endpoint: through the
IB adapter when it exists, else with a bare TWS API handshake (which proves
that something speaking the TWS protocol listens there and reports its server
version, but not that the account can trade).

No tkinter here: the trader session (:mod:`autotrader.services.session`) builds
its broker with :func:`make_broker`, and the GUI's trading tab calls
:func:`test_connection` from a worker thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import importlib.util
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autotrader.broker.base import Broker
from autotrader.broker.paper import PAPER_ACCOUNT, PaperBroker
from autotrader.config import Settings
from autotrader.domain.errors import BrokerError

logger = logging.getLogger(__name__)

BROKERS = ("paper", "ib")
#: the paper account's file in the state directory
PAPER_FILE = "paper_broker.db"
IB_MODULE = "autotrader.broker.ib"
_VERSIONS = b"v100..176"


class BrokerUnavailable(BrokerError):
    """The chosen broker cannot be built here (e.g. the IB adapter is not installed)."""


@dataclass(frozen=True)
class ConnectionResult:
    """Outcome of :func:`test_connection` (``message`` is shown as is)."""

    ok: bool
    message: str
    server_version: int | None = None
    account: str = ""
    live: bool | None = None  # the account reaches a real market (None: not known)


def ib_available() -> bool:
    """Return True when the IB adapter module exists in this installation."""
    return importlib.util.find_spec(IB_MODULE) is not None


def make_broker(kind: str, *, state_dir: Path, settings: Settings,
                quotes: Callable | None = None, clock: Callable[[], dt.datetime] | None = None,
                initial_cash: float = 100_000.0, journal=None,
                prev_close: Callable[[str], float | None] | None = None) -> Broker:
    """Build the broker named ``kind`` ("paper" or "ib").

    ``settings`` supplies ``connection`` and ``trading.live_armed`` to the IB
    adapter (``IBBroker.from_settings``); the paper broker needs ``quotes`` and
    ``clock``. With a ``journal``, the IB adapter reconciles it with the broker
    after every reconnect, before any new order (as ``autotrader run`` does);
    ``prev_close`` is IB's last-resort price (see ``prev_close_source``).

    Raises
    ------
    BrokerUnavailable
        Unknown kind, or "ib" without the adapter module.
    """
    if kind == "paper":
        if quotes is None or clock is None:
            raise BrokerUnavailable("the paper broker needs a price source and a clock")
        return PaperBroker(Path(state_dir) / PAPER_FILE, quotes, clock,
                           initial_cash=initial_cash)
    if kind == "ib":
        if not ib_available():
            raise BrokerUnavailable("the IB adapter (autotrader.broker.ib) is not installed "
                                    "in this build; use the paper broker")
        # loaded by name so that the GUI has no static dependency on the IB library
        module = importlib.import_module(IB_MODULE)
        options: dict = {}
        if journal is not None:
            now = clock or (lambda: dt.datetime.now(dt.timezone.utc))
            options["on_reconnect"] = lambda broker: journal.reconcile(broker, now())
        if prev_close is not None:
            options["prev_close"] = prev_close
        return module.IBBroker.from_settings(settings, **options)
    raise BrokerUnavailable(f"unknown broker {kind!r} (one of {', '.join(BROKERS)})")


def test_connection(settings: Settings, timeout_s: float | None = None) -> ConnectionResult:
    """Check the TWS/Gateway at ``settings.connection`` (blocking; call off the Tk thread).

    With the IB adapter installed this connects through it (handshake, startup
    sync, account summary) and disconnects; without it, it runs the bare
    handshake of :func:`tws_handshake` and says that IB trading is unavailable.
    One attempt only (``connection.connect_attempts`` is for trading sessions):
    the button answers at once.
    """
    connection = settings.connection
    timeout = timeout_s or connection.connect_timeout_s
    where = f"{connection.host}:{connection.port}"
    if ib_available():
        once = dataclasses.replace(settings, connection=dataclasses.replace(
            connection, connect_attempts=1))
        try:
            broker = make_broker("ib", state_dir=Path("."), settings=once)
            broker.connect()
            try:
                account, session = broker.account(), broker.session()
            finally:
                broker.disconnect()
        except Exception as e:  # noqa: BLE001 - any adapter failure is the test's answer
            logger.warning("test connection %s failed: %s", where, e)
            return ConnectionResult(False, f"IB connection to {where} failed: "
                                           f"{_plain_error(e)}")
        return ConnectionResult(True, f"connected to {where}: account {session.account} "
                                      f"({'LIVE' if session.live else 'paper'}), "
                                      f"equity {account.equity:,.2f} USD",
                                account=session.account, live=session.live)
    try:
        version = tws_handshake(connection.host, connection.port, timeout)
    except OSError as e:
        logger.warning("test connection %s failed: %s", where, e)
        return ConnectionResult(False, f"no TWS/Gateway at {where}: {_plain_error(e)}")
    return ConnectionResult(
        True, f"TWS/Gateway reachable at {where} (API server version {version}). "
              "The IB adapter (autotrader.broker.ib) is not installed in this build, so "
              "trading through IB is not available yet.", version)


def test_broker(kind: str, settings: Settings, state_dir: Path,
                initial_cash: float = 100_000.0) -> ConnectionResult:
    """Test the broker the trader would use: ``"ib"`` connects, ``"paper"`` opens its account.

    The paper broker has nothing to connect to: the test reads its simulated
    account (``<state_dir>/paper_broker.db``, positions valued at cost) or says
    that a new one will be created, and never creates it itself.
    """
    if kind == "ib":
        return test_connection(settings)
    if kind != "paper":
        return ConnectionResult(False, f"unknown broker {kind!r} (one of {', '.join(BROKERS)})")
    path = Path(state_dir) / PAPER_FILE
    if not path.is_file():
        return ConnectionResult(True, f"paper broker: simulated fills, nothing to connect to. "
                                      f"No account yet: one with {initial_cash:,.0f} USD is "
                                      f"created at {path} by the first Start or Preview",
                                account=PAPER_ACCOUNT, live=False)
    broker = PaperBroker(path, lambda symbol, now: None, lambda: dt.datetime.now(dt.timezone.utc))
    try:
        broker.connect()
        try:
            account, positions = broker.account(), broker.positions()
        finally:
            broker.disconnect()
    except BrokerError as e:
        return ConnectionResult(False, f"paper account {path}: {e}")
    return ConnectionResult(True, f"paper broker: simulated fills, nothing to connect to. "
                                  f"Account {path}: equity {account.equity:,.2f} USD (positions "
                                  f"at cost), cash {account.cash:,.2f}, {len(positions)} "
                                  "positions", account=PAPER_ACCOUNT, live=False)


def _plain_error(error: BaseException) -> str:
    # "connection refused (nothing listens there: is TWS/Gateway running with the API on?)"
    if isinstance(error, ConnectionRefusedError) or "Connect call failed" in str(error) \
            or "Connection refused" in str(error):
        return ("connection refused: nothing listens there (is TWS or IB Gateway running, with "
                "the API enabled on this port?)")
    if isinstance(error, TimeoutError) or "timed out" in str(error).lower():
        return f"no answer in time ({error}): check host, port and the API settings"
    return f"{type(error).__name__}: {error}" if not str(error) else str(error)


def tws_handshake(host: str, port: int, timeout_s: float) -> int:
    """Open a socket, send the TWS API handshake and return the server version.

    Raises
    ------
    OSError
        Connection refused or timed out, or a reply that is not a TWS handshake.
    """
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(b"API\0" + struct.pack(">I", len(_VERSIONS)) + _VERSIONS)
        size = struct.unpack(">I", _read_exact(sock, 4))[0]
        if not 0 < size < 4096:
            raise OSError(f"not a TWS handshake reply (frame of {size} bytes)")
        fields = _read_exact(sock, size).split(b"\0")
    try:
        return int(fields[0])
    except ValueError as e:
        raise OSError(f"not a TWS handshake reply: {fields[:2]!r}") from e


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed during the TWS handshake")
        data += chunk
    return data
