"""The errors of ``dorm.contrib.concurrency``."""

from __future__ import annotations

from dorm.exceptions import DormError, OperationalError

__all__ = ["LockTimeout", "OptimisticLockError", "SerializationRetryError"]


class LockTimeout(DormError):
    """``named_lock`` was not acquired within its ``timeout``; the message names the lock."""


class OptimisticLockError(DormError):
    """The row changed since the instance was read (its ``version`` moved on)."""


class SerializationRetryError(OperationalError):
    """A ``SerializableSnapshot`` transaction still failed with a serialization failure or a
    deadlock after its last attempt; the message gives the attempt count."""
