"""Exceptions of the fake TWS gateway."""

from __future__ import annotations


class FakeTwsError(Exception):
    """Base class of every error raised by the fake gateway."""


class ProtocolError(FakeTwsError):
    """A frame or field does not follow the TWS socket protocol layout."""


class ScriptError(FakeTwsError):
    """A scripting call from a test is not valid in the current state (e.g. unknown order)."""
