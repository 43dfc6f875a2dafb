"""JSON Schema, OpenAPI and Avro export of core fields: the schemas are valid (jsonschema,
fastavro), and what dorm serializes validates against them, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import uuid
from typing import Any

import pytest

import dorm
from dorm.contrib.serializers import (
    UnknownFieldTypeError,
    avro_record,
    avro_schema_for,
    json_schema_for,
    openapi_schema_for,
    stream_jsonl,
)

jsonschema = pytest.importorskip("jsonschema")
fastavro = pytest.importorskip("fastavro")

UTC = datetime.UTC


class Shelf(dorm.Model):
    code = dorm.CharField(max_length=8, unique=True)

    class Meta:
        app_label = "ser_schemas"


class Record(dorm.Model):
    id = dorm.AutoField(primary_key=True)
    title = dorm.CharField(max_length=10, help_text="Short title")
    state = dorm.CharField(
        max_length=8, choices=[("draft", "Draft"), ("live", "Live")], default="draft"
    )
    note = dorm.TextField(null=True)
    count = dorm.SmallIntegerField(default=0)
    big = dorm.BigIntegerField(null=True)
    ratio = dorm.FloatField(null=True)
    price = dorm.DecimalField(max_digits=7, decimal_places=2)
    active = dorm.BooleanField(default=True)
    day = dorm.DateField(null=True)
    moment = dorm.DateTimeField(null=True)
    clock = dorm.TimeField(null=True)
    span = dorm.DurationField(null=True)
    email = dorm.EmailField(null=True)
    token = dorm.UUIDField(null=True)
    doc = dorm.JSONField(null=True)
    blob = dorm.BinaryField(null=True)
    shelf = dorm.ForeignKey(Shelf, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "ser_schemas"
        ordering = ["id"]


MODELS = [Shelf, Record]

pytestmark = pytest.mark.usefixtures("clean_tables")


def _rows() -> list[dict[str, Any]]:
    shelf = Shelf.objects.create(code="A1")
    Record.objects.create(
        title="Full",
        state="live",
        note="n",
        count=-3,
        big=2**40,
        ratio=1.5,
        price=decimal.Decimal("-99999.99"),
        day=datetime.date(2026, 2, 3),
        moment=datetime.datetime(2026, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
        clock=datetime.time(4, 5, 6, 700),
        span=datetime.timedelta(hours=-1, microseconds=1),
        email="a@example.com",
        token=uuid.uuid4(),
        doc={"x": [1, {"y": None}]},
        blob=b"\x01\x02",
        shelf=shelf,
    )
    Record.objects.create(title="Empty", price=decimal.Decimal("0.00"))
    lines = b"".join(stream_jsonl(Record.objects.all())).splitlines()
    return [json.loads(line) for line in lines]


def _validator(schema: dict[str, Any]) -> Any:
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_json_schema_is_valid_and_serialized_records_validate(clean_tables: Any) -> None:
    schema = json_schema_for(Record)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = _validator(schema)
    records = _rows()
    for record in records:
        validator.validate(record)
    full = records[0]
    for key, bad in [
        ("title", "x" * 11),  # max_length
        ("state", "gone"),  # choices
        ("price", "123456.00"),  # max_digits 7, decimal_places 2
        ("price", "1.234"),
        ("price", 1.5),  # decimals are strings, never floats
        ("count", 40000),  # SmallIntegerField range
        ("title", None),  # not nullable
        ("moment", "yesterday"),
        ("token", "not-a-uuid"),
        ("shelf", "A1"),  # a relation is its target's key
    ]:
        errors = list(validator.iter_errors({**full, key: bad}))
        assert errors and list(errors[0].path) == [key], (key, bad)
    assert list(validator.iter_errors({**full, "extra": 1}))  # additionalProperties
    missing = {k: v for k, v in full.items() if k != "note"}
    assert list(validator.iter_errors(missing))  # every field is required


def test_schema_states_nullability_lengths_choices_decimals_relations_defaults() -> None:
    props = json_schema_for(Record)["properties"]
    assert props["note"]["type"] == ["string", "null"] and props["title"]["type"] == "string"
    assert props["title"]["maxLength"] == 10 and props["title"]["description"] == "Short title"
    assert props["state"]["enum"] == ["draft", "live"] and props["state"]["default"] == "draft"
    assert props["price"]["pattern"] == r"^-?[0-9]{1,5}(\.[0-9]{1,2})?$"
    assert props["count"] == {
        "type": "integer",
        "minimum": -32768,
        "maximum": 32767,
        "default": 0,
    }
    assert props["shelf"]["description"] == "Primary key of ser_schemas.Shelf"
    assert props["shelf"]["type"] == ["integer", "null"]
    assert props["id"]["readOnly"] is True and props["doc"] == {}
    assert props["blob"]["contentEncoding"] == "base64"


def test_openapi_schema_validates_records_inside_an_openapi_document(clean_tables: Any) -> None:
    component = openapi_schema_for(Record)
    assert "$schema" not in component and component["title"] == "Record"
    document = {
        "openapi": "3.1.0",
        "info": {"title": "records", "version": "1"},
        "paths": {},
        "components": {"schemas": {"Record": component, "Shelf": openapi_schema_for(Shelf)}},
    }
    validator = _validator({**document, "$ref": "#/components/schemas/Record"})
    records = _rows()
    for record in records:
        validator.validate(record)
    assert list(validator.iter_errors({**records[0], "price": "1e3"}))


def test_avro_schema_parses_and_records_read_back(clean_tables: Any) -> None:
    _rows()
    raw = avro_schema_for(Record)
    schema = fastavro.parse_schema(raw)
    fields = {f["name"]: f for f in raw["fields"]}
    assert (raw["name"], raw["namespace"]) == ("Record", "ser_schemas")
    assert fields["id"]["type"] == "int" and fields["big"]["type"] == ["null", "long"]
    assert fields["price"]["type"] == {
        "type": "bytes",
        "logicalType": "decimal",
        "precision": 7,
        "scale": 2,
    }
    assert fields["moment"]["type"] == ["null", {"type": "long", "logicalType": "timestamp-micros"}]
    assert fields["state"]["type"]["symbols"] == ["draft", "live"]
    assert fields["state"]["default"] == "draft" and fields["note"]["default"] is None
    assert fields["shelf"]["doc"] == "Primary key of ser_schemas.Shelf"
    records = [avro_record(o) for o in Record.objects.all()]
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, records)
    buffer.seek(0)
    back = list(fastavro.reader(buffer))
    assert back == records
    assert back[0]["moment"] == datetime.datetime(2026, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert back[0]["price"] == decimal.Decimal("-99999.99")
    # A reader of an old file with the schema's defaults: a record missing a defaulted field.
    old = {"type": "record", "name": "Record", "namespace": "ser_schemas", "fields": []}
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(old), [{}])
    buffer.seek(0)
    (upgraded,) = fastavro.reader(buffer, reader_schema=_only_defaulted(raw))
    assert upgraded == {"state": "draft", "note": None, "count": 0, "active": True}


def _only_defaulted(raw: dict[str, Any]) -> Any:
    keep = [f for f in raw["fields"] if f["name"] in ("state", "note", "count", "active")]
    return fastavro.parse_schema({**raw, "fields": keep})


def test_an_unknown_field_type_names_the_field_and_the_hook() -> None:
    class Opaque(dorm.Field):
        pass

    class Thing(dorm.Model):
        blob = Opaque()

        class Meta:
            app_label = "ser_schemas_unknown"

    for export in (json_schema_for, openapi_schema_for, avro_schema_for):
        with pytest.raises(UnknownFieldTypeError, match=r"Thing\.blob: no serializer type") as e:
            export(Thing)
        assert "dorm_register_value_schemas" in str(e.value) and "Opaque" in str(e.value)
    assert isinstance(e.value, TypeError)
