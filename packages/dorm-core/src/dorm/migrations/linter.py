"""Lint migrations for operations that are risky on a live production database.

Codes (``docs/migrations.md`` shows a bad and a good example of each):

- ``DORM-M001`` AddField of a NOT NULL column without a default to an existing table.
- ``DORM-M002`` index built without ``CONCURRENTLY`` on an existing table (PostgreSQL).
- ``DORM-M003`` AlterField that changes the column type (table rewrite).
- ``DORM-M004`` RemoveField / DeleteModel of something the current models still use.
- ``DORM-M005`` an irreversible operation.
- ``DORM-M006`` a destructive RunSQL (DROP TABLE / DROP COLUMN / TRUNCATE) with empty reverse_sql.

Silence a code for a whole migration with ``lint_ignore = ["DORM-M002"]`` on its Migration
class, for some operations with ``lint_ignore = {"DORM-M002": [0, 3]}`` (operation
indexes), or for one operation with :func:`silence`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from dorm.migrations.data_operations import RunPython, RunSQL, SeparateDatabaseAndState
from dorm.migrations.operations import (
    AddField,
    AddIndex,
    AlterField,
    CreateModel,
    DeleteModel,
    RemoveField,
)

if TYPE_CHECKING:
    from dorm.apps import Apps
    from dorm.migrations.graph import MigrationGraph
    from dorm.migrations.migration import Migration
    from dorm.migrations.operation import Operation
    from dorm.migrations.state import ProjectState
    from dorm.models.fields import Field

__all__ = ["CODES", "Finding", "lint_migrations", "silence"]

CODES: dict[str, str] = {
    "DORM-M001": "NOT NULL column without a default added to an existing table",
    "DORM-M002": "index built without CONCURRENTLY on an existing table (PostgreSQL)",
    "DORM-M003": "AlterField changes the column type (table rewrite)",
    "DORM-M004": "column or table dropped while the current models still use it",
    "DORM-M005": "irreversible operation",
    "DORM-M006": "destructive RunSQL with empty reverse_sql",
}

_OpT = TypeVar("_OpT", bound="Operation")

# Parameters whose change alters the column's SQL type.
_TYPE_PARAMS = ("max_length", "max_digits", "decimal_places")

_DESTRUCTIVE = re.compile(r"\bDROP\s+TABLE\b|\bDROP\s+COLUMN\b|\bTRUNCATE\b", re.IGNORECASE)
_CREATE_INDEX = re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\b(?!\s+CONCURRENTLY\b)", re.I)
# String literals, quoted identifiers, dollar-quoted bodies and comments: their text is
# not SQL the server runs, so a "DROP TABLE" inside them is not destructive.
_NOT_CODE = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(\$\w*\$).*?\1|--[^\n]*|/\*.*?\*/", re.DOTALL
)


class Finding(NamedTuple):
    """One lint finding: ``operation`` is the 0-based index into ``Migration.operations``."""

    code: str
    app: str
    migration: str
    operation: int
    message: str

    def as_text(self) -> str:
        """``app/0003_x.py:op 2: DORM-M006 message``."""
        return f"{self.app}/{self.migration}.py:op {self.operation}: {self.code} {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def _code(code: str) -> str:
    code = code.strip().upper()
    return code if code.startswith("DORM-") else f"DORM-{code}"


def silence(operation: _OpT, *codes: str) -> _OpT:
    """Silence ``codes`` (``"DORM-M002"`` or ``"M002"``) for this one operation; return it.

    ``operations = [silence(AddIndex(...), "DORM-M002")]``
    """
    if not codes:
        raise ValueError("silence(operation, ...): name at least one code, e.g. 'DORM-M002'")
    existing = set(getattr(operation, "lint_ignore", ()))
    operation.lint_ignore = frozenset(existing | {_code(c) for c in codes})  # type: ignore[attr-defined]
    return operation


def _silenced(migration: Migration, index: int, operation: Operation, code: str) -> bool:
    if code in getattr(operation, "lint_ignore", ()):
        return True
    setting = getattr(migration, "lint_ignore", None)
    if setting is None:
        return False
    if isinstance(setting, str):
        setting = [setting]
    if isinstance(setting, Mapping):
        for key, indexes in setting.items():
            if _code(key) == code and (indexes is None or index in indexes):
                return True
        return False
    return code in {_code(c) for c in setting}


# -- SQL text ------------------------------------------------------------------------------------


def _sql_texts(statements: Any) -> list[str]:
    if statements is None:
        return []
    if isinstance(statements, str):
        return [statements]
    texts = []
    for item in statements:
        texts.append(item[0] if isinstance(item, (list, tuple)) else item)
    return [t for t in texts if isinstance(t, str)]


def _code_only(sql: str) -> str:
    return _NOT_CODE.sub(" ", sql)


def _empty(statements: Any) -> bool:
    return not any(t.strip() for t in _sql_texts(statements))


# -- the linter --------------------------------------------------------------------------------


class _Context:
    """What the checks know about one operation: its migration, index and states."""

    def __init__(
        self,
        migration: Migration,
        index: int,
        before: ProjectState | None,
        created_here: set[str],
        final: ProjectState | None,
        registry: Apps | None,
        vendor: str | None,
    ) -> None:
        self.migration = migration
        self.app = migration.app_label
        self.index = index
        self.before = before
        self.created_here = created_here
        self.final = final
        self.registry = registry
        self.vendor = vendor

    def existing_table(self, model_name: str) -> bool:
        """True unless the model's table is created earlier in this migration (so empty)."""
        return model_name.lower() not in self.created_here

    def old_field(self, model_name: str, name: str) -> Field | None:
        if self.before is None:
            return None
        try:
            return self.before.get_model_state(self.app, model_name).fields.get(name)
        except Exception:  # a state the linter cannot follow: skip the check, never crash
            return None


def _check_add_field(op: AddField, ctx: _Context) -> list[tuple[str, str]]:
    field = op.field
    found: list[tuple[str, str]] = []
    target = f"{ctx.app}.{op.model_name}.{op.name}"
    if getattr(field, "many_to_many", False) or not ctx.existing_table(op.model_name):
        return found
    if not field.null and not field.has_default() and not field.primary_key:
        found.append(
            (
                "DORM-M001",
                f"AddField {target} adds a NOT NULL column without a default to an existing "
                f"table: the ALTER fails on rows already there (or rewrites the table). Add it "
                f"with null=True, backfill with RunPython, then AlterField to null=False; or "
                f"give the field a default=",
            )
        )
    if field.db_index or getattr(field, "unique", False):
        found.append(("DORM-M002", _index_message(f"AddField {target} (indexed field)")))
    return found


def _index_message(what: str) -> str:
    return (
        f"{what} builds an index without CONCURRENTLY: on PostgreSQL the table is locked for "
        f"writes for the whole build. Use a migration with atomic = False holding "
        f"SeparateDatabaseAndState(database_operations=[RunSQL('CREATE INDEX CONCURRENTLY ...', "
        f"reverse_sql='DROP INDEX CONCURRENTLY ...')], state_operations=[...])"
    )


def _check_alter_field(op: AlterField, ctx: _Context) -> list[tuple[str, str]]:
    old = ctx.old_field(op.model_name, op.name)
    if old is None:
        return []
    new = op.field
    changed = type(old) is not type(new) or any(
        getattr(old, p, None) != getattr(new, p, None) for p in _TYPE_PARAMS
    )
    if not changed:
        return []
    return [
        (
            "DORM-M003",
            f"AlterField {ctx.app}.{op.model_name}.{op.name} changes the column type "
            f"({type(old).__name__} -> {type(new).__name__}): PostgreSQL rewrites the table "
            f"under an ACCESS EXCLUSIVE lock and SQLite rebuilds it. Add a new column, "
            f"backfill it, switch the code to it, then drop the old one",
        )
    ]


def _current_model(ctx: _Context, model_name: str) -> Any:
    if ctx.registry is None:
        return None
    return ctx.registry.all_models.get(ctx.app, {}).get(model_name.lower())


def _in_final_state(ctx: _Context, model_name: str, field: str | None = None) -> bool:
    """Whether a later migration re-adds the model (or field): then code may use it."""
    if ctx.final is None:
        return False
    ms = ctx.final.models.get((ctx.app, model_name.lower()))
    return ms is not None and (field is None or field in ms.fields)


def _check_remove_field(op: RemoveField, ctx: _Context) -> list[tuple[str, str]]:
    model = _current_model(ctx, op.model_name)
    if model is None or _in_final_state(ctx, op.model_name, op.name):
        return []
    if op.name not in {f.name for f in model._meta.fields}:
        return []
    return [
        (
            "DORM-M004",
            f"RemoveField drops {ctx.app}.{op.model_name}.{op.name}, but the current model "
            f"{model.__name__} still has that field: code deployed with this migration fails "
            f"on the missing column. Deploy code that stops using it first, and drop the "
            f"column in a later migration (or use SeparateDatabaseAndState to drop it from "
            f"the state now and from the database later)",
        )
    ]


def _references(ctx: _Context, model_name: str) -> list[str]:
    if ctx.registry is None:
        return []
    target = f"{ctx.app}.{model_name.lower()}"
    users = []
    for model in ctx.registry.get_models():
        for field in getattr(model._meta, "fields", []):
            remote = getattr(field, "remote_field", None)
            if remote is None:
                continue
            try:
                related = field.related_model
                label = f"{related._meta.app_label}.{related.__name__.lower()}"
            except Exception:
                continue
            if label == target and model.__name__.lower() != model_name.lower():
                users.append(f"{model.__name__}.{field.name}")
    return users


def _check_delete_model(op: DeleteModel, ctx: _Context) -> list[tuple[str, str]]:
    if _in_final_state(ctx, op.name):
        return []
    users = _references(ctx, op.name)
    if _current_model(ctx, op.name) is not None:
        users.insert(0, f"the model {op.name} itself")
    if not users:
        return []
    return [
        (
            "DORM-M004",
            f"DeleteModel drops the table of {ctx.app}.{op.name}, but the current models "
            f"still use it ({', '.join(users)}): deploy code that stops using it first, then "
            f"drop the table in a later migration",
        )
    ]


def _check_run_sql(op: RunSQL, ctx: _Context) -> list[tuple[str, str]]:
    found = []
    code = " ".join(_code_only(t) for t in _sql_texts(op.sql))
    match = _DESTRUCTIVE.search(code)
    if match and _empty(op.reverse_sql):
        found.append(
            (
                "DORM-M006",
                f"RunSQL runs {' '.join(match.group(0).upper().split())} with an empty "
                f"reverse_sql: the data is gone and unapplying restores nothing. Give "
                f"reverse_sql that recreates the schema (and restore the data from a backup or "
                f"copy it to an archive table first)",
            )
        )
    if _CREATE_INDEX.search(code):
        found.append(("DORM-M002", _index_message("RunSQL CREATE INDEX")))
    return found


def _irreversible(op: Operation) -> tuple[str, str] | None:
    if op.reversible:
        return None
    if isinstance(op, RunPython):
        detail = (
            f"RunPython({getattr(op.code, '__name__', op.code)!s}) has no reverse_code: give "
            f"reverse_code=..., or RunPython.noop when there is nothing to undo"
        )
    elif isinstance(op, RunSQL):
        detail = (
            "RunSQL has no reverse_sql: give reverse_sql=..., or RunSQL.noop when there is "
            "nothing to undo"
        )
    else:
        detail = f"{op.describe()} is not reversible (reversible=False)"
    return (
        "DORM-M005",
        f"{detail}. The migration cannot be unapplied, so a bad deploy cannot be rolled back",
    )


def _check(op: Operation, ctx: _Context) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(op, AddField):
        found += _check_add_field(op, ctx)
    elif isinstance(op, AddIndex):
        if ctx.existing_table(op.model_name):
            found.append(
                ("DORM-M002", _index_message(f"AddIndex {op.index.name} on {op.model_name}"))
            )
    elif isinstance(op, AlterField):
        found += _check_alter_field(op, ctx)
    elif isinstance(op, RemoveField):
        found += _check_remove_field(op, ctx)
    elif isinstance(op, DeleteModel):
        found += _check_delete_model(op, ctx)
    elif isinstance(op, RunSQL):
        found += _check_run_sql(op, ctx)
    elif isinstance(op, SeparateDatabaseAndState):
        # Only the database side touches the server; reversibility is checked once below.
        for inner in op.database_operations:
            found += [f for f in _check(inner, ctx) if f[0] != "DORM-M005"]
    return found


def _state_before(graph: MigrationGraph | None, migration: Migration) -> ProjectState | None:
    if graph is None or migration.key not in graph:
        return None
    try:
        plan = graph.forwards_plan(migration.key)
        return graph.make_state(plan[:-1]) if len(plan) > 1 else graph.make_state([])
    except Exception:  # a broken history is the loader's to report, not the linter's
        return None


def lint_migrations(
    migrations: Iterable[Migration],
    *,
    graph: MigrationGraph | None = None,
    registry: Apps | None = None,
    vendor: str | None = None,
) -> list[Finding]:
    """Return the findings for ``migrations``, sorted by app, migration and operation.

    ``graph`` (``MigrationLoader(...).graph``) gives the state before each migration, which
    M003 needs and which tells M001/M002 a table already exists; without it a table counts
    as existing unless this migration creates it. ``registry`` (``dorm.apps.apps``) holds
    the current models M004 compares with. A known ``vendor`` other than ``"postgresql"``
    drops M002, which is PostgreSQL advice; None (unknown) keeps it.
    """
    final = None
    if graph is not None:
        try:
            final = graph.make_state()
        except Exception:
            final = None
    findings: list[Finding] = []
    for migration in migrations:
        state = _state_before(graph, migration)
        created_here: set[str] = set()
        for index, op in enumerate(migration.operations):
            ctx = _Context(migration, index, state, created_here, final, registry, vendor)
            found = _check(op, ctx)
            irreversible = _irreversible(op)
            if irreversible is not None:
                found.append(irreversible)
            for code, message in found:
                if code == "DORM-M002" and vendor not in (None, "postgresql"):
                    continue
                if not _silenced(migration, index, op, code):
                    findings.append(
                        Finding(code, migration.app_label, migration.name, index, message)
                    )
            if isinstance(op, CreateModel):
                created_here.add(op.name.lower())
            if state is not None:
                try:
                    state = state.clone()
                    op.state_forwards(migration.app_label, state)
                except Exception:
                    state = None
    findings.sort(key=lambda f: (f.app, f.migration, f.operation, f.code))
    return findings
