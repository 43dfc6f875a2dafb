"""The errors of dorm-observability's plan drift checks."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["BaselineMissingError", "PlanDriftError"]


class PlanDriftError(DormError):
    """Base class of the plan drift errors (a store that cannot be read, an EXPLAIN that failed)."""


class BaselineMissingError(PlanDriftError, LookupError):
    """``compare`` was given a tag that has no recorded baseline."""
