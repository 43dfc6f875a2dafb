"""``temporal.context(user=..., reason=...)``: who and why, stored on every version.

The block is one transaction (a savepoint when nested) on ``using``; the values reach
the triggers through that transaction only, so two threads or two asyncio tasks writing
at once each see their own:

* PostgreSQL: ``set_config('dorm.temporal_user', %s, true)`` (and ``..._reason``), bound
  as parameters; ``true`` makes the setting end with the transaction.
* SQLite: the one-row table ``dorm_temporal_context``, written inside the block's
  transaction (which holds SQLite's single write lock from BEGIN IMMEDIATE on, so no other
  writer can see it) and emptied again before the block ends. It also pins one timestamp
  for every version the block writes.

Nested blocks replace the values for their duration and give the outer ones back on exit.
"""

from __future__ import annotations

import contextvars
import datetime
from typing import Any

from dorm import transaction
from dorm.db.connection import connections

__all__ = ["context", "current_context"]

# (user, reason, SQLite timestamp) of the innermost open block of this thread / task.
_CURRENT: contextvars.ContextVar[tuple[str | None, str | None, str] | None] = (
    contextvars.ContextVar("dorm_temporal_context", default=None)
)


def current_context() -> tuple[str | None, str | None] | None:
    """The ``(user, reason)`` of the innermost open ``context`` block, or None."""
    value = _CURRENT.get()
    return None if value is None else (value[0], value[1])


def _check(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"temporal.context({name}=...) takes a str or None, got {value!r}")
    return value


def _push(using: str, value: tuple[str | None, str | None, str] | None) -> None:
    """Hand ``value`` (None: no context) to the open transaction on ``using``."""
    conn = connections[using]
    ph = conn.ops.placeholder
    user, reason, stamp = value if value is not None else (None, None, None)
    if conn.vendor == "postgresql":
        conn.execute(
            f"SELECT set_config('dorm.temporal_user', {ph}, true), "
            f"set_config('dorm.temporal_reason', {ph}, true)",
            (user or "", reason or ""),
        )
        return
    from dorm.contrib.temporal.triggers import CONTEXT_TABLE, context_table_sql

    qn = conn.ops.quote_name
    conn.execute(context_table_sql(conn))
    conn.execute(f"DELETE FROM {qn(CONTEXT_TABLE)}")
    if value is not None:
        conn.execute(
            f"INSERT INTO {qn(CONTEXT_TABLE)} ({qn('user')}, {qn('reason')}, {qn('ts')}) "
            f"VALUES ({ph}, {ph}, {ph})",
            (user, reason, stamp),
        )


class context:
    """``with temporal.context(user="alice", reason="import"):`` (or ``async with``).

    Every version written inside the block, by any write path including bulk
    operations, records ``user`` and ``reason``. The block runs in a transaction on
    ``using`` (a savepoint when one is already open).
    """

    def __init__(
        self, user: str | None = None, reason: str | None = None, using: str = "default"
    ) -> None:
        self.user = _check("user", user)
        self.reason = _check("reason", reason)
        self.using = using
        self._atomic: Any = None
        self._token: contextvars.Token[Any] | None = None
        self._outer: tuple[str | None, str | None, str] | None = None

    def _enter_db(self) -> tuple[str | None, str | None, str]:
        """Open the block's transaction, then hand the values to it; return them."""
        self._atomic = transaction.atomic(using=self.using)
        self._atomic.__enter__()
        try:
            outer = self._outer
            if outer is not None:
                stamp = outer[2]  # one timestamp per transaction
            else:
                # Taken once the transaction is open: on SQLite it holds the write lock
                # (BEGIN IMMEDIATE), so every version committed before is older.
                now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
                stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
            value = (self.user, self.reason, stamp)
            _push(self.using, value)
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return value

    def _exit_db(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc is None:
                _push(self.using, self._outer)
        finally:
            self._atomic.__exit__(exc_type, exc, tb)

    def __enter__(self) -> context:
        self._outer = _CURRENT.get()
        self._token = _CURRENT.set(self._enter_db())
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            self._exit_db(exc_type, exc, tb)
        finally:
            if self._token is not None:
                _CURRENT.reset(self._token)
                self._token = None

    async def __aenter__(self) -> context:
        from dorm.db.bridge import run_sync

        self._outer = _CURRENT.get()
        self._token = _CURRENT.set(await run_sync(self._enter_db))
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        from dorm.db.bridge import run_sync

        try:
            await run_sync(self._exit_db, exc_type, exc, tb)
        finally:
            if self._token is not None:
                _CURRENT.reset(self._token)
                self._token = None
