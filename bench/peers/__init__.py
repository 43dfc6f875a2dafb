"""One adapter per ORM: ``setup(vendor, settings)`` then ``scenarios(ctx)``.

Every adapter builds the same schema (tables ``bench_author``, ``bench_tag``, ``bench_book``
and ``bench_book_tags``; indexes on ``bench_book.title``, ``bench_book.pages`` and the
foreign key) so that the raw driver's SQL runs unchanged against each ORM's database.

``scenarios(ctx)`` returns the callables by name, in the harness's order: ``insert_one``,
``bulk_insert`` (its new books all go to the filler author ``ctx.filler_id``, so the first
500 authors keep exactly 10 books each), ``get_by_pk``, ``filter_iterate``, ``values_list``,
``select_related``, ``prefetch_related`` (the first 500 authors by id with their books),
``m2m_prefetch`` (the first 500 books by id with their 3 tags each), ``count_filter``,
``update_filter`` (5 UPDATE statements per call) and, on PostgreSQL for the async-capable
ORMs, ``async_filter_iterate``.

A scenario is a callable taking no argument: a plain function, or an ``async def`` that the
harness runs on the process's single event loop (``run``), which also hosts every async
pool and connection (dorm's asyncpg pool, Tortoise, raw asyncpg) for the whole process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

Scenarios = dict[str, Callable[[], Any]]
T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The process's one long-lived event loop (created on first use)."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the process's event loop."""
    return loop().run_until_complete(coro)


def close_loop() -> None:
    """Shut the loop down as ``asyncio.run()`` does: cancel the tasks left (pool keepers
    close their pools then), finish async generators and the default executor, close."""
    global _loop
    if _loop is not None and not _loop.is_closed():
        try:
            tasks = asyncio.all_tasks(_loop)
            for task in tasks:
                task.cancel()
            _loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            _loop.run_until_complete(_loop.shutdown_asyncgens())
            _loop.run_until_complete(_loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            _loop.close()
    _loop = None


#: ``bulk_insert`` numbers its books' pages from here: its rows never fall in the range
#: ``update_filter`` rewrites, so every ORM's updates touch the same seeded rows however
#: many bulk inserts ran before.
BULK_PAGES = 1_000_000


#: Every scenario, in the order of the table's rows.
SCENARIOS = (
    "insert_one",
    "bulk_insert",
    "get_by_pk",
    "filter_iterate",
    "values_list",
    "select_related",
    "prefetch_related",
    "m2m_prefetch",
    "count_filter",
    "update_filter",
    "async_filter_iterate",
)


def scenarios_in(namespace: dict[str, Any], with_async: bool = True) -> Scenarios:
    """The scenario functions an adapter defined (its ``locals()``), in the table's order;
    ``async_filter_iterate`` only ``with_async`` (PostgreSQL)."""
    return {
        name: namespace[name]
        for name in SCENARIOS
        if name in namespace and (with_async or name != "async_filter_iterate")
    }


@dataclass
class Ctx:
    vendor: str
    n: int
    rows: int
    ids: list[int]
    author_ids: list[int]  # the first 500 authors, 10 seeded books each
    filler_id: int  # the author after them: seeded books beyond 5000, and bulk_insert's

    @property
    def half(self) -> int:
        return self.rows // 2
