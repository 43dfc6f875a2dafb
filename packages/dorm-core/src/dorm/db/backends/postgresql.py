"""The PostgreSQL backend: psycopg 3 with psycopg_pool, autocommit connections.

Outside ``atomic()`` each statement checks a connection out of the pool and gives it back;
inside, the block holds one connection from BEGIN to COMMIT. There is no liveness query on
checkout: a connection the server closed while it sat idle fails on use, is discarded,
and the statement is sent once more on a fresh connection (see ``_retryable``).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dorm import plugins
from dorm.db.backends.base import BaseDatabaseWrapper, BaseOperations
from dorm.db.backends.postgresql_pool import SyncPool
from dorm.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from dorm.models.fields import Field

__all__ = ["DatabaseWrapper", "Operations"]

# SQLSTATE classes meaning "the server ended this session" (57P01 admin_shutdown, ...),
# and connection failures (08xxx): a statement that got these never ran.
_SESSION_ENDED = ("57P01", "57P02", "57P03", "08000", "08003", "08006")


def _import_psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise ImproperlyConfigured(
            "ENGINE 'postgresql' needs psycopg 3 and psycopg_pool: "
            "pip install 'dorm-core[postgresql]'"
        ) from exc
    return psycopg, psycopg_pool


def _column_field(field: Field) -> Field:
    """The field whose type a column holds: a foreign key stores its target's (UUID, Decimal)."""
    while field.is_relation and hasattr(field, "target_field"):
        field = field.target_field
    return field


class Operations(BaseOperations):
    placeholder = "%s"
    operators: ClassVar[dict[str, str]] = {
        "exact": "{lhs} = {rhs}",
        "iexact": "UPPER({lhs}::text) = UPPER({rhs})",
        "contains": "{lhs}::text LIKE {rhs}",
        "icontains": "{lhs}::text ILIKE {rhs}",
        "startswith": "{lhs}::text LIKE {rhs}",
        "istartswith": "{lhs}::text ILIKE {rhs}",
        "endswith": "{lhs}::text LIKE {rhs}",
        "iendswith": "{lhs}::text ILIKE {rhs}",
        "gt": "{lhs} > {rhs}",
        "gte": "{lhs} >= {rhs}",
        "lt": "{lhs} < {rhs}",
        "lte": "{lhs} <= {rhs}",
        "regex": "{lhs}::text ~ {rhs}",
        "iregex": "{lhs}::text ~* {rhs}",
    }

    @staticmethod
    def quote_name(name: str) -> str:
        # psycopg reads %s placeholders anywhere in the statement, identifiers included.
        return BaseOperations.quote_name(name).replace("%", "%%")

    def date_extract_sql(self, kind: str, sql: str) -> str:
        if kind == "week_day":
            return f"(EXTRACT(DOW FROM {sql})::integer + 1)"
        if kind not in ("year", "month", "day", "hour", "minute"):
            raise ValueError(f"cannot extract {kind!r} on PostgreSQL")
        return f"EXTRACT({kind.upper()} FROM {sql})::integer"

    def datetime_cast_date_sql(self, sql: str) -> str:
        return f"({sql} AT TIME ZONE 'UTC')::date"

    def adapter_for(self, field: Field) -> Callable[[Any], Any] | None:
        field = _column_field(field)
        kind = field.get_internal_type()
        if kind == "JSONField":
            from psycopg.types.json import Jsonb

            dumps = field.dumps  # type: ignore[attr-defined]

            def to_jsonb(v: Any) -> Any:
                if v is None:
                    return None
                # Encode now, not when psycopg sends it: a value that is not JSON
                # serialisable raises the field's ValidationError, as on SQLite.
                text = dumps(v)
                return Jsonb(v, dumps=lambda _obj: text)

            return to_jsonb
        if kind == "GenericIPAddressField":
            return lambda v: None if v is None else ipaddress.ip_address(v)
        return None

    def converter_for(self, field: Field) -> Callable[[Any], Any] | None:
        field = _column_field(field)
        kind = field.get_internal_type()
        if kind == "GenericIPAddressField":
            return lambda v: v if v is None else str(v)
        # DecimalField: a numeric(p, s) column already returns s places, as Django has it;
        # computed decimals get their own converter in the compiler.
        if kind == "BinaryField":
            return lambda v: v if v is None or isinstance(v, bytes) else bytes(v)
        if kind == "JSONField":
            # psycopg has already decoded jsonb: decoding again would turn the JSON string
            # "[1]" into a list. Only a custom decoder gets to see the document as text.
            if getattr(field, "decoder", None) is None:
                return None
            loads, dumps = field.loads, field.dumps  # type: ignore[attr-defined]
            return lambda v: v if v is None else loads(dumps(v))
        return None

    def explain_prefix(self, **options: Any) -> str:
        flags = [
            f"{k.upper()}{'' if v is True else ' ' + str(v).upper()}"
            for k, v in options.items()
            if v
        ]
        for flag in flags:
            if not flag.replace(" ", "").isalnum():
                raise ValueError(f"unknown EXPLAIN option {flag!r}")
        return f"EXPLAIN ({', '.join(flags)})" if flags else "EXPLAIN"

    def quote_value(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        # Statements always go with a parameter list, so psycopg reads % as a placeholder.
        return super().quote_value(value).replace("%", "%%")

    def cast_sql(self, sql: str, db_type: str) -> str:
        return f"({sql})::{db_type}"

    def bulk_batch_size(self, fields_per_row: int, count: int) -> int:
        return max(1, min(count, 65535 // max(1, fields_per_row)))


class DatabaseWrapper(BaseDatabaseWrapper):
    vendor = "postgresql"
    display_name = "PostgreSQL"
    ops_class = Operations
    async_backend = "dorm.db.backends.postgresql_async"
    supports_returning = True
    supports_select_for_update = True
    supports_server_side_cursors = True
    can_defer_constraint_checks = True
    array_text_params = True  # psycopg sends a str as text of unknown type
    data_types: ClassVar[dict[str, str]] = {
        "AutoField": "integer",
        "BigAutoField": "bigint",
        "BinaryField": "bytea",
        "BooleanField": "boolean",
        "CharField": "varchar(%(max_length)s)",
        "DateField": "date",
        "DateTimeField": "timestamp with time zone",
        "DecimalField": "numeric(%(max_digits)s, %(decimal_places)s)",
        "DurationField": "interval",
        "FloatField": "double precision",
        "IntegerField": "integer",
        "BigIntegerField": "bigint",
        "GenericIPAddressField": "inet",
        "JSONField": "jsonb",
        "PositiveIntegerField": "integer",
        "PositiveBigIntegerField": "bigint",
        "PositiveSmallIntegerField": "smallint",
        "FilePathField": "varchar(%(max_length)s)",
        "SmallIntegerField": "smallint",
        "TextField": "text",
        "TimeField": "time",
        "UUIDField": "uuid",
    }

    def __init__(self, alias: str, settings_dict: dict[str, Any]) -> None:
        super().__init__(alias, settings_dict)
        self._psycopg, self._psycopg_pool = _import_psycopg()
        self._pools = SyncPool(self)

    def conninfo(self) -> str:
        s = self.settings_dict
        params: dict[str, Any] = {"dbname": s["NAME"]}
        for key, name in (
            ("USER", "user"),
            ("PASSWORD", "password"),
            ("HOST", "host"),
            ("PORT", "port"),
        ):
            if s.get(key) not in ("", None):
                params[name] = s[key]
        params.update({k: v for k, v in (s.get("OPTIONS") or {}).items()})
        return str(self._psycopg.conninfo.make_conninfo(**params))

    def _configure(self, conn: Any) -> None:
        conn.execute("SET TIME ZONE 'UTC'")
        self._connection_created(conn)

    @property
    def pool(self) -> Any:
        """The alias's psycopg_pool, opened on first use (see ``postgresql_pool``)."""
        return self._pools.get()

    def _pool_opened(self) -> None:
        s = self.settings_dict
        plugins.notify(
            "dorm_pool_opened",
            alias=self.alias,
            vendor=self.vendor,
            min_size=s["MIN_POOL_SIZE"],
            max_size=s["MAX_POOL_SIZE"],
            is_async=False,
        )

    def _acquire(self) -> Any:
        return self._pools.acquire()

    def warmup(self, target: int) -> int:
        """Check out connections until the pool holds ``target`` open ones, then return them.

        Connections other threads hold already count, so this never waits for one of them.
        """
        pool = self.pool
        busy = self._pools.busy(pool)
        held: list[Any] = []
        try:
            while busy + len(held) < target:
                held.append(self._acquire())
        finally:
            for conn in held:
                self._release(conn)
        return max(busy + len(held), int(pool.get_stats().get("pool_size", 0)))

    def _release(self, conn: Any) -> None:
        self._pools.release(conn)

    def _discard(self, conn: Any) -> None:
        if not conn.closed:
            conn.close()
        # The pool drops closed connections and opens new ones.
        self._pools.release(conn)

    def _is_broken(self, conn: Any) -> bool:
        return bool(conn.broken or conn.closed)

    def _retryable(self, conn: Any, exc: BaseException) -> bool:
        state = getattr(getattr(exc, "diag", None), "sqlstate", None)
        if state in _SESSION_ENDED or (
            state is None and isinstance(exc, self._psycopg.OperationalError)
        ):
            # Other idle connections of the pool died with this one: let the pool check them.
            self.pool.check()
            return True
        return False

    def stream(
        self,
        sql: str,
        params: Sequence[Any],
        chunk_size: int,
        sensitive: Sequence[int] | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Stream through a server-side (named) cursor, which needs a transaction."""
        state = self.state
        own = state.conn is None
        if not own and state.pending:
            self._send_savepoints(state)
        conn = state.conn if not own else self._acquire_begun()
        try:
            cur = conn.cursor(name=f"dorm_{threading.get_ident()}_{id(conn)}")
            cur.itersize = chunk_size
            try:
                self._run(cur, sql, params, sensitive, many=False)
                while True:
                    rows = cur.fetchmany(chunk_size)
                    if not rows:
                        break
                    yield rows
            finally:
                if not conn.broken and not conn.closed:
                    cur.close()
            if own:
                self._commit(conn)
        except BaseException:
            if own and not self._is_broken(conn):
                try:
                    self._rollback(conn)
                except Exception:
                    self._discard(conn)
                    raise
            raise
        finally:
            if own:
                if self._is_broken(conn):
                    self._discard(conn)
                else:
                    self._release(conn)

    def close(self) -> None:
        self._pools.close()

    def table_names(self) -> list[str]:
        rows = self.fetchall(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
            "ORDER BY tablename"
        )
        return [r[0] for r in rows]

    def version(self) -> tuple[int, ...]:
        row = self.fetchone("SHOW server_version_num")
        number = int(row[0]) if row else 0
        return (number // 10000, number % 10000)
