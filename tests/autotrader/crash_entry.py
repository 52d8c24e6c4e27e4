"""Test-only entry point: the ``autotrader`` CLI with a kill checkpoint on the runner.

``python -m tests.autotrader.crash_entry --kill-at after-journal[:N] -- run --broker ...``
runs :func:`autotrader.cli.main` and installs, through its ``on_session`` seam, a
runner checkpoint that SIGKILLs this process the N-th time (default: the first)
the runner reaches the stage:

* ``after-journal``: an order unit is journaled and not yet placed;
* ``after-place``: the broker accepted it and the journal has not yet marked it
  transmitted.

Production code reads no environment variable for this: only the crash tests and
the crash-consistency benchmark start the trader through this module.
:func:`command` and :func:`environment` build the subprocess call, :func:`launch`
runs it to completion.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from autotrader import cli

REPO = Path(__file__).resolve().parents[2]  # not tests.conftest: no pytest import here
KILL_STAGES = ("after-journal", "after-place")

logger = logging.getLogger(__name__)


class KillCheckpoint:
    """A runner checkpoint that SIGKILLs the process at the ``nth`` call for ``stage``."""

    def __init__(self, stage: str, nth: int = 1) -> None:
        if stage not in KILL_STAGES or nth < 1:
            raise ValueError(f"kill point must be one of {KILL_STAGES} with N >= 1, "
                             f"not {stage}:{nth}")
        self.stage = stage
        self.nth = nth
        self.seen = 0

    def __repr__(self) -> str:
        return f"KillCheckpoint({self.stage}:{self.nth})"

    def __call__(self, stage: str) -> None:
        if stage != self.stage:
            return
        self.seen += 1
        if self.seen == self.nth:
            logger.warning("checkpoint: SIGKILL at %s #%d", stage, self.seen)
            os.kill(os.getpid(), signal.SIGKILL)


def kill_point(text: str) -> KillCheckpoint:
    """Parse ``STAGE`` or ``STAGE:N``."""
    stage, _, nth = text.partition(":")
    try:
        return KillCheckpoint(stage, int(nth or 1))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def command(cli_args: list[str], kill_at: str | None = None) -> list[str]:
    """The command line that runs the CLI with ``cli_args`` (and a kill point)."""
    kill = ["--kill-at", kill_at] if kill_at else []
    return [sys.executable, "-m", "tests.autotrader.crash_entry", *kill, "--", *cli_args]


def environment() -> dict[str, str]:
    """The subprocess environment: the checkout importable, no Polygon key (no network)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("POLYGON_API_KEY", "MASSIVE_API_KEY")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def launch(cli_args: list[str], *, cwd: Path, kill_at: str | None = None,
           timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run the trader to completion (or to its kill point); output captured as text."""
    return subprocess.run(command(cli_args, kill_at), env=environment(), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    """Run :func:`autotrader.cli.main` with the kill checkpoint of ``--kill-at``."""
    parser = argparse.ArgumentParser(prog="python -m tests.autotrader.crash_entry",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--kill-at", type=kill_point, default=None,
                        help=f"STAGE[:N], STAGE one of {', '.join(KILL_STAGES)}")
    parser.add_argument("cli_args", nargs=argparse.REMAINDER,
                        help="-- then the autotrader arguments")
    args = parser.parse_args(argv)
    cli_args = args.cli_args[1:] if args.cli_args[:1] == ["--"] else args.cli_args
    checkpoint = args.kill_at

    def install(session) -> None:
        session.runner.checkpoint = checkpoint

    return cli.main(cli_args, on_session=install if checkpoint else None)


if __name__ == "__main__":
    sys.exit(main())
