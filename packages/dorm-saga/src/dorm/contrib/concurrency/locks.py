"""``named_lock`` / ``anamed_lock``: a mutex by name, across processes on PostgreSQL.

PostgreSQL: the block runs in a transaction on ``using`` and takes
``pg_advisory_xact_lock(key)``, where ``key`` is the first 8 bytes of the SHA-256 of the
name's UTF-8 bytes, read as a signed big-endian 64-bit integer (``lock_key(name)``). The
lock belongs to the transaction, so it is released at COMMIT / ROLLBACK even when the
session lives on behind a transaction-pooling proxy (PgBouncer), and a crashed process
releases it with its connection. ``timeout`` sets ``lock_timeout`` for the lock statement
only (restored before the block runs).

Elsewhere (SQLite): an in-process lock per (alias, name), with the same timeout; it does
not span processes and opens no transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from dorm.contrib.concurrency.exceptions import LockTimeout
from dorm.exceptions import DatabaseError

__all__ = ["anamed_lock", "lock_key", "named_lock"]

_LOCK_NOT_AVAILABLE = "55P03"
_LOCAL: dict[tuple[str, str], threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


def lock_key(name: str) -> int:
    """The advisory-lock key of ``name`` (see the module docstring)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a lock name must be a non-empty string, got {name!r}")
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError(f"named_lock timeout must be a number of seconds >= 0, got {timeout!r}")


def _local_lock(using: str, name: str) -> threading.Lock:
    with _LOCAL_GUARD:
        return _LOCAL.setdefault((using, name), threading.Lock())


def _timed_out(name: str, using: str, timeout: float | None) -> LockTimeout:
    return LockTimeout(f"named_lock {name!r} on {using!r}: not acquired within {timeout} s")


def _timeout_sql(timeout: float | None) -> str | None:
    # lock_timeout 0 means "wait forever" in PostgreSQL: the smallest wait is 1 ms.
    return None if timeout is None else f"{max(1, round(timeout * 1000))}ms"


_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"
_SET_SQL = "SELECT set_config('lock_timeout', %s, true)"
_GET_SQL = "SELECT current_setting('lock_timeout')"


@contextmanager
def named_lock(name: str, using: str = "default", timeout: float | None = None) -> Iterator[None]:
    """Hold the lock ``name`` for the block.

    :raises LockTimeout: not acquired within ``timeout`` seconds (None waits forever).
    """
    key = lock_key(name)
    _check_timeout(timeout)
    from dorm.db.connection import connections

    connection = connections[using]
    if connection.vendor != "postgresql":
        lock = _local_lock(using, name)
        if not lock.acquire(timeout=-1 if timeout is None else timeout):
            raise _timed_out(name, using, timeout)
        try:
            yield
        finally:
            lock.release()
        return
    from dorm.transaction import atomic

    with atomic(using=using):
        wait = _timeout_sql(timeout)
        try:
            if wait is None:
                connection.fetchone(_LOCK_SQL, (key,))
            else:
                row = connection.fetchone(_GET_SQL, ())
                connection.fetchone(_SET_SQL, (wait,))
                connection.fetchone(_LOCK_SQL, (key,))
                connection.fetchone(_SET_SQL, (row[0] if row else "0",))
        except DatabaseError as exc:
            if exc.sqlstate == _LOCK_NOT_AVAILABLE:
                raise _timed_out(name, using, timeout) from exc
            raise
        yield


@asynccontextmanager
async def anamed_lock(
    name: str, using: str = "default", timeout: float | None = None
) -> AsyncIterator[None]:
    """``async with anamed_lock(name):`` — ``named_lock`` without blocking the event loop."""
    key = lock_key(name)
    _check_timeout(timeout)
    from dorm.db.connection import connections, get_async_connection

    if connections.sync_wrapper(using).vendor != "postgresql":
        lock = _local_lock(using, name)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while not lock.acquire(blocking=False):
            if deadline is not None and time.monotonic() >= deadline:
                raise _timed_out(name, using, timeout)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            lock.release()
        return
    from dorm.transaction import aatomic

    connection = get_async_connection(using)
    async with aatomic(using=using):
        wait = _timeout_sql(timeout)
        try:
            if wait is None:
                await connection.fetchone(_LOCK_SQL, (key,))
            else:
                row = await connection.fetchone(_GET_SQL, ())
                await connection.fetchone(_SET_SQL, (wait,))
                await connection.fetchone(_LOCK_SQL, (key,))
                await connection.fetchone(_SET_SQL, (row[0] if row else "0",))
        except DatabaseError as exc:
            if exc.sqlstate == _LOCK_NOT_AVAILABLE:
                raise _timed_out(name, using, timeout) from exc
            raise
        yield
