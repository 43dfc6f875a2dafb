"""How the extra fields' values look outside the database (``dorm_register_value_schemas``).

Each describer answers in the vocabulary of the core hookspec: a carrier type plus JSON
Schema keywords. Serializers and schema exporters read it without importing this package.
"""

from __future__ import annotations

import re
from typing import Any

from dorm.contrib.extra_fields.color import ColorField
from dorm.contrib.extra_fields.country import CountryField, _countries
from dorm.contrib.extra_fields.money import MoneyField
from dorm.contrib.extra_fields.network import IPRangeField
from dorm.contrib.extra_fields.paths import PathField
from dorm.contrib.extra_fields.percentage import PercentageField
from dorm.contrib.extra_fields.phone import PhoneField
from dorm.contrib.extra_fields.schema import JSONSchemaField
from dorm.contrib.extra_fields.semver import _SEMVER, SemverField
from dorm.contrib.extra_fields.timezone import TimezoneField
from dorm.hookspecs import ValueSchema

__all__ = ["value_schemas"]


def _text(field: Any, **keywords: Any) -> dict[str, Any]:
    return {"type": "string", "max_length": field.max_length, "json_schema": keywords}


def _money(field: Any) -> dict[str, Any]:
    return {
        "type": "decimal",
        "max_digits": field.max_digits,
        "decimal_places": field.decimal_places,
        "json_schema": {"description": f"An amount in {field.currency} (ISO 4217)"},
    }


def _percentage(field: Any) -> dict[str, Any]:
    return {
        "type": "decimal",
        "max_digits": 3 + field.decimal_places,
        "decimal_places": field.decimal_places,
        "json_schema": {"description": "A percentage from 0 to 100"},
    }


def _semver(field: Any) -> dict[str, Any]:
    # JSON Schema patterns are ECMA-262: Python's (?P<name>...) groups become plain groups.
    pattern = re.sub(r"\(\?P<\w+>", "(", _SEMVER.pattern)
    return _text(field, pattern=f"^{pattern}$", description="A SemVer 2.0.0 version")


def _phone(field: Any) -> dict[str, Any]:
    return _text(field, pattern=r"^\+[1-9][0-9]{1,14}$", description="An E.164 phone number")


def _color(field: Any) -> dict[str, Any]:
    return _text(field, pattern="^#(?:[0-9A-F]{6}|[0-9A-F]{8})$", description="#RRGGBB[AA]")


def _country(field: Any) -> dict[str, Any]:
    return _text(field, enum=sorted(_countries()), description="ISO 3166-1 alpha-2 code")


def _timezone(field: Any) -> dict[str, Any]:
    return _text(field, description="An IANA time zone name", examples=["Europe/Madrid"])


def _path(field: Any) -> dict[str, Any]:
    return _text(field, description="A POSIX path")


def _network(field: Any) -> dict[str, Any]:
    return _text(field, description="An IPv4 or IPv6 network in CIDR notation")


def _json_document(field: Any) -> dict[str, Any]:
    schema = field.schema
    keywords = dict(schema) if isinstance(schema, dict) else {}
    keywords.pop("$schema", None)  # embedded as a subschema of the model's schema
    return {"type": "json", "json_schema": keywords}


def value_schemas() -> list[tuple[type, ValueSchema]]:
    """Return ``(field class, describe)`` for every extra field."""
    return [
        (MoneyField, _money),
        (PercentageField, _percentage),
        (SemverField, _semver),
        (PhoneField, _phone),
        (ColorField, _color),
        (CountryField, _country),
        (TimezoneField, _timezone),
        (PathField, _path),
        (IPRangeField, _network),
        (JSONSchemaField, _json_document),
    ]
