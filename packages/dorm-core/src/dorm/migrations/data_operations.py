"""Operations beyond model schema changes: raw SQL / Python, online CHECKs, seed rows.

Import them from :mod:`dorm.migrations.operations`, which re-exports both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dorm.expressions import RawSQL
from dorm.migrations.exceptions import InvalidStateError, IrreversibleError
from dorm.migrations.operation import Operation
from dorm.models.constraints import CheckConstraint

if TYPE_CHECKING:
    from dorm.apps import Apps
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.migrations.schema import SchemaEditor
    from dorm.migrations.state import ProjectState
    from dorm.models.base import Model
    from dorm.sql.compiler import SQLCompiler

__all__ = [
    "AddCheckConstraintOnline",
    "RunPython",
    "RunSQL",
    "SeederMigration",
    "SeparateDatabaseAndState",
    "run_raw",
]

SEEDED_TABLE = "dorm_seeded_rows"


# -- raw SQL and Python ------------------------------------------------------------------------


def run_raw(schema_editor: SchemaEditor, sql: str, params: Sequence[Any] = ()) -> None:
    """Run user-written SQL as is: without params no ``%`` in it is taken as a placeholder."""
    if schema_editor.collect_sql:
        schema_editor.collected.append(sql)
        return
    connection = schema_editor.connection
    if not params and connection.ops.placeholder == "%s":
        # psycopg parses the text for placeholders even with no params: double each %.
        sql = sql.replace("%", "%%")
    connection.execute(sql, list(params))


def _run_statements(schema_editor: SchemaEditor, statements: Any) -> None:
    """Run one SQL string or a list of strings / ``(sql, params)`` pairs; params stay bound."""
    if isinstance(statements, str):
        statements = [statements]
    for item in statements:
        if isinstance(item, (list, tuple)):
            sql, params = item
        else:
            sql, params = item, ()
        run_raw(schema_editor, sql, params)


class RunSQL(Operation):
    """Run raw SQL; reversible only with ``reverse_sql``. Items may be ``(sql, params)``."""

    noop: str = ""

    def __init__(self, sql: Any, reverse_sql: Any = None) -> None:
        self.sql = sql
        self.reverse_sql = reverse_sql

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        return self.reverse_sql is not None

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        _run_statements(schema_editor, self.sql)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if self.reverse_sql is None:
            raise IrreversibleError(
                f"{self.describe()} has no reverse_sql and cannot be unapplied "
                f"(give it reverse_sql=..., RunSQL.noop for nothing)"
            )
        _run_statements(schema_editor, self.reverse_sql)

    def describe(self) -> str:
        return "Raw SQL operation"


class RunPython(Operation):
    """Call ``code(apps, schema_editor)`` with the historical models of the state."""

    def __init__(
        self,
        code: Callable[[Apps, SchemaEditor], Any],
        reverse_code: Callable[[Apps, SchemaEditor], Any] | None = None,
    ) -> None:
        if not callable(code):
            raise TypeError(f"RunPython needs a callable, got {code!r}")
        if reverse_code is not None and not callable(reverse_code):
            raise TypeError(f"RunPython reverse_code must be callable, got {reverse_code!r}")
        self.code = code
        self.reverse_code = reverse_code

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        return self.reverse_code is not None

    @staticmethod
    def noop(apps: Apps, schema_editor: SchemaEditor) -> None:
        """Do nothing (a reverse_code for data migrations with nothing to undo)."""

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self.code(from_state.apps, schema_editor)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if self.reverse_code is None:
            raise IrreversibleError(
                f"RunPython({getattr(self.code, '__name__', self.code)!s}) has no reverse_code "
                f"and cannot be unapplied (give it reverse_code=..., RunPython.noop for nothing)"
            )
        self.reverse_code(from_state.apps, schema_editor)

    def describe(self) -> str:
        return f"Raw Python operation {getattr(self.code, '__name__', '')}".rstrip()


class SeparateDatabaseAndState(Operation):
    """Run ``database_operations`` on the database and ``state_operations`` on the state."""

    def __init__(
        self,
        database_operations: Sequence[Operation] = (),
        state_operations: Sequence[Operation] = (),
    ) -> None:
        self.database_operations = list(database_operations)
        self.state_operations = list(state_operations)

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        return all(op.reversible for op in self.database_operations)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        for op in self.state_operations:
            op.state_forwards(app_label, state)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        for op in self.database_operations:
            after = from_state.clone()
            op.state_forwards(app_label, after)
            op.database_forwards(app_label, schema_editor, from_state, after)
            from_state = after

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        steps = []
        before = to_state
        for op in self.database_operations:
            after = before.clone()
            op.state_forwards(app_label, after)
            steps.append((op, before, after))
            before = after
        for op, before, after in reversed(steps):
            op.database_backwards(app_label, schema_editor, after, before)

    def describe(self) -> str:
        return "Custom state/database change combination"


# -- online constraints and seed rows ---------------------------------------------------------


class _RawCondition(RawSQL):
    """A CHECK condition given as SQL text, for the SQLite rebuild's CREATE TABLE."""

    conditional = True
    negated = False  # tells Query.build_filter the expression is already a condition

    def __init__(self, sql: str) -> None:
        super().__init__(sql, [])

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        return f"({self.sql})", []


class _OnlineCheck(CheckConstraint):
    """The state's record of an ``AddCheckConstraintOnline``: a CHECK written in SQL.

    Kept in the model's state so that SQLite rebuilds and re-created tables keep it; the
    autodetector leaves it alone (no model declares it), and ``full_clean()`` of a
    historical model does not evaluate it (the database does).
    """

    from_sql = True

    def __init__(self, *, name: str, check_sql: str) -> None:
        super().__init__(name=name, condition=_RawCondition(check_sql))
        self.check_sql = check_sql

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            "dorm.migrations.data_operations._OnlineCheck",
            [],
            {"name": self.name, "check_sql": self.check_sql},
        )

    def validate(
        self, model: Any, instance: Any, exclude: Any = None, using: str = "default"
    ) -> None:
        return None


def _state_for_table(state: ProjectState, table: str) -> Any:
    """The ModelState whose table is ``table``, or None (a table no model describes)."""
    for (app, name), ms in state.models.items():
        if (ms.options.get("db_table") or f"{app}_{name}") == table:
            return ms
    return None


def _model_for_table(state: ProjectState, table: str) -> type[Model]:
    for model in state.apps.get_models():
        if model._meta.db_table == table:
            return model
    raise InvalidStateError(
        f"AddCheckConstraintOnline: no model of the migration state has the table {table!r}; "
        f"SQLite adds constraints by rebuilding the table from its model"
    )


class AddCheckConstraintOnline(Operation):
    """Add ``CHECK (check_sql)`` to ``table`` without a long lock on PostgreSQL.

    PostgreSQL: ``ADD CONSTRAINT ... NOT VALID`` (no scan, brief lock), then a separate
    ``VALIDATE CONSTRAINT`` (scans without blocking writes). SQLite rebuilds the table with
    the constraint. The project state keeps it on the model whose table it is, so a later
    SQLite rebuild of the table (an AlterField, say) keeps it too; ``makemigrations`` does
    not propose removing it.
    """

    def __init__(self, table: str, name: str, check_sql: str) -> None:
        self.table = table
        self.name = name
        self.check_sql = check_sql

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = _state_for_table(state, self.table)
        if ms is None:
            return
        kept = [c for c in ms.options.get("constraints", []) if c.name != self.name]
        ms.options["constraints"] = [*kept, _OnlineCheck(name=self.name, check_sql=self.check_sql)]
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        qn = schema_editor.quote_name
        vendor = schema_editor.connection.vendor
        alter = f"ALTER TABLE {qn(self.table)}"
        if vendor == "sqlite":
            from dorm.migrations.sqlite_rebuild import rebuild_table

            model = _model_for_table(from_state, self.table)
            check = _OnlineCheck(name=self.name, check_sql=self.check_sql)
            kept = [c for c in model._meta.constraints if c.name != self.name]
            rebuild_table(schema_editor, model, constraints=[*kept, check])
        elif vendor == "postgresql":
            run_raw(
                schema_editor,
                f"{alter} ADD CONSTRAINT {qn(self.name)} CHECK ({self.check_sql}) NOT VALID",
            )
            schema_editor.execute(f"{alter} VALIDATE CONSTRAINT {qn(self.name)}")
        else:
            run_raw(
                schema_editor, f"{alter} ADD CONSTRAINT {qn(self.name)} CHECK ({self.check_sql})"
            )

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "sqlite":
            from dorm.migrations.sqlite_rebuild import rebuild_table

            model = _model_for_table(from_state, self.table)
            kept = [c for c in model._meta.constraints if c.name != self.name]
            rebuild_table(schema_editor, model, constraints=kept)
            return
        qn = schema_editor.quote_name
        schema_editor.execute(f"ALTER TABLE {qn(self.table)} DROP CONSTRAINT {qn(self.name)}")

    def describe(self) -> str:
        return f"Add CHECK constraint {self.name} on {self.table} (online)"


class SeederMigration(Operation):
    """Insert seed rows ``{"model": "app.Model", "fields": {...}}`` through historical models.

    A row whose ``fields`` already match an existing row is skipped, so running the seeder
    again adds nothing. The rows it did insert are noted in ``dorm_seeded_rows``;
    unapplying deletes exactly those, never a matching row that was there before.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping) or not isinstance(row.get("model"), str):
                raise ValueError(
                    f"SeederMigration row {i}: expected {{'model': 'app.Model', 'fields': "
                    f"{{...}}}}, got {row!r}"
                )
            if not isinstance(row.get("fields", {}), Mapping):
                raise ValueError(f"SeederMigration row {i}: 'fields' must be a dict")
        self.rows = [dict(row) for row in rows]

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def _ensure_table(self, schema_editor: SchemaEditor) -> None:
        qn = schema_editor.quote_name
        schema_editor.connection.execute(
            f"CREATE TABLE IF NOT EXISTS {qn(SEEDED_TABLE)} "
            f"({qn('model')} varchar(255) NOT NULL, {qn('pk')} varchar(255) NOT NULL)",
            (),
        )

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.collect_sql:
            return  # data, not schema: nothing to show as SQL
        self._ensure_table(schema_editor)
        conn = schema_editor.connection
        qn, p = schema_editor.quote_name, conn.ops.placeholder
        for row in self.rows:
            model = from_state.apps.get_model(row["model"])
            fields = dict(row.get("fields", {}))
            if model._base_manager.using(conn.alias).filter(**fields).exists():
                continue
            obj = model(**fields)
            obj.save(using=conn.alias)
            conn.execute(
                f"INSERT INTO {qn(SEEDED_TABLE)} ({qn('model')}, {qn('pk')}) VALUES ({p}, {p})",
                (model._meta.label_lower, str(obj.pk)),
            )

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.collect_sql:
            return
        self._ensure_table(schema_editor)
        conn = schema_editor.connection
        qn, p = schema_editor.quote_name, conn.ops.placeholder
        for row in reversed(self.rows):
            model = to_state.apps.get_model(row["model"])
            label = model._meta.label_lower
            recorded = conn.fetchall(
                f"SELECT {qn('pk')} FROM {qn(SEEDED_TABLE)} WHERE {qn('model')} = {p}", (label,)
            )
            pk_field = model._meta.pk
            assert pk_field is not None
            pks = [pk_field.to_python(r[0]) for r in recorded]
            if not pks:
                continue
            qs = model._base_manager.using(conn.alias).filter(**row.get("fields", {}))
            mine = list(qs.filter(pk__in=pks).values_list("pk", flat=True))
            if not mine:
                continue
            model._base_manager.using(conn.alias).filter(pk__in=mine).delete()
            conn.execute(
                f"DELETE FROM {qn(SEEDED_TABLE)} WHERE {qn('model')} = {p} AND {qn('pk')} IN "
                f"({', '.join([p] * len(mine))})",
                (label, *(str(pk) for pk in mine)),
            )

    def describe(self) -> str:
        return f"Seed {len(self.rows)} row(s)"
