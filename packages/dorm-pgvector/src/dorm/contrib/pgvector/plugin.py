"""The hook implementations of dorm-pgvector: column types, SQLite functions, full-text
triggers."""

from __future__ import annotations

from typing import Any

from dorm.hookspecs import DBType
from dorm.plugins import hookimpl


def _vector_type(field: Any, connection: Any) -> str:
    return f"vector({int(field.dimensions)})"


@hookimpl
def dorm_register_field_types() -> list[tuple[type, str, DBType]]:
    from dorm.contrib.pgvector.fields import SearchVectorField, VectorField

    return [
        (VectorField, "postgresql", _vector_type),
        (VectorField, "sqlite", "blob"),
        (SearchVectorField, "postgresql", "tsvector"),
        (SearchVectorField, "sqlite", "text"),
    ]


@hookimpl
def dorm_register_functions() -> list[type]:
    from dorm.contrib.pgvector.expressions import (
        CosineDistance,
        L2Distance,
        MaxInnerProduct,
        TextRank,
    )

    return [L2Distance, CosineDistance, MaxInnerProduct, TextRank]


@hookimpl
def dorm_connection_created(vendor: str, connection: Any, is_async: bool) -> None:
    if vendor == "postgresql":
        from dorm.contrib.pgvector.fields import register_driver_adapters

        register_driver_adapters(connection, is_async)
        return
    if vendor != "sqlite" or not hasattr(connection, "create_function"):
        return
    from dorm.conf import settings
    from dorm.contrib.pgvector.sqlite import register_functions

    register_functions(connection, bool(getattr(settings, "PGVECTOR_SQLITE_VEC", True)))


@hookimpl
def dorm_schema_model_created(schema_editor: Any, model: type) -> None:
    from dorm.contrib.pgvector.fulltext import model_created

    model_created(schema_editor, model)


@hookimpl
def dorm_schema_model_altered(schema_editor: Any, model: type) -> None:
    from dorm.contrib.pgvector.fulltext import model_altered

    model_altered(schema_editor, model)


@hookimpl
def dorm_schema_model_deleted(schema_editor: Any, model: type) -> None:
    from dorm.contrib.pgvector.fulltext import model_deleted

    model_deleted(schema_editor, model)
