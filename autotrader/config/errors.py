"""The one exception of the configuration store."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration source is unreadable or a value is unknown, mistyped or out of range.

    The message names the source (file, database table or runtime override) and
    the dotted key, and never contains a registered secret.
    """
