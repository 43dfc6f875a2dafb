"""The hook implementations of dorm-fields: column types, lookups, SQLite function.

There is no save hook: ``autoslug`` is filled by its SlugField's own ``pre_save``, so the
plugin costs nothing when a model without extra fields is saved. The field modules are
imported by the hooks that need them, not when the plugin loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.hookspecs import DBType, ValueSchema


@hookimpl
def dorm_register_field_types() -> list[tuple[type, str, DBType]]:
    from dorm.contrib.extra_fields.columns import column_types

    return column_types()


@hookimpl
def dorm_register_value_schemas() -> list[tuple[type, ValueSchema]]:
    from dorm.contrib.extra_fields.value_schemas import value_schemas

    return value_schemas()


@hookimpl
def dorm_register_lookups() -> list[tuple[type, type]]:
    from dorm.contrib.extra_fields.network import IPRangeField, NetContains

    return [(IPRangeField, NetContains)]


@hookimpl
def dorm_connection_created(vendor: str, connection: Any) -> None:
    if vendor == "sqlite":
        from dorm.contrib.extra_fields.network import SQLITE_NET_CONTAINS, sqlite_net_contains

        connection.create_function(SQLITE_NET_CONTAINS, 2, sqlite_net_contains, deterministic=True)
