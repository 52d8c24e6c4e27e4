"""``python -m bma_models`` is the ``bma`` command."""

import sys

from bma_models.cli import main

if __name__ == "__main__":
    sys.exit(main())
