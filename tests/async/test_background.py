"""BackgroundTasks on SQLite and PostgreSQL: sync functions in threads, a concurrency bound
that holds under load, every failure in one ExceptionGroup, cancellation, misuse."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import dorm
from dorm.contrib.background import BackgroundTasks, BackgroundTasksError

T = TypeVar("T")


class Event(dorm.Model):
    """One row per task that ran: what the tests read back."""

    label = dorm.CharField(max_length=40)
    thread = dorm.CharField(max_length=40, default="")

    class Meta:
        app_label = "async_background"


MODELS = [Event]
pytestmark = pytest.mark.usefixtures("clean_tables")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


class Gauge:
    """Counts the tasks running at once (from threads and from the loop)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def test_the_release_note_snippet_runs_sync_in_a_thread_and_async_on_the_loop(db: Any) -> None:
    loop_thread: list[int] = []

    def send_email(address: str) -> None:  # sync ORM: refused on the loop's thread
        Event.objects.create(label=f"mail {address}", thread=threading.current_thread().name)

    async def warm_cache() -> None:
        loop_thread.append(threading.get_ident())
        await Event.objects.acreate(label="warm", thread="loop")

    class User:
        email = "ann@example.com"

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        namespace = {
            "BackgroundTasks": BackgroundTasks,
            "send_email": send_email,
            "warm_cache": warm_cache,
            "user": User(),
        }
        exec(
            "async def snippet():\n"
            "    bg = BackgroundTasks(concurrency=8)\n"
            "    bg.add(send_email, user.email)\n"
            "    bg.add(warm_cache)\n"
            "    await bg.run()\n",
            namespace,
        )
        await namespace["snippet"]()

    run(main)
    rows = {e.label: e.thread for e in Event.objects.all()}
    assert rows["mail ann@example.com"].startswith("asyncio_")  # the loop's default pool
    assert rows["warm"] == "loop"
    assert loop_thread[0] == loop_thread[1]  # the coroutine ran on the loop's thread


def test_a_blocking_sync_task_does_not_stall_the_loop(db: Any) -> None:
    def slow() -> str:
        time.sleep(0.3)
        Event.objects.create(label="slow")
        return "slept"

    async def main() -> tuple[list[Any], int]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        bg = BackgroundTasks()
        bg.add(slow)
        results = await bg.run()
        done = True
        await tick_task
        return results, ticks

    results, ticks = run(main)
    assert results == ["slept"]
    assert ticks >= 5  # the loop kept running while the thread slept
    assert Event.objects.filter(label="slow").count() == 1


def test_runs_reuse_threads_so_sqlite_connections_do_not_pile_up(db: Any) -> None:
    """10 runs of 8 sync tasks must not open a connection per task or per run: on SQLite
    each pool thread keeps one, on PostgreSQL they come from the pool."""
    from dorm.plugins import hookimpl
    from dorm.test import register_plugin

    opened: list[str] = []

    class Counter:
        @hookimpl
        def dorm_connection_created(self, alias: str, is_async: bool) -> None:
            if not is_async:
                opened.append(threading.current_thread().name)

    def touch(i: int) -> None:
        time.sleep(0.001)
        Event.objects.create(label=f"t{i}")

    async def main() -> None:
        for _ in range(10):
            bg = BackgroundTasks(concurrency=8)
            for i in range(8):
                bg.add(touch, i)
            await bg.run()

    with register_plugin(Counter(), name="count-connections"):
        run(main)
    assert Event.objects.count() == 80
    pool_threads = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
    if db.vendor == "sqlite":
        assert 1 <= len(opened) <= pool_threads
        assert len(set(opened)) == len(opened)  # one per thread
    else:
        assert 1 <= len(opened) <= db.settings.get("MAX_POOL_SIZE", 10)  # the pool's cap


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_at_most_concurrency_of_100_mixed_tasks_run_at_once(db: Any, concurrency: int) -> None:
    gauge = Gauge()

    def sync_task(i: int) -> int:
        gauge.enter()
        try:
            time.sleep(0.002)
            Event.objects.create(label=f"sync {i}")
        finally:
            gauge.leave()
        return i

    async def async_task(i: int) -> int:
        gauge.enter()
        try:
            await asyncio.sleep(0.002)
            await Event.objects.acreate(label=f"async {i}")
        finally:
            gauge.leave()
        return i

    async def main() -> list[Any]:
        bg = BackgroundTasks(concurrency=concurrency)
        for i in range(100):
            bg.add(sync_task if i % 2 else async_task, i)
        assert len(bg) == 100
        results = await bg.run()
        assert len(bg) == 0
        return results

    assert run(main) == list(range(100))  # results in the order added
    assert 1 <= gauge.peak <= concurrency
    assert Event.objects.count() == 100


def test_the_bound_is_reached_and_never_passed() -> None:
    """Coroutines that wait until ``concurrency`` of them run: the bound is met exactly."""
    gauge = Gauge()
    full = asyncio.Event

    async def main() -> int:
        ready = full()

        async def task() -> None:
            gauge.enter()
            if gauge.now == 8:
                ready.set()
            await asyncio.wait_for(ready.wait(), 5)
            await asyncio.sleep(0)
            gauge.leave()

        bg = BackgroundTasks(concurrency=8)
        for _ in range(100):
            bg.add(task)
        await bg.run()
        return gauge.peak

    assert run(main) == 8


def test_every_failure_is_in_the_exception_group_and_the_others_complete(db: Any) -> None:
    def ok_sync(label: str) -> str:
        time.sleep(0.01)
        Event.objects.create(label=label)
        return label

    async def ok_async(label: str) -> str:
        await asyncio.sleep(0.01)
        await Event.objects.acreate(label=label)
        return label

    def bad_sync(n: int) -> None:
        raise ValueError(f"bad input {n}")

    async def bad_async() -> None:
        await asyncio.sleep(0)
        raise LookupError("no such user")

    async def main() -> BaseExceptionGroup[BaseException]:
        bg = BackgroundTasks(concurrency=2)
        bg.add(bad_sync, 1)
        bg.add(ok_sync, "s1")
        bg.add(bad_async)
        bg.add(ok_async, "a1")
        bg.add(bad_sync, 2)
        bg.add(ok_sync, "s2")
        try:
            await bg.run()
        except ExceptionGroup as group:
            return group
        raise AssertionError("run() did not raise")

    group = run(main)
    assert type(group) is ExceptionGroup
    assert str(group) == "BackgroundTasks.run(): 3 of 6 tasks failed (3 sub-exceptions)"
    assert [type(e) for e in group.exceptions] == [ValueError, LookupError, ValueError]
    assert [str(e) for e in group.exceptions] == ["bad input 1", "no such user", "bad input 2"]
    notes = [e.__notes__[-1] for e in group.exceptions]
    assert notes[0].startswith("in background task 1 of 6: ") and notes[0].endswith("bad_sync")
    assert notes[1].startswith("in background task 3 of 6: ") and notes[1].endswith("bad_async")
    assert notes[2].startswith("in background task 5 of 6: ")
    assert sorted(Event.objects.values_list("label", flat=True)) == ["a1", "s1", "s2"]
    # except* splits it by type, as for any ExceptionGroup.
    caught: list[str] = []
    try:
        raise group
    except* ValueError as values:
        caught += [str(e) for e in values.exceptions]
    except* LookupError as lookups:
        caught += [str(e) for e in lookups.exceptions]
    assert caught == ["bad input 1", "bad input 2", "no such user"]


def test_cancelling_run_cancels_the_running_coroutines_and_starts_nothing_more(db: Any) -> None:
    async def forever(label: str) -> None:
        await Event.objects.acreate(label=f"started {label}")
        await asyncio.sleep(3600)

    async def main() -> bool:
        bg = BackgroundTasks(concurrency=2)
        for i in range(6):
            bg.add(forever, str(i))
        runner = asyncio.create_task(bg.run())
        for _ in range(500):
            if await Event.objects.acount() == 2:
                break
            await asyncio.sleep(0.01)
        runner.cancel()
        try:
            await runner
        except asyncio.CancelledError:
            return True
        return False

    assert run(main)
    assert sorted(Event.objects.values_list("label", flat=True)) == ["started 0", "started 1"]


def test_misuse_is_refused_with_the_argument_named() -> None:
    with pytest.raises(ValueError, match=r"BackgroundTasks\(concurrency=0\): expected an int >= 1"):
        BackgroundTasks(concurrency=0)
    with pytest.raises(TypeError, match=r"BackgroundTasks\(concurrency=2.5\)"):
        BackgroundTasks(concurrency=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"BackgroundTasks\(durable='yes'\)"):
        BackgroundTasks(durable="yes")  # type: ignore[arg-type]
    bg = BackgroundTasks()
    with pytest.raises(TypeError, match=r"fn must be a function, got 'send_email' \(str\)"):
        bg.add("send_email")  # type: ignore[arg-type]

    async def main() -> list[str]:
        errors: list[str] = []

        async def adds_more() -> None:
            try:
                bg.add(print)
            except BackgroundTasksError as exc:
                errors.append(str(exc))
            try:
                await bg.run()
            except BackgroundTasksError as exc:
                errors.append(str(exc))

        bg.add(adds_more)
        assert await bg.run() == [None]
        assert await bg.run() == []  # the tasks were consumed by the first run
        return errors

    added, reran = run(main)
    assert "add(builtins.print) while run() is running" in added
    assert "run() is already running" in reran


def test_a_task_sees_the_callers_context_variables(db: Any) -> None:
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    def sync_task() -> None:
        Event.objects.create(label=f"sync {request_id.get()}")

    async def async_task() -> None:
        await Event.objects.acreate(label=f"async {request_id.get()}")

    class AsyncCallable:
        """An object whose __call__ is a coroutine function: run on the loop too."""

        async def __call__(self, suffix: str) -> None:
            await Event.objects.acreate(label=f"callable {request_id.get()}{suffix}")

    async def main() -> None:
        request_id.set("r-42")
        bg = BackgroundTasks()
        bg.add(sync_task)
        bg.add(async_task)
        bg.add(AsyncCallable(), suffix="!")
        await bg.run()

    run(main)
    assert sorted(Event.objects.values_list("label", flat=True)) == [
        "async r-42",
        "callable r-42!",
        "sync r-42",
    ]
