"""The async pools (asyncpg on PostgreSQL, one thread per connection on SQLite) under load:
MAX_POOL_SIZE holds, cancelled queries give their connection back, awarmup_pool, and a
checkout beyond the pool fails after POOL_TIMEOUT."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import dorm
from dorm import plugins
from dorm.db.connection import get_async_connection
from dorm.exceptions import OperationalError
from dorm.plugins import hookimpl

T = TypeVar("T")


class Item(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_async_pool"


MODELS = [Item]
pytestmark = pytest.mark.usefixtures("clean_tables")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


def postgres_only(db: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL-specific")


@pytest.fixture
def pool5(db: Any) -> Iterator[Any]:
    """The default alias with MIN_POOL_SIZE=1, MAX_POOL_SIZE=5, POOL_TIMEOUT=0.5."""
    dorm.configure(
        DATABASES={
            "default": {**db.settings, "MIN_POOL_SIZE": 1, "MAX_POOL_SIZE": 5, "POOL_TIMEOUT": 0.5}
        }
    )
    try:
        yield db
    finally:
        dorm.configure(DATABASES={"default": db.settings})


class WarmRecorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def dorm_pool_warmed(self, alias: str, seconds: float, size: int, is_async: bool) -> None:
        self.calls.append({"alias": alias, "seconds": seconds, "size": size, "is_async": is_async})


@pytest.fixture
def warm_hook() -> Iterator[WarmRecorder]:
    recorder = WarmRecorder()
    plugins.register(recorder, name="t-async-pool-warm")
    try:
        yield recorder
    finally:
        plugins.unregister(recorder)


def pg_sleepers(db: Any) -> list[str]:
    """States of the other sessions of this database that are running pg_sleep."""
    import psycopg

    with psycopg.connect(db.pg.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE 'SELECT pg_sleep%%' "
            "AND state = 'active'"
        ).fetchall()
    return [r[0] for r in rows]


# --- load ----------------------------------------------------------------------------------------


def test_fifty_concurrent_coroutines_share_a_pool_of_five(pool5) -> None:
    async def main() -> tuple[list[tuple[str, int]], int, int]:
        conn = get_async_connection()
        sizes: list[int] = []
        done = asyncio.Event()

        async def monitor() -> None:
            while not done.is_set():
                sizes.append(await conn.pool_size())
                await asyncio.sleep(0.001)

        async def worker(i: int) -> tuple[str, int]:
            made = await Item.objects.acreate(name=f"n{i:02d}")
            got = await Item.objects.aget(pk=made.pk)
            return got.name, await Item.objects.filter(name__startswith="n").acount()

        watcher = asyncio.create_task(monitor())
        try:
            results = await asyncio.gather(*(worker(i) for i in range(50)))
        finally:
            done.set()
            await watcher
        sizes.append(await conn.pool_size())
        return results, max(sizes), len(sizes)

    results, largest, samples = run(main)
    assert [name for name, _n in results] == [f"n{i:02d}" for i in range(50)]
    assert all(1 <= n <= 50 for _name, n in results)
    assert samples > 1
    assert 1 <= largest <= 5
    assert Item.objects.count() == 50


# --- cancellation --------------------------------------------------------------------------------


def test_cancelled_pg_sleep_leaves_the_pool_usable(pool5) -> None:
    postgres_only(pool5)

    async def main() -> tuple[int, int, float, Any, list[str]]:
        conn = get_async_connection()
        await conn.fetchone("SELECT 1")
        before = await conn.pool_size()
        task = asyncio.create_task(conn.fetchone("SELECT pg_sleep(10)"))
        await asyncio.sleep(0.2)
        assert await asyncio.to_thread(pg_sleepers, pool5) == ["active"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        start = time.perf_counter()
        row = await conn.fetchone("SELECT 41 + 1")
        took = time.perf_counter() - start
        after = await conn.pool_size()
        left: list[str] = ["?"]
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            left = await asyncio.to_thread(pg_sleepers, pool5)
            if not left:
                break
            await asyncio.sleep(0.05)
        return before, after, took, row, left

    before, after, took, row, left = run(main)
    assert row == (42,)
    assert took < 1.0, f"the next query waited {took:.2f}s"
    assert 1 <= before <= after <= 5
    assert left == [], "pg_sleep still running on the server after the cancel"
    assert Item.objects.count() == 0


def test_cancelled_slow_sqlite_statement_is_interrupted(pool5) -> None:
    if pool5.vendor != "sqlite":
        pytest.skip("SQLite-specific")
    slow = (
        "WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt "
        "WHERE x < 100000000) SELECT COUNT(*) FROM cnt"
    )

    async def main() -> tuple[float, Any, int]:
        conn = get_async_connection()
        task = asyncio.create_task(conn.fetchone(slow))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        start = time.perf_counter()
        await Item.objects.acreate(name="after")
        row = await conn.fetchone("SELECT COUNT(*) FROM t_async_pool_item")
        return time.perf_counter() - start, row, await conn.pool_size()

    took, row, size = run(main)
    assert took < 1.0, f"the next statement waited {took:.2f}s for the interrupted one"
    assert row == (1,)
    assert 1 <= size <= 5
    assert list(Item.objects.values_list("name", flat=True)) == ["after"]


# --- awarmup_pool ------------------------------------------------------------------------------


def test_awarmup_pool_opens_the_target(pool5, warm_hook: WarmRecorder) -> None:
    async def main() -> tuple[float, int, int]:
        conn = get_async_connection()
        seconds = await dorm.awarmup_pool(target=5)
        size = await conn.pool_size()
        # Every warmed connection works.
        counts = await asyncio.gather(*(Item.objects.acount() for _ in range(5)))
        assert counts == [0] * 5
        return seconds, size, await conn.pool_size()

    seconds, size, size_after = run(main)
    assert isinstance(seconds, float) and seconds > 0
    assert size == 5 and size_after == 5
    assert warm_hook.calls == [
        {"alias": "default", "seconds": seconds, "size": 5, "is_async": True}
    ]


def test_awarmup_pool_default_target_is_min_pool_size(pool5, warm_hook: WarmRecorder) -> None:
    async def main() -> tuple[float, int]:
        seconds = await dorm.awarmup_pool()
        return seconds, await get_async_connection().pool_size()

    seconds, size = run(main)
    assert seconds > 0 and size >= 1
    assert [(c["size"], c["is_async"]) for c in warm_hook.calls] == [(size, True)]


def test_awarmup_pool_rejects_bad_targets(pool5, warm_hook: WarmRecorder) -> None:
    async def main(target: Any) -> float:
        return await dorm.awarmup_pool("default", target=target)

    with pytest.raises(ValueError) as info:
        asyncio.run(main(6))
    assert str(info.value) == (
        "awarmup_pool('default'): target=6 is above MAX_POOL_SIZE=5 of DATABASES['default']"
    )
    with pytest.raises(ValueError, match="at least 1"):
        asyncio.run(main(0))
    with pytest.raises(TypeError, match="must be an int"):
        asyncio.run(main("3"))
    with pytest.raises(TypeError, match="must be an int"):
        asyncio.run(main(True))
    assert warm_hook.calls == []


# --- POOL_TIMEOUT --------------------------------------------------------------------------------


def test_checkout_beyond_max_pool_size_times_out(pool5) -> None:
    Item.objects.bulk_create([Item(name=f"n{i}") for i in range(3)])

    async def main() -> tuple[str, float, list[str], int]:
        holding = asyncio.Barrier(6)
        release = asyncio.Event()

        async def hold() -> str:
            # A streaming iterator keeps its connection checked out between rows.
            async with contextlib.aclosing(Item.objects.order_by("name").aiterator(1)) as rows:
                async for item in rows:
                    await holding.wait()
                    await release.wait()
                    return str(item.name)
            return ""

        holders = [asyncio.create_task(hold()) for _ in range(5)]
        try:
            await asyncio.wait_for(holding.wait(), 10)
            start = time.perf_counter()
            with pytest.raises(OperationalError) as info:
                await Item.objects.acount()
            waited = time.perf_counter() - start
        finally:
            release.set()
            names = await asyncio.gather(*holders)
        # Connections given back: the pool serves again.
        return str(info.value), waited, names, await Item.objects.acount()

    message, waited, names, count = run(main)
    assert "'default'" in message
    assert "POOL_TIMEOUT=0.5" in message and "MAX_POOL_SIZE=5" in message
    assert 0.4 <= waited < 3
    assert names == ["n0"] * 5
    assert count == 3


# --- the PostgreSQL pool's checkout and return --------------------------------------------------


def _terminate_backend(db: Any, pid: int) -> None:
    import psycopg

    with psycopg.connect(db.pg.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_the_most_recently_used_connection_serves_the_next_statement(pool5) -> None:
    postgres_only(pool5)

    async def main() -> tuple[set[int], list[int], int]:
        conn = get_async_connection()
        # Three at once: the pool grows to three connections on three server processes.
        burst = await asyncio.gather(
            *(conn.fetchone("SELECT pg_backend_pid(), pg_sleep(0.05)") for _ in range(3))
        )
        one_by_one = [(await conn.fetchone("SELECT pg_backend_pid()"))[0] for _ in range(5)]
        return {row[0] for row in burst}, one_by_one, await conn.pool_size()

    burst, one_by_one, size = run(main)
    assert len(burst) == 3 and size == 3
    assert len(set(one_by_one)) == 1 and one_by_one[0] in burst


def test_a_connection_killed_on_the_server_is_replaced(pool5) -> None:
    postgres_only(pool5)

    async def main() -> tuple[int, int, Any, int]:
        conn = get_async_connection()
        (first,) = await conn.fetchone("SELECT pg_backend_pid()")
        await asyncio.to_thread(_terminate_backend, pool5, first)
        await asyncio.sleep(0.1)
        (second,) = await conn.fetchone("SELECT pg_backend_pid()")  # retried on a new one
        row = await conn.fetchone("SELECT 41 + 1")
        return first, second, row, await conn.pool_size()

    first, second, row, size = run(main)
    assert first != second and row == (42,)
    assert size == 1


def _idle_in_transaction(db: Any) -> int:
    import psycopg

    with psycopg.connect(db.pg.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%'"
        ).fetchone()
    return int(row[0]) if row else -1


def test_a_task_cancelled_inside_aatomic_leaves_nothing_and_a_clean_connection(pool5) -> None:
    postgres_only(pool5)

    async def writer() -> None:
        async with dorm.transaction.aatomic():
            await Item.objects.acreate(name="half-done")
            await get_async_connection().fetchone("SELECT pg_sleep(10)")

    async def main() -> tuple[int, int, int, int]:
        task = asyncio.create_task(writer())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        idle_in_tx = await asyncio.to_thread(_idle_in_transaction, pool5)
        # The connection went back rolled back: a write now is committed at once.
        await Item.objects.acreate(name="after")
        size = await get_async_connection().pool_size()
        return (
            idle_in_tx,
            await Item.objects.acount(),
            size,
            len(
                await asyncio.to_thread(
                    lambda: list(Item.objects.values_list("name", flat=True))  # another connection
                )
            ),
        )

    idle_in_tx, count, size, seen_elsewhere = run(main)
    assert idle_in_tx == 0
    assert count == 1 and seen_elsewhere == 1 and 1 <= size <= 5
    assert list(Item.objects.values_list("name", flat=True)) == ["after"]


def test_a_connection_handed_to_a_cancelled_waiter_is_not_lost(pool5) -> None:
    from dorm.db.backends.bridged import AsyncPool

    async def main() -> tuple[bool, int, int]:
        bridged = get_async_connection().bridged
        pool: AsyncPool = await bridged._apool()  # the loop's pool, of either backend
        held = [await pool.acquire() for _ in range(pool.max_size - pool.size + len(pool.idle))]
        size = pool.size
        waiting = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)  # it waits: every connection is checked out
        assert pool.put(held[0])  # handed to the waiter...
        waiting.cancel()  # ...which is cancelled before it resumes
        with contextlib.suppress(asyncio.CancelledError):
            pool.put(await waiting)  # (or it got the connection after all: give it back)
        back = pool.take()
        for conn in held[1:]:
            pool.put(conn)
        pool.put(back)
        return back is held[0], size, pool.size

    same, before, after = run(main)
    assert same and before == after == 5
