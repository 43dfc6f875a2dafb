"""The hook implementations of dorm-fields: column types, lookups, SQLite function.

There is no save hook: ``autoslug`` is filled by its SlugField's own ``pre_save``, so the
plugin costs nothing when a model without extra fields is saved.
"""

from __future__ import annotations

from typing import Any

from dorm.contrib.extra_fields.columns import column_types
from dorm.contrib.extra_fields.network import (
    SQLITE_NET_CONTAINS,
    IPRangeField,
    NetContains,
    sqlite_net_contains,
)
from dorm.contrib.extra_fields.value_schemas import value_schemas
from dorm.hookspecs import DBType, ValueSchema
from dorm.plugins import hookimpl


@hookimpl
def dorm_register_field_types() -> list[tuple[type, str, DBType]]:
    return column_types()


@hookimpl
def dorm_register_value_schemas() -> list[tuple[type, ValueSchema]]:
    return value_schemas()


@hookimpl
def dorm_register_lookups() -> list[tuple[type, type]]:
    return [(IPRangeField, NetContains)]


@hookimpl
def dorm_connection_created(vendor: str, connection: Any) -> None:
    if vendor == "sqlite":
        connection.create_function(SQLITE_NET_CONTAINS, 2, sqlite_net_contains, deterministic=True)
