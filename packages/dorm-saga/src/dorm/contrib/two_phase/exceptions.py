"""The errors of ``dorm.contrib.two_phase``."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["TwoPhaseCommitError", "TwoPhaseConfigurationError", "TwoPhaseError"]


class TwoPhaseError(DormError):
    """Base class of the two-phase commit errors."""


class TwoPhaseConfigurationError(TwoPhaseError):
    """An alias cannot take part: not PostgreSQL, or ``max_prepared_transactions = 0``.
    Raised before any statement runs."""


class TwoPhaseCommitError(TwoPhaseError):
    """The commit was decided but ``COMMIT PREPARED`` failed on some alias; the
    transaction stays prepared there until ``dorm two-phase recover`` commits it."""
