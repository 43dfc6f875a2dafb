"""The errors of dorm-saga (sagas, two-phase commit, inbox, locks)."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["SagaError", "SagaOwnershipError", "UnknownSagaError"]


class SagaError(DormError):
    """Base class of dorm-saga's own errors."""


class SagaOwnershipError(SagaError):
    """A durable run was taken over (``dorm saga resume``) while this process ran it: the
    step in progress rolls back and this process stops running the saga."""


class UnknownSagaError(SagaError):
    """A durable run names a saga that no imported module defines."""
