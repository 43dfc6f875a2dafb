"""Where a token bucket's level lives: this process's memory, or a PostgreSQL table.

Both stores apply the same rule to one take of ``cost`` tokens at time ``t``::

    level = min(burst, tokens + rate * (t - updated_at))
    allowed = level >= cost;  tokens = level - cost if allowed else level;  updated_at = t

``MemoryStore`` does it under a lock (thread-safe within one process). ``PostgresStore``
does it in one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: the row lock
taken by the conflict serialises concurrent takes of one key, across processes and hosts,
and no take can read a level another take is about to change. The time is the statement's
``statement_timestamp()``, kept monotonic per key with ``GREATEST``: unlike ``now()`` it
does not stand still inside a caller's long transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["BucketStore", "Decision", "MemoryStore", "PostgresStore"]


@dataclass(frozen=True)
class Decision:
    """The outcome of one take: ``allowed``, the tokens left, and when to retry."""

    allowed: bool
    remaining: float
    retry_after: float


def _decide(allowed: bool, tokens: float, rate: float, cost: float) -> Decision:
    wait = 0.0 if allowed else (cost - tokens) / rate
    return Decision(allowed, tokens, max(0.0, wait))


class BucketStore(Protocol):
    """``take`` (and its async twin) one ``cost`` from the bucket of ``key``."""

    def take(self, key: str, rate: float, burst: float, cost: float) -> Decision: ...

    async def atake(self, key: str, rate: float, burst: float, cost: float) -> Decision: ...


class MemoryStore:
    """Buckets in a dict guarded by a lock; ``clock`` is a monotonic seconds counter.

    Past ``max_keys`` buckets, the full ones (indistinguishable from new) are dropped.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        # key -> (tokens, clock reading, rate, burst): each entry knows its own limit, as
        # buckets of several TokenBuckets may share one store.
        self._buckets: dict[str, tuple[float, float, float, float]] = {}

    def take(self, key: str, rate: float, burst: float, cost: float) -> Decision:
        with self._lock:
            now = self.clock()
            tokens, stamp, _, _ = self._buckets.get(key, (burst, now, rate, burst))
            level = min(burst, tokens + max(0.0, now - stamp) * rate)
            allowed = level >= cost
            left = level - cost if allowed else level
            self._buckets[key] = (left, max(now, stamp), rate, burst)
            if len(self._buckets) > self.max_keys:
                self._forget_full(now)
        return _decide(allowed, left, rate, cost)

    async def atake(self, key: str, rate: float, burst: float, cost: float) -> Decision:
        # No I/O: the lock is held for a few dict operations, so the loop is not blocked.
        return self.take(key, rate, burst, cost)

    def state(self, key: str) -> tuple[float, float] | None:
        """``(tokens, clock reading)`` stored for ``key`` (None before its first take)."""
        with self._lock:
            entry = self._buckets.get(key)
        return None if entry is None else (entry[0], entry[1])

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, (tokens, stamp, rate, burst) in self._buckets.items()
            if tokens + (now - stamp) * rate >= burst
        ]
        for key in full:
            del self._buckets[key]


class PostgresStore:
    """Buckets in a PostgreSQL table (``create_table()`` makes it), shared by every
    process that uses the same database and table."""

    def __init__(self, table: str = "dorm_rate_limit", using: str = "default") -> None:
        if not isinstance(table, str) or not table.isidentifier():
            raise ValueError(f"table must be an identifier like 'dorm_rate_limit', got {table!r}")
        self.table = table
        self.using = using
        self._sql: str | None = None

    def _connection(self) -> Any:
        from dorm.db.connection import get_connection

        connection = get_connection(self.using)
        if connection.vendor != "postgresql":
            raise ValueError(
                f"PostgresStore needs a PostgreSQL database; alias {self.using!r} is "
                f"{connection.vendor}. Use MemoryStore for a single process."
            )
        return connection

    def create_table(self) -> None:
        """Create the bucket table if it does not exist."""
        connection = self._connection()
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {connection.ops.quote_name(self.table)} ("
            "key text PRIMARY KEY, tokens double precision NOT NULL, "
            "updated_at timestamptz NOT NULL, allowed boolean NOT NULL)"
        )

    def _take_sql(self, connection: Any) -> str:
        if self._sql is None:
            table = connection.ops.quote_name(self.table)
            ts = "statement_timestamp()"
            level = (
                "LEAST(%s::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM "
                f"{ts} - b.updated_at)::float8) * %s::float8)"
            )
            self._sql = (
                f"INSERT INTO {table} AS b (key, tokens, updated_at, allowed) "
                f"VALUES (%s, %s::float8 - %s::float8, {ts}, true) "
                "ON CONFLICT (key) DO UPDATE SET "
                f"tokens = CASE WHEN {level} >= %s::float8 THEN {level} - %s::float8 "
                f"ELSE {level} END, "
                f"allowed = {level} >= %s::float8, "
                f"updated_at = GREATEST(b.updated_at, {ts}) "
                "RETURNING allowed, tokens"
            )
        return self._sql

    @staticmethod
    def _params(key: str, rate: float, burst: float, cost: float) -> list[Any]:
        level = [burst, rate]
        return [key, burst, cost, *level, cost, *level, cost, *level, *level, cost]

    def take(self, key: str, rate: float, burst: float, cost: float) -> Decision:
        connection = self._connection()
        row = connection.fetchone(self._take_sql(connection), self._params(key, rate, burst, cost))
        assert row is not None
        return _decide(bool(row[0]), float(row[1]), rate, cost)

    async def atake(self, key: str, rate: float, burst: float, cost: float) -> Decision:
        from dorm.db.connection import get_async_connection

        connection = self._connection()
        row = await get_async_connection(self.using).fetchone(
            self._take_sql(connection), self._params(key, rate, burst, cost)
        )
        assert row is not None
        return _decide(bool(row[0]), float(row[1]), rate, cost)

    def state(self, key: str) -> tuple[float, Any] | None:
        """``(tokens, updated_at)`` stored for ``key`` (None before its first take)."""
        connection = self._connection()
        row = connection.fetchone(
            f"SELECT tokens, updated_at FROM {connection.ops.quote_name(self.table)} "
            "WHERE key = %s",
            [key],
        )
        return None if row is None else (float(row[0]), row[1])
