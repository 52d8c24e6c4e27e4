"""``python -m autotrader.research`` is the ``bma`` command."""

import sys

from autotrader.research.cli import main

if __name__ == "__main__":
    sys.exit(main())
