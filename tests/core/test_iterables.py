"""Rows into instances: the compiled constructors of ``dorm.models.iterables``, on both
backends. A plain model's rows are built with attribute stores; a model whose attribute
assignment does more (its own ``__setattr__``, a field's data descriptor, a name that is
no identifier) is built through its instance dict, as before."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import dorm
from dorm.db.connection import get_connection
from dorm.models.base import LOADED_FROM
from dorm.models.fields import ValidatedAttribute
from dorm.models.iterables import _stores_plainly
from dorm.test import assertNumQueries

APP = "t_iterables"


class Plain(dorm.Model):
    name = dorm.CharField(max_length=20)
    size = dorm.IntegerField(null=True)

    class Meta:
        app_label = APP


class Watched(dorm.Model):
    """Records the names assigned through its ``__setattr__``."""

    name = dorm.CharField(max_length=20)
    assigned: list[str] = []

    class Meta:
        app_label = APP

    def __setattr__(self, name: str, value: Any) -> None:
        Watched.assigned.append(name)
        super().__setattr__(name, value)


class UpperField(dorm.CharField):
    """Upper-cases on assignment (a data descriptor); loaded values are stored as read."""

    descriptor_class = ValidatedAttribute

    def to_python(self, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Loud(dorm.Model):
    word = UpperField(max_length=20)

    class Meta:
        app_label = APP


# A field named by a Python keyword, and a model wider than the instance layouts Python
# shares between objects of a class: built with type(), as a class body cannot say them.
Keyword = type(
    "Keyword",
    (dorm.Model,),
    {
        "__module__": __name__,
        "Meta": type("Meta", (), {"app_label": APP}),
        "name": dorm.CharField(max_length=20),
        "from": dorm.CharField(max_length=20),
    },
)
Wide = type(
    "Wide",
    (dorm.Model,),
    {
        "__module__": __name__,
        "Meta": type("Meta", (), {"app_label": APP}),
        **{f"c{i:02d}": dorm.IntegerField(default=i) for i in range(40)},
    },
)

MODELS = [Plain, Watched, Loud, Keyword, Wide]
pytestmark = pytest.mark.usefixtures("clean_tables")


def _columns(model: Any) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields] + [LOADED_FROM]


def test_which_models_are_built_with_attribute_stores() -> None:
    assert _stores_plainly(Plain, _columns(Plain))
    assert _stores_plainly(Wide, _columns(Wide))
    assert not _stores_plainly(Watched, _columns(Watched))
    assert not _stores_plainly(Loud, _columns(Loud))
    assert not _stores_plainly(Keyword, _columns(Keyword))


def test_plain_rows_hold_what_the_database_holds(db) -> None:
    Plain.objects.bulk_create([Plain(name=f"p{i}", size=i if i % 2 else None) for i in range(4)])
    rows = list(Plain.objects.order_by("name"))
    assert [(p.name, p.size) for p in rows] == [("p0", None), ("p1", 1), ("p2", None), ("p3", 3)]
    first = rows[0]
    assert vars(first) == {"id": first.pk, "name": "p0", "size": None, LOADED_FROM: "default"}
    assert (first._state.db, first._state.adding) == ("default", False)
    assert LOADED_FROM not in vars(first)
    assert pickle.loads(pickle.dumps(rows[1])).size == 1
    assert copy.copy(rows[3]).name == "p3"
    rows[1].size = 10
    rows[1].save()  # an UPDATE of the loaded row
    assert sorted(Plain.objects.values_list("size", flat=True), key=str) == [10, 3, None, None]
    assert Plain.objects.count() == 4


def test_deferred_fields_of_plain_rows_load_on_access(db) -> None:
    Plain.objects.create(name="only", size=7)
    (row,) = Plain.objects.only("name")
    assert "size" not in vars(row)
    with assertNumQueries(1):
        assert row.size == 7
    with assertNumQueries(0):
        assert row.size == 7


def test_a_model_that_overrides_setattr_gets_no_field_assignments_from_a_load(db) -> None:
    Watched.objects.bulk_create([Watched(name=n) for n in ("a", "b", "c")])
    Watched.assigned.clear()
    rows = list(Watched.objects.order_by("name"))
    assert [w.name for w in rows] == ["a", "b", "c"]
    assert set(Watched.assigned) <= {"__dict__"}  # each row's dict is set whole
    Watched.assigned.clear()
    rows[0].name = "z"
    assert Watched.assigned == ["name"]


def test_a_field_with_a_data_descriptor_keeps_the_loaded_value(db) -> None:
    conn = get_connection()
    table = conn.ops.quote_name(Loud._meta.db_table)
    conn.execute(f"INSERT INTO {table} ({conn.ops.quote_name('word')}) VALUES ('quiet')")
    (row,) = Loud.objects.all()
    assert row.word == "quiet"  # stored as read, not through __set__
    row.word = "louder"
    assert row.word == "LOUDER"


def test_a_field_named_by_a_keyword(db) -> None:
    Keyword.objects.create(name="k", **{"from": "there"})
    (row,) = Keyword.objects.all()
    assert (row.name, getattr(row, "from")) == ("k", "there")
    assert Keyword.objects.filter(**{"from": "there"}).count() == 1


def test_a_wide_model(db) -> None:
    Wide.objects.bulk_create([Wide(c00=100 + i) for i in range(3)])
    rows = list(Wide.objects.order_by("c00"))
    assert [r.c00 for r in rows] == [100, 101, 102]
    assert all([getattr(r, f"c{i:02d}") for i in range(1, 40)] == list(range(1, 40)) for r in rows)
    assert all(vars(r)[LOADED_FROM] == "default" for r in rows)
