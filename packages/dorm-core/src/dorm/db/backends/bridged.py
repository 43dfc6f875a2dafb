"""The async side of an alias: ``get_async_connection()`` and the bridged backend under it.

A vendor's bridged wrapper is its sync wrapper class with the I/O swapped: connections
come from a per-event-loop async pool and every driver call is awaited through
``dorm.db.bridge.await_``. The statement path (logging, hooks, masking, error
translation, retries, transactions) is the sync one, so both APIs behave alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dorm import plugins
from dorm.db.backends.base import BaseDatabaseWrapper, ThreadState
from dorm.db.bridge import await_, run_sync
from dorm.db.connection import bridge_local
from dorm.exceptions import OperationalError

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseOperations

__all__ = ["AsyncDatabaseWrapper", "AsyncPool", "BridgedMixin", "compose"]

logger = logging.getLogger("dorm.db")


_composed: dict[tuple[type, type], type] = {}


def compose(io_class: type, sync_class: type[BaseDatabaseWrapper]) -> type[BaseDatabaseWrapper]:
    """``sync_class`` (a vendor's wrapper or a plugin's subclass of it) with ``io_class``'s
    async I/O mixed in before it; one class per pair."""
    found = _composed.get((io_class, sync_class))
    if found is None:
        found = _composed[io_class, sync_class] = type(
            f"Async{sync_class.__name__}",
            (io_class, sync_class),
            {"__module__": io_class.__module__},
        )
    return found


class AsyncPool:
    """Up to MAX_POOL_SIZE connections of one event loop, for a vendor subclass that opens,
    checks and closes them.

    The most recently used idle connection is handed out first (its server process, or
    its thread, is the warmest). Checkout and return take no event-loop iteration when a
    connection is idle and nothing needs undoing; a connection returned inside a
    transaction (a cancelled task) is rolled back first, a closed one is dropped, and a
    task that finds every connection busy waits up to POOL_TIMEOUT for one.
    """

    def __init__(self, alias: str, max_size: int, timeout: float) -> None:
        self.alias = alias
        self.max_size = max_size
        self.timeout = timeout
        self.idle: list[Any] = []
        self.all: set[Any] = set()
        self.size = 0  # open connections, idle or checked out, and ones being opened
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.closing = False
        self._drained: asyncio.Event | None = None
        self._opening: set[asyncio.Task[Any]] = set()

    # -- what a vendor provides ------------------------------------------------------------

    async def _open(self) -> Any:
        """A new connection, ready for statements."""
        raise NotImplementedError

    def _closed(self, conn: Any) -> bool:
        raise NotImplementedError

    def _in_transaction(self, conn: Any) -> bool:
        return False

    async def _rollback(self, conn: Any) -> None:
        """End what a cancelled task left open on ``conn``."""

    def _close_now(self, conn: Any) -> None:
        raise NotImplementedError

    async def _close_gently(self, conn: Any) -> None:
        self._close_now(conn)

    # -- checkout and return ---------------------------------------------------------------

    async def fill(self, count: int) -> None:
        """Open ``count`` connections now (MIN_POOL_SIZE when the pool opens)."""
        for _ in range(count):
            self.put(await self._new())

    async def _new(self) -> Any:
        self.size += 1
        try:
            conn = await self._open()
        except BaseException:
            self.size -= 1
            raise
        if self.closing:  # closed while this one was opening
            self.size -= 1
            self._close_now(conn)
            raise OperationalError(f"the async pool of {self.alias!r} is closing")
        self.all.add(conn)
        return conn

    def take(self) -> Any:
        """An idle connection, or None (no waiting, no I/O)."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not self._closed(conn):
                return conn
            self._forget(conn)
        return None

    async def acquire(self) -> Any:
        if self.closing:
            raise OperationalError(f"the async pool of {self.alias!r} is closing")
        conn = self.take()
        if conn is not None:
            return conn
        if self.size < self.max_size:
            try:
                return await self._new()
            except BaseException:
                self._freed()
                raise
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, self.timeout)
        except TimeoutError as exc:
            raise OperationalError(
                f"no connection to {self.alias!r} within POOL_TIMEOUT={self.timeout:g}s "
                f"(MAX_POOL_SIZE={self.max_size}, all in use or the server is unreachable)"
            ) from exc
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.put(waiter.result())  # handed over just as the wait was cancelled
            raise
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def put(self, conn: Any) -> bool:
        """Give ``conn`` back; False when it must first be rolled back (``restore``)."""
        if self._closed(conn) or self.closing:
            self.drop(conn)
            return True
        if self._in_transaction(conn):
            return False
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        self.idle.append(conn)
        return True

    async def restore(self, conn: Any) -> None:
        """Roll back what a cancelled task left open, then give the connection back."""
        try:
            await self._rollback(conn)
        except BaseException:
            self.drop(conn)
            raise
        self.put(conn)

    def drop(self, conn: Any) -> None:
        """Close a checked-out connection for good (broken, interrupted, or closing)."""
        if not self._closed(conn):
            self._close_now(conn)
        self._forget(conn)
        self._freed()

    def _forget(self, conn: Any) -> None:
        if conn in self.all:
            self.all.discard(conn)
            self.size -= 1

    def _freed(self) -> None:
        # A waiter may now open a connection of its own in the freed slot.
        while self.waiters and self.size < self.max_size and not self.closing:
            waiter = self.waiters.popleft()
            if not waiter.done():
                task = asyncio.get_running_loop().create_task(self._new())
                self._opening.add(task)  # asyncio holds tasks weakly
                task.add_done_callback(functools.partial(self._handed, waiter))
                return
        if self.closing and self.size == 0 and self._drained is not None:
            self._drained.set()

    def _handed(self, waiter: asyncio.Future[Any], done: asyncio.Task[Any]) -> None:
        self._opening.discard(done)
        if done.cancelled() or done.exception() is not None:
            if not waiter.done():
                waiter.set_exception(done.exception() or asyncio.CancelledError())
            return
        conn = done.result()
        if waiter.done():
            self.put(conn)
        else:
            waiter.set_result(conn)

    # -- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Close idle connections now and checked-out ones as they come back."""
        self.closing = True
        idle, self.idle = self.idle, []
        for conn in idle:
            self._forget(conn)
            with contextlib.suppress(Exception):
                await self._close_gently(conn)
        if self.size > 0:
            self._drained = asyncio.Event()
            await self._drained.wait()

    def terminate(self) -> None:
        """Close every connection at once, checked-out ones included (their statements
        fail)."""
        self.closing = True
        self.idle = []
        for conn in list(self.all):
            with contextlib.suppress(Exception):
                self._close_now(conn)
        self.size -= len(self.all)  # connections still opening count until they finish
        self.all.clear()


class BridgedMixin:
    """Mixed in before a vendor wrapper: per-task state, per-loop pools, no loop guard.

    A vendor supplies ``_open_pool(loop)``, a coroutine returning its ``AsyncPool``
    subclass filled with MIN_POOL_SIZE connections, and wraps what ``_checkout()`` returns
    in ``_acquire`` as its sync statement path expects.
    """

    guards_event_loop: ClassVar[bool] = False
    alias: str
    settings_dict: dict[str, Any]
    vendor: str

    def _init_bridge(self, sync: BaseDatabaseWrapper) -> None:
        self.sync = sync
        # assertNumQueries / CaptureQueriesContext on the alias see async statements too.
        self._captures = sync._captures
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def state(self) -> ThreadState:
        states = bridge_local.states
        if states is None:
            raise RuntimeError(
                f"the async backend of {self.alias!r} was used outside the async API"
            )
        state = states.get(self.alias)
        if state is None:
            state = states[self.alias] = ThreadState()
        return state

    # -- pools, one per event loop -------------------------------------------------------------

    def _open_pool(self, loop: asyncio.AbstractEventLoop) -> Awaitable[AsyncPool]:
        raise NotImplementedError

    async def _close_pool(self, pool: AsyncPool) -> None:
        await pool.close()

    def _terminate_pool(self, pool: AsyncPool) -> None:
        pool.terminate()

    def _pool_size(self, pool: AsyncPool) -> int:
        return pool.size

    def _checkout(self) -> tuple[AsyncPool, Any]:
        """The running loop's pool and a connection from it: an idle one without awaiting
        (no greenlet switch), else one awaited."""
        pool: AsyncPool = self._loop_pool()
        conn = pool.take()
        return pool, conn if conn is not None else await_(pool.acquire())

    async def _apool(self) -> Any:
        """The running loop's pool, opened on first use (concurrent first users share it)."""
        loop = asyncio.get_running_loop()
        entry = self._pools.get(loop)
        if entry is None:
            self._forget_closed_loops()
            entry = self._pools[loop] = loop.create_task(self._start_pool(loop))
        if isinstance(entry, asyncio.Task):
            # Shielded: a caller cancelled while waiting must not cancel the others' pool.
            return await asyncio.shield(entry)
        return entry

    async def _start_pool(self, loop: asyncio.AbstractEventLoop) -> Any:
        try:
            pool = await self._open_pool(loop)
        except BaseException:
            self._pools.pop(loop, None)  # the next call tries again
            raise
        self._pools[loop] = pool
        s = self.settings_dict
        plugins.notify(
            "dorm_pool_opened",
            alias=self.alias,
            vendor=self.vendor,
            min_size=int(s.get("MIN_POOL_SIZE", 1)),
            max_size=int(s.get("MAX_POOL_SIZE", 10)),
            is_async=True,
        )
        # asyncio.run() (and every ASGI server) cancels the tasks left at shutdown; this one
        # then closes the loop's pool while the loop can still run the close.
        keeper = loop.create_task(self._keep(loop, pool), name=f"dorm-pool-{self.alias}")
        _keepers[keeper] = None
        keeper.add_done_callback(_keepers.pop)
        return pool

    async def _keep(self, loop: asyncio.AbstractEventLoop, pool: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            if self._pools.get(loop) is pool:
                del self._pools[loop]
            try:
                await asyncio.wait_for(self._close_pool(pool), timeout=5)
            except BaseException:
                self._terminate_pool(pool)

    def _loop_pool(self) -> Any:
        loop = asyncio.get_running_loop()
        entry = self._pools.get(loop)
        if entry is None or isinstance(entry, asyncio.Task):
            return await_(self._apool())
        return entry

    def _forget_closed_loops(self) -> None:
        for loop in [lp for lp in list(self._pools) if lp.is_closed()]:
            pool = self._pools.pop(loop, None)
            if pool is not None and not isinstance(pool, asyncio.Task):
                with contextlib.suppress(Exception):
                    self._terminate_pool(pool)

    def warmup(self, target: int) -> int:
        """Open connections until the running loop's pool holds ``target``; return its size.

        Idle connections are checked out and held first, so each further checkout opens a
        new one; connections other tasks hold already count.
        """
        pool = self._loop_pool()
        held: list[Any] = []
        try:
            while self._pool_size(pool) < target:
                held.append(self._acquire())  # type: ignore[attr-defined]
        finally:
            for conn in held:
                self._release(conn)  # type: ignore[attr-defined]
        return self._pool_size(pool)

    def close(self) -> None:
        """Close the async pools of every loop (abruptly: in-flight statements fail)."""
        entries = list(self._pools.items())
        self._pools.clear()
        running = asyncio._get_running_loop()
        for loop, pool in entries:
            if isinstance(pool, asyncio.Task):
                pool.cancel()
                continue
            if loop.is_closed():
                continue
            if loop is running or not loop.is_running():
                with contextlib.suppress(Exception):
                    self._terminate_pool(pool)
            else:
                loop.call_soon_threadsafe(self._terminate_pool, pool)

    async def aclose(self) -> None:
        """Close the running loop's pool gracefully, waiting for checked-out connections."""
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if pool is None:
            return
        if isinstance(pool, asyncio.Task):
            pool = await pool
            self._pools.pop(loop, None)
        await self._close_pool(pool)


# The keeper tasks, held strongly (asyncio keeps only weak references to tasks).
_keepers: dict[asyncio.Task[None], None] = {}


class AsyncDatabaseWrapper:
    """The async API of one alias: ``conn = get_async_connection("default")``.

    ``await conn.execute(sql, params)`` returns the affected row count; ``fetchall`` and
    ``fetchone`` return tuples. Statements use the sync backend's placeholder style
    (``conn.ops.placeholder``), are logged, reported to the query hooks and captured by
    ``CaptureQueriesContext`` exactly as sync ones are, and join the task's
    ``transaction.aatomic()`` block when there is one.
    """

    def __init__(self, bridged: BaseDatabaseWrapper) -> None:
        self.bridged = bridged
        self.alias = bridged.alias
        self.vendor = bridged.vendor
        self.settings_dict = bridged.settings_dict

    def __repr__(self) -> str:
        return f"<AsyncDatabaseWrapper alias={self.alias!r} vendor={self.vendor!r}>"

    @property
    def ops(self) -> BaseOperations:
        return self.bridged.ops

    async def execute(
        self, sql: str, params: Sequence[Any] = (), sensitive: Sequence[int] | None = None
    ) -> int:
        return await self._run(self.bridged.execute, sql, params, sensitive)  # type: ignore[no-any-return]

    async def executemany(
        self, sql: str, seq_params: Sequence[Sequence[Any]], sensitive: Sequence[int] | None = None
    ) -> int:
        return await self._run(self.bridged.executemany, sql, seq_params, sensitive)  # type: ignore[no-any-return]

    async def fetchall(
        self, sql: str, params: Sequence[Any] = (), sensitive: Sequence[int] | None = None
    ) -> list[tuple[Any, ...]]:
        rows = await self._run(self.bridged.fetchall, sql, params, sensitive)
        return [row if type(row) is tuple else tuple(row) for row in rows]

    async def fetchone(
        self, sql: str, params: Sequence[Any] = (), sensitive: Sequence[int] | None = None
    ) -> tuple[Any, ...] | None:
        row = await self._run(self.bridged.fetchone, sql, params, sensitive)
        return row if row is None or type(row) is tuple else tuple(row)

    async def warmup(self, target: int) -> int:
        """Open connections until this loop's pool holds ``target``; return its size."""
        return await self._run(self.bridged.warmup, target)  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Close this event loop's pool gracefully (it reopens on next use)."""
        await self.bridged.aclose()  # type: ignore[attr-defined]

    async def pool_size(self) -> int:
        """How many connections this event loop's pool holds open."""
        bridged: Any = self.bridged
        return int(bridged._pool_size(await bridged._apool()))

    @staticmethod
    async def _run(func: Callable[..., Any], *args: Any) -> Any:
        return await run_sync(func, *args)
