"""``python -m autotrader.app``: open the workstation GUI (see :mod:`autotrader.gui`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Open the GUI; returns the exit status."""
    from autotrader.gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
