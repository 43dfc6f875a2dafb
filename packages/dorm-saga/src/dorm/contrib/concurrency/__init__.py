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

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.concurrency.exceptions import (
        LockTimeout,
        OptimisticLockError,
        SerializationRetryError,
    )
    from dorm.contrib.concurrency.locks import (
        anamed_lock,
        lock_key,
        named_lock,
    )
    from dorm.contrib.concurrency.optimistic import (
        with_optimistic_lock,
    )
    from dorm.contrib.concurrency.serializable import (
        SerializableSnapshot,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "LockTimeout": "dorm.contrib.concurrency.exceptions",
        "OptimisticLockError": "dorm.contrib.concurrency.exceptions",
        "SerializationRetryError": "dorm.contrib.concurrency.exceptions",
        "anamed_lock": "dorm.contrib.concurrency.locks",
        "lock_key": "dorm.contrib.concurrency.locks",
        "named_lock": "dorm.contrib.concurrency.locks",
        "with_optimistic_lock": "dorm.contrib.concurrency.optimistic",
        "SerializableSnapshot": "dorm.contrib.concurrency.serializable",
    },
)


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
