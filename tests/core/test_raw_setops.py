"""raw(), intersection() / difference() and FilteredRelation on SQLite and PostgreSQL,
checked against values computed in Python."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldDoesNotExist, FieldError
from dorm.test import CaptureQueriesContext

UTC = datetime.UTC


class Writer(dorm.Model):
    name = dorm.CharField(max_length=20)
    born = dorm.DateTimeField(null=True)

    class Meta:
        app_label = "t_rawset"


class Novel(dorm.Model):
    title = dorm.CharField(max_length=20)
    year = dorm.IntegerField()
    writer = dorm.ForeignKey(Writer, on_delete=dorm.CASCADE, related_name="novels")

    class Meta:
        app_label = "t_rawset"


MODELS = [Writer, Novel]
pytestmark = pytest.mark.usefixtures("clean_tables")

NOVELS = {
    "ann": [("a1", 1990), ("a2", 2005), ("a3", 2021)],
    "bob": [("b1", 1999)],
    "cyd": [],
    "dee": [("d1", 2010), ("d2", 2011)],
}


@pytest.fixture
def library(db: Any) -> dict[str, Writer]:
    writers = {}
    for i, (name, novels) in enumerate(NOVELS.items()):
        w = Writer.objects.create(name=name, born=datetime.datetime(1950 + i, 1, 1, tzinfo=UTC))
        writers[name] = w
        for title, year in novels:
            Novel.objects.create(title=title, year=year, writer=w)
    return writers


def table(model: Any) -> str:
    from dorm.db.connection import get_connection

    return str(get_connection().ops.quote_name(model._meta.db_table))


# -- raw -------------------------------------------------------------------------------------


def test_raw_hydrates_instances_with_extra_columns_and_conversions(library: Any) -> None:
    sql = f"SELECT id, name, born, 42 AS answer FROM {table(Writer)} WHERE name <> %s ORDER BY name"
    rows = Writer.objects.raw(sql, ["bob"])
    assert len(rows) == len(NOVELS) - 1
    assert [w.name for w in rows] == sorted(n for n in NOVELS if n != "bob")
    first = rows[0]
    assert isinstance(first, Writer) and first.pk == library["ann"].pk
    assert first.born == library["ann"].born and first.born.tzinfo is not None
    assert first.answer == 42
    assert rows[1:2][0].name == "cyd"
    assert bool(rows)


def test_raw_defers_missing_columns_and_loads_them_once(library: Any) -> None:
    rows = list(Writer.objects.raw(f"SELECT id FROM {table(Writer)} ORDER BY id"))
    assert "name" not in rows[0].__dict__
    with CaptureQueriesContext() as ctx:
        assert rows[0].name == "ann"
        assert rows[0].name == "ann"
    assert len(ctx.captured_queries) == 1


def test_raw_translations_and_percent_literals(library: Any) -> None:
    sql = f"SELECT id AS ident, name AS label FROM {table(Writer)} WHERE name LIKE 'a%%'"
    rows = list(Writer.objects.raw(sql, translations={"ident": "id", "label": "name"}))
    assert [(w.pk, w.name) for w in rows] == [(library["ann"].pk, "ann")]


def test_raw_errors(library: Any) -> None:
    with pytest.raises(FieldDoesNotExist, match="must return the primary key column 'id'"):
        list(Writer.objects.raw(f"SELECT name FROM {table(Writer)}"))
    with pytest.raises(ValueError, match="1 %s placeholder\\(s\\) but 2 parameter"):
        list(Writer.objects.raw(f"SELECT id FROM {table(Writer)} WHERE name = %s", ["a", "b"]))
    with pytest.raises(TypeError, match="params must be a list or tuple"):
        Writer.objects.raw("SELECT 1", "ann")


def test_raw_values_are_bound(library: Any) -> None:
    hostile = "x' OR '1'='1"
    sql = f"SELECT id, name FROM {table(Writer)} WHERE name = %s"
    assert list(Writer.objects.raw(sql, [hostile])) == []
    assert Writer.objects.count() == len(NOVELS)


def test_raw_async_iteration(library: Any) -> None:
    async def main() -> list[str]:
        sql = f"SELECT id, name FROM {table(Writer)} WHERE name > %s ORDER BY name"
        return [w.name async for w in Writer.objects.raw(sql, ["b"])]

    assert asyncio.run(main()) == sorted(n for n in NOVELS if n > "b")


# -- intersection / difference ---------------------------------------------------------------


def test_intersection_and_difference(library: Any) -> None:
    many = Writer.objects.filter(name__in=[n for n, b in NOVELS.items() if len(b) >= 2])
    early = Writer.objects.filter(
        name__in=[n for n, b in NOVELS.items() if any(y < 2000 for _t, y in b)]
    )
    both = {n for n, b in NOVELS.items() if len(b) >= 2} & {
        n for n, b in NOVELS.items() if any(y < 2000 for _t, y in b)
    }
    only_many = {n for n, b in NOVELS.items() if len(b) >= 2} - {
        n for n, b in NOVELS.items() if any(y < 2000 for _t, y in b)
    }
    assert {w.name for w in many.intersection(early)} == both
    assert {w.name for w in many.difference(early)} == only_many
    assert many.intersection(early).count() == len(both)
    assert many.difference(early).count() == len(only_many)
    everyone = Writer.objects.all()
    assert list(everyone.difference(early).order_by("-name").values_list("name", flat=True)) == (
        sorted(
            set(NOVELS) - {n for n, b in NOVELS.items() if any(y < 2000 for _t, y in b)},
            reverse=True,
        )
    )
    assert (
        list(everyone.intersection(everyone).order_by("name")[1:3].values_list("name", flat=True))
        == sorted(NOVELS)[1:3]
    )
    assert list(everyone.intersection(Writer.objects.none())) == []
    assert list(everyone.intersection(Writer.objects.filter(pk__in=[]))) == []
    assert everyone.difference(Writer.objects.none()).count() == len(NOVELS)
    assert list(Writer.objects.filter(pk__in=[]).difference(everyone)) == []
    names = everyone.values_list("name", flat=True)
    assert set(names.intersection(names.filter(name__lt="c"))) == {n for n in NOVELS if n < "c"}


def test_set_operations_async(library: Any) -> None:
    async def main() -> tuple[list[str], int]:
        qs = Writer.objects.all().difference(Writer.objects.filter(name="ann")).order_by("name")
        return [w.name async for w in qs], await qs.acount()

    names, count = asyncio.run(main())
    assert names == sorted(set(NOVELS) - {"ann"}) and count == len(NOVELS) - 1


# -- FilteredRelation ------------------------------------------------------------------------


def recent_q() -> Any:
    return dorm.FilteredRelation("novels", condition=dorm.Q(novels__year__gte=2005))


def test_filtered_relation_in_filter_values_and_count(library: Any) -> None:
    qs = Writer.objects.annotate(recent=recent_q())
    recent = {n: [t for t, y in b if y >= 2005] for n, b in NOVELS.items()}
    # One row per matching related row, as with any multi-valued relation.
    assert sorted(qs.filter(recent__title__startswith="a").values_list("name", flat=True)) == [
        n for n, ts in sorted(recent.items()) for t in ts if t.startswith("a")
    ]
    got = sorted(qs.values_list("name", "recent__title"), key=lambda r: (r[0], r[1] or ""))
    want = sorted(
        [(n, t) for n, ts in recent.items() for t in ts]
        + [(n, None) for n, ts in recent.items() if not ts],
        key=lambda r: (r[0], r[1] or ""),
    )
    assert got == want
    counted = dict(qs.annotate(n=dorm.Count("recent")).values_list("name", "n"))
    assert counted == {n: len(ts) for n, ts in recent.items()}
    assert sorted(qs.filter(recent__isnull=True).values_list("name", flat=True)) == sorted(
        n for n, ts in recent.items() if not ts
    )
    # The plain relation is still unfiltered next to the filtered one.
    both = qs.filter(novels__year__lt=2000, recent__year__gte=2005).distinct()
    assert sorted(both.values_list("name", flat=True)) == sorted(
        n for n, b in NOVELS.items() if any(y < 2000 for _t, y in b) and recent[n]
    )


def test_filtered_relation_condition_is_bound_and_in_on(library: Any) -> None:
    with CaptureQueriesContext() as ctx:
        list(Writer.objects.annotate(recent=recent_q()).filter(recent__title="a3"))
    sql = ctx.captured_queries[0]["sql"]
    assert "LEFT OUTER JOIN" in sql and "2005" not in sql.split("params")[0]


def test_filtered_relation_with_select_related(library: Any) -> None:
    qs = (
        Novel.objects.annotate(
            writer_b=dorm.FilteredRelation("writer", condition=dorm.Q(writer__name__startswith="b"))
        )
        .select_related("writer_b")
        .order_by("title")
    )
    with CaptureQueriesContext() as ctx:
        got = [(n.title, n.writer_b.name if n.writer_b else None) for n in qs]
    assert len(ctx.captured_queries) == 1
    want = sorted((t, n if n.startswith("b") else None) for n, b in NOVELS.items() for t, _y in b)
    assert got == want


def test_filtered_relation_errors(library: Any) -> None:
    with pytest.raises(ValueError, match="Writer has no relation 'nope'"):
        Writer.objects.annotate(x=dorm.FilteredRelation("nope"))
    with pytest.raises(ValueError, match="its paths must start with 'novels'"):
        Writer.objects.annotate(x=dorm.FilteredRelation("novels", condition=dorm.Q(name="a")))
    with pytest.raises(ValueError, match="may only read fields of"):
        list(
            Writer.objects.annotate(
                x=dorm.FilteredRelation("novels", condition=dorm.Q(novels__writer__name="a"))
            ).filter(x__title="a1")
        )
    with pytest.raises(FieldError):
        list(Writer.objects.filter(recent__title="x"))
