"""Research core: data protocol, factors, models, risk and portfolio construction.

Pure computation: no network, no GUI, no broker. Adapters (Polygon, report
writers, the CLI) sit at the edge and hand plain DataFrames in.
"""

__all__ = ["__version__"]

#: The product version (one source: ``pyproject.toml`` reads it from here).
__version__ = "0.1.0"
