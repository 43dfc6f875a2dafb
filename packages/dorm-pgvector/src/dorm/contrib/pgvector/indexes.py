"""HNSW and IVFFlat indexes for ``Meta.indexes``, and the migration that creates ``vector``.

The indexes are PostgreSQL-only: on SQLite the schema editor creates nothing for them
(queries there scan, which is exact). Use the opclass of the distance you order by:
``vector_l2_ops`` for L2Distance, ``vector_cosine_ops`` for CosineDistance,
``vector_ip_ops`` for MaxInnerProduct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm.contrib.pgvector.exceptions import VectorExtensionMissingError
from dorm.migrations.operation import Operation
from dorm.models.constraints import Index

if TYPE_CHECKING:
    from dorm.migrations.schema import SchemaEditor
    from dorm.migrations.state import ProjectState

__all__ = ["OPCLASSES", "HnswIndex", "IvfflatIndex", "VectorExtension"]

OPCLASSES = frozenset({"vector_l2_ops", "vector_cosine_ops", "vector_ip_ops"})


def _positive(kind: str, option: str, value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{kind}: {option} must be an int from {low} to {high}, got {value!r}")
    return value


class _VectorIndex(Index):
    method = ""

    def __init__(
        self, *, fields: Sequence[str], name: str, opclasses: Sequence[str] = ("vector_l2_ops",)
    ) -> None:
        kind = type(self).__name__
        if not name:
            raise ValueError(f"{kind} needs a name=")
        super().__init__(fields=fields, name=name)
        if len(self.fields) != 1 or self.fields[0].startswith("-"):
            raise ValueError(f"{kind}: fields must name one vector field, got {self.fields!r}")
        if isinstance(opclasses, str) or len(opclasses) != 1 or opclasses[0] not in OPCLASSES:
            raise ValueError(
                f"{kind}: opclasses must be one of {sorted(OPCLASSES)} in a list, got {opclasses!r}"
            )
        self.opclasses = list(opclasses)

    def with_options(self) -> dict[str, int]:
        return {}

    def create_sql(
        self, schema_editor: SchemaEditor, model: type, fields: Sequence[Any]
    ) -> str | None:
        """The CREATE INDEX statement on PostgreSQL; None elsewhere (nothing to create)."""
        if schema_editor.connection.vendor != "postgresql":
            return None
        qn = schema_editor.quote_name
        (column,) = schema_editor.columns_of(model, self.fields, fields)
        table = model._meta.db_table  # type: ignore[attr-defined]
        sql = (
            f"CREATE INDEX {qn(self.name or '')} ON {qn(table)} USING {self.method} "
            f"({qn(column)} {self.opclasses[0]})"
        )
        options = self.with_options()
        if options:
            sql += " WITH (" + ", ".join(f"{k} = {int(v)}" for k, v in options.items()) + ")"
        return sql

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "fields": self.fields,
            "name": self.name,
            "opclasses": self.opclasses,
        }
        kwargs.update(self.with_options())
        return f"dorm.contrib.pgvector.{type(self).__name__}", [], kwargs

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fields={self.fields!r} name={self.name!r}>"


class HnswIndex(_VectorIndex):
    """``HnswIndex(name=..., fields=["embedding"], m=16, ef_construction=64,
    opclasses=["vector_cosine_ops"])``; unset parameters take pgvector's defaults."""

    method = "hnsw"

    def __init__(
        self,
        *,
        fields: Sequence[str],
        name: str,
        m: int | None = None,
        ef_construction: int | None = None,
        opclasses: Sequence[str] = ("vector_l2_ops",),
    ) -> None:
        super().__init__(fields=fields, name=name, opclasses=opclasses)
        self.m = _positive("HnswIndex", "m", m, 2, 100)
        self.ef_construction = _positive("HnswIndex", "ef_construction", ef_construction, 4, 1000)

    def with_options(self) -> dict[str, int]:
        options = {"m": self.m, "ef_construction": self.ef_construction}
        return {k: v for k, v in options.items() if v is not None}


class IvfflatIndex(_VectorIndex):
    """``IvfflatIndex(name=..., fields=["embedding"], lists=100)``: build it after the
    table holds representative rows (the lists are computed at creation)."""

    method = "ivfflat"

    def __init__(
        self,
        *,
        fields: Sequence[str],
        name: str,
        lists: int | None = None,
        opclasses: Sequence[str] = ("vector_l2_ops",),
    ) -> None:
        super().__init__(fields=fields, name=name, opclasses=opclasses)
        self.lists = _positive("IvfflatIndex", "lists", lists, 1, 32768)

    def with_options(self) -> dict[str, int]:
        return {} if self.lists is None else {"lists": self.lists}


class VectorExtension(Operation):
    """Migration operation: ``CREATE EXTENSION IF NOT EXISTS vector`` on PostgreSQL
    (nothing on SQLite). Put it before the first migration that adds a VectorField.

    :raises VectorExtensionMissingError: the server has no pgvector package installed.
    """

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        if not schema_editor.collect_sql:
            row = connection.fetchone(
                "SELECT 1 FROM pg_available_extensions WHERE name = %s", ["vector"]
            )
            if row is None:
                version = connection.fetchone("SHOW server_version", [])
                shown = version[0] if version else "?"
                major = shown.split(".")[0]
                raise VectorExtensionMissingError(
                    f"the PostgreSQL server of {connection.alias!r} (version {shown}) has no "
                    f"'vector' extension: install pgvector on the database server (for "
                    f"example the postgresql-{major}-pgvector package, or build it from "
                    f"https://github.com/pgvector/pgvector), then run the migration again"
                )
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute("DROP EXTENSION IF EXISTS vector")

    def describe(self) -> str:
        return "Create the pgvector extension"
