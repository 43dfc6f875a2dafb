"""The errors of dorm-routing."""

from __future__ import annotations

from dorm.exceptions import DormError, OperationalError

__all__ = ["NoPrimaryError", "RoutingError"]


class RoutingError(DormError):
    """Base class of dorm-routing's own errors."""


class NoPrimaryError(RoutingError, OperationalError):
    """No alias of an ActivePassiveRouter can take the statement; the message names every
    alias tried and what its last probe found."""
