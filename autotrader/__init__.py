"""Auto-trader: config store, broker adapters, trading engine and the Tk workstation GUI."""

__version__ = "0.1.0"
