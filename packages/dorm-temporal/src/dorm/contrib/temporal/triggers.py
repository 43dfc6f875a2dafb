"""The DDL that makes the database write the versions: triggers per vendor, and their checks.

PostgreSQL: one PL/pgSQL function per tracked table, run by three statement-level
triggers (insert, update, delete) with transition tables, so one statement writes all its
versions in one INSERT ... SELECT; a row of an UPDATE whose every column is unchanged
(``IS NOT DISTINCT FROM``) writes nothing. Versions are stamped with ``now()``, the
transaction's start time: every version one transaction writes shares it (unless a
transaction that started later already wrote a newer version of the row: then that
version's time, so that the versions of a row never go backwards). The context
(``temporal.context``) comes from the transaction-local settings ``dorm.temporal_user`` /
``dorm.temporal_reason``.

SQLite: three triggers per tracked table (insert, update with a ``WHEN`` that compares
every column with ``IS NOT``, delete). The timestamp and the context come from the one-row
table ``dorm_temporal_context`` when a ``temporal.context`` block filled it (one timestamp
for the block, taken once its write lock is held); otherwise the timestamp is the statement
time, ``strftime('%f', 'now')``, which SQLite keeps fixed within one statement.

Each version closes the row's open version (``valid_to``) in the same statement. Every
identifier is checked (:func:`object_name`) and quoted with ``connection.ops.quote_name``;
no value is ever written into this SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dorm.sql.names import check_alias

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper

__all__ = [
    "CONTEXT_TABLE",
    "drop_statements",
    "install_statements",
    "object_name",
    "shared_columns",
    "table_columns",
    "trigger_problems",
]

#: SQLite only: the one-row table a ``temporal.context`` block fills inside its transaction.
CONTEXT_TABLE = "dorm_temporal_context"

_MAX_NAME = 63
VALID_FROM = "valid_from"  # PostgreSQL's identifier limit (NAMEDATALEN - 1)


def object_name(table: str, suffix: str) -> str:
    """A checked name for a trigger, function or index that belongs to ``table``.

    Long table names are shortened with a hash so that the name stays unique and within
    PostgreSQL's 63 characters.

    :raises ValueError: the table name contains characters no identifier dorm writes may
        hold (whitespace, quotes, semicolons, comment markers) or a ``$``.
    """
    check_alias(table)
    if "$" in table:  # the PL/pgSQL body is dollar-quoted
        raise ValueError(f"the table name {table!r} may not contain '$' to be @temporal-tracked")
    name = f"{table}_{suffix}"
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(table.encode()).hexdigest()[:8]
        name = f"{table[: _MAX_NAME - len(suffix) - 10]}_{digest}_{suffix}"
    return check_alias(name)


@dataclass(frozen=True)
class _Spec:
    """What the triggers of one tracked table are built from."""

    table: str
    history: str
    pk: str
    columns: tuple[str, ...]  # mirrored columns, sorted: models and introspection agree

    def name(self, key: str) -> str:
        return object_name(self.table, f"temporal_{key}")


def _spec(model: Any, history: str | None, columns: Sequence[str] | None) -> _Spec:
    opts = model._meta
    if columns is None:
        columns = [f.column for f in opts.concrete_fields]
    return _Spec(
        table=check_alias(opts.db_table),
        history=check_alias(history or model._temporal_model._meta.db_table),
        pk=check_alias(opts.pk.column),
        columns=tuple(sorted(check_alias(c) for c in columns)),
    )


def install_statements(
    connection: BaseDatabaseWrapper,
    model: Any,
    history: str | None = None,
    columns: Sequence[str] | None = None,
) -> list[str]:
    """The statements that make ``model``'s table write its versions.

    ``history`` names the version table and ``columns`` the columns to copy (default:
    the model's); migrations pass both for historical models and altered tables.
    """
    spec = _spec(model, history, columns)
    if connection.vendor == "postgresql":
        return _postgresql(connection, spec)
    if connection.vendor == "sqlite":
        return _sqlite(connection, spec)
    raise TypeError(
        f"@temporal has no triggers for the {connection.vendor!r} backend of "
        f"{model.__name__}; supported: postgresql, sqlite"
    )


def drop_statements(
    connection: BaseDatabaseWrapper, model: Any, table_exists: bool, history: str | None = None
) -> list[str]:
    """The statements that remove ``model``'s triggers (and function)."""
    qn = connection.ops.quote_name
    spec = _spec(model, history, ())
    if connection.vendor == "postgresql":
        statements = []
        if table_exists:
            for key in _PG_TRIGGERS:
                statements.append(
                    f"DROP TRIGGER IF EXISTS {qn(spec.name(key))} ON {qn(spec.table)}"
                )
        statements.append(f"DROP FUNCTION IF EXISTS {qn(spec.name('fn'))}()")
        return statements
    return [f"DROP TRIGGER IF EXISTS {qn(spec.name(k))}" for k in ("insert", "update", "delete")]


def table_columns(connection: BaseDatabaseWrapper, table: str) -> list[str]:
    """The columns ``table`` has in the database, in table order."""
    if connection.vendor == "sqlite":
        rows = connection.fetchall(f"PRAGMA table_info({connection.ops.quote_name(table)})", ())
        return [str(r[1]) for r in rows]
    rows = connection.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        f"{connection.ops.placeholder} AND table_schema = current_schema() "
        "ORDER BY ordinal_position",
        (table,),
    )
    return [str(r[0]) for r in rows]


def shared_columns(connection: BaseDatabaseWrapper, table: str, history: str) -> list[str]:
    """The columns both tables have: what the triggers can copy while a migration runs."""
    from dorm.contrib.temporal.tracking import SYSTEM_FIELDS

    kept = set(table_columns(connection, history)) - set(SYSTEM_FIELDS)
    return [c for c in table_columns(connection, table) if c in kept]


def _insert_sql(qn: Any, spec: _Spec, row: str, system_values: str) -> str:
    """INSERT one version: ``row`` (NEW / OLD) columns, then ``system_values`` for
    valid_from, valid_to, operation, user and reason."""
    system = ("valid_from", "valid_to", "operation", "user", "reason")
    target = ", ".join(qn(c) for c in [*spec.columns, *system])
    values = ", ".join(f"{row}.{qn(c)}" for c in spec.columns)
    return f"INSERT INTO {qn(spec.history)} ({target}) VALUES ({values}, {system_values})"


def _close_sql(qn: Any, spec: _Spec, stamp: str) -> str:
    pk = qn(spec.pk)
    return (
        f"UPDATE {qn(spec.history)} SET {qn('valid_to')} = {stamp} "
        f"WHERE {pk} = OLD.{pk} AND {qn('valid_to')} IS NULL"
    )


def _postgresql_body(connection: BaseDatabaseWrapper, spec: _Spec) -> str:
    qn = connection.ops.quote_name
    hist, pk, valid_to = qn(spec.history), qn(spec.pk), qn("valid_to")
    system = ("valid_from", "valid_to", "operation", "user", "reason")
    target = ", ".join(qn(c) for c in [*spec.columns, *system])

    def cols(alias: str) -> str:
        return ", ".join(f"{alias}.{qn(c)}" for c in spec.columns)

    def close(source: str) -> str:
        # The open version of each row in ``source``, closed; never before it began.
        return (
            f"closed AS (UPDATE {hist} AS h SET {valid_to} = GREATEST(h.{qn(VALID_FROM)}, "
            f"stamp) FROM {source} AS g WHERE h.{pk} = g.{pk} AND h.{valid_to} IS NULL "
            f"RETURNING h.{pk} AS {pk}, h.{valid_to} AS {valid_to})"
        )

    same = "({a}.*) IS NOT DISTINCT FROM ({b}.*)"
    return (
        "\nDECLARE\n"
        "  stamp timestamptz := now();\n"
        "  who text := NULLIF(current_setting('dorm.temporal_user', true), '');\n"
        "  why text := NULLIF(current_setting('dorm.temporal_reason', true), '');\n"
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        f"    INSERT INTO {hist} ({target}) SELECT {cols('n')}, stamp, NULL, 'insert', who, why "
        "FROM dorm_new AS n;\n"
        "  ELSIF TG_OP = 'UPDATE' THEN\n"
        # Rows whose every column is unchanged write nothing; a row whose key changed
        # closes the old key's versions and opens one for the new key.
        f"    WITH gone AS (SELECT o.* FROM dorm_old AS o WHERE NOT EXISTS (SELECT 1 FROM "
        f"dorm_new AS n WHERE n.{pk} = o.{pk} AND {same.format(a='n', b='o')})), "
        f"came AS (SELECT n.* FROM dorm_new AS n WHERE NOT EXISTS (SELECT 1 FROM "
        f"dorm_old AS o WHERE o.{pk} = n.{pk} AND {same.format(a='o', b='n')})), "
        f"{close('gone')} "
        f"INSERT INTO {hist} ({target}) SELECT {cols('c')}, COALESCE(cl.{valid_to}, stamp), "
        f"NULL, 'update', who, why FROM came AS c LEFT JOIN closed AS cl ON cl.{pk} = c.{pk};\n"
        "  ELSE\n"
        f"    WITH {close('dorm_old')} "
        f"INSERT INTO {hist} ({target}) SELECT {cols('o')}, COALESCE(cl.{valid_to}, stamp), "
        f"COALESCE(cl.{valid_to}, stamp), 'delete', who, why FROM dorm_old AS o "
        f"LEFT JOIN closed AS cl ON cl.{pk} = o.{pk};\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END\n"
    )


_PG_TRIGGERS = {
    # One statement-level trigger per event (PostgreSQL allows transition tables on
    # single-event triggers only): each writes every version of its statement at once.
    "insert": ("INSERT", "REFERENCING NEW TABLE AS dorm_new"),
    "update": ("UPDATE", "REFERENCING OLD TABLE AS dorm_old NEW TABLE AS dorm_new"),
    "delete": ("DELETE", "REFERENCING OLD TABLE AS dorm_old"),
}


def _postgresql(connection: BaseDatabaseWrapper, spec: _Spec) -> list[str]:
    qn = connection.ops.quote_name
    body = _postgresql_body(connection, spec)
    table, function = qn(spec.table), qn(spec.name("fn"))
    statements = [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $dorm_temporal${body}$dorm_temporal$",
    ]
    for key, (event, referencing) in _PG_TRIGGERS.items():
        trigger = qn(spec.name(key))
        statements.append(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        statements.append(
            f"CREATE TRIGGER {trigger} AFTER {event} ON {table} {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return statements


def _sqlite_triggers(connection: BaseDatabaseWrapper, spec: _Spec) -> dict[str, str]:
    qn = connection.ops.quote_name
    ctx_table = qn(CONTEXT_TABLE)
    # Fixed width, as dorm stores DateTimeField values on SQLite: text order is time order.
    stamp = (
        f"COALESCE((SELECT {qn('ts')} FROM {ctx_table}), "
        "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"
    )
    ctx = f"(SELECT {qn('user')} FROM {ctx_table}), (SELECT {qn('reason')} FROM {ctx_table})"
    table = qn(spec.table)
    changed = " OR ".join(f"OLD.{qn(c)} IS NOT NEW.{qn(c)}" for c in spec.columns) or "0"

    def insert(row: str, valid_to: str, operation: str) -> str:
        return _insert_sql(qn, spec, row, f"{stamp}, {valid_to}, '{operation}', {ctx}")

    close = _close_sql(qn, spec, stamp)
    return {
        "insert": (
            f"CREATE TRIGGER {qn(spec.name('insert'))} AFTER INSERT ON {table} FOR EACH ROW "
            f"BEGIN {insert('NEW', 'NULL', 'insert')}; END"
        ),
        "update": (
            f"CREATE TRIGGER {qn(spec.name('update'))} AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN {changed} BEGIN {close}; {insert('NEW', 'NULL', 'update')}; END"
        ),
        "delete": (
            f"CREATE TRIGGER {qn(spec.name('delete'))} AFTER DELETE ON {table} FOR EACH ROW "
            f"BEGIN {close}; {insert('OLD', stamp, 'delete')}; END"
        ),
    }


def _sqlite(connection: BaseDatabaseWrapper, spec: _Spec) -> list[str]:
    qn = connection.ops.quote_name
    statements = [context_table_sql(connection)]
    for key, sql in _sqlite_triggers(connection, spec).items():
        statements.append(f"DROP TRIGGER IF EXISTS {qn(spec.name(key))}")
        statements.append(sql)
    return statements


def context_table_sql(connection: BaseDatabaseWrapper) -> str:
    """SQLite: create the context table if it is missing."""
    qn = connection.ops.quote_name
    return (
        f"CREATE TABLE IF NOT EXISTS {qn(CONTEXT_TABLE)} "
        f"({qn('user')} TEXT, {qn('reason')} TEXT, {qn('ts')} TEXT)"
    )


def trigger_problems(connection: BaseDatabaseWrapper, model: Any) -> list[str]:
    """What is wrong with ``model``'s installed triggers: empty when they are what this
    version of dorm-temporal installs for the model as declared."""
    spec = _spec(model, None, None)
    ph = connection.ops.placeholder
    problems = []
    if connection.vendor == "postgresql":
        function = spec.name("fn")
        rows = connection.fetchall(
            f"SELECT prosrc FROM pg_catalog.pg_proc WHERE proname = {ph} "
            "AND pg_catalog.pg_function_is_visible(oid)",
            (function,),
        )
        if not rows:
            problems.append(f"function {function} is missing")
        elif rows[0][0] != _postgresql_body(connection, spec):
            problems.append(f"function {function} is outdated")
        found = {
            row[0]
            for row in connection.fetchall(
                "SELECT tgname FROM pg_catalog.pg_trigger "
                f"WHERE tgrelid = to_regclass({ph}) AND NOT tgisinternal",
                (connection.ops.quote_name(spec.table),),
            )
        }
        for key in _PG_TRIGGERS:
            if spec.name(key) not in found:
                problems.append(f"trigger {spec.name(key)} is missing")
        return problems
    for key, sql in _sqlite_triggers(connection, spec).items():
        rows = connection.fetchall(
            f"SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = {ph}",
            (spec.name(key),),
        )
        if not rows:
            problems.append(f"trigger {spec.name(key)} is missing")
        elif rows[0][0] != sql:
            problems.append(f"trigger {spec.name(key)} is outdated")
    return problems
