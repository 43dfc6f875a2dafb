"""Keeping SearchVectorField columns up to date, and the SQL of their rank.

PostgreSQL: a ``BEFORE INSERT OR UPDATE`` trigger sets the ``tsvector`` column from the
source columns, so every write path (save, bulk_create, QuerySet.update, raw SQL) keeps
it current. SQLite: an FTS5 table per field, filled by ``AFTER`` triggers on the model's
table, keyed by the integer primary key (the FTS5 rowid).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from dorm.contrib.pgvector.exceptions import PgvectorError
from dorm.contrib.pgvector.fields import SearchVectorField

if TYPE_CHECKING:
    from dorm.migrations.schema import SchemaEditor

__all__ = [
    "fts_table",
    "fts_query",
    "model_altered",
    "model_created",
    "model_deleted",
    "rank_sql",
    "search_fields",
]

_INTEGER_KEYS = frozenset(
    {"AutoField", "BigAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField"}
)
_TOKEN = re.compile(r"\w+", re.UNICODE)


def search_fields(model: type) -> list[SearchVectorField]:
    return [
        f
        for f in model._meta.concrete_fields  # type: ignore[attr-defined]
        if isinstance(f, SearchVectorField)
    ]


def _name(table: str, column: str, suffix: str) -> str:
    digest = hashlib.sha1(f"{table}:{column}".encode()).hexdigest()[:8]
    return f"{table}_{column}"[: 63 - len(suffix) - 10] + f"_{digest}_{suffix}"


def fts_table(field: SearchVectorField) -> str:
    """The FTS5 table that holds ``field``'s text on SQLite."""
    return f"{field.model._meta.db_table}_{field.column}_fts"


def _document(field: SearchVectorField, qn: Any, row: str, cast: str) -> str:
    parts = [f"coalesce({row}.{qn(c)}{cast}, '')" for c in field.source_columns()]
    return " || ' ' || ".join(parts)


def _pg_statements(field: SearchVectorField, qn: Any) -> list[str]:
    table = field.model._meta.db_table
    function = _name(table, field.column, "tsv")
    document = _document(field, qn, "NEW", "::text")
    return [
        f"CREATE OR REPLACE FUNCTION {qn(function)}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n"
        f"  NEW.{qn(field.column)} := to_tsvector('{field.config}'::regconfig, {document});\n"
        f"  RETURN NEW;\n"
        f"END $$",
        f"CREATE TRIGGER {qn(function)} BEFORE INSERT OR UPDATE ON {qn(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {qn(function)}()",
    ]


def _sqlite_triggers(field: SearchVectorField, qn: Any) -> list[str]:
    table = field.model._meta.db_table
    fts = qn(fts_table(field))
    pk = qn(field.model._meta.pk.column)
    insert = (
        f"INSERT INTO {fts}(rowid, document) VALUES (NEW.{pk}, {_document(field, qn, 'NEW', '')})"
    )
    delete = f"DELETE FROM {fts} WHERE rowid = OLD.{pk}"
    name = fts_table(field)
    return [
        f"CREATE TRIGGER {qn(name + '_ai')} AFTER INSERT ON {qn(table)} BEGIN {insert}; END",
        f"CREATE TRIGGER {qn(name + '_ad')} AFTER DELETE ON {qn(table)} BEGIN {delete}; END",
        f"CREATE TRIGGER {qn(name + '_au')} AFTER UPDATE ON {qn(table)} "
        f"BEGIN {delete}; {insert}; END",
    ]


def _check_sqlite_key(field: SearchVectorField) -> None:
    pk = field.model._meta.pk
    if pk.get_internal_type() not in _INTEGER_KEYS:
        raise PgvectorError(
            f"{field.model.__name__}.{field.name}: a SearchVectorField on SQLite needs an "
            f"integer primary key (the FTS5 rowid); {pk.name} is a {type(pk).__name__}"
        )


def model_created(schema_editor: SchemaEditor, model: type) -> None:
    """Install the triggers (and FTS5 tables on SQLite) of ``model``'s full-text columns."""
    fields = search_fields(model)
    if not fields:
        return
    qn = schema_editor.quote_name
    vendor = schema_editor.connection.vendor
    for field in fields:
        if vendor == "postgresql":
            for statement in _pg_statements(field, qn):
                schema_editor.execute(statement)
        elif vendor == "sqlite":
            _check_sqlite_key(field)
            schema_editor.execute(
                f"CREATE VIRTUAL TABLE {qn(fts_table(field))} USING fts5(document, "
                f"tokenize = 'porter unicode61')"
            )
            for statement in _sqlite_triggers(field, qn):
                schema_editor.execute(statement)


def model_altered(schema_editor: SchemaEditor, model: type) -> None:
    """A SQLite table rebuild drops its triggers: put the full-text ones back."""
    if schema_editor.connection.vendor != "sqlite":
        return
    qn = schema_editor.quote_name
    for field in search_fields(model):
        name = fts_table(field)
        for suffix in ("_ai", "_ad", "_au"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {qn(name + suffix)}")
        for statement in _sqlite_triggers(field, qn):
            schema_editor.execute(statement)


def model_deleted(schema_editor: SchemaEditor, model: type) -> None:
    """Drop what ``model_created`` added outside the table."""
    qn = schema_editor.quote_name
    vendor = schema_editor.connection.vendor
    for field in search_fields(model):
        if vendor == "postgresql":
            function = _name(model._meta.db_table, field.column, "tsv")  # type: ignore[attr-defined]
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {qn(function)}() CASCADE")
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TABLE IF EXISTS {qn(fts_table(field))}")


def fts_query(text: str) -> str | None:
    """An FTS5 query for ``text`` (every word, like ``plainto_tsquery``), or None if it
    has no word. Each word is quoted, so FTS5 syntax in the text is never interpreted."""
    words = _TOKEN.findall(text)
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def rank_sql(
    connection: Any, field: SearchVectorField, row_sql: str, pk_sql: str, text: str
) -> tuple[str, list[object]]:
    """SQL of the text rank of one row (0 when it does not match), higher is better.

    ``row_sql`` is the full-text column as it appears in the query, ``pk_sql`` the
    row's primary key column. PostgreSQL: ``ts_rank`` against ``plainto_tsquery``;
    SQLite: minus FTS5's ``bm25``.
    """
    if not isinstance(text, str):
        raise TypeError(f"the query text must be a str, got {type(text).__name__}")
    ph = connection.ops.placeholder
    if connection.vendor == "postgresql":
        # ts_rank gives a tiny positive rank to a row that does not match: test @@ first.
        tsquery = f"plainto_tsquery(CAST({ph} AS regconfig), {ph})"
        sql = (
            f"(CASE WHEN {row_sql} @@ {tsquery} "
            f"THEN CAST(ts_rank({row_sql}, {tsquery}) AS DOUBLE PRECISION) ELSE 0.0 END)"
        )
        return sql, [field.config, text, field.config, text]
    query = fts_query(text)
    if query is None:
        return "0.0", []
    fts = connection.ops.quote_name(fts_table(field))
    sql = (
        f"COALESCE((SELECT -bm25({fts}) FROM {fts} WHERE {fts} MATCH {ph} "
        f"AND {fts}.rowid = {pk_sql}), 0.0)"
    )
    return sql, [query]
