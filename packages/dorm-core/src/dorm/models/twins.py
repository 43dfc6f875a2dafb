"""The async twins (``aget``, ``asave``, ``aadd``, ...) of the ORM's database methods.

Each twin runs its sync counterpart through ``dorm.db.bridge.run_sync``: the same code,
with its database I/O awaited on the event loop (asyncpg on PostgreSQL, the connection's
own thread on SQLite), so both APIs return and raise exactly the same things.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

__all__ = ["AsyncModelMixin", "AsyncQuerySetMixin", "AsyncRelatedManagerMixin", "run_sync"]

T = TypeVar("T")


async def run_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run sync ORM code for a coroutine (imports the greenlet bridge on first use)."""
    from dorm.db.bridge import run_sync as bridged

    return await bridged(func, *args, **kwargs)


def _take(iterator: Iterator[T], size: int) -> list[T]:
    return list(islice(iterator, size))


class AsyncQuerySetMixin:
    """Async twins of the QuerySet methods that touch the database."""

    # Provided by QuerySet.
    get: Callable[..., Any]
    create: Callable[..., Any]
    get_or_create: Callable[..., Any]
    update_or_create: Callable[..., Any]
    exists_or_create: Callable[..., Any]
    bulk_create: Callable[..., Any]
    bulk_update: Callable[..., Any]
    upsert: Callable[..., Any]
    count: Callable[..., Any]
    exists: Callable[..., Any]
    first: Callable[..., Any]
    last: Callable[..., Any]
    latest: Callable[..., Any]
    earliest: Callable[..., Any]
    in_bulk: Callable[..., Any]
    aggregate: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    explain: Callable[..., Any]
    iterator: Callable[..., Iterator[Any]]
    _fetch_all: Callable[[], None]
    _result_cache: list[Any] | None

    async def aget(self, *args: Any, **kwargs: Any) -> Any:
        """Async twin of ``get()``."""
        return await run_sync(self.get, *args, **kwargs)

    async def acreate(self, **kwargs: Any) -> Any:
        """Async twin of ``create()``."""
        return await run_sync(self.create, **kwargs)

    async def aget_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[Any, bool]:
        """Async twin of ``get_or_create()``."""
        return await run_sync(self.get_or_create, defaults, **kwargs)

    async def aupdate_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[Any, bool]:
        """Async twin of ``update_or_create()``."""
        return await run_sync(self.update_or_create, defaults, **kwargs)

    async def aexists_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[bool, Any]:
        """Async twin of ``exists_or_create()``."""
        return await run_sync(self.exists_or_create, defaults, **kwargs)

    async def abulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Async twin of ``bulk_create()``."""
        return await run_sync(self.bulk_create, objs, *args, **kwargs)

    async def abulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        """Async twin of ``bulk_update()``."""
        return await run_sync(self.bulk_update, objs, *args, **kwargs)

    async def aupsert(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Async twin of ``upsert()``."""
        return await run_sync(self.upsert, objs, *args, **kwargs)

    async def acount(self) -> int:
        """Async twin of ``count()``."""
        return await run_sync(self.count)

    async def aexists(self) -> bool:
        """Async twin of ``exists()``."""
        return await run_sync(self.exists)

    async def afirst(self) -> Any:
        """Async twin of ``first()``."""
        return await run_sync(self.first)

    async def alast(self) -> Any:
        """Async twin of ``last()``."""
        return await run_sync(self.last)

    async def alatest(self, *fields: str) -> Any:
        """Async twin of ``latest()``."""
        return await run_sync(self.latest, *fields)

    async def aearliest(self, *fields: str) -> Any:
        """Async twin of ``earliest()``."""
        return await run_sync(self.earliest, *fields)

    async def ain_bulk(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        """Async twin of ``in_bulk()``."""
        return await run_sync(self.in_bulk, *args, **kwargs)

    async def aaggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Async twin of ``aggregate()``."""
        return await run_sync(self.aggregate, *args, **kwargs)

    async def aupdate(self, **kwargs: Any) -> int:
        """Async twin of ``update()``."""
        return await run_sync(self.update, **kwargs)

    async def adelete(self) -> tuple[int, dict[str, int]]:
        """Async twin of ``delete()``."""
        return await run_sync(self.delete)

    async def aexplain(self, **options: Any) -> str:
        """Async twin of ``explain()``."""
        return await run_sync(self.explain, **options)

    async def alist(self) -> list[Any]:
        """Evaluate the queryset and return its results as a list (``list(qs)``)."""
        await run_sync(self._fetch_all)
        return list(self._result_cache or ())

    async def aiterator(self, chunk_size: int | None = None) -> AsyncIterator[Any]:
        """Async twin of ``iterator()``: stream without caching.

        On PostgreSQL the rows come from a server-side cursor, ``chunk_size`` (default 2000)
        at a time, so memory stays flat however large the result.
        """
        rows = self.iterator(chunk_size=chunk_size)
        size = chunk_size or 2000
        try:
            while True:
                batch = await run_sync(_take, rows, size)
                for obj in batch:
                    yield obj
                if len(batch) < size:
                    break
        finally:
            # Ends the cursor and its transaction on the loop, even when the loop stops early.
            await run_sync(rows.close)  # type: ignore[attr-defined]

    def __aiter__(self) -> AsyncIterator[Any]:
        """``async for obj in queryset``: evaluate (one query, cached), then iterate."""
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Any]:
        await run_sync(self._fetch_all)
        for obj in self._result_cache or ():
            yield obj


class AsyncModelMixin:
    """Async twins of the Model instance methods that touch the database."""

    save: Callable[..., Any]
    delete: Callable[..., Any]
    refresh_from_db: Callable[..., Any]
    full_clean: Callable[..., Any]

    async def asave(self, *args: Any, **kwargs: Any) -> None:
        """Async twin of ``save()``."""
        await run_sync(self.save, *args, **kwargs)

    async def adelete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Async twin of ``delete()``."""
        return await run_sync(self.delete, *args, **kwargs)

    async def arefresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        """Async twin of ``refresh_from_db()``."""
        await run_sync(self.refresh_from_db, *args, **kwargs)

    async def afull_clean(self, *args: Any, **kwargs: Any) -> None:
        """Async twin of ``full_clean()`` (its unique checks query the database)."""
        await run_sync(self.full_clean, *args, **kwargs)


class AsyncRelatedManagerMixin:
    """Async twins of the methods that reverse-FK and many-to-many managers add."""

    add: Callable[..., Any]
    remove: Callable[..., Any]
    clear: Callable[..., Any]
    set: Callable[..., Any]
    create: Callable[..., Any]
    get_or_create: Callable[..., Any]

    async def aadd(self, *objs: Any, **kwargs: Any) -> None:
        """Async twin of ``add()``."""
        await run_sync(self.add, *objs, **kwargs)

    async def aremove(self, *objs: Any) -> None:
        """Async twin of ``remove()``."""
        await run_sync(self.remove, *objs)

    async def aclear(self) -> None:
        """Async twin of ``clear()``."""
        await run_sync(self.clear)

    async def aset(self, objs: Iterable[Any], **kwargs: Any) -> None:
        """Async twin of ``set()``."""
        await run_sync(self.set, objs, **kwargs)

    async def acreate(self, **kwargs: Any) -> Any:
        """Async twin of ``create()`` (the new object is linked to the instance)."""
        return await run_sync(self.create, **kwargs)

    async def aget_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[Any, bool]:
        """Async twin of ``get_or_create()`` (a new object is linked to the instance)."""
        return await run_sync(self.get_or_create, defaults, **kwargs)
