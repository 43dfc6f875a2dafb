"""Concurrency primitives: a named lock, retried SERIALIZABLE transactions, optimistic
locking.

Usage::

    from dorm.contrib.concurrency import (
        named_lock, SerializableSnapshot, with_optimistic_lock,
    )

    with named_lock("nightly-report", timeout=5):   # PostgreSQL advisory lock
        run_nightly_report()

    SerializableSnapshot(max_attempts=5).run(transfer_money, 1, 2, 10)

    account = Account.objects.get(pk=1)              # has version = IntegerField(default=0)
    account.balance += 10
    with_optimistic_lock(account)                    # OptimisticLockError if stale

``anamed_lock(...)`` is the ``async with`` form of ``named_lock``.
"""

from __future__ import annotations

from dorm.contrib.concurrency.exceptions import (
    LockTimeout,
    OptimisticLockError,
    SerializationRetryError,
)
from dorm.contrib.concurrency.locks import anamed_lock, lock_key, named_lock
from dorm.contrib.concurrency.optimistic import with_optimistic_lock
from dorm.contrib.concurrency.serializable import SerializableSnapshot

__all__ = [
    "LockTimeout",
    "OptimisticLockError",
    "SerializableSnapshot",
    "SerializationRetryError",
    "anamed_lock",
    "lock_key",
    "named_lock",
    "with_optimistic_lock",
]
