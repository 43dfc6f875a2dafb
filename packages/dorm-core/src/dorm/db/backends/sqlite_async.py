"""SQLite for the async API: each connection lives on a thread of its own.

sqlite3 calls block, so none runs on the event loop: a connection is opened on, and only
ever used from, its own single-thread executor, and the loop awaits each call's future
(see docs/async.md for why a thread per connection rather than aiosqlite). A pool of
such connections (MAX_POOL_SIZE, one for an in-memory database) is kept per event loop.
A query whose task is cancelled is interrupted (``sqlite3.Connection.interrupt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from dorm.db.backends.base import BaseDatabaseWrapper
from dorm.db.backends.bridged import AsyncPool, BridgedMixin, compose
from dorm.db.bridge import await_

__all__ = ["SQLiteThreadIO", "bridged_class"]

T = TypeVar("T")


def _execute(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], keep: bool
) -> tuple[Any, list[Any] | None, int, Any, int | None]:
    """Run on the connection's thread: execute, and read every row unless streaming."""
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        rows = None
        if not keep and cur.description is not None:
            rows = cur.fetchall()
        result = (cur if keep else None, rows, cur.rowcount, cur.description, cur.lastrowid)
    except BaseException:
        cur.close()
        raise
    if not keep:
        cur.close()
    return result


class _ThreadConnection:
    """A sqlite3 connection and the one thread it is used from."""

    __slots__ = ("conn", "executor", "pool", "closed")

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor, pool: _Pool):
        self.conn = conn
        self.executor = executor
        self.pool = pool
        self.closed = False

    @property
    def broken(self) -> bool:
        return self.closed

    def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on this connection's thread; the coroutine awaits it."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, func, *args)
        try:
            return await_(future)
        except asyncio.CancelledError:
            # The statement goes on in its thread unless told to stop.
            with contextlib.suppress(sqlite3.Error):
                self.conn.interrupt()
            raise

    def cursor(self, name: str | None = None) -> _ThreadCursor:
        return _ThreadCursor(self, keep=name is not None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.executor.submit(self.conn.close)
            self.executor.shutdown(wait=False)


class _ThreadCursor:
    """The DB-API cursor the sync statement path expects; each call is one thread hop."""

    __slots__ = ("_conn", "_cur", "_rows", "keep", "rowcount", "description", "lastrowid")

    def __init__(self, conn: _ThreadConnection, keep: bool) -> None:
        self._conn = conn
        self._cur: sqlite3.Cursor | None = None
        self._rows: list[Any] = []
        self.keep = keep
        self.rowcount = -1
        self.description: Any = None
        self.lastrowid: int | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._conn.closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        cur, rows, self.rowcount, self.description, self.lastrowid = self._conn.call(
            _execute, self._conn.conn, sql, params, self.keep
        )
        self._cur = cur
        self._rows = rows or []

    def executemany(self, sql: str, seq_params: Sequence[Sequence[Any]]) -> None:
        self.rowcount = self._conn.call(_executemany, self._conn.conn, sql, seq_params)

    def fetchall(self) -> list[Any]:
        if self._cur is not None:
            return self._conn.call(self._cur.fetchall)
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> Any:
        if self._cur is not None:
            return self._conn.call(self._cur.fetchone)
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int) -> list[Any]:
        if self._cur is not None:
            return self._conn.call(self._cur.fetchmany, size)
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def __iter__(self) -> Iterator[Any]:
        while True:
            rows = self.fetchmany(2000)
            if not rows:
                return
            yield from rows

    def close(self) -> None:
        cur, self._cur = self._cur, None
        self._rows = []
        if cur is not None and not self._conn.closed:
            self._conn.executor.submit(cur.close)


def _executemany(conn: sqlite3.Connection, sql: str, seq_params: Sequence[Sequence[Any]]) -> int:
    cur = conn.cursor()
    try:
        cur.executemany(sql, seq_params)
        return int(cur.rowcount)
    finally:
        cur.close()


class _Pool(AsyncPool):
    """The thread connections of one event loop (see ``AsyncPool``)."""

    def __init__(self, wrapper: Any, max_size: int, timeout: float) -> None:
        super().__init__(wrapper.alias, max_size, timeout)
        self.wrapper = wrapper

    async def _open(self) -> _ThreadConnection:
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"dorm-sqlite-{self.wrapper.alias}")
        loop = asyncio.get_running_loop()
        try:
            raw = await loop.run_in_executor(executor, self.wrapper._new_connection, True)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return _ThreadConnection(raw, executor, self)

    def _closed(self, conn: Any) -> bool:
        return bool(conn.closed)

    def _close_now(self, conn: Any) -> None:
        conn.close()


def bridged_class(sync_class: type[BaseDatabaseWrapper]) -> type[BaseDatabaseWrapper]:
    """``sync_class`` (the SQLite wrapper or a plugin's subclass of it) on thread I/O."""
    return compose(SQLiteThreadIO, sync_class)


class SQLiteThreadIO(BridgedMixin):
    """The I/O of the SQLite backend on per-connection threads; mixed in before the sync
    class."""

    _target: str
    _uri: bool
    _memory: bool
    _new_connection: Any

    def __init__(self, sync: Any) -> None:
        super().__init__(sync.alias, sync.settings_dict)  # type: ignore[call-arg]
        # The same database as the sync side, in-memory ones included.
        self._target, self._uri, self._memory = sync._target, sync._uri, sync._memory
        self._init_bridge(sync)

    async def _open_pool(self, loop: asyncio.AbstractEventLoop) -> _Pool:
        s = self.settings_dict
        if self._memory:
            sync: Any = self.sync
            with sync._conn_lock:  # keeps the shared in-memory database alive
                if sync._keeper is None:
                    sync._keeper = sync._new_connection()
        # Shared-cache in-memory connections fail on table locks instead of waiting: one.
        size = 1 if self._memory else int(s.get("MAX_POOL_SIZE", 10))
        pool = _Pool(self, size, float(s.get("POOL_TIMEOUT", 30)))
        try:
            await pool.fill(min(size, int(s.get("MIN_POOL_SIZE", 1))))
        except BaseException:
            pool.terminate()
            raise
        return pool

    async def _close_pool(self, pool: Any) -> None:
        # Thread connections close at once: a statement still running on one fails.
        pool.terminate()

    # A pool's statement path (check out, return, retry), not the sync class's per-thread
    # one (whose fetchall is that path itself).
    _with_retry = BaseDatabaseWrapper._with_retry
    fetchall = BaseDatabaseWrapper.fetchall

    def _acquire(self) -> Any:
        return self._checkout()[1]

    def _release(self, conn: Any) -> None:
        conn.pool.put(conn)

    def _discard(self, conn: Any) -> None:
        conn.pool.drop(conn)

    def _is_broken(self, conn: Any) -> bool:
        return bool(conn.closed)

    def _stream_cursor(self, conn: Any) -> Any:
        # A named cursor keeps its rows in SQLite: each fetchmany() is one thread hop for
        # chunk_size rows, never the whole result.
        return conn.cursor(name="stream")
