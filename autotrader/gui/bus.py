"""The GUI event bus: one thread-safe queue, drained on the Tk thread in bounded batches.

Workers (the research job, the trader thread, logging handlers, config
subscribers) only ever call :meth:`EventBus.post`. The Tk thread calls
:meth:`EventBus.drain` from an ``after()`` tick; it dispatches at most
``max_batch`` messages per tick to the handlers subscribed to the message's
type, each inside ``try/except`` so that one failing view cannot break the
others (the failure is logged, and the log tab shows it).

Why bounded batches (after thonny's ``_poll_backend_messages``): a burst of
thousands of log records must not keep the Tk thread busy for seconds; a
bounded batch per tick lets Tk redraw and handle input between batches, and
the rest of the burst is taken on the next ticks.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

Handler = Callable[[Any], None]


@dataclass(frozen=True)
class LogLine:
    """One formatted log record for the log tab."""

    levelno: int
    text: str


@dataclass(frozen=True)
class ConfigChanged:
    """The config store swapped in new settings (posted from the thread that saw it)."""

    settings: Any


@dataclass(frozen=True)
class TaskDone:
    """A background helper task finished; ``callback(result)`` runs on the Tk thread."""

    callback: Callable[[Any], None]
    result: Any


class EventBus:
    """Typed publish/subscribe over one :class:`queue.Queue`.

    Parameters
    ----------
    max_batch : int
        Messages dispatched per :meth:`drain` call at most.
    on_error : callable, optional
        ``on_error(message, exception)`` after a handler raised (already logged).

    Examples
    --------
    >>> bus = EventBus(max_batch=2)
    >>> seen = []
    >>> _ = bus.subscribe(int, seen.append)
    >>> for i in range(3):
    ...     bus.post(i)
    >>> bus.drain(), bus.drain(), seen
    (2, 1, [0, 1, 2])
    """

    def __init__(self, max_batch: int = 50,
                 on_error: Callable[[Any, BaseException], None] | None = None) -> None:
        self.max_batch = max_batch
        self.on_error = on_error
        self._queue: queue.Queue[Any] = queue.Queue()
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self.dispatched = 0
        self.failures = 0
        self.last_batch: list[str] = []
        #: ``("MessageType:handler", seconds)`` of every handler call of the last drain
        self.last_timings: list[tuple[str, float]] = []

    def post(self, message: Any) -> None:
        """Queue a message (any thread)."""
        self._queue.put(message)

    def subscribe(self, kind: type, handler: Handler) -> Callable[[], None]:
        """Call ``handler(message)`` for every message of type ``kind``; returns unsubscribe."""
        self._handlers[kind].append(handler)
        return lambda: self._handlers[kind].remove(handler)

    def pending(self) -> int:
        """Approximate number of queued messages."""
        return self._queue.qsize()

    def drain(self, max_batch: int | None = None) -> int:
        """Dispatch up to ``max_batch`` queued messages on the calling (Tk) thread."""
        limit = self.max_batch if max_batch is None else max_batch
        count = 0
        self.last_batch = []
        self.last_timings = []
        while count < limit:
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                break
            count += 1
            self.last_batch.append(type(message).__name__)
            self.dispatch(message)
        return count

    def dispatch(self, message: Any) -> None:
        """Run every handler of the message's type, each isolated in ``try/except``."""
        if isinstance(message, TaskDone):
            self._call(message.callback, message.result, message)
            return
        for handler in list(self._handlers.get(type(message), ())):
            self._call(handler, message, message)

    def _call(self, handler: Handler, argument: Any, message: Any) -> None:
        self.dispatched += 1
        started = time.perf_counter()
        try:
            handler(argument)
        except Exception as e:  # handler isolation: log and show, keep going
            self.failures += 1
            logger.exception("GUI handler %r failed on %s", handler,
                             type(message).__name__)
            if self.on_error is not None:
                self.on_error(message, e)
        finally:
            self.last_timings.append((f"{type(message).__name__}:{handler_name(handler)}",
                                      time.perf_counter() - started))


def handler_name(handler: Callable[..., Any]) -> str:
    """``Class.method`` / function name of a handler, for stall traces."""
    return getattr(handler, "__qualname__", None) or type(handler).__name__


class QueueLogHandler(logging.Handler):
    """A logging handler that posts :class:`LogLine` messages to the bus (any thread)."""

    def __init__(self, bus: EventBus, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.bus = bus
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                                            "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        """Post the formatted record; a failure goes to :meth:`logging.Handler.handleError`."""
        try:
            self.bus.post(LogLine(record.levelno, self.format(record)))
        except Exception:  # noqa: BLE001 - logging's own policy: report via handleError
            self.handleError(record)
