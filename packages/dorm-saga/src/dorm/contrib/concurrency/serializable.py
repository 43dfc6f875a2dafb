"""``SerializableSnapshot``: a SERIALIZABLE transaction, retried on serialization failures."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dorm.contrib.concurrency.exceptions import SerializationRetryError
from dorm.exceptions import DatabaseError

__all__ = ["RETRY_SQLSTATES", "SerializableSnapshot"]

logger = logging.getLogger("dorm.contrib.concurrency")

T = TypeVar("T")

#: serialization_failure, deadlock_detected
RETRY_SQLSTATES = frozenset({"40001", "40P01"})


class SerializableSnapshot:
    """Run a function in a SERIALIZABLE transaction; retry it from the start when
    PostgreSQL reports a serialization failure (40001) or a deadlock (40P01).

    Each attempt is a new transaction: its ``on_commit`` callbacks run only if it commits.
    Waits between attempts grow exponentially from ``base_delay`` (full jitter, capped at
    ``max_delay``). On SQLite, whose transactions are serializable already, the function
    runs in a plain ``atomic()`` block.
    """

    def __init__(
        self,
        max_attempts: int = 5,
        using: str = "default",
        base_delay: float = 0.01,
        max_delay: float = 1.0,
    ) -> None:
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
        if base_delay < 0 or max_delay < 0:
            raise ValueError("base_delay and max_delay must be >= 0")
        self.max_attempts = max_attempts
        self.using = using
        self.base_delay = base_delay
        self.max_delay = max_delay
        #: Attempts the last ``run()`` made.
        self.attempts = 0

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a SERIALIZABLE transaction; its return value.

        :raises RuntimeError: called inside an ``atomic()`` block (the isolation level must
            be the transaction's first statement).
        :raises SerializationRetryError: every attempt failed with 40001 / 40P01.
        """
        from dorm.db.connection import connections
        from dorm.transaction import atomic

        connection = connections[self.using]
        if connection.in_atomic_block:
            raise RuntimeError(
                "SerializableSnapshot.run() cannot run inside an atomic() block: SERIALIZABLE "
                "must be set by the transaction's first statement, and a retry restarts the "
                "whole transaction"
            )
        postgres = connection.vendor == "postgresql"
        for attempt in range(1, self.max_attempts + 1):
            self.attempts = attempt
            try:
                with atomic(using=self.using):
                    if postgres:
                        connection.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ())
                    return fn(*args, **kwargs)
            except DatabaseError as exc:
                state = exc.sqlstate
                if state not in RETRY_SQLSTATES:
                    raise
                if attempt == self.max_attempts:
                    raise SerializationRetryError(
                        f"SerializableSnapshot: {getattr(fn, '__qualname__', fn)!r} failed "
                        f"after {attempt} attempt(s) (SQLSTATE {state}): {exc}"
                    ) from exc
                delay = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
                logger.info(
                    "serialization failure (SQLSTATE %s) in attempt %d of %r; retrying in %.3f s",
                    state,
                    attempt,
                    fn,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
