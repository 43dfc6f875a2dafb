"""Running the synchronous ORM code from a coroutine, with every I/O awaited on the loop.

An async twin (``aget``, ``asave``, ``aatomic``, ...) runs its sync counterpart in a
greenlet. Where that code would block on the database, the bridged backend hands the
driver's awaitable (asyncpg, or a SQLite call on the connection's own thread) to
``await_``, which switches back to the coroutine; the coroutine awaits it and switches the
result back in. One implementation of the ORM thus serves both APIs, and the event loop
is never blocked. Each asyncio task has its own connection and transaction state.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet  # type: ignore[import-untyped]

from dorm.db.backends.base import ThreadState
from dorm.db.connection import bridge_local
from dorm.exceptions import SynchronousOnlyOperation

__all__ = ["await_", "in_bridge", "resolve", "run_sync", "task_state"]

T = TypeVar("T")

# Per task: alias -> the task's connection and atomic() blocks. Weak, so a finished task's
# state goes with it (its connection was given back when its last block exited).
_task_states: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[str, ThreadState]] = (
    weakref.WeakKeyDictionary()
)


class _Bridge(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet that runs sync ORM calls for coroutines, one at a time, and is kept for
    the next call (making a greenlet costs several times more than switching to one)."""

    def __init__(self) -> None:
        super().__init__(self._serve)

    def _serve(self, job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> None:
        while True:
            func, args, kwargs = job
            try:
                outcome = _Outcome(False, func(*args, **kwargs))
            except greenlet.GreenletExit:
                raise  # the greenlet is being discarded
            except BaseException as exc:
                outcome = _Outcome(True, exc)
            del func, args, kwargs
            job = self.parent.switch(outcome)


class _Outcome:
    """What a bridged call ended with: its return value, or the exception it raised."""

    __slots__ = ("failed", "value")

    def __init__(self, failed: bool, value: Any) -> None:
        self.failed = failed
        self.value = value


# Idle bridges per thread (a greenlet belongs to the thread that made it).
_idle = threading.local()
_MAX_IDLE = 32


def _states() -> dict[str, ThreadState]:
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("the dorm async API must be awaited inside an asyncio task")
    states = _task_states.get(task)
    if states is None:
        states = _task_states[task] = {}
    return states


async def run_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``func(*args, **kwargs)`` (sync ORM code) in a greenlet; await its database I/O."""
    states = _states()
    current = greenlet.getcurrent()
    pool: list[_Bridge] | None = getattr(_idle, "bridges", None)
    if pool is None:
        pool = _idle.bridges = []
    bridge = pool.pop() if pool else _Bridge()
    if bridge.parent is not current:
        bridge.parent = current
    # Share the task's contextvars with the bridged code, as a plain call would.
    bridge.gr_context = current.gr_context
    outer = bridge_local.states  # set when a coroutine receiver awaited in a bridge calls us

    bridge_local.states = states
    try:
        value = bridge.switch((func, args, kwargs))
    finally:
        bridge_local.states = outer
    while type(value) is not _Outcome:
        try:
            result = await value
        except BaseException:
            bridge_local.states = states
            try:
                value = bridge.throw(*sys.exc_info())
            finally:
                bridge_local.states = outer
        else:
            bridge_local.states = states
            try:
                value = bridge.switch(result)
            finally:
                bridge_local.states = outer
    if len(pool) < _MAX_IDLE:
        pool.append(bridge)
    if value.failed:
        error = value.value
        del value
        raise error
    return value.value  # type: ignore[no-any-return]


def task_state(alias: str) -> ThreadState | None:
    """The current asyncio task's state of ``alias`` (its ``aatomic()`` blocks), if any."""
    task = asyncio.current_task()
    states = _task_states.get(task) if task is not None else None
    return None if states is None else states.get(alias)


def in_bridge() -> bool:
    """True inside sync code that an async twin is running (``await_`` may be used)."""
    return type(greenlet.getcurrent()) is _Bridge


def await_(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` from bridged sync code: the coroutine awaits it meanwhile."""
    current = greenlet.getcurrent()
    if type(current) is not _Bridge:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise SynchronousOnlyOperation(
            "an async database call was reached from plain synchronous code; use the ORM's "
            "async API (`await Model.objects.aget()`, ...) from a coroutine"
        )
    return current.parent.switch(awaitable)  # type: ignore[no-any-return]


async def _wait(awaitable: Awaitable[T]) -> T:
    return await awaitable


def resolve(result: Any, what: object = None) -> Any:
    """Finish what a receiver, hook or on_commit callback returned, when it is awaitable.

    Inside an async twin the coroutine is awaited on the loop. From plain sync code with no
    loop running it runs to completion on a private loop (as Django runs async receivers
    from ``send()``). With a loop running but no async twin on the stack it cannot be
    awaited without blocking that loop: SynchronousOnlyOperation says what to use instead.
    """
    if not inspect.isawaitable(result):
        return result
    if type(greenlet.getcurrent()) is _Bridge:
        return await_(result)
    if asyncio._get_running_loop() is None:
        return asyncio.run(_wait(result))
    if inspect.iscoroutine(result):
        result.close()
    raise SynchronousOnlyOperation(
        f"{what or 'a coroutine receiver'} returned a coroutine inside a running event loop "
        f"from synchronous code, where it cannot be awaited: use the async API (`await "
        f"obj.asave()`, `await signal.asend(...)`, `async with transaction.aatomic()`)"
    )
