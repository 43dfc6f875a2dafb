"""Chaining builds each queryset its own query: a manager's fresh queryset clones into a
new Query, slices and values() copy what they change, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.sql.query import Query


class Boat(dorm.Model):
    name = dorm.CharField(max_length=20)
    length = dorm.IntegerField()

    class Meta:
        app_label = "t_chain"


MODELS = [Boat]
LENGTHS = {"ark": 40, "brig": 12, "cog": 25, "dhow": 8, "junk": 31}


@pytest.fixture
def boats(clean_tables: Any) -> None:
    Boat.objects.bulk_create([Boat(name=n, length=v) for n, v in LENGTHS.items()])


def _names(qs: Any) -> list[str]:
    return [b.name for b in qs]


def test_querysets_chained_from_one_fresh_queryset_share_nothing(boats: None) -> None:
    base = Boat.objects.all()
    up, down = base.order_by("length"), base.order_by("-length")
    assert up.query is not down.query
    assert up.query.where is not down.query.where
    assert up.query.alias_map is not down.query.alias_map
    by_length = sorted(LENGTHS, key=LENGTHS.__getitem__)
    assert _names(up) == by_length
    assert _names(down) == by_length[::-1]
    assert _names(up.filter(length__gt=20)) == [n for n in by_length if LENGTHS[n] > 20]
    assert _names(up) == by_length  # the filter went to a clone
    assert sorted(_names(base)) == sorted(LENGTHS)
    again = Boat.objects.order_by("name")
    assert again.query is not Boat.objects.order_by("name").query
    assert _names(again.reverse()) == sorted(LENGTHS, reverse=True)


def test_slices_copy_the_query_and_keep_their_checks(boats: None) -> None:
    qs = Boat.objects.order_by("name")
    names = sorted(LENGTHS)
    assert _names(qs[:2]) == names[:2]
    assert _names(qs[1:3]) == names[1:3]
    assert _names(qs[3:]) == names[3:]
    assert _names(qs[::2]) == names[::2]
    assert _names(qs[1:][:2]) == names[1:3]
    assert not qs.query.is_sliced
    with pytest.raises(ValueError, match="negative indexing"):
        qs[-1:]
    with pytest.raises(ValueError, match="negative indexing"):
        qs[:-1]
    with pytest.raises(TypeError, match="integers or slices"):
        qs["a"]  # type: ignore[index]
    with pytest.raises(TypeError, match="slice has been taken"):
        qs[:2].order_by("length")
    evaluated = list(qs)
    assert qs[1:3] == evaluated[1:3]  # from the result cache


def test_values_list_columns_follow_the_requested_order(boats: None) -> None:
    from dorm.expressions import F

    pairs = Boat.objects.order_by("name").values_list("length", "name")
    assert list(pairs) == [(LENGTHS[n], n) for n in sorted(LENGTHS)]
    doubled = Boat.objects.annotate(twice=F("length") * 2).order_by("name")
    rows = list(doubled.values_list("twice", "name"))
    assert rows == [(2 * LENGTHS[n], n) for n in sorted(LENGTHS)]
    dicts = list(doubled.values("name", "twice"))
    assert dicts == [{"name": n, "twice": 2 * LENGTHS[n]} for n in sorted(LENGTHS)]


def test_a_cloned_query_owns_its_containers(db: Any) -> None:
    first = Query(Boat)
    first.get_initial_alias()
    second = first.clone()
    second.table_map[Boat._meta.db_table].append("other")
    second.alias_refcount[next(iter(second.alias_map))] += 5
    second.where.children.append("a condition")
    assert first.where.children == []
    assert first.table_map[Boat._meta.db_table] == [Boat._meta.db_table]
    assert first.alias_refcount != second.alias_refcount
    fresh = Query(Boat)
    assert fresh.order_by == () and fresh.low_mark == 0 and fresh.high_mark is None
    assert fresh.where is not Query(Boat).where
