"""``AlterModelTable``, ``AlterModelOptions`` and ``AlterModelManagers``: a model's Meta and
manager changes that migrations follow.

Re-exported by :mod:`dorm.migrations.operations`; migration files import them from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.migrations.operation import Operation

if TYPE_CHECKING:
    from dorm.migrations.schema import SchemaEditor
    from dorm.migrations.state import ProjectState

__all__ = [
    "ALTER_OPTION_KEYS",
    "AlterModelManagers",
    "AlterModelOptions",
    "AlterModelTable",
    "AlterModelTableComment",
]

#: Meta options that change no schema: ``AlterModelOptions`` sets (or clears) each of them.
ALTER_OPTION_KEYS = (
    "ordering",
    "verbose_name",
    "verbose_name_plural",
    "get_latest_by",
    "default_related_name",
    "managed",
    "permissions",
    "default_permissions",
    "default_manager_name",
    "base_manager_name",
)


class _StateOnly(Operation):
    """An operation that changes the project state only: nothing to do in the database,
    either way."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        pass

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        pass


class AlterModelTable(Operation):
    """Rename a model's table (``Meta.db_table``; None goes back to ``<app>_<model>``).

    The automatic many-to-many tables named after it, and the indexes and constraints
    dorm named after it, are renamed with it.
    """

    def __init__(self, name: str, table: str | None) -> None:
        if table is not None and (not isinstance(table, str) or not table):
            raise ValueError(
                f"AlterModelTable {name!r}: table must be a name or None, not {table!r}"
            )
        self.name = name
        self.table = table

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.name)
        if self.table is None or self.table == f"{app_label}_{ms.name_lower}":
            ms.options.pop("db_table", None)
        else:
            ms.options["db_table"] = self.table
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        old = from_state.apps.get_model(app_label, self.name)
        new = to_state.apps.get_model(app_label, self.name)
        if new._meta.managed:
            schema_editor.alter_db_table(new, old._meta.db_table, new._meta.db_table)
            rename_auto_m2m_tables(schema_editor, old, new)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self.database_forwards(app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return f"Rename table for {self.name} to {self.table or '(default)'}"


class AlterModelTableComment(Operation):
    """Set (or with None remove) ``Meta.db_table_comment``: COMMENT ON TABLE on PostgreSQL;
    on SQLite only the state changes."""

    def __init__(self, name: str, table_comment: str | None) -> None:
        if table_comment is not None and not isinstance(table_comment, str):
            raise ValueError(
                f"AlterModelTableComment {name!r}: table_comment must be a string or None, "
                f"not {table_comment!r}"
            )
        self.name = name
        self.table_comment = table_comment

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.name)
        if self.table_comment is None:
            ms.options.pop("db_table_comment", None)
        else:
            ms.options["db_table_comment"] = self.table_comment
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        old = from_state.apps.get_model(app_label, self.name)
        new = to_state.apps.get_model(app_label, self.name)
        if new._meta.managed:
            schema_editor.alter_db_table_comment(
                new, old._meta.db_table_comment, new._meta.db_table_comment
            )

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self.database_forwards(app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return f"Alter {self.name} table comment"


class AlterModelOptions(_StateOnly):
    """Set the schema-less Meta options of a model (ordering, verbose names, ...).

    An option of :data:`ALTER_OPTION_KEYS` missing from ``options`` goes back to its
    default, as in Django. Only the project state changes: the database has nothing to do.
    """

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(ALTER_OPTION_KEYS))
        if unknown:
            raise ValueError(
                f"AlterModelOptions {name!r}: {', '.join(map(repr, unknown))} cannot be altered "
                f"this way; alterable options: {', '.join(ALTER_OPTION_KEYS)}"
            )
        self.name = name
        self.options = dict(options)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.name)
        for key in ALTER_OPTION_KEYS:
            if key in self.options:
                ms.options[key] = self.options[key]
            else:
                ms.options.pop(key, None)
        state.invalidate()

    def describe(self) -> str:
        return f"Change Meta options on {self.name}"


def rename_auto_m2m_tables(schema_editor: SchemaEditor, old: Any, new: Any) -> None:
    """Follow ``old`` becoming ``new`` in its automatic many-to-many tables: their tables
    (named after the model's table) and, after a model rename, their column to the model."""
    from dorm.migrations.schema import _auto_through

    new_fields = {f.name: f for f in new._meta.local_many_to_many}
    for field in old._meta.local_many_to_many:
        old_through = _auto_through(field)
        new_field = new_fields.get(field.name)
        new_through = _auto_through(new_field) if new_field is not None else None
        if old_through is None or new_through is None:
            continue
        # Columns first, on the table as it is named now: the rename of the table then
        # finds the indexes under the names the new columns give them.
        old_columns = [f for f in old_through._meta.local_fields if f.is_relation]
        new_columns = [f for f in new_through._meta.local_fields if f.is_relation]
        renamed = False
        for before, after in zip(old_columns, new_columns, strict=True):
            if before.column != after.column:
                schema_editor.rename_field(old_through, before, after)
                renamed = True
        if renamed and schema_editor.connection.vendor != "sqlite":
            _rename_constraints(schema_editor, old_through._meta.db_table, old_columns, new_columns)
        schema_editor.alter_db_table(
            new_through, old_through._meta.db_table, new_through._meta.db_table
        )


def _rename_constraints(
    schema_editor: SchemaEditor, table: str, old_columns: list[Any], new_columns: list[Any]
) -> None:
    """PostgreSQL: the foreign keys and the unique pair of an automatic many-to-many table
    are named after their columns; give them the names the new columns give."""
    from dorm.models.constraints import default_name

    qn = schema_editor.quote_name
    pairs = [
        (default_name(table, [b.column], "fk"), default_name(table, [a.column], "fk"))
        for b, a in zip(old_columns, new_columns, strict=True)
    ]
    pairs.append(
        (
            default_name(table, [f.column for f in old_columns], "uniq"),
            default_name(table, [f.column for f in new_columns], "uniq"),
        )
    )
    for old_name, new_name in pairs:
        if old_name != new_name:
            schema_editor.execute(
                f"ALTER TABLE {qn(table)} RENAME CONSTRAINT {qn(old_name)} TO {qn(new_name)}"
            )


class AlterModelManagers(_StateOnly):
    """Replace the managers the state keeps for a model (those with
    ``use_in_migrations = True``, see ``ModelState.from_model``); no schema change."""

    def __init__(self, name: str, managers: list[tuple[str, Any]]) -> None:
        if not isinstance(managers, (list, tuple)) or not all(
            isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
            for item in managers
        ):
            raise ValueError(
                f"AlterModelManagers {name!r}: managers must be a list of (name, manager) "
                f"pairs, not {managers!r}"
            )
        self.name = name
        self.managers = list(managers)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.name)
        ms.managers = [(name, manager.clone()) for name, manager in self.managers]
        state.invalidate()

    def describe(self) -> str:
        return f"Change managers on {self.name}"
