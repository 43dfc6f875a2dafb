"""The errors of dorm-temporal."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["TemporalError"]


class TemporalError(DormError):
    """Base class of dorm-temporal's own errors."""
