"""Domain exceptions of the auto-trader (one hierarchy for domain, engine, journal and brokers)."""

from __future__ import annotations


class TraderError(Exception):
    """Base class of every error raised by the auto-trader core."""


class InvalidTransition(TraderError):
    """An order event is not allowed in the order's current status (see ``TRANSITIONS``)."""


class OverfillError(TraderError):
    """A fill would take an order's filled quantity above its ordered quantity."""


class RecommendationsError(TraderError):
    """The recommendations input is missing, malformed, or not allowed for this broker."""


class BrokerError(TraderError):
    """A broker call failed or a broker is not available."""


class JournalError(TraderError):
    """The trading journal could not be read or written."""


class SessionError(TraderError):
    """The broker session does not fit the journal (e.g. its orders belong to another client id)."""
