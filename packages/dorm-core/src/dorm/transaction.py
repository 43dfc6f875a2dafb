"""Transactions: ``atomic()`` (nested blocks are savepoints), ``on_commit``, ``set_rollback``.

Outside ``atomic()`` every statement commits on its own (autocommit). The outermost block
holds one connection of its alias from BEGIN to COMMIT/ROLLBACK; connection state is per
thread, and per asyncio task for ``aatomic()``.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from contextlib import ContextDecorator
from typing import Any, TypeVar

from dorm import plugins
from dorm.db.backends.base import ThreadState, _Block, _get_running_loop
from dorm.db.connection import DEFAULT_DB_ALIAS, bridge_local, connections
from dorm.exceptions import TransactionManagementError

__all__ = [
    "AsyncAtomic",
    "Atomic",
    "aatomic",
    "atomic",
    "get_rollback",
    "mark_for_rollback_on_error",
    "on_commit",
    "savepoint",
    "savepoint_commit",
    "savepoint_rollback",
    "set_rollback",
]

logger = logging.getLogger("dorm.transaction")
F = TypeVar("F", bound=Callable[..., Any])


class _NestedDurableError(TransactionManagementError, RuntimeError):
    """``atomic(durable=True)`` inside another block: a RuntimeError with Django's message,
    and a TransactionManagementError as dorm raised before."""


class Atomic(ContextDecorator):
    """``with atomic():`` / ``@atomic``: commit on success, roll back on exception."""

    def __init__(self, using: str | None = None, savepoint: bool = True, durable: bool = False):
        self.using = using or DEFAULT_DB_ALIAS
        self.savepoint = savepoint
        self.durable = durable

    def __enter__(self) -> Atomic:
        db = connections[self.using]
        state = db.state
        if self.durable and state.blocks:
            raise _NestedDurableError(
                "A durable atomic block cannot be nested within another atomic block."
            )
        if not state.blocks:
            state.conn = db._acquire_begun()
            block = _Block(None, self.durable, time.perf_counter())
        else:
            name = None
            if self.savepoint:
                state.savepoint_counter += 1
                name = f"dorm_sp_{state.savepoint_counter}"
                # Sent just before the block's first statement (ThreadState.pending).
                state.pending.append(name)
            block = _Block(name, self.durable, time.perf_counter())
        state.blocks.append(block)
        if len(state.blocks) == 1 or block.savepoint is not None:
            # A nested block without a savepoint opens nothing and reports nothing on exit
            # either, so every started event is matched by a committed or rolled_back one.
            plugins.notify(
                "dorm_transaction_started",
                alias=self.using,
                savepoint=len(state.blocks) > 1,
                durable=self.durable,
            )
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        db = connections[self.using]
        state = db.state
        block = state.blocks.pop()
        outermost = not state.blocks
        if state.manual_savepoints:
            # Ending the block (RELEASE, ROLLBACK TO, COMMIT) ends the savepoints made in it.
            depth = len(state.blocks)
            state.manual_savepoints = {
                k: v for k, v in state.manual_savepoints.items() if v[0] <= depth
            }
        duration = time.perf_counter() - block.started
        failed = exc is not None or block.rollback
        conn = state.conn
        if outermost:
            state.conn = None
            state.pending.clear()
            callbacks = state.on_commit
            state.on_commit = []
            try:
                if failed:
                    self._end(db, conn, "ROLLBACK")
                else:
                    try:
                        self._end(db, conn, "COMMIT")
                    except BaseException as commit_error:
                        # PostgreSQL ends a failed COMMIT itself; SQLite may keep it open.
                        try:
                            self._end(db, conn, "ROLLBACK")
                        except Exception:
                            logger.debug("ROLLBACK after a failed COMMIT also failed")
                        self._notify_rollback(block, duration, commit_error)
                        raise
            finally:
                if db._is_broken(conn):
                    db._discard(conn)
                else:
                    db._release(conn)
            if failed:
                self._notify_rollback(block, duration, exc)
                return
            plugins.notify(
                "dorm_transaction_committed", alias=self.using, savepoint=False, duration=duration
            )
            for _sids, callback in callbacks:
                # A failing callback must not undo a committed transaction; log and go on.
                try:
                    result = callback()
                    if result is not None and plugins.isawaitable(result):
                        from dorm.db.bridge import resolve

                        resolve(result, f"on_commit callback {callback!r}")
                except Exception:
                    logger.exception("on_commit callback %r raised", callback)
            return
        # Nested block.
        if block.savepoint is None:
            if failed:
                # No savepoint to return to: the whole transaction must roll back.
                state.blocks[-1].rollback = True
            return
        if state.pending and state.pending[-1] == block.savepoint:
            # The block ran no statement: its savepoint was never sent, nothing to undo.
            state.pending.pop()
            if failed:
                state.on_commit = [
                    (sids, fn) for sids, fn in state.on_commit if block.savepoint not in sids
                ]
                self._notify_rollback(block, duration, exc, savepoint=True)
            else:
                plugins.notify(
                    "dorm_transaction_committed",
                    alias=self.using,
                    savepoint=True,
                    duration=duration,
                )
            return
        if failed:
            try:
                db._run_plain(conn, f"ROLLBACK TO SAVEPOINT {block.savepoint}")
                db._run_plain(conn, f"RELEASE SAVEPOINT {block.savepoint}")
            except BaseException:
                state.blocks[-1].rollback = True
                raise
            state.on_commit = [
                (sids, fn) for sids, fn in state.on_commit if block.savepoint not in sids
            ]
            self._notify_rollback(block, duration, exc, savepoint=True)
        else:
            db._run_plain(conn, f"RELEASE SAVEPOINT {block.savepoint}")
            plugins.notify(
                "dorm_transaction_committed", alias=self.using, savepoint=True, duration=duration
            )

    def _end(self, db: Any, conn: Any, statement: str) -> None:
        # An instance method: dorm.contrib.two_phase ends its blocks with PREPARE TRANSACTION.
        if statement == "COMMIT":
            db._commit(conn)
        else:
            if db._is_broken(conn):
                return
            db._rollback(conn)

    def _notify_rollback(
        self, block: _Block, duration: float, exc: BaseException | None, savepoint: bool = False
    ) -> None:
        plugins.notify(
            "dorm_transaction_rolled_back",
            alias=self.using,
            savepoint=savepoint,
            duration=duration,
            error=exc,
        )


def atomic(using: Any = None, savepoint: bool = True, durable: bool = False) -> Any:
    """Run a block or function in a transaction; nested blocks become savepoints.

    ``@atomic``, ``@atomic(using="other")`` and ``with atomic():`` all work.
    """
    if callable(using):
        return Atomic(DEFAULT_DB_ALIAS, savepoint, durable)(using)
    return Atomic(using, savepoint, durable)


class AsyncAtomic:
    """``async with aatomic():`` / ``@aatomic()`` on a coroutine function: ``atomic()`` for
    the async API. Nested blocks are savepoints; the block belongs to the current asyncio
    task (other tasks, ``asyncio.gather`` children included, use their own connections).
    """

    def __init__(self, using: str | None = None, savepoint: bool = True, durable: bool = False):
        self._atomic = Atomic(using, savepoint, durable)
        self.using = self._atomic.using

    async def __aenter__(self) -> AsyncAtomic:
        from dorm.db.bridge import run_sync

        await run_sync(self._atomic.__enter__)
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        from dorm.db.bridge import run_sync

        await run_sync(self._atomic.__exit__, exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        import inspect

        if not inspect.iscoroutinefunction(func):
            raise TypeError(
                f"@aatomic() decorates coroutine functions; {func!r} is not one (use @atomic)"
            )

        @functools.wraps(func)
        async def inner(*args: Any, **kwargs: Any) -> Any:
            # A fresh block per call: one decorated function may run in several tasks.
            async with AsyncAtomic(self.using, self._atomic.savepoint, self._atomic.durable):
                return await func(*args, **kwargs)

        return inner  # type: ignore[return-value]


def aatomic(using: Any = None, savepoint: bool = True, durable: bool = False) -> Any:
    """``async with transaction.aatomic():`` -- the async twin of ``atomic()``.

    ``@aatomic`` / ``@aatomic(using="other")`` decorate coroutine functions.
    """
    if callable(using):
        return AsyncAtomic(DEFAULT_DB_ALIAS, savepoint, durable)(using)
    return AsyncAtomic(using, savepoint, durable)


def _state(using: str | None) -> ThreadState:
    """The caller's transaction state: its thread's, or its asyncio task's when called
    straight from a coroutine (inside ``async with aatomic()``)."""
    alias = using or DEFAULT_DB_ALIAS
    if bridge_local.states is None and _get_running_loop() is not None:
        from dorm.db.bridge import task_state

        found = task_state(alias)
        if found is not None:
            return found
    return connections[alias].state


def on_commit(func: Callable[[], Any], using: str | None = None) -> None:
    """Run ``func`` after the outermost transaction commits; never if it rolls back.

    Outside ``atomic()`` it runs at once. ``func`` may be a coroutine function: inside
    ``aatomic()`` it is awaited after COMMIT (see ``dorm.db.bridge.resolve``).
    """
    if not callable(func):
        raise TypeError(f"on_commit() needs a callable, got {func!r}")
    state = _state(using)
    if not state.blocks:
        result = func()
        if result is not None and plugins.isawaitable(result):
            if bridge_local.states is None and _get_running_loop() is not None:
                # Straight from a coroutine, outside any block: run it as its own task.
                _schedule(result)
                return
            from dorm.db.bridge import resolve

            resolve(result, f"on_commit callback {func!r}")
        return
    sids = tuple(b.savepoint for b in state.blocks if b.savepoint is not None)
    state.on_commit.append((sids, func))


def set_rollback(rollback: bool, using: str | None = None) -> None:
    """Mark the innermost ``atomic()`` block to roll back when it exits (or clear the mark)."""
    state = _state(using)
    if not state.blocks:
        raise TransactionManagementError("set_rollback() is only valid inside atomic()")
    state.blocks[-1].rollback = rollback


def get_rollback(using: str | None = None) -> bool:
    state = _state(using)
    if not state.blocks:
        raise TransactionManagementError("get_rollback() is only valid inside atomic()")
    return state.blocks[-1].rollback


_SAVEPOINT_ID = re.compile(r"dorm_sp_\d+")


def savepoint(using: str | None = None) -> str | None:
    """Create a savepoint in the current transaction and return its id (Django's API).

    Outside ``atomic()`` there is no transaction to mark: it returns None, and
    ``savepoint_commit(None)`` / ``savepoint_rollback(None)`` do nothing, as in Django.
    """
    db = connections[using or DEFAULT_DB_ALIAS]
    state = db.state
    if not state.blocks:
        return None
    db._send_savepoints(state)
    state.savepoint_counter += 1
    sid = f"dorm_sp_{state.savepoint_counter}"
    db._run_plain(state.conn, f"SAVEPOINT {sid}")
    state.manual_savepoints[sid] = (len(state.blocks), len(state.on_commit))
    return sid


def savepoint_commit(sid: str | None, using: str | None = None) -> None:
    """Release the savepoint ``sid``: its changes stay part of the enclosing transaction."""
    db, state = _savepoint_state(sid, using, "savepoint_commit")
    if state is None or sid is None:
        return
    db._run_plain(state.conn, f"RELEASE SAVEPOINT {sid}")
    _forget_from(state, sid, keep=False)


def savepoint_rollback(sid: str | None, using: str | None = None) -> None:
    """Undo what ran since ``savepoint(sid)``; ``on_commit`` callbacks registered since
    then are dropped. The savepoint stays open, so it can be rolled back to again."""
    db, state = _savepoint_state(sid, using, "savepoint_rollback")
    if state is None or sid is None:
        return
    db._run_plain(state.conn, f"ROLLBACK TO SAVEPOINT {sid}")
    _depth, callbacks = state.manual_savepoints[sid]
    del state.on_commit[callbacks:]
    _forget_from(state, sid, keep=True)


def _savepoint_state(sid: Any, using: str | None, what: str) -> tuple[Any, ThreadState | None]:
    if sid is not None and (not isinstance(sid, str) or not _SAVEPOINT_ID.fullmatch(sid)):
        raise ValueError(
            f"{what}(): {sid!r} is not a savepoint id; pass the value transaction.savepoint() "
            f"returned"
        )
    db = connections[using or DEFAULT_DB_ALIAS]
    state = db.state
    if not state.blocks:
        return db, None
    if sid is not None and sid not in state.manual_savepoints:
        raise TransactionManagementError(
            f"{what}(): no open savepoint {sid!r} in this transaction (it was released, "
            f"or the atomic() block that made it has ended)"
        )
    return db, state


def _forget_from(state: ThreadState, sid: str, keep: bool) -> None:
    """Drop ``sid`` (unless ``keep``) and every savepoint made after it: the database has
    released them with it."""
    names = list(state.manual_savepoints)
    for name in names[names.index(sid) + (1 if keep else 0) :]:
        del state.manual_savepoints[name]


_scheduled: set[Any] = set()  # asyncio futures


def _schedule(awaitable: Any) -> None:
    import asyncio

    task = asyncio.ensure_future(awaitable)
    _scheduled.add(task)

    def done(finished: Any) -> None:
        _scheduled.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            logger.error("on_commit callback raised", exc_info=finished.exception())

    task.add_done_callback(done)


class mark_for_rollback_on_error:
    """Inside ``atomic()``, an exception marks the block for rollback even if caught later."""

    def __init__(self, using: str | None = None) -> None:
        self.using = using or DEFAULT_DB_ALIAS

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            _mark_rollback(self.using)


def _mark_rollback(using: str | None) -> None:
    """What ``mark_for_rollback_on_error`` does when its block raised: inside ``atomic()``
    the innermost block is marked for rollback (for hot paths: no context manager)."""
    state = _state(using)
    if state.blocks:
        state.blocks[-1].rollback = True
