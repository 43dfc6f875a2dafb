"""bulk_create on both backends: column types, NULLs, key order, conflicts, masking, and
on PostgreSQL the single ``INSERT ... SELECT * FROM unnest(...)`` statement per batch."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest

import dorm
from dorm.exceptions import IntegrityError, ValidationError
from dorm.test import CaptureQueriesContext


class Item(dorm.Model):
    sku = dorm.CharField(max_length=20, unique=True)
    qty = dorm.IntegerField(null=True)
    price = dorm.DecimalField(max_digits=8, decimal_places=2, null=True)
    ref = dorm.UUIDField(null=True)
    seen = dorm.DateTimeField(null=True)
    data = dorm.JSONField(null=True)
    token = dorm.CharField(max_length=40, default="")  # masked: "token" is a sensitive name

    class Meta:
        app_label = "t_bulk_insert"


class Shout(dorm.CharField):
    """Stored upper-cased: a subclass's own conversion, which compiled paths must call."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value.upper() if isinstance(value, str) else value


class Note(dorm.Model):
    text = Shout(max_length=20)
    item = dorm.ForeignKey(Item, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "t_bulk_insert"


MODELS = [Item, Note]
pytestmark = pytest.mark.usefixtures("clean_tables")

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
REF = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _items(n: int) -> list[Item]:
    items = [Item(sku="first-null")]  # every nullable column NULL in the first row
    items += [
        Item(
            sku=f"s{i}",
            qty=i,
            price=decimal.Decimal(f"{i}.25"),
            ref=REF,
            seen=WHEN,
            data={"i": i, "tags": ["a", "b"]},
            token=f"secret-{i}",
        )
        for i in range(1, n)
    ]
    return items


def test_values_nulls_and_keys_round_trip(db) -> None:
    items = Item.objects.bulk_create(_items(50))
    by_sku = {i.sku: i.pk for i in Item.objects.all()}
    assert [i.pk for i in items] == [by_sku[i.sku] for i in items]  # keys in input order
    first = Item.objects.get(sku="first-null")
    assert (first.qty, first.price, first.ref, first.seen, first.data) == (None,) * 5
    last = Item.objects.get(sku="s49")
    assert (last.qty, last.price, last.ref, last.seen) == (49, decimal.Decimal("49.25"), REF, WHEN)
    assert last.data == {"i": 49, "tags": ["a", "b"]}
    assert type(last.ref) is uuid.UUID


def test_one_statement_per_batch_and_sensitive_values_masked(db) -> None:
    with CaptureQueriesContext() as ctx:
        Item.objects.bulk_create(_items(30), batch_size=10)
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3
    shown = repr([q["params"] for q in inserts])
    assert "secret-" not in shown
    if db.vendor == "postgresql":
        assert all("unnest(" in q["sql"] for q in inserts)
    assert Item.objects.count() == 30


def test_conflicts_ignored_or_updated(db) -> None:
    Item.objects.bulk_create([Item(sku="a", qty=1), Item(sku="b", qty=2)])
    Item.objects.bulk_create([Item(sku="a", qty=10), Item(sku="c", qty=3)], ignore_conflicts=True)
    assert dict(Item.objects.values_list("sku", "qty")) == {"a": 1, "b": 2, "c": 3}
    Item.objects.bulk_create(
        [Item(sku="a", qty=100), Item(sku="d", qty=4)],
        update_conflicts=True,
        unique_fields=["sku"],
        update_fields=["qty"],
    )
    assert dict(Item.objects.values_list("sku", "qty")) == {"a": 100, "b": 2, "c": 3, "d": 4}


def test_a_failing_row_writes_nothing(db) -> None:
    Item.objects.create(sku="taken")
    with pytest.raises(IntegrityError) as info:
        Item.objects.bulk_create([Item(sku="new"), Item(sku="taken")])
    assert "sku" in str(info.value) or "unique" in str(info.value).lower()
    assert list(Item.objects.values_list("sku", flat=True)) == ["taken"]


class IntArrayField(dorm.Field):
    """A PostgreSQL integer[] column: its values are lists, which unnest would flatten."""

    def db_type(self, connection: Any) -> str:
        return "integer[]"

    def get_internal_type(self) -> str:
        return "IntArrayField"


class Series(dorm.Model):
    points = IntArrayField()

    class Meta:
        app_label = "t_bulk_insert"


def test_array_values_keep_multi_row_values_on_postgresql(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("integer[] is a PostgreSQL column type")
    from dorm.migrations.schema import SchemaEditor

    with SchemaEditor() as editor:
        editor.create_model(Series)
    try:
        with CaptureQueriesContext() as ctx:
            made = Series.objects.bulk_create([Series(points=[1, 2]), Series(points=[3])])
        assert [s.pk is not None for s in made] == [True, True]
        assert sorted(Series.objects.values_list("points", flat=True)) == [[1, 2], [3]]
        inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
        assert len(inserts) == 1 and "unnest(" not in inserts[0]
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(Series)


def test_a_subclass_conversion_runs_in_every_compiled_path(db) -> None:
    item = Item.objects.create(sku="x", qty=True)  # a bool is converted, not passed as is
    assert Item.objects.values_list("qty", flat=True).get(pk=item.pk) == 1
    Note.objects.create(text="one", item=item)
    Note.objects.bulk_create([Note(text="two", item_id=item.pk), Note(text="three")])
    assert sorted(Note.objects.values_list("text", flat=True)) == ["ONE", "THREE", "TWO"]
    # get() and __in bind through the same conversion: lower-case values find the rows.
    assert Note.objects.get(text="two").item_id == item.pk
    assert Note.objects.get(text="two").text == "TWO"
    assert Note.objects.filter(text__in=["one", "three", "one"]).count() == 2
    assert Note.objects.filter(item__in=[item, item.pk]).count() == 2
    with pytest.raises(ValidationError, match="qty"):
        Item.objects.create(sku="y", qty="many")
    assert not Item.objects.filter(sku="y").exists()
