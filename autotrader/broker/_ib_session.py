"""Session policies of the IB adapter: reconnect backoff, historical pacing, live detection.

Pure helpers with injected clocks and random sources, so they are tested
without a socket. They never import the IB library (only ``ib.py`` does).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: TWS/Gateway ports that reach a live account (7496 TWS live, 4001 Gateway live).
LIVE_PORTS = frozenset({7496, 4001})
#: Paper ports (7497 TWS paper, 4002 Gateway paper).
PAPER_PORTS = frozenset({7497, 4002})
#: IB's client-side message cap used by ib_async/ib_insync (TWS itself allows 50/s).
MAX_MESSAGES_PER_SECOND = 45


def is_live_session(port: int, accounts: list[str] | tuple[str, ...]) -> bool:
    """Tell whether the session may reach a real market.

    A live port is live. Otherwise the managed accounts decide: IB paper
    accounts start with ``DU`` (or ``DF`` for advisor paper masters); any other
    account is treated as live, so a live TWS on a non-standard port is still
    refused without arming.

    Examples
    --------
    >>> is_live_session(7497, ["DU1234567"]), is_live_session(7496, ["DU1"])
    (False, True)
    >>> is_live_session(4002, ["U7654321"])
    True
    """
    if port in LIVE_PORTS:
        return True
    return any(not a.upper().startswith(("DU", "DF")) for a in accounts if a)


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter for reconnect attempts.

    Attempt ``k`` (0-based) waits ``uniform(base*factor**k * (1-jitter), base*factor**k)``
    seconds, capped at ``max_delay_s``. Jitter spreads the reconnects of
    several workstations after a shared gateway restart.

    Parameters
    ----------
    base_delay_s, factor, max_delay_s : backoff curve.
    jitter : fraction of each delay that is randomised, in [0, 1].
    max_attempts : attempts per reconnect before the caller gets an error.
    """

    base_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    jitter: float = 0.5
    max_attempts: int = 5

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield the wait before each attempt (the first attempt waits 0).

        Examples
        --------
        >>> [round(d, 2) for d in ReconnectPolicy(jitter=0.0, max_attempts=4).delays()]
        [0.0, 0.5, 1.0, 2.0]
        """
        rng = rng or random.Random()
        yield 0.0
        for k in range(self.max_attempts - 1):
            top = min(self.max_delay_s, self.base_delay_s * self.factor ** k)
            yield top * (1.0 - self.jitter * rng.random())


class HistoricalPacer:
    """IB historical-data pacing rules, enforced client-side by waiting.

    From IB's "Historical Data Limitations": no identical request within 15 s,
    no more than 5 requests for the same contract within 2 s (6+ violate), and
    at most 60 requests in any 10 minutes. :meth:`wait_time` says how long a
    request must wait; :meth:`acquire` sleeps that long, then records it.

    Parameters
    ----------
    clock : monotonic seconds (inject a fake clock in tests).
    sleep : the sleep used by :meth:`acquire` (the adapter passes ``ib.sleep`` so
        the client's event loop keeps running while it waits).
    """

    IDENTICAL_S = 15.0
    SAME_CONTRACT_S, SAME_CONTRACT_MAX = 2.0, 5
    WINDOW_S, WINDOW_MAX = 600.0, 60

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self._log: deque[tuple[float, str, str]] = deque()

    def wait_time(self, contract_key: str, request_key: str) -> float:
        """Seconds to wait before sending ``request_key`` for ``contract_key`` (0 = now)."""
        now = self.clock()
        while self._log and now - self._log[0][0] >= self.WINDOW_S:
            self._log.popleft()
        waits = [0.0]
        same = [t for t, _, r in self._log if r == request_key]
        if same:
            waits.append(same[-1] + self.IDENTICAL_S - now)
        recent = [t for t, c, _ in self._log if c == contract_key
                  and now - t < self.SAME_CONTRACT_S]
        if len(recent) >= self.SAME_CONTRACT_MAX:
            waits.append(recent[-self.SAME_CONTRACT_MAX] + self.SAME_CONTRACT_S - now)
        if len(self._log) >= self.WINDOW_MAX:
            waits.append(self._log[-self.WINDOW_MAX][0] + self.WINDOW_S - now)
        return max(waits)

    def acquire(self, contract_key: str, request_key: str) -> float:
        """Wait as long as the rules require, record the request, return the wait."""
        wait = self.wait_time(contract_key, request_key)
        if wait > 0:
            self.sleep(wait)
        self._log.append((self.clock(), contract_key, request_key))
        return wait
