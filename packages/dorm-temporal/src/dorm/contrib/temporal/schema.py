"""Install and remove the triggers when the schema editor creates or drops the tables.

A tracked model and its version model may be created in either order, in one editor or
in two: the triggers go in once both tables exist. Dropping either table removes them.
"""

from __future__ import annotations

import weakref
from typing import Any

from dorm.contrib.temporal.triggers import (
    drop_statements,
    install_statements,
    object_name,
    shared_columns,
)

__all__ = ["model_altered", "model_created", "model_deleted", "tracked_source"]

# Tables each editor created so far: a ``collect_sql`` editor runs nothing, so the
# database cannot tell whether the partner table "exists" in the script being built.
_CREATED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def tracked_source(model: type) -> tuple[Any, str] | None:
    """``(tracked model, version table)`` when ``model`` is a tracked model or its version
    model, else None.

    Migrations create historical copies of the models (their own classes, in their own
    registry): those are matched to the ``@temporal`` models by label, and the triggers are
    built from the historical columns, as the tables stand at that migration.
    """
    from dorm.contrib.temporal.tracking import tracked_models

    if "_temporal_model" in model.__dict__:
        return model, model._temporal_model._meta.db_table  # type: ignore[attr-defined]
    source = model.__dict__.get("_temporal_source")
    if source is not None and source._temporal_model is model:
        return source, model._meta.db_table
    opts = model._meta  # type: ignore[attr-defined]
    for tracked in tracked_models():
        if tracked._meta.label_lower == opts.label_lower:
            sibling = tracked._temporal_model  # type: ignore[attr-defined]
            return model, _historical_table(opts.apps, sibling, sibling._meta.db_table)
        if tracked._temporal_model._meta.label_lower == opts.label_lower:  # type: ignore[attr-defined]
            try:
                historical = opts.apps.get_model(tracked._meta.label)
            except LookupError:
                return None  # not created yet: its own creation installs the triggers
            return historical, opts.db_table
    return None


def _historical_table(registry: Any, sibling: Any, default: str) -> str:
    try:
        return registry.get_model(sibling._meta.label)._meta.db_table  # type: ignore[no-any-return]
    except LookupError:
        return default


def _exists(schema_editor: Any, table: str) -> bool:
    if table in _CREATED.get(schema_editor, ()):
        return True
    if schema_editor.collect_sql:
        return False
    return table in schema_editor.connection.table_names()


def model_created(schema_editor: Any, model: type) -> None:
    found = tracked_source(model)
    if found is None:
        return
    source, history = found
    _CREATED.setdefault(schema_editor, set()).add(model._meta.db_table)  # type: ignore[attr-defined]
    if _exists(schema_editor, source._meta.db_table) and _exists(schema_editor, history):
        _install(schema_editor, source, history)


def _install(schema_editor: Any, source: Any, history: str) -> None:
    connection = schema_editor.connection
    # The columns both tables have in the database: while a migration runs, the two
    # tables may briefly differ (a field added to one, not yet to the other).
    columns = (
        None
        if schema_editor.collect_sql
        else shared_columns(connection, source._meta.db_table, history)
    )
    for sql in install_statements(connection, source, history, columns):
        schema_editor.execute(sql)


def model_altered(schema_editor: Any, model: type) -> None:
    """Re-create the triggers after a column change (SQLite rebuilds drop them)."""
    found = tracked_source(model)
    if found is None or schema_editor.collect_sql:
        return
    source, history = found
    if _exists(schema_editor, source._meta.db_table) and _exists(schema_editor, history):
        _drop_stale(schema_editor, source)
        _install(schema_editor, source, history)


def _drop_stale(schema_editor: Any, source: Any) -> None:
    """Drop this plugin's triggers on the tracked table that carry another table's name:
    after ``alter_db_table`` renamed the table they still fire, and would record every
    change twice next to the triggers installed under the new name."""
    connection = schema_editor.connection
    qn = connection.ops.quote_name
    table = source._meta.db_table
    current = {object_name(table, f"temporal_{key}") for key in ("insert", "update", "delete")}
    suffixes = ("_temporal_insert", "_temporal_update", "_temporal_delete")
    ph = connection.ops.placeholder
    if connection.vendor == "postgresql":
        rows = connection.fetchall(
            "SELECT t.tgname, p.proname FROM pg_catalog.pg_trigger t "
            "JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
            f"WHERE t.tgrelid = to_regclass({ph}) AND NOT t.tgisinternal",
            (qn(table),),
        )
        functions = set()
        for trigger, function in rows:
            if trigger.endswith(suffixes) and trigger not in current:
                schema_editor.execute(f"DROP TRIGGER {qn(trigger)} ON {qn(table)}")
                functions.add(function)
        for function in sorted(functions - {object_name(table, "temporal_fn")}):
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {qn(function)}()")
        return
    rows = connection.fetchall(
        f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = {ph}", (table,)
    )
    for (trigger,) in rows:
        if trigger.endswith(suffixes) and trigger not in current:
            schema_editor.execute(f"DROP TRIGGER {qn(trigger)}")


def model_deleted(schema_editor: Any, model: type) -> None:
    found = tracked_source(model)
    if found is None:
        return
    source, history = found
    _CREATED.get(schema_editor, set()).discard(model._meta.db_table)  # type: ignore[attr-defined]
    table = source._meta.db_table
    exists = model is not source and _exists(schema_editor, table)
    for sql in drop_statements(schema_editor.connection, source, exists, history):
        schema_editor.execute(sql)
