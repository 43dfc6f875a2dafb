"""__iregex, aggregates' default= and dorm.prefetch_related_objects, on both backends."""

from __future__ import annotations

import asyncio
import datetime
import re
from decimal import Decimal
from typing import Any

import pytest

import dorm
from dorm.test import CaptureQueriesContext

UTC = datetime.UTC


class Shelf(dorm.Model):
    label = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_gaps"


class Item(dorm.Model):
    name = dorm.CharField(max_length=20)
    qty = dorm.IntegerField(null=True)
    price = dorm.DecimalField(max_digits=8, decimal_places=2, null=True)
    seen = dorm.DateTimeField(null=True)
    meta = dorm.JSONField(null=True)
    shelf = dorm.ForeignKey(Shelf, on_delete=dorm.CASCADE, related_name="items", null=True)

    class Meta:
        app_label = "t_gaps"


MODELS = [Shelf, Item]
pytestmark = pytest.mark.usefixtures("clean_tables")

ITEMS = [
    ("Apple", 3, Decimal("1.50"), "top", {"tag": "Fruit"}),
    ("apricot", None, Decimal("2.25"), "top", {"tag": "fruit"}),
    ("BANANA", 7, None, "low", {"tag": "FRUIT-ish"}),
    ("cherry", 1, Decimal("9.99"), None, {"tag": "berry"}),
]


@pytest.fixture
def stock(db: Any) -> dict[str, Shelf]:
    shelves = {name: Shelf.objects.create(label=name) for name in ("top", "low", "empty")}
    for i, (name, qty, price, shelf, meta) in enumerate(ITEMS):
        Item.objects.create(
            name=name,
            qty=qty,
            price=price,
            meta=meta,
            shelf=shelves.get(shelf) if shelf else None,
            seen=datetime.datetime(2024, 1, 1 + i, tzinfo=UTC),
        )
    return shelves


def names(qs: Any) -> list[str]:
    return sorted(qs.values_list("name", flat=True))


@pytest.mark.parametrize("pattern", ["^a", "AN", "^(apple|cherry)$", "r{2}"])
def test_iregex_matches_like_python_ignorecase(stock: Any, pattern: str) -> None:
    want = sorted(n for n, *_r in ITEMS if re.search(pattern, n, re.IGNORECASE))
    assert names(Item.objects.filter(name__iregex=pattern)) == want
    assert names(Item.objects.exclude(name__iregex=pattern)) == sorted(
        n for n, *_r in ITEMS if n not in want
    )
    case_sensitive = sorted(n for n, *_r in ITEMS if re.search(pattern, n))
    assert names(Item.objects.filter(name__regex=pattern)) == case_sensitive


def test_iregex_on_json_keys(stock: Any) -> None:
    want = sorted(n for n, *_r, meta in ITEMS if re.search("^fruit", meta["tag"], re.I))
    assert names(Item.objects.filter(meta__tag__iregex="^fruit")) == want


def test_aggregate_default_replaces_null(stock: Any) -> None:
    empty = Item.objects.filter(name="nothing")
    floor = datetime.datetime(2000, 1, 1, tzinfo=UTC)
    got = empty.aggregate(
        total=dorm.Sum("qty", default=0),
        most=dorm.Max("seen", default=floor),
        avg=dorm.Avg("price", default=Decimal("0")),
        least=dorm.Min("qty", default=-1),
        plain=dorm.Sum("qty"),
    )
    assert got == {"total": 0, "most": floor, "avg": Decimal("0"), "least": -1, "plain": None}
    assert Item.objects.none().aggregate(total=dorm.Sum("qty", default=5)) == {"total": 5}
    full = Item.objects.aggregate(
        total=dorm.Sum("qty", default=0), most=dorm.Max("seen", default=floor)
    )
    assert full["total"] == sum(q for _n, q, *_r in ITEMS if q is not None)
    assert full["most"] == datetime.datetime(2024, 1, len(ITEMS), tzinfo=UTC)
    with pytest.raises(TypeError, match="Count does not allow default"):
        dorm.Count("qty", default=0)


def test_aggregate_default_in_annotations_and_windows(stock: Any) -> None:
    per_shelf = dict(
        Shelf.objects.annotate(total=dorm.Sum("items__qty", default=0)).values_list(
            "label", "total"
        )
    )
    want = {
        label: sum(q or 0 for _n, q, _p, s, _m in ITEMS if s == label)
        for label in ("top", "low", "empty")
    }
    assert per_shelf == want
    running = Item.objects.annotate(
        w=dorm.Window(dorm.Sum("qty", default=0), order_by="seen", frame=dorm.RowRange(end=0))
    ).order_by("seen")
    totals, acc = [], None
    for _n, q, *_r in ITEMS:
        if q is not None:
            acc = (acc or 0) + q
        totals.append(acc if acc is not None else 0)
    assert list(running.values_list("w", flat=True)) == totals


def test_prefetch_related_objects_is_exported(stock: Any) -> None:
    assert dorm.prefetch_related_objects is not None and "prefetch_related_objects" in dorm.__all__
    shelves = list(Shelf.objects.order_by("label"))
    with CaptureQueriesContext() as ctx:
        dorm.prefetch_related_objects(shelves, "items")
    assert len(ctx.captured_queries) == 1
    with CaptureQueriesContext() as ctx:
        got = {s.label: sorted(i.name for i in s.items.all()) for s in shelves}
    assert len(ctx.captured_queries) == 0
    assert got == {
        label: sorted(n for n, _q, _p, s, _m in ITEMS if s == label)
        for label in ("top", "low", "empty")
    }


def test_aprefetch_related_objects(stock: Any) -> None:
    async def main() -> dict[str, int]:
        items = [i async for i in Item.objects.filter(shelf__isnull=False).order_by("name")]
        await dorm.aprefetch_related_objects(items, "shelf")
        return {i.name: len(i.shelf.label) for i in items}

    got = asyncio.run(main())
    assert got == {n: len(s) for n, _q, _p, s, _m in ITEMS if s}
