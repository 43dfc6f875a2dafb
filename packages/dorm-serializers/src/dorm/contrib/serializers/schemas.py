"""Schema export: ``json_schema_for``, ``openapi_schema_for``, ``avro_schema_for``.

All three read the value-type registry, so a field maps the same way everywhere. They
describe the records dorm serializes: every selected field is present (``required``), a
nullable field admits null, a relation is its target's key. JSON forms: decimals, dates,
times, UUIDs and durations are strings (decimals keep every digit), bytes are base64.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from typing import Any

from dorm.contrib.serializers.registry import Column, ValueType, columns_for
from dorm.contrib.serializers.values import carrier_converter, to_json

__all__ = ["avro_record", "avro_schema_for", "json_schema_for", "openapi_schema_for"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?"
    "(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _decimal_pattern(vt: ValueType) -> str:
    digits, places = vt.max_digits or 0, vt.decimal_places or 0
    whole = max(digits - places, 1)
    if places == 0:
        return f"^-?[0-9]{{1,{whole}}}$"
    return f"^-?[0-9]{{1,{whole}}}(\\.[0-9]{{1,{places}}})?$"


def _json_type(vt: ValueType) -> dict[str, Any]:
    kind = vt.kind
    if kind == "string":
        out: dict[str, Any] = {"type": "string"}
        if vt.max_length is not None:
            out["maxLength"] = vt.max_length
    elif kind == "integer":
        out = {"type": "integer"}
        if vt.minimum is not None:
            out["minimum"] = vt.minimum
        if vt.maximum is not None:
            out["maximum"] = vt.maximum
    elif kind == "number":
        out = {"type": "number"}
    elif kind == "boolean":
        out = {"type": "boolean"}
    elif kind == "decimal":
        out = {"type": "string", "format": "decimal", "pattern": _decimal_pattern(vt)}
    # Patterns as well as formats: in 2020-12 "format" is only an annotation by default.
    elif kind == "datetime":
        out = {"type": "string", "format": "date-time", "pattern": _DATETIME}
    elif kind == "date":
        out = {"type": "string", "format": "date", "pattern": _DATE}
    elif kind == "time":
        out = {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?$"}
    elif kind == "duration":
        out = {
            "type": "string",
            "pattern": "^-?P[0-9]+DT[0-9]+(\\.[0-9]{1,6})?S$",
            "description": "ISO 8601 duration in days and seconds",
        }
    elif kind == "uuid":
        out = {"type": "string", "format": "uuid"}
    elif kind == "binary":
        out = {"type": "string", "contentEncoding": "base64"}
    else:  # json: any document, unless the field's plugin says more
        out = {}
    out.update(vt.json_schema)
    return out


def _property(column: Column) -> dict[str, Any]:
    f = column.field
    prop = _json_type(column.vtype)
    if f.choices:
        prop["enum"] = [to_json(column, _choice_value(c)) for c in f.choices]
    if f.null:
        if "type" in prop:
            prop["type"] = [prop["type"], "null"]
        if "enum" in prop and None not in prop["enum"]:
            prop["enum"].append(None)
    if f.has_default() and not callable(f.default):
        prop["default"] = to_json(column, f.get_default())
    if column.relation is not None:
        prop["description"] = f"Primary key of {column.relation}"
    elif f.help_text and "description" not in prop:
        prop["description"] = str(f.help_text)
    if f.primary_key and type(f).__name__ in ("AutoField", "BigAutoField"):
        prop["readOnly"] = True
    return prop


def _choice_value(choice: Any) -> Any:
    return choice[0] if isinstance(choice, (list, tuple)) else choice


def _object_schema(model: Any, fields: Sequence[str] | None) -> dict[str, Any]:
    columns = columns_for(model, fields)
    return {
        "title": model.__name__,
        "type": "object",
        "properties": {c.name: _property(c) for c in columns},
        "required": [c.name for c in columns],
        "additionalProperties": False,
    }


def json_schema_for(model: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """Return a JSON Schema (2020-12) of ``model``'s serialized records.

    :raises UnknownFieldTypeError: a field's class has no serializer type.
    """
    return {"$schema": JSON_SCHEMA_DIALECT, **_object_schema(model, fields)}


def openapi_schema_for(model: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """Return an OpenAPI 3.1 Schema Object of ``model`` for ``components.schemas``.

    OpenAPI 3.1 schema objects are JSON Schema 2020-12, so this is ``json_schema_for``
    without ``$schema`` (the document's dialect applies).
    """
    return _object_schema(model, fields)


def _avro_type(column: Column, model: Any) -> Any:
    vt, f = column.vtype, column.field
    kind = vt.kind
    choices = [_choice_value(c) for c in f.choices or ()]
    if (
        kind == "string"
        and choices
        and all(isinstance(c, str) and _AVRO_NAME.fullmatch(c) for c in choices)
    ):
        return {"type": "enum", "name": f"{model.__name__}_{column.name}", "symbols": choices}
    if kind == "integer":
        low, high = vt.minimum, vt.maximum
        fits = low is not None and high is not None and low >= -(2**31) and high < 2**31
        return "int" if fits else "long"
    if kind == "decimal":
        return {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": vt.max_digits,
            "scale": vt.decimal_places,
        }
    simple = {
        "string": "string",
        "number": "double",
        "boolean": "boolean",
        "json": "string",
        "binary": "bytes",
        "duration": "long",
        "date": {"type": "int", "logicalType": "date"},
        "datetime": {"type": "long", "logicalType": "timestamp-micros"},
        "time": {"type": "long", "logicalType": "time-micros"},
        "uuid": {"type": "string", "logicalType": "uuid"},
    }
    return simple[kind]


_AVRO_DEFAULTABLE = ("string", "int", "long", "double", "boolean")


def avro_schema_for(model: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """Return an Avro record schema of ``model``.

    Decimals are ``bytes`` with the ``decimal`` logical type, datetimes
    ``timestamp-micros``, dates ``date``, times ``time-micros``, UUIDs ``uuid``;
    durations are ``long`` microseconds and JSON documents ``string`` JSON text (Avro
    has neither). String choices that are Avro names become an enum. A nullable field is
    a union with ``null``. Field defaults of simple types are carried over.
    """
    meta = model._meta
    out_fields = []
    for column in columns_for(model, fields):
        f = column.field
        avro: Any = _avro_type(column, model)
        entry: dict[str, Any] = {"name": column.name}
        default = f.get_default() if f.has_default() and not callable(f.default) else None
        has_default = f.has_default() and not callable(f.default)
        simple_default = has_default and (
            avro in _AVRO_DEFAULTABLE or (isinstance(avro, dict) and avro["type"] == "enum")
        )
        if f.null:
            if simple_default and default is not None:
                avro, entry["default"] = [avro, "null"], default
            else:
                avro, entry["default"] = ["null", avro], None
        elif simple_default:
            entry["default"] = default
        entry["type"] = avro
        doc = _avro_doc(column)
        if doc:
            entry["doc"] = doc
        out_fields.append(entry)
    namespace = meta.app_label if _AVRO_NAME.fullmatch(meta.app_label or "") else None
    schema: dict[str, Any] = {"type": "record", "name": model.__name__, "fields": out_fields}
    if namespace:
        schema["namespace"] = namespace
    return schema


def _avro_doc(column: Column) -> str:
    if column.relation is not None:
        return f"Primary key of {column.relation}"
    if column.vtype.kind == "duration":
        return "Duration in microseconds"
    if column.vtype.kind == "json":
        return "JSON document as text"
    described = column.vtype.json_schema.get("description")
    return str(described or column.field.help_text or "")


def avro_record(instance: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """Return ``instance`` as a record of ``avro_schema_for(type(instance))``, the
    Python values an Avro writer (fastavro) takes for it."""
    record: dict[str, Any] = {}
    for column in columns_for(type(instance), fields):
        value = getattr(instance, column.attname)
        if value is not None:
            convert = carrier_converter(column)
            if convert is not None:
                value = convert(value)
            kind = column.vtype.kind
            if kind == "json":
                value = json.dumps(value)
            elif kind == "duration":
                value = value // datetime.timedelta(microseconds=1)
            elif kind == "datetime" and value.tzinfo is None:
                value = value.replace(tzinfo=datetime.UTC)
        record[column.name] = value
    return record
