"""Domain exceptions of the research core."""

from __future__ import annotations


class BMAError(Exception):
    """Base class of every error raised by :mod:`bma_models`."""


class DataError(BMAError):
    """Input market data is missing, malformed or inconsistent.

    The message names the file (and line or key) where one is known.
    """


class SettingsError(BMAError):
    """A research setting is unknown, of the wrong type or out of range."""


class LeakageError(BMAError):
    """A feature, label, split or threshold could have seen the future."""


class InfeasibleError(BMAError):
    """Portfolio constraints cannot be satisfied; the message says why in plain words."""
