"""The SQLite backend (sqlite3): one connection per thread, WAL, foreign keys on."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dorm import exceptions
from dorm.db.backends import sqlite_functions
from dorm.db.backends.base import (
    BaseDatabaseWrapper,
    BaseOperations,
    _get_running_loop,
    _loop_getter,
    _refuse_in_event_loop,
)

if TYPE_CHECKING:
    from dorm.models.fields import Field

__all__ = ["DatabaseWrapper", "Operations"]

UTC = datetime.UTC


def _dt_to_db(value: datetime.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # Fixed width so that text comparison orders like time.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


_fromisoformat = datetime.datetime.fromisoformat


def _dt_from_db(value: Any) -> Any:
    if type(value) is str and len(value) == 26:
        # The form _dt_to_db writes, "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: parsed with its
        # offset appended, one C call instead of a parse and a replace() (8x faster).
        try:
            return _fromisoformat(value + "+00:00")
        except ValueError:
            pass  # 26 characters of another form: the general path below
    if value is None or isinstance(value, datetime.datetime):
        return value
    parsed = datetime.datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _decimal_converter(quantum: decimal.Decimal, context: decimal.Context) -> Callable[[Any], Any]:
    """SQLite keeps a decimal column's value as an integer, a float or text: back to a
    Decimal of the field's places (DecimalField.quantize, inlined: one call per value)."""
    to_decimal = decimal.Decimal

    def convert(value: Any) -> Any:
        if value is None:
            return None
        result = to_decimal(str(value))
        try:
            return result.quantize(quantum, context=context)
        except decimal.InvalidOperation:  # more digits than declared (SQLite stores anything)
            return result

    return convert


def _duration_to_db(value: datetime.timedelta) -> int:
    return (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds


def _regexp(pattern: str | None, value: Any) -> bool | None:
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None


def _column_field(field: Field) -> Field:
    """The field whose type a column holds: a foreign key stores its target's (UUID, Decimal)."""
    while field.is_relation and hasattr(field, "target_field"):
        field = field.target_field
    return field


class Operations(BaseOperations):
    placeholder = "?"
    operators: ClassVar[dict[str, str]] = {
        "exact": "{lhs} = {rhs}",
        "iexact": "{lhs} LIKE {rhs} ESCAPE '\\'",
        # GLOB is case-sensitive, as contains/startswith/endswith are on PostgreSQL.
        "contains": "{lhs} GLOB {rhs}",
        "icontains": "{lhs} LIKE {rhs} ESCAPE '\\'",
        "startswith": "{lhs} GLOB {rhs}",
        "istartswith": "{lhs} LIKE {rhs} ESCAPE '\\'",
        "endswith": "{lhs} GLOB {rhs}",
        "iendswith": "{lhs} LIKE {rhs} ESCAPE '\\'",
        "gt": "{lhs} > {rhs}",
        "gte": "{lhs} >= {rhs}",
        "lt": "{lhs} < {rhs}",
        "lte": "{lhs} <= {rhs}",
        "regex": "{lhs} REGEXP {rhs}",
        "iregex": "{lhs} REGEXP {rhs}",  # the pattern carries (?i)
    }

    def no_limit_value(self) -> str:
        return "-1"

    def prep_pattern(self, lookup_name: str, value: str) -> str:
        if lookup_name in ("contains", "startswith", "endswith"):
            escaped = re.sub(r"([*?\[])", r"[\1]", value)
            if lookup_name == "contains":
                return f"*{escaped}*"
            return f"{escaped}*" if lookup_name == "startswith" else f"*{escaped}"
        return super().prep_pattern(lookup_name, value)

    def date_extract_sql(self, kind: str, sql: str) -> str:
        codes = {
            "year": "%Y",
            "month": "%m",
            "day": "%d",
            "hour": "%H",
            "minute": "%M",
            "week_day": "%w",
        }
        if kind not in codes:
            raise ValueError(f"cannot extract {kind!r} on SQLite")
        if kind == "week_day":  # Django's week_day: 1 = Sunday .. 7 = Saturday
            return f"(CAST(strftime('%w', {sql}) AS INTEGER) + 1)"
        return f"CAST(strftime('{codes[kind]}', {sql}) AS INTEGER)"

    def datetime_cast_date_sql(self, sql: str) -> str:
        return f"date({sql})"

    def adapter_for(self, field: Field) -> Callable[[Any], Any] | None:
        field = _column_field(field)
        kind = field.get_internal_type()
        if kind == "DateTimeField":
            return lambda v: None if v is None else _dt_to_db(v)
        if kind == "DateField":
            return lambda v: None if v is None else v.isoformat()
        if kind == "TimeField":
            return lambda v: None if v is None else v.isoformat()
        if kind == "DecimalField":
            return lambda v: None if v is None else str(v)
        if kind == "UUIDField":
            return lambda v: None if v is None else v.hex
        if kind == "DurationField":
            return lambda v: None if v is None else _duration_to_db(v)
        if kind == "JSONField":
            dumps = field.dumps  # type: ignore[attr-defined]
            return lambda v: None if v is None else dumps(v)
        return None

    def converter_for(self, field: Field) -> Callable[[Any], Any] | None:
        field = _column_field(field)
        kind = field.get_internal_type()
        if kind == "DateTimeField":
            return _dt_from_db
        if kind == "DateField":
            return lambda v: v if v is None else datetime.date.fromisoformat(str(v)[:10])
        if kind == "TimeField":
            return lambda v: v if v is None else datetime.time.fromisoformat(str(v))
        if kind == "BooleanField":
            return lambda v: v if v is None else bool(v)
        if kind == "DecimalField":
            return _decimal_converter(field._quantum, field._context)  # type: ignore[attr-defined]
        if kind == "UUIDField":
            return lambda v: v if v is None else uuid.UUID(v)
        if kind == "DurationField":
            return lambda v: v if v is None else datetime.timedelta(microseconds=v)
        if kind == "JSONField":
            return field.loads  # type: ignore[attr-defined,no-any-return]
        return None

    def explain_prefix(self, **options: Any) -> str:
        return "EXPLAIN QUERY PLAN"

    def for_update_sql(self, nowait: bool, skip_locked: bool, of: Any) -> str:
        return ""  # SQLite locks the whole database for writers; nothing to add

    def cast_sql(self, sql: str, db_type: str) -> str:
        return f"CAST({sql} AS {db_type})"

    def bulk_batch_size(self, fields_per_row: int, count: int) -> int:
        # SQLite's default limit of host parameters is 32766 (999 before 3.32).
        limit = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
        return max(1, min(count, limit // max(1, fields_per_row)))


class DatabaseWrapper(BaseDatabaseWrapper):
    vendor = "sqlite"
    display_name = "SQLite"
    ops_class = Operations
    async_backend = "dorm.db.backends.sqlite_async"
    supports_returning = sqlite3.sqlite_version_info >= (3, 35)
    supports_transactional_ddl = True
    data_types: ClassVar[dict[str, str]] = {
        "AutoField": "integer",
        "BigAutoField": "integer",
        "BinaryField": "BLOB",
        "BooleanField": "bool",
        "CharField": "varchar(%(max_length)s)",
        "DateField": "date",
        "DateTimeField": "datetime",
        "DecimalField": "decimal",
        "DurationField": "bigint",
        "FloatField": "real",
        "IntegerField": "integer",
        "BigIntegerField": "bigint",
        "GenericIPAddressField": "char(39)",
        "JSONField": "text",
        "PositiveIntegerField": "integer unsigned",
        "PositiveBigIntegerField": "bigint unsigned",
        "PositiveSmallIntegerField": "smallint unsigned",
        "FilePathField": "varchar(%(max_length)s)",
        "SmallIntegerField": "smallint",
        "TextField": "text",
        "TimeField": "time",
        "UUIDField": "char(32)",
    }

    def __init__(self, alias: str, settings_dict: dict[str, Any]) -> None:
        super().__init__(alias, settings_dict)
        name = str(settings_dict["NAME"])
        self._memory = name == ":memory:" or "mode=memory" in name
        if name == ":memory:":
            # One in-memory database shared by every thread of this process.
            self._target = f"file:dorm-{alias}-{id(self)}?mode=memory&cache=shared"
            self._uri = True
        else:
            self._target = name
            self._uri = name.startswith("file:")
        self._all: list[sqlite3.Connection] = []  # sqlite3 connections take no weakrefs
        self._keeper: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()
        # Bumped by close(): a thread's cached connection from an older generation is closed.
        self._generation = 0

    def _new_connection(self, is_async: bool = False) -> sqlite3.Connection:
        options = dict(self.settings_dict.get("OPTIONS") or {})
        timeout = float(options.pop("timeout", 5.0))
        conn = sqlite3.connect(
            self._target,
            timeout=timeout,
            isolation_level=None,  # autocommit; dorm issues BEGIN / COMMIT itself
            check_same_thread=False,  # each thread has its own; close_all() may run elsewhere
            uri=self._uri,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.create_function("REGEXP", 2, _regexp, deterministic=True)
        sqlite_functions.install(conn)
        self._connection_created(conn, is_async)
        return conn

    def _acquire(self) -> Any:
        state = self.state
        own = state.own
        if own is not None and own[1] == self._generation:
            return own[0]
        with self._conn_lock:
            if self._memory and self._keeper is None:
                self._keeper = self._new_connection()
        generation = self._generation
        conn = self._new_connection()
        state.own = (conn, generation)
        with self._conn_lock:
            self._all.append(conn)
        return conn

    def _with_retry(
        self,
        sql: str,
        params: Sequence[Any] = (),
        sensitive: Sequence[int] | None = None,
        mode: str = "all",
    ) -> Any:
        # The base class's, less what a pool needs: each thread keeps its connection (on
        # its ThreadState), so there is nothing to check out, return, or send again on a
        # new connection (a file database has no server to lose).
        try:
            state = self._local.state  # the state property, inlined
        except AttributeError:
            state = self.state
        conn = state.conn
        if conn is not None:
            if state.pending:
                self._send_savepoints(state)
            return self._once(conn, sql, params, sensitive, mode, state)
        # _get_running_loop(), or straight asyncio's getter once it has been found.
        if (_loop_getter[0] or _get_running_loop)() is not None and self.guards_event_loop:
            _refuse_in_event_loop(f"a database query ({sql[:40]}{'...' if len(sql) > 40 else ''})")
        own = state.own
        conn = own[0] if own is not None and own[1] == self._generation else self._acquire()
        try:
            return self._once(conn, sql, params, sensitive, mode, state)
        except exceptions.DatabaseError:
            if self._is_broken(conn):
                self._discard(conn)
            raise

    # fetchall() is _with_retry() in "all" mode: bound directly, one frame less per query.
    fetchall = _with_retry

    def _release(self, conn: Any) -> None:
        pass  # the thread keeps its connection

    def _is_broken(self, conn: Any) -> bool:
        try:
            conn.total_changes  # noqa: B018 - raises once the connection is closed
        except sqlite3.ProgrammingError:
            return True
        return False

    def _discard(self, conn: Any) -> None:
        state = self.state
        if state.own is not None and state.own[0] is conn:
            state.own = None
        with self._conn_lock:
            if conn in self._all:
                self._all.remove(conn)
        conn.close()

    def close(self) -> None:
        with self._conn_lock:
            conns, self._all = self._all, []
            self._generation += 1
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        # Threads' transaction state stays: a thread inside atomic() must fail on its closed
        # connection, not fall back to autocommit on a new one.

    def _begin(self, conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade.
        self._run_plain(conn, "BEGIN IMMEDIATE")

    def table_names(self) -> list[str]:
        rows = self.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
        return [r[0] for r in rows]

    def version(self) -> tuple[int, ...]:
        return sqlite3.sqlite_version_info
