"""``db_comment`` and ``Meta.db_table_comment``: COMMENT ON statements for the schema editor.

PostgreSQL stores the comments in its catalog. SQLite has no comments: they stay in the
model (and the migration state) only, and a log record of ``dorm.migrations`` says so
once per table the editor creates.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dorm.migrations.schema import SchemaEditor
    from dorm.models.base import Model
    from dorm.models.fields import Field

__all__ = ["column_comment", "model_comments", "table_comment"]

logger = logging.getLogger("dorm.migrations")


def _literal(editor: SchemaEditor, text: str | None) -> str:
    return "NULL" if text is None else editor.connection.ops.quote_value(text)


def table_comment(editor: SchemaEditor, table: str, text: str | None) -> None:
    """Set (or with None remove) the comment of ``table``."""
    if editor.connection.vendor != "postgresql":
        return
    qn = editor.quote_name
    editor.execute(f"COMMENT ON TABLE {qn(table)} IS {_literal(editor, text)}")


def column_comment(editor: SchemaEditor, table: str, field: Field) -> None:
    """Set the comment of ``field``'s column to its ``db_comment`` (None removes it)."""
    if editor.connection.vendor != "postgresql":
        return
    qn = editor.quote_name
    editor.execute(
        f"COMMENT ON COLUMN {qn(table)}.{qn(field.column)} IS {_literal(editor, field.db_comment)}"
    )


def model_comments(editor: SchemaEditor, model: type[Model]) -> None:
    """The comments of a table ``create_model`` just made."""
    opts = model._meta
    commented = [f for f in opts.local_concrete_fields if f.db_comment is not None]
    if opts.db_table_comment is None and not commented:
        return
    if editor.connection.vendor != "postgresql":
        logger.info(
            "%s: %s has no table or column comments; db_table_comment and db_comment of "
            "%s are kept in the model only",
            opts.db_table,
            editor.connection.display_name,
            opts.label,
        )
        return
    if opts.db_table_comment is not None:
        table_comment(editor, opts.db_table, opts.db_table_comment)
    for field in commented:
        column_comment(editor, opts.db_table, field)
