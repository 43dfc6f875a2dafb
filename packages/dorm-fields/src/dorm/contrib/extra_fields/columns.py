"""The column type of every extra field on each vendor (``dorm_register_field_types``)."""

from __future__ import annotations

from typing import Any

from dorm.contrib.extra_fields.color import ColorField
from dorm.contrib.extra_fields.country import CountryField
from dorm.contrib.extra_fields.money import MoneyField
from dorm.contrib.extra_fields.network import IPRangeField
from dorm.contrib.extra_fields.paths import PathField
from dorm.contrib.extra_fields.percentage import PercentageField
from dorm.contrib.extra_fields.phone import PhoneField
from dorm.contrib.extra_fields.schema import JSONSchemaField
from dorm.contrib.extra_fields.semver import SemverField
from dorm.contrib.extra_fields.timezone import TimezoneField
from dorm.hookspecs import DBType

__all__ = ["column_types"]


def _varchar(field: Any, connection: Any) -> str:
    return f"varchar({int(field.max_length)})"


def _numeric(field: Any, connection: Any) -> str:
    return f"numeric({int(field.max_digits)}, {int(field.decimal_places)})"


def column_types() -> list[tuple[type, str, DBType]]:
    """Return ``(field class, vendor, column type)`` for both vendors dorm-core ships."""
    text_like: list[type] = [
        SemverField,
        PhoneField,
        ColorField,
        TimezoneField,
        PathField,
        CountryField,
    ]
    types: list[tuple[type, str, DBType]] = []
    for cls in text_like:
        types += [(cls, "sqlite", _varchar), (cls, "postgresql", _varchar)]
    types += [
        # SQLite's "decimal" has NUMERIC affinity, as core's DecimalField column.
        (MoneyField, "sqlite", "decimal"),
        (MoneyField, "postgresql", _numeric),
        (PercentageField, "sqlite", "decimal"),
        (PercentageField, "postgresql", _numeric),
        (IPRangeField, "sqlite", _varchar),
        (IPRangeField, "postgresql", "cidr"),
        # A JSONField: core's adapters (jsonb on PostgreSQL) apply by internal type.
        (JSONSchemaField, "sqlite", "text"),
        (JSONSchemaField, "postgresql", "jsonb"),
    ]
    return types
