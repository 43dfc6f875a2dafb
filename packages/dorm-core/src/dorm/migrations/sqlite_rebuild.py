"""The SQLite table rebuild, for the changes ALTER TABLE cannot make there.

SQLite alters little in place (ADD / RENAME / DROP COLUMN with restrictions), so
``SchemaEditor`` rebuilds the table for the rest: new NOT NULL or UNIQUE columns, type,
null and unique changes, table constraints. The rebuild runs in a transaction (a savepoint
inside the editor's block) with ``PRAGMA foreign_keys`` left ON, which SQLite cannot
change inside a transaction. The usual recipe (create ``new``, copy, drop ``old``, rename
``new``) fails there: DROP TABLE deletes the old rows first, which counts every child row
pointing at them as a deferred foreign-key violation, and the rename does not take the
count back, so COMMIT fails. Instead the rows are parked in a TEMP table, the table is
dropped and created again under its own name, and the rows are inserted back: each insert
matches its child rows and cancels their count. ``PRAGMA foreign_key_check`` then confirms
nothing dangles before the savepoint is released.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dorm import transaction
from dorm.exceptions import FieldError, IntegrityError
from dorm.models.constraints import default_name

if TYPE_CHECKING:
    from dorm.migrations.schema import SchemaEditor
    from dorm.models.base import Model
    from dorm.models.fields import Field

__all__ = ["rebuild_table"]


def _uses(names: Sequence[str] | set[str], dropped: str | None) -> bool:
    return dropped is not None and dropped in names


def condition_fields(item: Any) -> set[str]:
    """Field names an index or constraint uses: its fields and those its condition names."""
    names = {n.lstrip("-") for n in getattr(item, "fields", ())}
    stack = [getattr(item, "condition", None)]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            names.add(str(node[0]).split("__")[0])
        elif node is not None:
            stack.extend(getattr(node, "children", ()))
    return names


def rebuild_table(
    editor: SchemaEditor,
    model: type[Model],
    *,
    fields: Sequence[Field] | None = None,
    mapping: Mapping[str, str] | None = None,
    unique_together: Sequence[Sequence[str]] | None = None,
    constraints: Sequence[Any] | None = None,
    indexes: Sequence[Any] | None = None,
    dropped: str | None = None,
    gone: Sequence[str] = (),
) -> None:
    """Recreate ``model``'s table with the given parts (the model's own where omitted).

    ``mapping`` gives, per new column, the SQL expression over the old table that fills it
    (a default literal, ``COALESCE(old, default)``, the old column under its old name);
    other columns copy the column of the same name. Indexes, unique groups and constraints
    naming the ``dropped`` field are left out, with any constraint or index carrying a
    condition (it may mention the field). The model must describe the table as it stands:
    a column of the table that is neither in ``fields`` nor in ``gone`` (the columns the
    operation drops or replaces) raises FieldError before any SQL rather than being lost.
    """
    opts = model._meta
    fields = list(opts.local_concrete_fields if fields is None else fields)
    mapping = dict(mapping or {})
    groups = [g for g in (opts.unique_together if unique_together is None else unique_together)]
    cons = list(opts.constraints if constraints is None else constraints)
    idxs = list(opts.indexes if indexes is None else indexes)
    if dropped is not None:
        groups = [g for g in groups if not _uses(g, dropped)]
        cons = [c for c in cons if not _uses(condition_fields(c), dropped)]
        idxs = [i for i in idxs if not _uses(condition_fields(i), dropped)]
    qn = editor.quote_name
    table = opts.db_table
    if not editor.collect_sql:
        existing = {r[1] for r in editor.connection.fetchall(f"PRAGMA table_info({qn(table)})", ())}
        lost = existing - {f.column for f in fields} - set(gone)
        if lost:
            raise FieldError(
                f"{opts.label} does not describe table {table!r}: rebuilding it would lose "
                f"column(s) {', '.join(sorted(lost))} (pass the model as it stands)"
            )
    parked = f"dorm_rebuild__{table}"
    kept = _existing_indexes(editor, table, fields, gone) if not editor.collect_sql else []
    copied = [f for f in fields if not f.generated]  # the new table computes its own
    columns = ", ".join(qn(f.column) for f in copied)
    select = ", ".join(f"{mapping.get(f.column, qn(f.column))} AS {qn(f.column)}" for f in copied)
    with transaction.atomic(using=editor.connection.alias):
        editor.execute(f"CREATE TEMP TABLE {qn(parked)} AS SELECT {select} FROM {qn(table)}")
        editor.execute(f"DROP TABLE {qn(table)}")
        editor.execute(editor.build_table_sql(model, table, fields, groups, cons))
        editor.execute(
            f"INSERT INTO {qn(table)} ({columns}) SELECT {columns} FROM temp.{qn(parked)}"
        )
        editor.execute(f"DROP TABLE temp.{qn(parked)}")
        statements = editor.index_statements(model, fields, idxs, cons)
        for statement in statements:
            editor.execute(statement)
        for name, sql in kept:
            if not any(s.startswith(f"CREATE INDEX {qn(name)} ") for s in statements):
                editor.execute(sql)
        if not editor.collect_sql:
            dangling = editor.connection.fetchall("PRAGMA foreign_key_check", ())
            if dangling:
                raise IntegrityError(
                    f"rebuilding {table!r} left foreign keys pointing nowhere: {dangling[:5]!r}"
                )


def _existing_indexes(
    editor: SchemaEditor, table: str, fields: Sequence[Field], gone: Sequence[str]
) -> list[tuple[str, str]]:
    """The table's explicit indexes (added by add_index or add_constraint, say) that the
    new table can keep: every column still there, not a db_index the field dropped."""
    qn = editor.quote_name
    conn = editor.connection
    columns = {f.column for f in fields}
    unindexed = {
        default_name(table, [f.column], "idx") for f in fields if not f.db_index or f.unique
    }
    kept = []
    for name, sql in conn.fetchall(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",
        (table,),
    ):
        used = {r[2] for r in conn.fetchall(f"PRAGMA index_info({qn(name)})", ())}
        if name in unindexed or not used <= columns:
            continue
        if any(qn(column) in sql for column in gone):  # named in a WHERE clause
            continue
        kept.append((name, sql))
    return kept
