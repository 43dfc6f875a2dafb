"""``DataLoader``: every key awaited in one event-loop tick fetched by one batch call.

``load(key)`` adds the key to the loader's open batch and schedules the batch's dispatch
with ``loop.call_soon``: everything the running tasks ask for before the loop gets back to
its scheduled callbacks (one tick) joins that batch. The batch function then runs in a task
of its own. Each caller waits on a future of its own, kept in the list of its key's
waiters: cancelling one caller cancels only that future, and the others still get the
value. A key already pending (in the open batch or one in flight) is not asked for again.
Answered values are kept (``cache=True``); a failed key is not, so a later ``load()``
asks again.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from dorm.contrib.sync_dataloader.batches import (
    MISSING,
    align,
    check_key,
    check_options,
    describe,
    unwrap,
)
from dorm.contrib.sync_dataloader.exceptions import DataLoaderError

__all__ = ["DataLoader"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_OWNER = "DataLoader"

BatchAnswer = Mapping[Any, Any] | Sequence[Any]
# The futures of the callers waiting for one key.
_Waiters = list["asyncio.Future[Any]"]
_ABSENT: Any = object()  # not in the cache (MISSING is a cached "no value")


class DataLoader(Generic[K, V]):
    """Batch and cache the keys that concurrent tasks ``await loader.load(key)``.

    ``batch_fn`` is an async function taking the list of a batch's keys (deduplicated, in
    first-asked order, at most ``max_batch_size``) and returning a dict keyed by them or a
    list aligned with them. A key it does not answer (or answers with None) loads as None,
    or raises KeyError with ``raise_missing=True``. A value that is an exception instance
    is raised to the callers of that key only; an exception of ``batch_fn`` itself goes to
    every caller of that batch.

    A loader belongs to one event loop and is meant for one request: build one per
    request (see docs/dataloaders.md for FastAPI and Litestar), so that a cached value
    never outlives the request that read it.
    """

    def __init__(
        self,
        batch_fn: Callable[[list[K]], Awaitable[BatchAnswer]],
        max_batch_size: int | None = None,
        cache: bool = True,
        *,
        raise_missing: bool = False,
    ) -> None:
        check_options(_OWNER, batch_fn, max_batch_size, cache)
        self.batch_fn = batch_fn
        self.max_batch_size = max_batch_size
        self.cache = cache
        self.raise_missing = bool(raise_missing)
        self._values: dict[K, Any] = {}
        self._waiting: dict[K, _Waiters] = {}
        self._batch: dict[K, _Waiters] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[None]] = set()  # strong references to batch tasks

    def __repr__(self) -> str:
        return (
            f"<DataLoader {len(self._values)} cached, {len(self._waiting)} pending, "
            f"max_batch_size={self.max_batch_size}, cache={self.cache}>"
        )

    async def load(self, key: K) -> V | None:
        """Return ``key``'s value, fetched with every other key asked for in this tick.

        :raises KeyError: ``batch_fn`` did not answer the key and ``raise_missing`` is set.
        :raises DataLoaderError: the loader is used from a second event loop, or
            ``batch_fn`` broke its contract (the message says how).
        """
        loop = self._bound_loop()
        try:
            value = self._values.get(key, _ABSENT)
        except TypeError:
            check_key(_OWNER, key)
            raise
        if value is _ABSENT:
            value = await self._waiter(loop, key)
        result: V | None = unwrap(_OWNER, key, value, self.raise_missing)
        return result

    async def load_many(self, keys: Iterable[K]) -> list[V | None]:
        """Return the values of ``keys`` in order, fetched together (split by ``max_batch_size``).

        The first error among the keys, in their order, is raised once every key has
        been answered.
        """
        loop = self._bound_loop()
        wanted = list(keys)
        futures: list[asyncio.Future[Any]] = []
        for key in wanted:
            check_key(_OWNER, key)
            if key in self._values:
                done = loop.create_future()
                done.set_result(self._values[key])
                futures.append(done)
            else:
                futures.append(self._waiter(loop, key))
        if not futures:
            return []
        try:
            await asyncio.wait(futures)
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        # Every exception is retrieved (asyncio logs the ones nobody looked at).
        errors = [future.exception() for future in futures]
        return [
            unwrap(_OWNER, key, future.result() if error is None else error, self.raise_missing)
            for key, future, error in zip(wanted, futures, errors, strict=True)
        ]

    def clear(self, key: K) -> None:
        """Forget ``key``'s cached value: the next ``load(key)`` fetches it again.

        A fetch of the key already under way still answers its callers, but its value is
        not cached.
        """
        self._values.pop(key, None)
        self._waiting.pop(key, None)

    def clear_all(self) -> None:
        """Forget every cached value."""
        self._values.clear()
        self._waiting.clear()

    def prime(self, key: K, value: V | BaseException | None) -> None:
        """Cache ``value`` for ``key`` without a fetch, unless the key is already cached.

        ``clear(key)`` first to replace it. None primes the key as missing; an exception
        instance makes ``load(key)`` raise it.
        """
        check_key(_OWNER, key)
        if key not in self._values:
            self._values[key] = MISSING if value is None else value

    # -- batching -----------------------------------------------------------------------------

    def _bound_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise DataLoaderError(
                f"{self!r} belongs to the event loop that first used it; a loader serves "
                f"one request: make a new DataLoader for each request (or each event loop)"
            )
        return loop

    def _waiter(self, loop: asyncio.AbstractEventLoop, key: K) -> asyncio.Future[Any]:
        """A new future for one caller of ``key``, the key joining the open batch if it is
        not pending already."""
        try:
            waiters = self._waiting.get(key)
        except TypeError:
            check_key(_OWNER, key)
            raise
        if waiters is None:
            batch = self._batch
            if batch is None or (
                self.max_batch_size is not None and len(batch) >= self.max_batch_size
            ):
                batch = self._batch = {}
                loop.call_soon(self._dispatch, batch)
            waiters = batch[key] = self._waiting[key] = []
        future = loop.create_future()
        waiters.append(future)
        return future

    def _dispatch(self, batch: dict[K, _Waiters]) -> None:
        if self._batch is batch:
            self._batch = None
        assert self._loop is not None
        task = self._loop.create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: dict[K, _Waiters]) -> None:
        keys = list(batch)
        try:
            pending = self.batch_fn(keys)
            if not inspect.isawaitable(pending):
                raise DataLoaderError(
                    f"{_OWNER}: batch function {describe(self.batch_fn)} returned an object "
                    f"of type {type(pending).__qualname__}, not an awaitable; DataLoader needs "
                    f"an async batch function (use SyncDataLoader for a sync one)"
                )
            answer = await pending
            values = align(_OWNER, self.batch_fn, keys, answer)
        except asyncio.CancelledError:
            for key, waiters in batch.items():
                self._settle(key, waiters)
                for future in waiters:
                    future.cancel()
            raise
        except Exception as exc:
            values = [exc] * len(keys)
        for (key, waiters), value in zip(batch.items(), values, strict=True):
            failed = isinstance(value, BaseException)
            if self._settle(key, waiters) and self.cache and not failed:
                self._values[key] = value
            for future in waiters:
                if future.done():  # its caller was cancelled
                    continue
                if failed:
                    future.set_exception(value)
                else:
                    future.set_result(value)

    def _settle(self, key: K, waiters: _Waiters) -> bool:
        """The key is no longer pending; False when ``clear()`` dropped it meanwhile."""
        if self._waiting.get(key) is waiters:
            del self._waiting[key]
            return True
        return False
