"""The async side of an alias: ``get_async_connection()`` and the bridged backend under it.

A vendor's bridged wrapper is its sync wrapper class with the I/O swapped: connections
come from a per-event-loop async pool and every driver call is awaited through
``dorm.db.bridge.await_``. The statement path (logging, hooks, masking, error
translation, retries, transactions) is the sync one, so both APIs behave alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dorm import plugins
from dorm.db.backends.base import BaseDatabaseWrapper, ThreadState
from dorm.db.connection import bridge_local

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseOperations

__all__ = ["AsyncDatabaseWrapper", "BridgedMixin"]

logger = logging.getLogger("dorm.db")


class BridgedMixin:
    """Mixed in before a vendor wrapper: per-task state, per-loop pools, no loop guard.

    A vendor supplies ``_open_pool(loop)`` (an awaitable pool), ``_close_pool(pool)`` (a
    coroutine) and ``_terminate_pool(pool)`` (sync, for ``close_all()``), and overrides
    ``_acquire`` / ``_release`` / ``_discard`` with awaited versions.
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

    def _open_pool(self, loop: asyncio.AbstractEventLoop) -> Awaitable[Any]:
        raise NotImplementedError

    async def _close_pool(self, pool: Any) -> None:
        raise NotImplementedError

    def _terminate_pool(self, pool: Any) -> None:
        raise NotImplementedError

    def _pool_size(self, pool: Any) -> int:
        raise NotImplementedError

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
        from dorm.db.bridge import await_

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
        from dorm.db.bridge import run_sync

        return await run_sync(func, *args)
