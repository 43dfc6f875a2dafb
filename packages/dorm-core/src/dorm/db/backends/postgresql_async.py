"""PostgreSQL for the async API: asyncpg connections, one pool per event loop.

The SQL is the sync backend's, written for psycopg (``%s``, ``%%``); it is translated to
asyncpg's ``$1`` placeholders once per statement text and parameter types. psycopg sends
a non-string value with its type (int as int2/int4/int8/numeric by size, Decimal as
numeric, ...) and a string untyped, for the server to infer; asyncpg lets the server
infer every parameter, so the translation adds the same casts psycopg's types imply
(``$1::int2``). Codecs make asyncpg return what psycopg returns: jsonb/json decoded,
uuid as ``uuid.UUID``, timestamptz as an aware UTC datetime (the session time zone is
UTC). Rows reach users as tuples.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import ipaddress
import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from dorm.db.backends.base import BaseDatabaseWrapper
from dorm.db.backends.bridged import AsyncPool, BridgedMixin, compose
from dorm.db.backends.postgresql import _SESSION_ENDED
from dorm.db.bridge import await_
from dorm.exceptions import ImproperlyConfigured, OperationalError

__all__ = [
    "AsyncpgIO",
    "bridged_class",
    "connect_kwargs",
    "register_text_param",
    "translate_placeholders",
]

logger = logging.getLogger("dorm.db")

_PLACEHOLDER = re.compile(r"%[s%]")
_cursor_ids = itertools.count(1)
_translated: dict[tuple[str, tuple[str | None, ...]], str] = {}
# asyncpg's words for a value it could not encode (the server never saw the statement).
_ARGUMENT = re.compile(r"^invalid input for query argument \$(\d+)")
# The casts psycopg's binary types imply, by exact Python type (str and None: none).
_CASTS: dict[type, str] = {
    bool: "boolean",
    float: "float8",
    decimal.Decimal: "numeric",
    datetime.date: "date",
    datetime.timedelta: "interval",
    uuid.UUID: "uuid",
    bytes: "bytea",
    bytearray: "bytea",
    memoryview: "bytea",
    ipaddress.IPv4Address: "inet",
    ipaddress.IPv6Address: "inet",
    ipaddress.IPv4Interface: "inet",
    ipaddress.IPv6Interface: "inet",
    ipaddress.IPv4Network: "cidr",
    ipaddress.IPv6Network: "cidr",
}
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _import_asyncpg() -> Any:
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImproperlyConfigured(
            "the async API on PostgreSQL needs asyncpg: pip install 'dorm-core[postgresql]'"
        ) from exc
    return asyncpg


# Classes of bound values that asyncpg gets as ``str(value)`` (see register_text_param).
_TEXT_PARAMS: set[type] = set()


def register_text_param(cls: type) -> None:
    """Send bound values of exactly ``cls`` to asyncpg as ``str(value)``.

    For a plugin's parameter class that psycopg sends through a dumper of its own (say,
    in a binary form) while asyncpg, which has no codec for the column's type, needs the
    type's text form; the statement gives the server the type (``CAST(%s AS vector)``).
    """
    _TEXT_PARAMS.add(cls)


def _as_text(params: Sequence[Any]) -> Sequence[Any]:
    if not any(type(p) in _TEXT_PARAMS for p in params):
        return params
    return [str(p) if type(p) in _TEXT_PARAMS else p for p in params]


def _cast(value: Any) -> str | None:
    kind = type(value)
    if kind is str or value is None:
        return None
    if kind is int:
        if -32768 <= value <= 32767:
            return "int2"
        if -2147483648 <= value <= 2147483647:
            return "int4"
        return "int8" if -(2**63) <= value < 2**63 else "numeric"
    if kind is datetime.datetime:
        return "timestamp" if value.tzinfo is None else "timestamptz"
    if kind is datetime.time:
        return "time" if value.tzinfo is None else "timetz"
    found = _CASTS.get(kind)
    if found is None and hasattr(value, "obj") and hasattr(value, "dumps"):
        return "jsonb"  # psycopg's Jsonb wrapper, which the sync adapters produce
    return found


def translate_placeholders(sql: str, casts: tuple[str | None, ...] = ()) -> str:
    """psycopg's ``%s`` / ``%%`` -> asyncpg's ``$1``/``$1::type`` / ``%`` (cached)."""
    key = (sql, casts)
    out = _translated.get(key)
    if out is None:
        counter = 0

        def number(match: re.Match[str]) -> str:
            nonlocal counter
            if match.group() == "%%":
                return "%"
            cast = casts[counter] if counter < len(casts) else None
            counter += 1
            return f"${counter}::{cast}" if cast else f"${counter}"

        out = _PLACEHOLDER.sub(number, sql)
        if len(_translated) > 4096:
            _translated.clear()
        _translated[key] = out
    return out


# DB-API names by SQLSTATE class, as psycopg assigns them; dorm maps the names onto its
# own exception classes (dorm.db.backends.base.translate_error).
_BY_CLASS = {
    "23": "IntegrityError",
    "22": "DataError",
    "0A": "NotSupportedError",
    "42": "ProgrammingError",
    "26": "ProgrammingError",
    "2F": "ProgrammingError",
    "34": "ProgrammingError",
    "3D": "ProgrammingError",
    "3F": "ProgrammingError",
    "44": "ProgrammingError",
    "08": "OperationalError",
    "40": "OperationalError",
    "53": "OperationalError",
    "54": "OperationalError",
    "55": "OperationalError",
    "57": "OperationalError",
    "58": "OperationalError",
    "F0": "OperationalError",
    "HV": "OperationalError",
    "25": "InternalError",
    "2B": "InternalError",
    "2D": "InternalError",
    "XX": "InternalError",
}


class DriverError(Exception):
    """An asyncpg error renamed after its DB-API class; ``sqlstate`` kept."""

    sqlstate: str | None = None


_classes: dict[str, type[DriverError]] = {
    name: type(name, (DriverError,), {"__module__": __name__})
    for name in {
        *_BY_CLASS.values(),
        "DatabaseError",
        "InterfaceError",
    }
}


def _driver_error(exc: BaseException) -> DriverError:
    asyncpg = _import_asyncpg()
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and state:
        name = _BY_CLASS.get(state[:2], "DatabaseError")
    elif isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.InternalClientError
        | OSError,
    ):
        # The connection is gone or its protocol state is lost (an operation was cut off
        # by a restart): an operational failure, as psycopg reports one.
        name = "OperationalError"
    elif isinstance(exc, asyncpg.exceptions.DataError):
        name = "DataError"  # a parameter asyncpg could not encode
    elif isinstance(exc, asyncpg.InterfaceError):
        name = "InterfaceError"
    else:
        name = "DatabaseError"
    # asyncpg's text already carries the DETAIL and HINT lines, as psycopg's does.
    error = _classes[name](str(exc))
    error.sqlstate = state
    return error


def _rowcount(status: bytes | str | None) -> int:
    if not status:
        return -1
    last = status.rsplit(None, 1)[-1]
    return int(last) if last.isdigit() else -1


class _Cursor:
    """The DB-API cursor the sync statement path expects, over one asyncpg connection."""

    __slots__ = ("_conn", "_rows", "_declared", "_first", "itersize", "rowcount", "named")

    def __init__(self, conn: _Connection, named: bool) -> None:
        self._conn = conn
        self._rows: list[tuple[Any, ...]] = []
        self._declared: str | None = None
        self.named = named
        self.rowcount = -1
        self._first: Any = None  # the first row (an asyncpg Record): its keys name columns
        self.itersize = 2000

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raw = self._conn.raw
        if _TEXT_PARAMS and params:
            params = _as_text(params)
        casts = tuple(map(_cast, params)) if params else ()
        while True:
            try:
                if self.named:
                    # A server-side cursor, declared as psycopg declares its named ones (it
                    # needs a transaction, which stream() has begun).
                    name = f"dorm_async_{next(_cursor_ids)}"
                    query = translate_placeholders(sql, casts)
                    await_(
                        raw._execute(
                            f'DECLARE "{name}" NO SCROLL CURSOR FOR {query}', params, 0, None
                        )
                    )
                    self._declared = name
                    return
                if not params and sql.startswith(_TRANSACTION_CONTROL):
                    status = await_(raw.execute(sql))  # simple protocol: nothing to prepare
                    rows: list[Any] = []
                else:
                    query = translate_placeholders(sql, casts)
                    rows, status, _done = await_(
                        raw._execute(query, params, 0, None, return_status=True)
                    )
                break
            except Exception as exc:
                retry = _text_cast(exc, params, casts)
                if retry is None:
                    raise self._failed(exc) from exc
                casts = retry
        # asyncpg Records index, slice and unpack like tuples; the ORM reads them as they
        # are, and the user-facing cursor and connection turn them into tuples.
        self._rows = rows
        self._first = rows[0] if rows else None
        self.rowcount = _rowcount(status)

    @property
    def description(self) -> Any:
        """DB-API column descriptions (name only), known when the statement returned rows."""
        if self._first is None:
            return None
        # A Record iterates over its values: .keys() gives the column names.
        names = self._first.keys()
        return [(name, None, None, None, None, None, None) for name in names]

    def executemany(self, sql: str, seq_params: Sequence[Sequence[Any]]) -> None:
        if _TEXT_PARAMS:
            seq_params = [_as_text(params) for params in seq_params]
        try:
            # Rows may differ in types (None, then an int): the server infers them instead.
            await_(self._conn.raw.executemany(translate_placeholders(sql), seq_params))
        except Exception as exc:
            raise self._failed(exc) from exc
        self.rowcount = -1  # asyncpg reports no count for executemany

    def _failed(self, exc: Exception) -> DriverError:
        """The DB-API error for ``exc``; the connection is doubtful unless the server
        answered with an error that leaves the session usable."""
        error = _driver_error(exc)
        state = error.sqlstate
        if state in _SESSION_ENDED or (
            state is None and not isinstance(exc, _import_asyncpg().exceptions.DataError)
        ):
            self._conn.doubtful = True
        return error

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        if not self._rows:
            return None
        return self._rows.pop(0)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        if self._declared is None:
            rows, self._rows = self._rows[:size], self._rows[size:]
            return rows
        try:
            records = await_(self._conn.raw.fetch(f'FETCH {int(size)} FROM "{self._declared}"'))
        except Exception as exc:
            raise self._failed(exc) from exc
        return records  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Any]:
        while True:
            rows = self.fetchmany(self.itersize)
            if not rows:
                return
            yield from rows

    def close(self) -> None:
        self._rows = []
        name, self._declared = self._declared, None
        raw = self._conn.raw
        if name is not None and not raw.is_closed() and raw.is_in_transaction():
            # Closed now, not at COMMIT: a long aatomic() block may iterate many times. In a
            # failed transaction CLOSE fails too; the ROLLBACK that follows ends the cursor.
            try:
                await_(raw.execute(f'CLOSE "{name}"'))
            except Exception as exc:
                logger.debug("CLOSE %s failed: %s", name, exc)


def _text_cast(
    exc: BaseException, params: Sequence[Any], casts: tuple[str | None, ...]
) -> tuple[str | None, ...] | None:
    """New casts after asyncpg refused a string where the server inferred another type
    (``CAST(%s AS integer)`` with "42"): psycopg sends strings untyped, so the server
    converts the text; ``$n::text`` asks for the same. The refusal happens before the
    statement is sent, so a retry is safe inside a transaction."""
    if type(exc).__name__ != "DataError":
        return None
    found = _ARGUMENT.search(str(exc))
    if found is None:
        return None
    index = int(found.group(1)) - 1
    if not 0 <= index < len(params) or type(params[index]) is not str:
        return None
    full = list(casts) + [None] * (len(params) - len(casts))
    if full[index] == "text":
        return None
    full[index] = "text"
    return tuple(full)


class _Connection:
    """One asyncpg connection checked out of a pool, shaped like a psycopg connection.

    ``doubtful`` is set when a statement failed without an answer from the server (the
    connection was cut, an operation was interrupted, asyncpg's own state is off): such a
    connection is discarded rather than given back, or the next task to take it could get
    "another operation is in progress".
    """

    __slots__ = ("doubtful", "pool", "raw")

    def __init__(self, pool: AsyncPool, raw: Any) -> None:
        self.pool = pool
        self.raw = raw
        self.doubtful = False

    def cursor(self, name: str | None = None) -> _Cursor:
        return _Cursor(self, named=name is not None)

    @property
    def closed(self) -> bool:
        return bool(self.raw.is_closed())

    @property
    def broken(self) -> bool:
        return self.doubtful or self.closed


class _Pool(AsyncPool):
    """The asyncpg connections of one event loop (see ``AsyncPool``).

    asyncpg's own Pool gives every connection back through a shielded task and, by
    default, a reset query: two more event-loop iterations, or a round trip, for every
    statement dorm runs outside a transaction. A statement cancelled mid-flight is
    cancelled on the server by asyncpg, whose next operation on that connection waits
    for the cancellation to finish.
    """

    def __init__(self, alias: str, settings: dict[str, Any], connect: Any) -> None:
        super().__init__(alias, int(settings["MAX_POOL_SIZE"]), float(settings["POOL_TIMEOUT"]))
        self.min_size = int(settings["MIN_POOL_SIZE"])
        self._connect = connect  # a coroutine function: a new, initialized connection

    async def _open(self) -> Any:
        return await self._connect()

    def _closed(self, conn: Any) -> bool:
        return bool(conn.is_closed())

    def _in_transaction(self, conn: Any) -> bool:
        return bool(conn.is_in_transaction())

    async def _rollback(self, conn: Any) -> None:
        await conn.execute("ROLLBACK")

    def _close_now(self, conn: Any) -> None:
        conn.terminate()

    async def _close_gently(self, conn: Any) -> None:
        await conn.close(timeout=5)


def connect_kwargs(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """asyncpg.connect() arguments for a DATABASES entry (OPTIONS as libpq names them)."""
    s = settings_dict
    kwargs: dict[str, Any] = {"database": s["NAME"]}
    for key, name in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host")):
        if s.get(key) not in ("", None):
            kwargs[name] = s[key]
    if s.get("PORT") not in ("", None):
        kwargs["port"] = int(s["PORT"])
    server_settings = {"TimeZone": "UTC"}
    for key, value in (s.get("OPTIONS") or {}).items():
        if key == "connect_timeout":
            kwargs["timeout"] = float(value)
        elif key == "sslmode":
            kwargs["ssl"] = value
        elif key in ("passfile", "target_session_attrs"):
            kwargs[key] = value
        elif key == "options":
            # libpq's "-c name=value -c ..." becomes server settings.
            for part in str(value).replace("-c ", "\0").split("\0"):
                if "=" in part:
                    name, _eq, setting = part.strip().partition("=")
                    server_settings[name.strip()] = setting.strip()
        else:
            server_settings[key] = str(value)
    kwargs["server_settings"] = server_settings
    return kwargs


def _encode_json(value: Any) -> str:
    # dorm encodes JSONField values itself (the field's encoder); psycopg's Jsonb wrapper
    # carries that text. A str is JSON text already, as asyncpg's own codec takes it.
    if isinstance(value, str):
        return value
    dumps = getattr(value, "dumps", None)
    if dumps is not None and hasattr(value, "obj"):
        return str(dumps(value.obj))
    return json.dumps(value)


def bridged_class(sync_class: type[BaseDatabaseWrapper]) -> type[BaseDatabaseWrapper]:
    """``sync_class`` (the PostgreSQL wrapper or a plugin's subclass of it) on asyncpg."""
    return compose(AsyncpgIO, sync_class)


class AsyncpgIO(BridgedMixin):
    """The I/O of the PostgreSQL backend on asyncpg; mixed in before the sync class."""

    # asyncpg types each parameter from the statement: an array parameter takes a list.
    array_text_params = False

    def __init__(self, sync: BaseDatabaseWrapper) -> None:
        super().__init__(sync.alias, sync.settings_dict)  # type: ignore[call-arg]
        self._asyncpg = _import_asyncpg()
        self._init_bridge(sync)

    async def _init_connection(self, conn: Any) -> None:
        for name in ("jsonb", "json"):
            await conn.set_type_codec(
                name, encoder=_encode_json, decoder=json.loads, schema="pg_catalog"
            )
        # asyncpg's own UUID type is a subclass; the API promises uuid.UUID itself.
        await conn.set_type_codec(
            "uuid", encoder=str, decoder=uuid.UUID, schema="pg_catalog", format="text"
        )
        self._connection_created(conn, is_async=True)  # type: ignore[attr-defined]

    async def _new_connection_async(self) -> Any:
        try:
            conn = await self._asyncpg.connect(**connect_kwargs(self.settings_dict))
        except (TimeoutError, OSError, self._asyncpg.PostgresError) as exc:
            raise OperationalError(f"cannot connect to {self.alias!r} (asyncpg): {exc}") from exc
        try:
            await self._init_connection(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _open_pool(self, loop: asyncio.AbstractEventLoop) -> Any:
        pool = _Pool(self.alias, self.settings_dict, self._new_connection_async)
        try:
            await pool.fill(pool.min_size)
        except BaseException:
            pool.terminate()
            raise
        return pool

    def _acquire(self) -> Any:
        return _Connection(*self._checkout())

    def _release(self, conn: Any) -> None:
        if not conn.pool.put(conn.raw):
            await_(conn.pool.restore(conn.raw))

    def _discard(self, conn: Any) -> None:
        conn.pool.drop(conn.raw)

    def _retryable(self, conn: Any, exc: BaseException) -> bool:
        state = getattr(exc, "sqlstate", None)
        return state in _SESSION_ENDED or (
            state is None and type(exc).__name__ == "OperationalError"
        )
