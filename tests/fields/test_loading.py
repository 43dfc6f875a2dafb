"""Rows loaded from the database are converted, never judged again (SQLite and PostgreSQL).

A row written by raw SQL, or before a rule became stricter, holds values the fields now
refuse. Reading it must work through every read path; ``full_clean()``, an assignment and
``save()`` are where such values are reported.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import pathlib
from typing import Any

import pytest

import dorm
from dorm.contrib.extra_fields import (
    ColorField,
    CountryField,
    IPRangeField,
    JSONSchemaField,
    PathField,
    PercentageField,
    PhoneField,
    SemverField,
    TimezoneField,
)
from dorm.db.connection import get_connection
from dorm.exceptions import ValidationError

D = decimal.Decimal


class Stale(dorm.Model):
    name = dorm.CharField(max_length=20)
    version = SemverField(blank=True)
    phone = PhoneField(blank=True)
    color = ColorField(blank=True)
    doc = JSONSchemaField(schema={"type": "object", "required": ["name"]}, null=True, blank=True)
    network = IPRangeField(null=True, blank=True)
    tz = TimezoneField(default="UTC")
    path = PathField(allow_parent=False, blank=True)
    completion = PercentageField(null=True, blank=True)
    country = CountryField(blank=True)

    class Meta:
        app_label = "t_extra_loading"


MODELS = [Stale]

#: What a row holds for the columns a test leaves out.
EMPTY: dict[str, Any] = {
    "version": "",
    "phone": "",
    "color": "",
    "tz": "UTC",
    "path": "",
    "country": "",
}

#: Stored text -> what loading gives back: the value as stored, in the field's Python type
#: where that type can hold it (a path, a Decimal, a dict), else as the stored string.
STALE: dict[str, tuple[Any, Any]] = {
    "version": ("v1.0", "v1.0"),
    "phone": ("+34 000", "+34 000"),
    "color": ("red", "red"),
    "doc": ({"tags": [1]}, {"tags": [1]}),
    "tz": ("Mars/Olympus", "Mars/Olympus"),
    "path": ("../secret", pathlib.PurePosixPath("../secret")),
    "completion": (150, D("150.00")),
    "country": ("XX", "XX"),
}


def _stale_values(vendor: str) -> dict[str, tuple[Any, Any]]:
    values = dict(STALE)
    if vendor == "sqlite":  # PostgreSQL's cidr refuses host bits itself: it stores no such row
        values["network"] = ("10.0.0.1/24", "10.0.0.1/24")
    return values


def _write_raw_row(vendor: str, values: dict[str, tuple[Any, Any]]) -> int:
    conn = get_connection()
    qn, ph = conn.ops.quote_name, conn.ops.placeholder
    table = Stale._meta.db_table
    stored = dict(EMPTY)
    for name, (raw, _loaded) in values.items():
        stored[name] = json.dumps(raw) if name == "doc" else raw
    if vendor == "sqlite":
        conn.execute("PRAGMA ignore_check_constraints = ON", ())
    else:  # a column made before its CHECK constraint existed
        names = conn.fetchall(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(%s AS regclass) "
            "AND contype = 'c'",
            [table],
        )
        for (constraint,) in names:
            conn.execute(f"ALTER TABLE {qn(table)} DROP CONSTRAINT {qn(constraint)}", ())
    try:
        columns = ", ".join(qn(c) for c in ["name", *stored])
        marks = ", ".join([ph] * (len(stored) + 1))
        conn.execute(
            f"INSERT INTO {qn(table)} ({columns}) VALUES ({marks})", ["old", *stored.values()]
        )
    finally:
        if vendor == "sqlite":
            conn.execute("PRAGMA ignore_check_constraints = OFF", ())
    return int(Stale.objects.get().pk)


def _assert_as_stored(obj: Any, values: dict[str, tuple[Any, Any]]) -> None:
    for name, (_raw, loaded) in values.items():
        value = getattr(obj, name)
        assert value == loaded and type(value) is type(loaded), name


def test_invalid_stored_values_load_through_every_read_path(clean_tables: Any) -> None:
    values = _stale_values(clean_tables.vendor)
    pk = _write_raw_row(clean_tables.vendor, values)
    _assert_as_stored(Stale.objects.get(pk=pk), values)
    _assert_as_stored(list(Stale.objects.all())[0], values)
    _assert_as_stored(next(Stale.objects.iterator(chunk_size=10)), values)
    row = Stale.objects.values(*values).get()
    assert row == {name: loaded for name, (_raw, loaded) in values.items()}
    assert Stale.objects.values_list("tz", flat=True).get() == "Mars/Olympus"
    deferred = Stale.objects.only("name").get()
    assert deferred.color == "red" and deferred.completion == D("150.00")  # loaded on access
    fresh = Stale(name="new")
    fresh.pk = pk
    fresh.refresh_from_db()
    _assert_as_stored(fresh, values)


def test_invalid_stored_values_load_through_the_async_api(clean_tables: Any) -> None:
    values = _stale_values(clean_tables.vendor)
    pk = _write_raw_row(clean_tables.vendor, values)

    async def load() -> tuple[Any, list[Any]]:
        return await Stale.objects.aget(pk=pk), [obj async for obj in Stale.objects.all()]

    one, rows = asyncio.run(load())
    _assert_as_stored(one, values)
    _assert_as_stored(rows[0], values)


def test_valid_stored_values_still_get_their_python_types(clean_tables: Any) -> None:
    values = {
        "version": ("1.0.0-rc.1", "1.0.0-rc.1"),
        "color": ("#1e90ff", "#1E90FF"),
        "country": ("es", "ES"),
        "path": ("a//b", pathlib.PurePosixPath("a/b")),
    }
    _write_raw_row(clean_tables.vendor, values)
    obj = Stale.objects.get()
    assert obj.color == "#1E90FF" and obj.country.name == "Spain"
    assert obj.version.prerelease == ("rc", "1") and obj.path == pathlib.PurePosixPath("a/b")
    assert obj.tz.key == "UTC"


def test_stale_values_are_reported_by_full_clean_assignment_and_save(clean_tables: Any) -> None:
    values = _stale_values(clean_tables.vendor)
    _write_raw_row(clean_tables.vendor, values)
    obj = Stale.objects.get()
    with pytest.raises(ValidationError) as info:
        obj.full_clean(validate_unique=False, validate_constraints=False)
    reported = info.value.message_dict
    assert set(reported) == set(values)
    assert "Stale.tz: 'Mars/Olympus' is not an IANA time zone" in reported["tz"][0]
    completion = reported["completion"][0]
    assert "Stale.completion: Decimal('150.00') is not a number in [0, 100]" in completion
    assert "Stale.doc: {'tags': [1]} does not match the schema" in reported["doc"][0]
    with pytest.raises(ValidationError, match=r"Stale\.color: 'red' is not a colour"):
        obj.color = obj.color
    with pytest.raises(ValidationError, match=r"Stale\.version: 'v1\.0' is not a SemVer"):
        obj.save()  # the stale values are not written back as they are
    obj.name = "renamed"
    obj.save(update_fields=["name"])  # other columns can still be saved
    assert Stale.objects.values_list("name", "tz").get() == ("renamed", "Mars/Olympus")
