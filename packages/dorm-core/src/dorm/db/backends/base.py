"""What every backend shares: per-thread connection state, statement execution with logging,
hooks, masking and error translation, and the vendor operations interface."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

from dorm import exceptions, plugins, signals
from dorm.db.utils import mask_message, mask_params

if TYPE_CHECKING:
    from dorm.models.fields import Field

__all__ = ["BaseDatabaseWrapper", "BaseOperations", "CursorWrapper", "ThreadState"]

logger = logging.getLogger("dorm.db")

_TRANSACTION_CONTROL = frozenset({"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"})
_TRANSACTION_STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")

_ERROR_MAP: dict[str, type[exceptions.DatabaseError]] = {
    "IntegrityError": exceptions.IntegrityError,
    "OperationalError": exceptions.OperationalError,
    "ProgrammingError": exceptions.ProgrammingError,
    "DataError": exceptions.DataError,
    "NotSupportedError": exceptions.NotSupportedError,
    "InterfaceError": exceptions.InterfaceError,
    "InternalError": exceptions.DatabaseError,
    "DatabaseError": exceptions.DatabaseError,
}


def translate_error(
    exc: BaseException, params: Sequence[object] = (), sensitive: Sequence[int] | None = None
) -> exceptions.DatabaseError:
    """Map a DB-API exception onto dorm's classes, masking sensitive values in its text."""
    target: type[exceptions.DatabaseError] = exceptions.DatabaseError
    for klass in type(exc).__mro__:
        found = _ERROR_MAP.get(klass.__name__)
        if found is not None:
            target = found
            break
    error = target(mask_message(str(exc).strip(), params, sensitive))
    # psycopg: exc.sqlstate (and exc.diag.sqlstate); the async backend's errors carry it too.
    error.sqlstate = getattr(exc, "sqlstate", None) or getattr(
        getattr(exc, "diag", None), "sqlstate", None
    )
    return error


def _cause(error: BaseException, exc: BaseException) -> BaseException | None:
    """``exc`` to chain under ``error``, or None when masking changed the message: the
    driver's own exception still quotes the sensitive value, so it must not be shown."""
    return exc if str(error) == str(exc).strip() else None


# Frames of these modules sit between an ORM method and the statement it runs.
_PASS_THROUGH = frozenset({"contextlib", "functools"})
_EVALUATE = frozenset({"__iter__", "__len__", "__bool__", "__getitem__", "__repr__"})


def _describe(frame: FrameType) -> tuple[str, str] | None:
    """``(what was called, its async twin)`` for one ORM frame, or None when not public."""
    from dorm.models import Model
    from dorm.models.query import QuerySet
    from dorm.transaction import Atomic

    name: str = frame.f_code.co_name
    this = frame.f_locals.get("self")
    if (name == "manager_method" or name.startswith("_manager_")) and this is not None:
        # A QuerySet method proxied on a manager, or a manager's own get() / create().
        model = getattr(getattr(this, "model", None), "__name__", "Model")
        prefix = f"{model}.{getattr(this, 'name', 'objects')}"
        method = frame.f_locals.get("name", "get") if name == "manager_method" else name[9:]
        return f"{prefix}.{method}()", f"`await {prefix}.a{method}()`"
    if name == "__get__" and type(this).__name__ == "ForwardManyToOneDescriptor":
        instance = frame.f_locals.get("instance")
        field = getattr(this, "field", None)
        if instance is not None and field is not None:
            owner = type(instance).__name__
            target = field.related_model.__name__
            return (
                f"{owner.lower()}.{field.name} (a relation not loaded yet, read lazily)",
                f"select_related({field.name!r}) on the query, or `await "
                f"{target}.objects.aget(pk={owner.lower()}.{field.attname})`",
            )
    if isinstance(this, Atomic) and name == "__enter__":
        return "transaction.atomic()", "`async with transaction.aatomic()`"
    if isinstance(this, QuerySet):
        model = getattr(this.model, "__name__", "Model")
        if name in _EVALUATE:
            return f"evaluating a {model} QuerySet", "`async for obj in queryset`"
        if not name.startswith("_"):
            return f"{model} QuerySet.{name}()", f"`await queryset.a{name}()`"
    if isinstance(this, Model) and not name.startswith("_"):
        model = type(this).__name__
        return f"{model}.{name}()", f"`await {model.lower()}.a{name}()`"
    if name == "warmup_pool" and frame.f_globals.get("__name__") == "dorm.db.connection":
        return "warmup_pool()", "`await awarmup_pool()`"
    return None


def _sync_only(operation: str) -> exceptions.SynchronousOnlyOperation:
    """The error for a blocking call made from a running event loop, naming the outermost
    ORM call on the stack (found only now, on the error path) and its async twin."""
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == "dorm" or module.startswith("dorm."):
            frames.append(frame)
        elif module not in _PASS_THROUGH:
            break
        frame = frame.f_back
    found = None
    for candidate in reversed(frames):
        found = _describe(candidate)
        if found is not None:
            break
    del frames, frame
    what, twin = found or (
        operation,
        "the async API (`await Model.objects.aget()`, `await obj.asave()`, ...)",
    )
    return exceptions.SynchronousOnlyOperation(
        f"{what} was called from a running event loop: use {twin} (or run it in a thread "
        f"with asyncio.to_thread); scripts and notebooks may set DORM_ALLOW_ASYNC_UNSAFE=1"
    )


def _get_running_loop() -> Any:
    """The running event loop of this thread, or None; asyncio is not imported for it
    (no loop can run before something else imported asyncio), which keeps it out of
    ``import dorm``. Asyncio's getter is looked up once, when it first exists."""
    getter = _loop_getter[0]
    if getter is None:
        events = sys.modules.get("asyncio.events")
        # Another thread may still be importing asyncio: then no loop runs in this one.
        getter = getattr(events, "_get_running_loop", None)
        if getter is None:
            return None
        _loop_getter[0] = getter
    return getter()


_loop_getter: list[Callable[[], Any] | None] = [None]


def _refuse_in_event_loop(operation: str) -> None:
    """Raise SynchronousOnlyOperation unless DORM_ALLOW_ASYNC_UNSAFE=1 (only called when
    ``_get_running_loop()`` found a loop, so the environment is read on that path only)."""
    if os.environ.get("DORM_ALLOW_ASYNC_UNSAFE", "") not in ("1", "true", "yes"):
        raise _sync_only(operation)


class _Block:
    """One open ``atomic()`` block (plain slotted classes here: a dataclass would import
    inspect, a tenth of ``import dorm``)."""

    __slots__ = ("durable", "rollback", "savepoint", "started")

    def __init__(
        self, savepoint: str | None, durable: bool, started: float, rollback: bool = False
    ) -> None:
        self.savepoint = savepoint
        self.durable = durable
        self.started = started
        self.rollback = rollback

    def __repr__(self) -> str:
        return (
            f"_Block(savepoint={self.savepoint!r}, durable={self.durable!r}, "
            f"rollback={self.rollback!r})"
        )


class ThreadState:
    """One thread's view of one alias: the held connection and the atomic blocks."""

    __slots__ = (
        "blocks",
        "conn",
        "manual_savepoints",
        "on_commit",
        "own",
        "pending",
        "savepoint_counter",
    )

    def __init__(self) -> None:
        self.conn: Any = None
        # A backend without a pool (SQLite) keeps one connection per thread between
        # statements: (that connection, the wrapper's generation it was opened in).
        self.own: tuple[Any, int] | None = None
        self.blocks: list[_Block] = []
        self.on_commit: list[tuple[tuple[str | None, ...], Callable[[], Any]]] = []
        self.savepoint_counter = 0
        # Savepoints of nested atomic() blocks not sent yet: a SAVEPOINT goes to the server
        # just before the block's first statement, so a block that runs none costs no
        # round trip (a task queue runs every task in one, most of them on nothing).
        self.pending: list[str] = []
        # transaction.savepoint() ids still open: name -> (block depth, len(on_commit)).
        self.manual_savepoints: dict[str, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"ThreadState(conn={self.conn!r}, blocks={self.blocks!r})"


def _tuples(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Rows as tuples (the async PostgreSQL driver returns Records, which index alike)."""
    if not rows or type(rows[0]) is tuple:
        return rows
    return [tuple(row) for row in rows]


class CursorWrapper:
    """A DB-API cursor whose ``execute`` goes through dorm's logging, hooks and errors."""

    def __init__(self, db: BaseDatabaseWrapper, cursor: Any) -> None:
        self.db = db
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[object] = ()) -> CursorWrapper:
        self.db._run(self.cursor, sql, params, None, many=False)
        return self

    def executemany(self, sql: str, seq_params: Sequence[Sequence[object]]) -> CursorWrapper:
        self.db._run(self.cursor, sql, seq_params, None, many=True)
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self.cursor.fetchone()
        return row if row is None or type(row) is tuple else tuple(row)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return _tuples(self.cursor.fetchmany(size))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return _tuples(self.cursor.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self.cursor.rowcount)

    @property
    def description(self) -> Any:
        return self.cursor.description

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for row in self.cursor:
            yield row if type(row) is tuple else tuple(row)


class BaseOperations:
    """Vendor SQL: quoting, placeholders, lookup operators, value adapters and converters."""

    placeholder: ClassVar[str] = "%s"
    # Lookup name -> SQL template with {lhs} and {rhs}; rhs is a placeholder or expression.
    operators: ClassVar[dict[str, str]] = {}

    def __init__(self, db: BaseDatabaseWrapper) -> None:
        self.db = db

    @staticmethod
    def quote_name(name: str) -> str:
        """``name`` as one quoted identifier: embedded quotes doubled, never passed through.

        A name that already looks quoted is quoted again, its quotes doubled: a shortcut
        for "already quoted" names let a crafted alias close the identifier and write
        SQL. NUL cannot be sent in a statement on any vendor.
        """
        if "\x00" in name:
            raise ValueError(f"the identifier {name!r} contains a NUL character")
        return '"' + name.replace('"', '""') + '"'

    def limit_offset_sql(self, low: int, high: int | None) -> str:
        parts = []
        if high is not None:
            parts.append(f"LIMIT {int(high) - int(low)}")
        elif low:
            parts.append(f"LIMIT {self.no_limit_value()}")
        if low:
            parts.append(f"OFFSET {int(low)}")
        return " ".join(parts)

    def no_limit_value(self) -> str:
        return "ALL"

    def pattern_escape(self, value: str) -> str:
        """Escape LIKE wildcards so the value matches literally."""
        return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    def lookup_sql(self, lookup_name: str, lhs: str, rhs: str) -> str:
        return self.operators[lookup_name].format(lhs=lhs, rhs=rhs)

    def prep_pattern(self, lookup_name: str, value: str) -> str:
        """Turn the value of contains/startswith/... into the pattern the operator expects."""
        escaped = self.pattern_escape(value)
        if lookup_name.endswith("contains"):
            return f"%{escaped}%"
        if lookup_name.endswith("startswith"):
            return f"{escaped}%"
        if lookup_name.endswith("endswith"):
            return f"%{escaped}"
        return escaped

    def date_extract_sql(self, kind: str, sql: str) -> str:
        raise NotImplementedError

    def datetime_cast_date_sql(self, sql: str) -> str:
        raise NotImplementedError

    def adapter_for(self, field: Field) -> Callable[[Any], Any] | None:
        """Python value (after ``get_db_prep_value``) -> driver value, or None for as-is."""
        return None

    def converter_for(self, field: Field) -> Callable[[Any], Any] | None:
        """Driver value -> Python value, or None for as-is."""
        return None

    def explain_prefix(self, **options: Any) -> str:
        return "EXPLAIN"

    def for_update_sql(self, nowait: bool, skip_locked: bool, of: Sequence[str]) -> str:
        sql = "FOR UPDATE"
        if of:
            sql += " OF " + ", ".join(of)
        if nowait:
            sql += " NOWAIT"
        if skip_locked:
            sql += " SKIP LOCKED"
        return sql

    def cast_sql(self, sql: str, db_type: str) -> str:
        return f"CAST({sql} AS {db_type})"

    def quote_value(self, value: Any) -> str:
        """An SQL literal for DDL, where bound parameters are not allowed (CHECK, DEFAULT)."""
        import datetime
        import decimal
        import uuid

        if value is None:
            return "NULL"
        literal = getattr(value, "__sql_literal__", None)
        if literal is not None:  # a plugin's parameter class writes its own literal
            return str(literal(self.db.vendor))
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (int, float, decimal.Decimal)):
            return str(value)
        if isinstance(value, (datetime.date, datetime.time, uuid.UUID)):
            value = str(value)
        if isinstance(value, bytes):
            return f"X'{value.hex()}'"
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("NUL characters cannot appear in an SQL literal")
            return "'" + value.replace("'", "''") + "'"
        raise TypeError(f"cannot write {value!r} as an SQL literal")

    def bulk_batch_size(self, fields_per_row: int, count: int) -> int:
        return count


class BaseDatabaseWrapper:
    """One configured alias. Shared by all threads; each thread has its own state."""

    vendor: ClassVar[str] = "base"
    display_name: ClassVar[str] = "base"
    ops_class: ClassVar[type[BaseOperations]] = BaseOperations
    # Field internal type -> column type template (``%(max_length)s`` style).
    data_types: ClassVar[dict[str, str]] = {}
    supports_returning: ClassVar[bool] = True
    supports_select_for_update: ClassVar[bool] = False
    supports_server_side_cursors: ClassVar[bool] = False
    supports_transactional_ddl: ClassVar[bool] = True
    can_defer_constraint_checks: ClassVar[bool] = False
    max_query_params: ClassVar[int] = 65535
    # Whether an array parameter may be sent as the array's text form (a ``str``) where
    # the statement casts it (``%s::integer[]``): the driver passes it as untyped text.
    array_text_params: ClassVar[bool] = False
    # False on the bridged (async API) wrappers, whose I/O is awaited on the running loop.
    guards_event_loop: ClassVar[bool] = True
    # Module with the vendor's ``BridgedDatabaseWrapper`` (the async API), or None.
    async_backend: ClassVar[str | None] = None

    def __init__(self, alias: str, settings_dict: dict[str, Any]) -> None:
        self.alias = alias
        self.settings_dict = settings_dict
        self.ops = self.ops_class(self)
        self._local = threading.local()
        self._captures: list[list[dict[str, Any]]] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r} vendor={self.vendor!r}>"

    # -- per-thread state ----------------------------------------------------------------

    @property
    def state(self) -> ThreadState:
        try:
            return self._local.state  # type: ignore[no-any-return]
        except AttributeError:
            state = self._local.state = ThreadState()
            return state

    @property
    def in_atomic_block(self) -> bool:
        return bool(self.state.blocks)

    # -- physical connections (vendor-specific) ---------------------------------------------

    def _acquire(self) -> Any:
        """Return a raw connection for this thread (from the pool, or the thread's own)."""
        raise NotImplementedError

    def _release(self, conn: Any) -> None:
        """Give back a connection obtained from ``_acquire`` outside a transaction."""
        raise NotImplementedError

    def _discard(self, conn: Any) -> None:
        """Drop a connection that is broken or in an unknown transaction state."""
        raise NotImplementedError

    def _is_broken(self, conn: Any) -> bool:
        return False

    def close(self) -> None:
        """Close every connection of this alias (pools included)."""

    def _connection_created(self, conn: Any, is_async: bool = False) -> None:
        plugins.get_plugin_manager().hook.dorm_connection_created(
            alias=self.alias, vendor=self.vendor, connection=conn, is_async=is_async
        )

    def warmup(self, target: int) -> int:
        """Open connections until this alias holds ``target``; return how many it holds.

        Without a pool (SQLite) this opens the calling thread's connection: size 1.
        """
        with self.connection():
            pass
        return 1

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """Yield the raw connection for one unit of work: the transaction's, or a checkout."""
        state = self.state
        if state.conn is not None:
            if state.pending:
                self._send_savepoints(state)
            yield state.conn
            return
        if _get_running_loop() is not None and self.guards_event_loop:
            _refuse_in_event_loop("a database connection checkout")
        conn = self._acquire()
        try:
            yield conn
        except BaseException:
            if self._is_broken(conn):
                self._discard(conn)
            else:
                self._release(conn)
            raise
        else:
            self._release(conn)

    @contextmanager
    def cursor(self) -> Iterator[CursorWrapper]:
        """``with connection.cursor() as cur: cur.execute(sql, params)``, as in Django."""
        with self.connection() as conn:
            cur = self._new_cursor(conn)
            try:
                yield CursorWrapper(self, cur)
            finally:
                cur.close()

    # -- execution ----------------------------------------------------------------------------

    @staticmethod
    def _new_cursor(conn: Any) -> Any:
        """``conn.cursor()``, with a driver error (a closed connection) translated."""
        try:
            return conn.cursor()
        except Exception as exc:
            raise translate_error(exc) from exc

    def _retryable(self, conn: Any, exc: BaseException) -> bool:
        """True when a statement failed only because an idle pooled connection was dead."""
        return False

    def _run(
        self,
        cursor: Any,
        sql: str,
        params: Sequence[Any],
        sensitive: Sequence[int] | None,
        many: bool,
        observed: bool | None = None,
    ) -> None:
        """Execute on ``cursor`` with logging, query hooks, capture and error translation.

        ``observed``: ``signals.queries_observed()`` when the caller has just asked it."""
        blocks = self.state.blocks
        if blocks and blocks[-1].rollback and not sql.startswith(_TRANSACTION_STATEMENTS):
            # As in Django: after an error (or set_rollback(True)) the block is doomed; a
            # later statement would fail on PostgreSQL and silently go on on SQLite.
            raise exceptions.TransactionManagementError(
                f"an error occurred in the current transaction on {self.alias!r}: no more "
                f"statements can run until the end of the atomic() block (wrap the statement "
                f"that may fail in its own atomic() to recover from its error)"
            )
        has_hooks = signals.queries_observed(self.alias) if observed is None else observed
        if not (has_hooks or self._captures or logger.isEnabledFor(logging.DEBUG)):
            # Nothing observes this statement (the common case): no clock, no report.
            try:
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
            except Exception as exc:
                failed = self._failed(exc, blocks, params, sensitive, many)
                self._query_failed(sql, exc, failed)
                raise failed from _cause(failed, exc)
            return
        shown: Sequence[object] = ()
        if has_hooks:
            shown = self._shown(params, sensitive, many)
            # Observers usually want only the end of a statement (its duration): no
            # pre_query send for them.
            if signals.pre_query.has_listeners(self.alias):
                signals.pre_query.send(
                    sender=self.alias, alias=self.alias, vendor=self.vendor, sql=sql, params=shown
                )
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
        except Exception as exc:
            error = self._failed(exc, blocks, params, sensitive, many)
            self._query_failed(sql, exc, error)
            raise error from _cause(error, exc)
        finally:
            duration = time.perf_counter() - start
            if has_hooks or self._captures or logger.isEnabledFor(logging.DEBUG):
                if not has_hooks:
                    shown = self._shown(params, sensitive, many)
                self._report(cursor, sql, shown, duration, error, has_hooks)

    @staticmethod
    def _failed(
        exc: Exception,
        blocks: list[_Block],
        params: Sequence[Any],
        sensitive: Sequence[int] | None,
        many: bool,
    ) -> exceptions.DatabaseError:
        """The dorm error for a failed statement (values masked); dooms the atomic block."""
        if blocks:
            blocks[-1].rollback = True
        error = translate_error(exc, () if many else params, sensitive)
        if many and sensitive:
            text = str(error)
            for row in params:
                text = mask_message(text, row, sensitive)
            state, error = error.sqlstate, type(error)(text)
            error.sqlstate = state
        return error

    def _query_failed(self, sql: str, exc: Exception, error: BaseException) -> None:
        """Send ``query_failed`` (and its hook) when anything listens: error path only."""
        if signals.query_failed.has_listeners(self.alias):
            signals.query_failed.send(
                sender=self.alias,
                alias=self.alias,
                vendor=self.vendor,
                sql=sql,
                error=error,
                sqlstate=getattr(error, "sqlstate", None),
            )

    @staticmethod
    def _shown(
        params: Sequence[Any], sensitive: Sequence[int] | None, many: bool
    ) -> Sequence[object]:
        if many:
            return [mask_params(p, sensitive) for p in params]
        return mask_params(params, sensitive)

    def _report(
        self,
        cursor: Any,
        sql: str,
        shown: Sequence[object],
        duration: float,
        error: BaseException | None,
        has_hooks: bool,
    ) -> None:
        count = getattr(cursor, "rowcount", None)
        rowcount = -1 if error is not None or count is None else int(count)
        if self._captures and sql not in _TRANSACTION_CONTROL:
            # As in Django, BEGIN / COMMIT / ROLLBACK do not count as queries (savepoints do).
            for capture in self._captures:
                capture.append({"sql": sql, "params": shown, "time": duration, "alias": self.alias})
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "(%.6f) %s; params=%r; alias=%s%s",
                duration,
                sql,
                tuple(shown),
                self.alias,
                f"; error={error}" if error is not None else "",
                extra={"duration": duration, "sql": sql, "params": shown, "alias": self.alias},
            )
        if not has_hooks:
            return
        if signals.post_query._receivers:
            signals.post_query.send(
                sender=self.alias,
                alias=self.alias,
                vendor=self.vendor,
                sql=sql,
                params=shown,
                duration=duration,
                rowcount=rowcount,
                error=error,
            )
        elif plugins.has_impls("dorm_post_query"):
            # Plugin observers only (metrics, tracing): the hook, without the signal's
            # receiver bookkeeping; the same arguments and error policy.
            plugins.notify(
                "dorm_post_query",
                sender=self.alias,
                alias=self.alias,
                vendor=self.vendor,
                sql=sql,
                params=shown,
                duration=duration,
                rowcount=rowcount,
                error=error,
            )

    def execute(
        self, sql: str, params: Sequence[Any] = (), sensitive: Sequence[int] | None = None
    ) -> int:
        """Run a statement that returns no rows; return the affected row count."""
        return self._with_retry(sql, params, sensitive, "count")  # type: ignore[no-any-return]

    def execute_lastrowid(
        self, sql: str, params: Sequence[Any] = (), sensitive: Sequence[int] | None = None
    ) -> int | None:
        """Run an INSERT that returns no rows; return the driver's ``lastrowid`` (SQLite:
        the rowid of the last row the statement inserted)."""
        return self._with_retry(sql, params, sensitive, "lastrowid")  # type: ignore[no-any-return]

    def fetchall(
        self, sql: str, params: Sequence[Any] = (), sensitive: Sequence[int] | None = None
    ) -> list[tuple[Any, ...]]:
        return self._with_retry(sql, params, sensitive, "all")  # type: ignore[no-any-return]

    def fetchone(
        self, sql: str, params: Sequence[Any] = (), sensitive: Sequence[int] | None = None
    ) -> tuple[Any, ...] | None:
        return self._with_retry(sql, params, sensitive, "one")  # type: ignore[no-any-return]

    def executemany(
        self,
        sql: str,
        seq_params: Sequence[Sequence[Any]],
        sensitive: Sequence[int] | None = None,
    ) -> int:
        with self.connection() as conn:
            cur = self._new_cursor(conn)
            try:
                self._run(cur, sql, seq_params, sensitive, many=True)
                return int(cur.rowcount)
            finally:
                cur.close()

    def _with_retry(
        self, sql: str, params: Sequence[Any], sensitive: Sequence[int] | None, mode: str
    ) -> Any:
        state = self.state
        if state.conn is not None:
            if state.pending:
                self._send_savepoints(state)
            return self._once(state.conn, sql, params, sensitive, mode, state)
        if _get_running_loop() is not None and self.guards_event_loop:
            _refuse_in_event_loop(f"a database query ({sql[:40]}{'...' if len(sql) > 40 else ''})")
        conn = self._acquire()
        try:
            result = self._once(conn, sql, params, sensitive, mode, state)
        except exceptions.DatabaseError as exc:
            broken = self._is_broken(conn)
            self._discard(conn) if broken else self._release(conn)
            if not broken or not self._retryable(conn, exc.__cause__ or exc):
                raise
            # The first try, inlined above, is the hot path; a retry goes the long way.
            logger.warning(
                "connection to %r was closed by the server; retrying on a new connection",
                self.alias,
            )
            conn = self._acquire()
            try:
                result = self._once(conn, sql, params, sensitive, mode, state)
            except BaseException:
                self._discard(conn) if self._is_broken(conn) else self._release(conn)
                raise
            self._release(conn)
            return result
        except BaseException:
            self._discard(conn) if self._is_broken(conn) else self._release(conn)
            raise
        self._release(conn)
        return result

    def _on_live_connection(
        self, action: Callable[[Any], Any], keep: bool, what: str = ""
    ) -> tuple[Any, Any]:
        """Check out a connection and run ``action(conn)`` on it.

        When it fails because the server had closed this idle pooled connection (restart,
        failover, idle timeout), the statement never ran, so it is sent once more on a new
        connection. With ``keep`` the connection stays checked out (a transaction begins).
        """
        conn = self._acquire()
        for attempt in (1, 2):
            try:
                result = action(conn)
            except exceptions.DatabaseError as exc:
                broken = self._is_broken(conn)
                if broken:
                    self._discard(conn)
                else:
                    self._release(conn)
                if not broken or attempt == 2 or not self._retryable(conn, exc.__cause__ or exc):
                    raise
                logger.warning(
                    "connection to %r was closed by the server; retrying %son a new connection",
                    self.alias,
                    f"{what} " if what else "",
                )
                conn = self._acquire()
                continue
            except BaseException:
                self._discard(conn) if self._is_broken(conn) else self._release(conn)
                raise
            if not keep:
                self._release(conn)
            return conn, result
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self,
        conn: Any,
        sql: str,
        params: Sequence[Any],
        sensitive: Sequence[int] | None,
        mode: str,
        state: ThreadState,
    ) -> Any:
        try:
            cur = conn.cursor()
        except Exception as exc:
            raise translate_error(exc) from exc
        try:
            blocks = state.blocks
            observed = signals.queries_observed(self.alias)
            if (
                (blocks and blocks[-1].rollback)
                or self._captures
                or observed
                or logger.isEnabledFor(logging.DEBUG)
            ):
                # Checks, hooks, log, capture.
                self._run(cur, sql, params, sensitive, False, observed)
            else:
                # Nothing observes this statement (the common case): _run's quiet path.
                try:
                    cur.execute(sql, params)
                except Exception as exc:
                    failed = self._failed(exc, blocks, params, sensitive, False)
                    self._query_failed(sql, exc, failed)
                    raise failed from _cause(failed, exc)
            try:
                if mode == "all":
                    return cur.fetchall()
                if mode == "one":
                    return cur.fetchone()
                if mode == "lastrowid":
                    return cur.lastrowid
            except Exception as exc:
                # SQLite reports a constraint of INSERT ... RETURNING when the rows are read.
                if not any(k.__name__ in _ERROR_MAP for k in type(exc).__mro__) or isinstance(
                    exc, exceptions.DormError
                ):
                    raise
                error = translate_error(exc, params, sensitive)
                raise error from _cause(error, exc)
            return cur.rowcount
        finally:
            cur.close()

    def _stream_cursor(self, conn: Any) -> Any:
        """The cursor ``stream()`` reads its chunks from."""
        return self._new_cursor(conn)

    def stream(
        self,
        sql: str,
        params: Sequence[Any],
        chunk_size: int,
        sensitive: Sequence[int] | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield the result in chunks of ``chunk_size`` rows without loading it all."""
        with self.connection() as conn:
            cur = self._stream_cursor(conn)
            try:
                self._run(cur, sql, params, sensitive, many=False)
                while True:
                    rows = cur.fetchmany(chunk_size)
                    if not rows:
                        break
                    yield rows
            finally:
                cur.close()

    # -- transactions (used by dorm.transaction) -----------------------------------------------

    def _begin(self, conn: Any) -> None:
        self._run_plain(conn, "BEGIN")

    def _acquire_begun(self) -> Any:
        """Check out a connection and BEGIN on it; once more on a new one if it was dead."""
        if _get_running_loop() is not None and self.guards_event_loop:
            _refuse_in_event_loop("a transaction (BEGIN)")
        conn, _none = self._on_live_connection(self._begin, keep=True, what="BEGIN")
        return conn

    def _send_savepoints(self, state: ThreadState) -> None:
        """Send the SAVEPOINTs of the open blocks that have run no statement yet."""
        while state.pending:
            self._run_plain(state.conn, f"SAVEPOINT {state.pending[0]}")
            del state.pending[0]

    def _commit(self, conn: Any) -> None:
        self._run_plain(conn, "COMMIT")

    def _rollback(self, conn: Any) -> None:
        self._run_plain(conn, "ROLLBACK")

    def _run_plain(self, conn: Any, sql: str) -> None:
        cur = self._new_cursor(conn)
        try:
            self._run(cur, sql, (), None, many=False)
        finally:
            cur.close()

    # -- schema -------------------------------------------------------------------------------

    def db_type_for(self, internal_type: str, params: dict[str, Any]) -> str | None:
        template = self.data_types.get(internal_type)
        if template is None:
            return None
        return template % params

    def table_names(self) -> list[str]:
        raise NotImplementedError

    def version(self) -> tuple[int, ...]:
        raise NotImplementedError
