"""Every dorm-fields type round-trips through MessagePack and JSON Lines, on both backends,
and maps to a meaningful schema through the ``dorm_register_value_schemas`` hook."""

from __future__ import annotations

import decimal
import io
import ipaddress
import json
import pathlib
import zoneinfo
from typing import Any

import pytest

import dorm
from dorm.contrib.serializers import (
    RecordError,
    avro_record,
    avro_schema_for,
    iter_jsonl,
    iter_msgpack,
    json_schema_for,
    stream_jsonl,
    stream_msgpack,
)

extra = pytest.importorskip("dorm.contrib.extra_fields")
jsonschema = pytest.importorskip("jsonschema")
fastavro = pytest.importorskip("fastavro")

DOC_SCHEMA = {
    "type": "object",
    "properties": {"size": {"type": "integer", "minimum": 1}},
    "required": ["size"],
}


class Gadget(dorm.Model):
    price = extra.MoneyField(currency="EUR", null=True)
    yen = extra.MoneyField(currency="JPY", null=True)
    discount = extra.PercentageField(null=True)
    version = extra.SemverField(null=True)
    phone = extra.PhoneField(null=True)
    color = extra.ColorField(null=True)
    country = extra.CountryField(null=True)
    zone = extra.TimezoneField(null=True)
    path = extra.PathField(null=True)
    network = extra.IPRangeField(null=True)
    spec = extra.JSONSchemaField(schema=DOC_SCHEMA, null=True)

    class Meta:
        app_label = "ser_extra"
        ordering = ["id"]


MODELS = [Gadget]

pytestmark = pytest.mark.usefixtures("clean_tables")

FULL: dict[str, Any] = dict(
    price=extra.Money("1234.50", "EUR"),
    yen=extra.Money("700", "JPY"),
    discount=decimal.Decimal("12.50"),
    version="2.0.0-rc.1+build.5",
    phone="+34 612 345 678",
    color="#1e90ff",
    country="es",
    zone="Europe/Madrid",
    path="/srv/data/file.txt",
    network="2001:db8::/32",
    spec={"size": 3},
)


def _values(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in Gadget._meta.concrete_fields}


def _rows() -> list[dict[str, Any]]:
    Gadget.objects.create(**FULL)
    Gadget.objects.create()
    return [_values(o) for o in Gadget.objects.all()]


def test_every_extra_field_type_round_trips_through_msgpack(clean_tables: Any) -> None:
    stored = _rows()
    full = stored[0]
    assert isinstance(full["price"], extra.Money) and isinstance(full["zone"], zoneinfo.ZoneInfo)
    assert full["network"] == ipaddress.ip_network("2001:db8::/32")
    assert full["path"] == pathlib.PurePosixPath("/srv/data/file.txt")
    copies = list(iter_msgpack(b"".join(stream_msgpack(Gadget.objects.all())), Gadget))
    assert [_values(c) for c in copies] == stored
    assert type(copies[0].version) is extra.SemVer and type(copies[0].country) is extra.Country
    Gadget.objects.all().delete()
    Gadget.objects.bulk_create(copies)
    assert [_values(o) for o in Gadget.objects.all()] == stored


def test_every_extra_field_type_round_trips_through_jsonl(clean_tables: Any) -> None:
    stored = _rows()
    text = b"".join(stream_jsonl(Gadget.objects.all()))
    assert b'"price":"1234.50"' in text and b'"zone":"Europe/Madrid"' in text
    assert [_values(c) for c in iter_jsonl(io.BytesIO(text), Gadget)] == stored


def test_a_bad_plugin_value_names_its_record_and_field(clean_tables: Any) -> None:
    lines = [b'{"color": "#000000"}', b'{"color": "blue"}']
    with pytest.raises(RecordError, match=r"record 2: Gadget.color: .*'#RRGGBB'") as info:
        list(iter_jsonl(lines, Gadget))
    assert info.value.row == 2


def test_extra_field_schemas_are_meaningful_and_validate_what_is_serialized(
    clean_tables: Any,
) -> None:
    _rows()
    schema = json_schema_for(Gadget)
    props = schema["properties"]
    assert "EUR" in props["price"]["description"]
    assert props["yen"]["pattern"] == "^-?[0-9]{1,19}$"  # JPY has no minor unit
    assert props["discount"]["pattern"].endswith(r"(\.[0-9]{1,2})?$")
    assert "ES" in props["country"]["enum"] and "XX" not in props["country"]["enum"]
    assert props["spec"]["required"] == ["size"]  # the field's own schema, embedded
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.check_schema(schema)
    lines = b"".join(stream_jsonl(Gadget.objects.all())).splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        validator.validate(record)
    full = records[0]
    for key, bad in [
        ("version", "v1.0.0"),
        ("phone", "612345678"),
        ("color", "#1e90ff"),
        ("country", "XX"),
        ("price", "12.345"),
        ("spec", {"size": 0}),
    ]:
        errors = list(validator.iter_errors({**full, key: bad}))
        assert errors and errors[0].path[0] == key, (key, bad)


def test_extra_field_avro_records_write_and_read_back(clean_tables: Any) -> None:
    _rows()
    schema = fastavro.parse_schema(avro_schema_for(Gadget))
    price = next(f for f in avro_schema_for(Gadget)["fields"] if f["name"] == "price")
    assert price["type"][1] == {
        "type": "bytes",
        "logicalType": "decimal",
        "precision": 19,
        "scale": 2,
    }
    records = [avro_record(o) for o in Gadget.objects.all()]
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, records)
    buffer.seek(0)
    back = list(fastavro.reader(buffer))
    assert back == records
    assert back[0]["price"] == decimal.Decimal("1234.50") and back[0]["zone"] == "Europe/Madrid"
