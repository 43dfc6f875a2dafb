"""The hook implementations of dorm-fields: column types, lookups, SQLite function, autoslug."""

from __future__ import annotations

from typing import Any

from dorm.contrib.extra_fields.columns import column_types
from dorm.contrib.extra_fields.network import (
    SQLITE_NET_CONTAINS,
    IPRangeField,
    NetContains,
    sqlite_net_contains,
)
from dorm.contrib.extra_fields.slug import fill_autoslugs
from dorm.hookspecs import DBType
from dorm.plugins import hookimpl


@hookimpl
def dorm_register_field_types() -> list[tuple[type, str, DBType]]:
    return column_types()


@hookimpl
def dorm_register_lookups() -> list[tuple[type, type]]:
    return [(IPRangeField, NetContains)]


@hookimpl
def dorm_connection_created(vendor: str, connection: Any) -> None:
    if vendor == "sqlite":
        connection.create_function(SQLITE_NET_CONTAINS, 2, sqlite_net_contains, deterministic=True)


@hookimpl
def dorm_pre_save(sender: type, instance: Any, using: str) -> None:
    fill_autoslugs(sender, instance, using)
