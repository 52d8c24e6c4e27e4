"""Elapsed time and ETA of a research run, per stage and overall, from its progress messages.

The pipeline reports a stage when it *finishes* (``("features", 1, 6)``) and,
during training, each finished task (``("train:tasks", 12, 40)``: one fold x
model fit). :class:`RunClock` turns that stream into what is running now and
for how long, so a two-minute training stage moves instead of showing
"features (1/6)" until it ends:

* the running stage is the one after the last finished stage;
* a stage with tasks has an ETA from its task rate (tasks are dispatched
  costliest first, so the first estimates run high);
* the overall ETA uses the stage times of the previous run (``metrics.json``
  ``timings_s``), scaled by how fast this run went so far; without one it is
  unknown until the last stage.

Pure (no tkinter): the Research tab feeds it and draws :meth:`RunClock.rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["RunClock", "StageRow"]


@dataclass(frozen=True)
class StageRow:
    """One stage as shown: ``state`` is ``done``, ``running`` or ``waiting``."""

    name: str
    state: str
    fraction: float
    elapsed_s: float | None = None
    eta_s: float | None = None
    tasks: tuple[int, int] | None = None


@dataclass
class RunClock:
    """Stage timing of one run (times are ``time.monotonic()`` seconds).

    Examples
    --------
    >>> clock = RunClock(("load", "features", "train"), started=0.0)
    >>> clock.update("load", 0, 3, now=0.0)       # loading starts
    >>> clock.update("load", 1, 1, now=4.0)       # loaded: features start
    >>> clock.update("features", 1, 3, now=10.0)  # features done: training starts
    >>> clock.update("train:tasks", 5, 20, now=20.0)
    >>> [(r.name, r.state, r.elapsed_s) for r in clock.rows(now=20.0)]
    [('load', 'done', 4.0), ('features', 'done', 6.0), ('train', 'running', 10.0)]
    >>> clock.rows(now=20.0)[2].eta_s  # 5 tasks in 10 s: the other 15 take 30 s
    30.0
    """

    stages: Sequence[str]
    started: float
    previous: Mapping[str, float] = field(default_factory=dict)
    finished_at: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    stage_started: dict[str, float] = field(default_factory=dict)

    def update(self, stage: str, done: int, total: int, now: float) -> None:
        """Apply one progress message (``stage`` may be ``"<stage>:tasks"``)."""
        if stage.endswith(":tasks"):
            name = stage.split(":", 1)[0]
            self.tasks[name] = (done, total, now)
            self.stage_started.setdefault(name, self._start_of(name, now))
            return
        if stage not in self.stages:
            return
        index = self.stages.index(stage)
        if stage == self.stages[0] and done == 0:  # "load" is reported when it starts:
            self.stage_started.setdefault(stage, self.started)  # it counts the start-up too
            return
        for earlier in self.stages[:index + 1]:  # a missed message: earlier stages are done
            self.stage_started.setdefault(earlier, self._start_of(earlier, now))
            self.finished_at.setdefault(earlier, now)
        if index + 1 < len(self.stages):
            self.stage_started.setdefault(self.stages[index + 1], now)

    def _start_of(self, name: str, now: float) -> float:
        index = self.stages.index(name)
        if index == 0:
            return self.started
        return self.finished_at.get(self.stages[index - 1], now)

    @property
    def running(self) -> str | None:
        """The stage running now (None before the first message and after the last stage)."""
        for name in self.stages:
            if name not in self.finished_at:
                return name if name in self.stage_started else None
        return None

    def rows(self, now: float) -> list[StageRow]:
        """Every stage with its state, fraction, elapsed time and ETA at ``now``."""
        rows = []
        for name in self.stages:
            start = self.stage_started.get(name)
            if name in self.finished_at:
                rows.append(StageRow(name, "done", 1.0, self.finished_at[name] - start
                                     if start is not None else None, 0.0, self._tasks(name)))
            elif start is not None:
                rows.append(self._running_row(name, start, now))
            else:
                rows.append(StageRow(name, "waiting", 0.0, None, self.previous.get(name)))
        return rows

    def _tasks(self, name: str) -> tuple[int, int] | None:
        done = self.tasks.get(name)
        return None if done is None else done[:2]

    def _running_row(self, name: str, start: float, now: float) -> StageRow:
        elapsed = now - start
        if name in self.tasks:
            done, total, _ = self.tasks[name]
            fraction = done / total if total else 0.0
            eta = elapsed / done * (total - done) if done else None
            return StageRow(name, "running", fraction, elapsed, eta, (done, total))
        expected = self.previous.get(name)
        if expected:
            expected *= self._pace()
            return StageRow(name, "running", min(0.95, elapsed / expected), elapsed,
                            max(0.0, expected - elapsed))
        return StageRow(name, "running", 0.0, elapsed, None)

    def _pace(self) -> float:
        # how much slower (>1) or faster this run is than the previous one, on finished stages
        done = [n for n in self.finished_at if n in self.previous and self.previous[n] > 0.5]
        before = sum(self.previous[n] for n in done)
        now = sum(self.finished_at[n] - self.stage_started.get(n, self.started) for n in done)
        return now / before if before > 0 and now > 0 else 1.0

    def overall(self, now: float) -> tuple[float, float | None]:
        """``(elapsed, eta)`` of the whole run; the ETA is None when it cannot be estimated."""
        eta = 0.0
        for row in self.rows(now):
            if row.state == "done":
                continue
            if row.eta_s is None:
                return now - self.started, None
            eta += row.eta_s * (self._pace() if row.state == "waiting" else 1.0)
        return now - self.started, eta
