"""``BackgroundTasks``: run added functions after the response, at most N at once.

Coroutine functions run as tasks of the caller's event loop; sync functions run in the
loop's default thread pool (as ``asyncio.to_thread`` does), never on the event loop, so the
sync ORM works in them and a slow one does not stall the loop. The pool's threads are
reused from run to run: a thread keeps its SQLite connection, so a pool made per run would
open new connections on every run. A semaphore bounds the tasks in flight, sync and async
together. ``run()`` waits for every task, failed or not, and raises one ExceptionGroup
holding every failure, each with a note naming its task.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any

from dorm.contrib.background.exceptions import BackgroundTasksError
from dorm.contrib.sync_dataloader.batches import describe

__all__ = ["BackgroundTasks", "Job"]


class Job:
    """One added call."""

    __slots__ = ("args", "fn", "is_async", "kwargs")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        # A callable object whose __call__ is a coroutine function counts as one too.
        call_method = None if inspect.isroutine(fn) else type(fn).__call__
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call_method)

    async def call(self, loop: asyncio.AbstractEventLoop) -> Any:
        if self.is_async:
            return await self.fn(*self.args, **self.kwargs)
        # The thread sees this task's context variables, as asyncio.to_thread does.
        context = contextvars.copy_context()
        call = functools.partial(context.run, self.fn, *self.args, **self.kwargs)
        result = await loop.run_in_executor(None, call)
        if inspect.isawaitable(result):  # a sync callable that returned a coroutine
            result = await result
        return result


class BackgroundTasks:
    """Functions to run later, ``concurrency`` at a time: ``add()`` them, ``await run()``.

    ``add(fn, *args, **kwargs)`` takes sync functions (run in the loop's default thread
    pool) and coroutine functions (run on the loop). ``await run()`` starts them in the
    order added, never more than ``concurrency`` at once, waits for all of them, and
    returns their results in that order; if some raised, the others still run to the end
    and ``run()`` raises an ExceptionGroup of every failure. A run consumes the tasks
    added before it.

    ``durable=True`` runs nothing here: ``run()`` hands each call to the queue of dorm-tasks
    (the function must be a ``@task``), in one transaction, and returns the queued rows'
    ids; workers run them later, with retries. Without dorm-tasks installed
    ``BackgroundTasks(durable=True)`` raises DurableUnavailableError.
    """

    def __init__(self, concurrency: int = 8, durable: bool = False) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise TypeError(f"BackgroundTasks(concurrency={concurrency!r}): expected an int >= 1")
        if concurrency < 1:
            raise ValueError(f"BackgroundTasks(concurrency={concurrency!r}): expected an int >= 1")
        if not isinstance(durable, bool):
            raise TypeError(f"BackgroundTasks(durable={durable!r}): expected True or False")
        self.concurrency = concurrency
        self.durable = durable
        self._task_type: type[Any] | None = None
        if durable:
            from dorm.contrib.background.durable import task_class

            self._task_type = task_class()
        self._jobs: list[Job] = []
        self._running = False

    def __repr__(self) -> str:
        mode = ", durable" if self.durable else ""
        return f"<BackgroundTasks {len(self._jobs)} added, concurrency={self.concurrency}{mode}>"

    def __len__(self) -> int:
        """The number of tasks added and not run yet."""
        return len(self._jobs)

    def add(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Add ``fn(*args, **kwargs)`` to the next ``run()``.

        :raises TypeError: ``fn`` is not callable; with ``durable=True``, it is not a
            dorm-tasks task or cannot take these arguments as JSON.
        :raises BackgroundTasksError: ``run()`` is running.
        """
        if self._running:
            raise BackgroundTasksError(
                f"BackgroundTasks.add({describe(fn)}) while run() is running; add the task "
                f"to a new BackgroundTasks, or before run()"
            )
        if not callable(fn):
            raise TypeError(
                f"BackgroundTasks.add(): fn must be a function, got {fn!r} ({type(fn).__name__})"
            )
        if self._task_type is not None:
            from dorm.contrib.background.durable import check_durable

            check_durable(self._task_type, fn, args, kwargs)
        self._jobs.append(Job(fn, args, kwargs))

    async def run(self) -> list[Any]:
        """Run (or with ``durable=True``, queue) the added tasks; return their results.

        :raises ExceptionGroup: one or more tasks raised; it holds each of their exceptions,
            in the order the tasks were added.
        :raises BackgroundTasksError: ``run()`` is already running.
        """
        if self._running:
            raise BackgroundTasksError(
                f"{self!r}: run() is already running; await that call instead"
            )
        jobs, self._jobs = self._jobs, []
        if not jobs:
            return []
        self._running = True
        try:
            if self.durable:
                from dorm.contrib.background.durable import hand_off

                return await hand_off(jobs)
            return await self._run_here(jobs)
        finally:
            self._running = False

    async def _run_here(self, jobs: list[Job]) -> list[Any]:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.concurrency)
        tasks: list[asyncio.Task[Any]] = []

        def release(_: asyncio.Task[Any]) -> None:
            slots.release()

        try:
            for job in jobs:
                await slots.acquire()
                task = loop.create_task(job.call(loop))
                task.add_done_callback(release)
                tasks.append(task)
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            # Cancelled from outside: stop what runs on the loop, start nothing more. A sync
            # function already in its thread finishes there (threads cannot be stopped).
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            raise
        return _collect(jobs, tasks)


def _collect(jobs: list[Job], tasks: list[asyncio.Task[Any]]) -> list[Any]:
    results: list[Any] = []
    failures: list[BaseException] = []
    for number, (job, task) in enumerate(zip(jobs, tasks, strict=True), 1):
        exc = asyncio.CancelledError() if task.cancelled() else task.exception()
        if exc is None:
            results.append(task.result())
            continue
        exc.add_note(f"in background task {number} of {len(jobs)}: {describe(job.fn)}")
        failures.append(exc)
    if failures:
        raise BaseExceptionGroup(
            f"BackgroundTasks.run(): {len(failures)} of {len(jobs)} tasks failed", failures
        )
    return results
