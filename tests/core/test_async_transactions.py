"""transaction.aatomic(), on_commit and set_rollback from coroutines, isolation between
tasks, and signals / plugin hooks whose receivers are coroutines, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import dorm
from dorm import plugins, signals, transaction
from dorm.exceptions import SynchronousOnlyOperation
from dorm.plugins import hookimpl

T = TypeVar("T")


class Account(dorm.Model):
    name = dorm.CharField(max_length=50, unique=True)
    balance = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_async_tx"


MODELS = [Account]
pytestmark = pytest.mark.usefixtures("clean_tables")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


def names() -> list[str]:
    return sorted(Account.objects.values_list("name", flat=True))


def count_elsewhere(db: Any) -> int:
    """Count Account rows through a connection dorm does not manage (sees commits only)."""
    return int(db.count_rows(Account._meta.db_table))


class Boom(Exception):
    pass


# --- aatomic -----------------------------------------------------------------------------------


def test_aatomic_commits(db) -> None:
    async def main() -> tuple[int, int]:
        async with transaction.aatomic():
            await Account.objects.acreate(name="a")
            await Account.objects.acreate(name="b")
            inside = await Account.objects.acount()
            outside = await asyncio.to_thread(count_elsewhere, db)
        return inside, outside

    assert run(main) == (2, 0)  # the rows were not visible elsewhere before COMMIT
    assert names() == ["a", "b"]
    assert count_elsewhere(db) == 2


def test_aatomic_rolls_back_on_exception(db) -> None:
    Account.objects.create(name="kept")

    async def main() -> None:
        async with transaction.aatomic():
            await Account.objects.acreate(name="gone")
            await Account.objects.filter(name="kept").aupdate(balance=99)
            assert await Account.objects.acount() == 2
            raise Boom

    with pytest.raises(Boom):
        run(main)
    assert names() == ["kept"]
    assert Account.objects.get(name="kept").balance == 0


def test_nested_savepoint_rollback_keeps_the_outer_rows(db) -> None:
    async def main() -> list[str]:
        async with transaction.aatomic():
            await Account.objects.acreate(name="outer-1")
            with pytest.raises(Boom):
                async with transaction.aatomic():
                    await Account.objects.acreate(name="inner")
                    raise Boom
            async with transaction.aatomic():
                await Account.objects.acreate(name="inner-kept")
            await Account.objects.acreate(name="outer-2")
            return sorted(await Account.objects.values_list("name", flat=True).alist())

    inside = run(main)
    assert inside == ["inner-kept", "outer-1", "outer-2"]
    assert names() == ["inner-kept", "outer-1", "outer-2"]


def test_aatomic_decorator(db) -> None:
    @transaction.aatomic
    async def transfer(fail: bool) -> str:
        await Account.objects.acreate(name="fail" if fail else "ok")
        if fail:
            raise Boom
        return "done"

    @transaction.aatomic()
    async def called() -> int:
        await Account.objects.acreate(name="called")
        return await Account.objects.acount()

    async def main() -> tuple[str, int]:
        result = await transfer(False)
        with pytest.raises(Boom):
            await transfer(True)
        return result, await called()

    assert run(main) == ("done", 2)
    assert names() == ["called", "ok"]


def test_aatomic_decorator_refuses_a_plain_function(db) -> None:
    with pytest.raises(TypeError, match="decorates coroutine functions"):

        @transaction.aatomic()
        def plain() -> None:
            pass

    assert Account.objects.count() == 0


def test_set_rollback_from_a_coroutine(db) -> None:
    async def main() -> tuple[bool, bool]:
        async with transaction.aatomic():
            await Account.objects.acreate(name="doomed")
            before = transaction.get_rollback()
            transaction.set_rollback(True)
            return before, transaction.get_rollback()

    assert run(main) == (False, True)
    assert names() == []
    assert count_elsewhere(db) == 0


def test_set_rollback_on_a_savepoint_only(db) -> None:
    async def main() -> None:
        async with transaction.aatomic():
            await Account.objects.acreate(name="outer")
            async with transaction.aatomic():
                await Account.objects.acreate(name="inner")
                transaction.set_rollback(True)

    run(main)
    assert names() == ["outer"]


# --- on_commit ---------------------------------------------------------------------------------


def test_on_commit_sync_and_coroutine_callbacks_run_after_commit(db) -> None:
    events: list[tuple[str, int]] = []

    def sync_callback() -> None:
        events.append(("sync", count_elsewhere(db)))

    async def async_callback() -> None:
        await asyncio.sleep(0)
        events.append(("async", await Account.objects.acount()))

    async def main() -> list[tuple[str, int]]:
        async with transaction.aatomic():
            await Account.objects.acreate(name="a")
            transaction.on_commit(sync_callback)
            transaction.on_commit(async_callback)
            pending = list(events)
        return pending

    assert run(main) == []  # nothing ran before COMMIT
    # Both ran, in order, after COMMIT: another connection already saw the row.
    assert events == [("sync", 1), ("async", 1)]


def test_on_commit_callbacks_dropped_on_rollback(db) -> None:
    events: list[str] = []

    async def async_callback() -> None:
        events.append("async")

    async def main() -> None:
        async with transaction.aatomic():
            await Account.objects.acreate(name="a")
            transaction.on_commit(lambda: events.append("sync"))
            transaction.on_commit(async_callback)
            raise Boom

    with pytest.raises(Boom):
        run(main)
    assert events == []
    assert names() == []


def test_savepoint_rollback_drops_its_on_commit_callbacks(db) -> None:
    events: list[str] = []

    async def record(name: str) -> None:
        events.append(name)

    async def main() -> None:
        async with transaction.aatomic():
            transaction.on_commit(lambda: record("outer"))
            with pytest.raises(Boom):
                async with transaction.aatomic():
                    await Account.objects.acreate(name="inner")
                    transaction.on_commit(lambda: record("inner"))
                    transaction.on_commit(lambda: events.append("inner-sync"))
                    raise Boom
            async with transaction.aatomic():
                transaction.on_commit(lambda: record("kept"))
            await Account.objects.acreate(name="outer")

    run(main)
    assert events == ["outer", "kept"]
    assert names() == ["outer"]


def test_on_commit_outside_aatomic_runs_at_once(db) -> None:
    events: list[str] = []

    async def async_callback() -> None:
        events.append("async")

    async def main() -> list[str]:
        transaction.on_commit(lambda: events.append("sync"))
        transaction.on_commit(async_callback)  # scheduled as a task of its own
        first = list(events)
        await asyncio.sleep(0.01)
        return first

    assert run(main) == ["sync"]
    assert events == ["sync", "async"]


# --- isolation between tasks ---------------------------------------------------------------------


def test_concurrent_aatomic_tasks_do_not_see_each_others_rows_postgresql(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL: concurrent writers (SQLite serializes them, tested below)")

    async def main() -> dict[str, Any]:
        both_wrote = asyncio.Barrier(2)
        seen: dict[str, Any] = {}

        async def worker(name: str) -> None:
            async with transaction.aatomic():
                await Account.objects.acreate(name=name)
                await both_wrote.wait()
                seen[name] = sorted(await Account.objects.values_list("name", flat=True).alist())
                await both_wrote.wait()  # nobody commits before both have looked

        await asyncio.gather(worker("a"), worker("b"))
        return seen

    assert run(main) == {"a": ["a"], "b": ["b"]}
    assert names() == ["a", "b"]


def test_concurrent_aatomic_writers_serialize_on_sqlite(db) -> None:
    if db.vendor != "sqlite":
        pytest.skip("SQLite-specific (BEGIN IMMEDIATE)")

    async def main() -> tuple[list[str], list[str], int]:
        order: list[str] = []
        a_wrote = asyncio.Event()

        async def first() -> None:
            async with transaction.aatomic():
                await Account.objects.acreate(name="a")
                order.append("a wrote")
                a_wrote.set()
                await asyncio.sleep(0.2)  # b waits for the write lock meanwhile
                order.append("a commits")

        async def second() -> list[str]:
            await a_wrote.wait()
            async with transaction.aatomic():
                order.append("b began")
                seen = sorted(await Account.objects.values_list("name", flat=True).alist())
                await Account.objects.acreate(name="b")
            return seen

        async def reader() -> int:
            await a_wrote.wait()
            await asyncio.sleep(0.05)
            # WAL: a plain read outside the writer's transaction sees the committed state.
            return await Account.objects.acount()

        _none, b_saw, read = await asyncio.gather(first(), second(), reader())
        return order, b_saw, read

    order, b_saw, read = run(main)
    assert order == ["a wrote", "a commits", "b began"]
    assert b_saw == ["a"]  # b's transaction started after a's COMMIT
    assert read == 0
    assert names() == ["a", "b"]


def test_each_task_has_its_own_transaction(db) -> None:
    async def main() -> list[str]:
        async with transaction.aatomic():
            await Account.objects.acreate(name="in-block")

            async def child() -> None:
                # Not part of the parent's block: a task of its own, autocommit.
                await Account.objects.acreate(name="child")

            if db.vendor == "postgresql":
                await asyncio.create_task(child())
            raise Boom

    with pytest.raises(Boom):
        run(main)
    assert names() == (["child"] if db.vendor == "postgresql" else [])


# --- signals and hooks with coroutine receivers -------------------------------------------------


@pytest.fixture
def connect() -> Iterator[Callable[..., None]]:
    connected: list[tuple[signals.Signal, Any]] = []

    def add(signal: signals.Signal, receiver: Any) -> None:
        signal.connect(receiver, sender=Account, weak=False)
        connected.append((signal, receiver))

    yield add
    for signal, receiver in connected:
        signal.disconnect(receiver, sender=Account)


def test_coroutine_receiver_is_awaited_by_acreate(db, connect) -> None:
    got: list[tuple[str, bool, int]] = []

    async def receiver(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        got.append((instance.name, created, await Account.objects.acount()))

    connect(signals.post_save, receiver)

    async def main() -> Any:
        made = await Account.objects.acreate(name="a")
        made.balance = 5
        await made.asave()
        return made

    made = run(main)
    assert got == [("a", True, 1), ("a", False, 1)]  # post_save: the row is there
    assert Account.objects.get(pk=made.pk).balance == 5


def test_sync_receiver_on_the_async_path(db, connect) -> None:
    got: list[tuple[str, int]] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        # Sync ORM code inside the async twin runs bridged: no SynchronousOnlyOperation.
        got.append((instance.name, Account.objects.filter(pk=instance.pk).count()))

    connect(signals.post_save, receiver)

    async def main() -> None:
        await Account.objects.acreate(name="a")

    run(main)
    assert got == [("a", 1)]
    assert names() == ["a"]


def test_coroutine_receiver_from_the_sync_api_outside_a_loop(db, connect) -> None:
    got: list[tuple[str, bool]] = []

    async def receiver(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        got.append((instance.name, asyncio.get_running_loop() is not None))

    connect(signals.post_save, receiver)
    Account.objects.create(name="sync")  # the coroutine runs on a private loop
    assert got == [("sync", True)]
    assert names() == ["sync"]


def test_coroutine_receiver_via_send_inside_a_running_loop_refuses(db, connect) -> None:
    ran: list[str] = []

    async def receiver(sender: Any, **kwargs: Any) -> None:
        ran.append("ran")

    connect(signals.post_save, receiver)

    async def main() -> None:
        signals.post_save.send(
            sender=Account,
            instance=None,
            created=True,
            raw=False,
            using="default",
            update_fields=None,
        )

    with pytest.raises(SynchronousOnlyOperation, match="asend"):
        run(main)
    assert ran == []  # closed, never awaited (and no warning about it)


def test_asend_awaits_coroutine_and_sync_receivers(db, connect) -> None:
    async def coroutine_receiver(sender: Any, instance: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return f"async:{instance.name}:{await Account.objects.acount()}"

    def sync_receiver(sender: Any, instance: Any, **kwargs: Any) -> str:
        return f"sync:{instance.name}"

    connect(signals.post_save, coroutine_receiver)
    connect(signals.post_save, sync_receiver)
    Account.objects.create(name="x")
    account = Account.objects.get(name="x")

    async def main() -> list[tuple[Any, Any]]:
        return await signals.post_save.asend(
            sender=Account,
            instance=account,
            created=False,
            raw=False,
            using="default",
            update_fields=None,
        )

    responses = run(main)
    assert responses == [(coroutine_receiver, "async:x:1"), (sync_receiver, "sync:x")]


class AsyncSaveRecorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, int]] = []

    @hookimpl
    async def dorm_post_save(self, sender: Any, instance: Any, created: bool) -> None:
        if sender is not Account:
            return
        await asyncio.sleep(0)
        self.seen.append((instance.name, created, await Account.objects.acount()))


@pytest.fixture
def async_plugin() -> Iterator[AsyncSaveRecorder]:
    plugin = AsyncSaveRecorder()
    plugins.register(plugin, name="t-async-save-recorder")
    try:
        yield plugin
    finally:
        plugins.unregister(plugin)


def test_async_hookimpl_is_awaited_on_the_async_path(db, async_plugin) -> None:
    async def main() -> None:
        await Account.objects.acreate(name="a")
        async with transaction.aatomic():
            await Account.objects.acreate(name="b")

    run(main)
    assert async_plugin.seen == [("a", True, 1), ("b", True, 2)]
    assert names() == ["a", "b"]
