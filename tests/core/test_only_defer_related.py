"""only() / defer() across select_related() relations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldError
from dorm.test import CaptureQueriesContext


class House(dorm.Model):
    name = dorm.CharField(max_length=20)
    city = dorm.CharField(max_length=20, default="")

    class Meta:
        app_label = "t_onlyrel"


class Person(dorm.Model):
    name = dorm.CharField(max_length=20)
    age = dorm.IntegerField(default=0)
    bio = dorm.TextField(default="")
    house = dorm.ForeignKey(House, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "t_onlyrel"


class Book(dorm.Model):
    title = dorm.CharField(max_length=20)
    pages = dorm.IntegerField(default=0)
    author = dorm.ForeignKey(Person, on_delete=dorm.CASCADE)

    class Meta:
        app_label = "t_onlyrel"


MODELS = [House, Person, Book]
pytestmark = pytest.mark.usefixtures("clean_tables")

DATA = [("dune", 412, "frank", 60, "sf", "herbert house"), ("emma", 300, "jane", 41, "", None)]


@pytest.fixture
def books(db: Any) -> None:
    for title, pages, name, age, bio, house in DATA:
        h = House.objects.create(name=house, city="x") if house else None
        p = Person.objects.create(name=name, age=age, bio=bio, house=h)
        Book.objects.create(title=title, pages=pages, author=p)


def columns_of(sql: str) -> str:
    return sql.split(" FROM ")[0]


def test_only_across_a_relation_selects_just_those_columns(books: Any) -> None:
    qs = Book.objects.select_related("author").only("title", "author__name").order_by("title")
    with CaptureQueriesContext() as ctx:
        got = [(b.title, b.author.name) for b in qs]
    assert got == [(t, n) for t, _p, n, *_r in sorted(DATA)]
    assert len(ctx.captured_queries) == 1
    cols = columns_of(ctx.captured_queries[0]["sql"])
    for needed in ('"title"', '"author_id"', '"name"'):
        assert needed in cols
    for dropped in ('"pages"', '"age"', '"bio"', '"house_id"'):
        assert dropped not in cols, cols


def test_defer_across_a_relation_drops_that_column(books: Any) -> None:
    qs = Book.objects.select_related("author").defer("author__age", "author__bio")
    with CaptureQueriesContext() as ctx:
        rows = list(qs.order_by("title"))
    cols = columns_of(ctx.captured_queries[0]["sql"])
    assert '"age"' not in cols and '"bio"' not in cols and '"pages"' in cols
    assert [(b.pages, b.author.name) for b in rows] == [(p, n) for _t, p, n, *_r in sorted(DATA)]


def test_deferred_field_loads_once(books: Any) -> None:
    book = Book.objects.select_related("author").only("title", "author__name").get(title="dune")
    with CaptureQueriesContext() as ctx:
        assert book.author.age == 60
        assert book.author.age == 60
        assert book.pages == 412
        assert book.pages == 412
    assert len(ctx.captured_queries) == 2


def test_nested_relations_and_whole_related_models(books: Any) -> None:
    qs = Book.objects.select_related("author__house").only("title", "author__house__city")
    with CaptureQueriesContext() as ctx:
        got = {b.title: b.author.house.city if b.author.house else None for b in qs}
    cols = columns_of(ctx.captured_queries[0]["sql"])
    assert '"city"' in cols and '"age"' not in cols and '"house_id"' in cols
    assert got == {t: ("x" if h else None) for t, _p, _n, _a, _b, h in DATA}
    # only("title", "author"): the author relation is loaded, all its columns with it.
    whole = Book.objects.select_related("author").only("title", "author").get(title="emma")
    with CaptureQueriesContext() as ctx:
        assert (whole.author.name, whole.author.age, whole.author.bio) == ("jane", 41, "")
    assert len(ctx.captured_queries) == 0


def test_deferring_a_traversed_relation_is_a_field_error(books: Any) -> None:
    message = "Field Book.author cannot be both deferred and traversed using select_related"
    with pytest.raises(FieldError, match=message):
        list(Book.objects.select_related("author").only("title"))
    with pytest.raises(FieldError, match=message):
        list(Book.objects.select_related("author").defer("author"))
    with pytest.raises(FieldError, match="Field Person.house cannot be both deferred"):
        list(Book.objects.select_related("author__house").only("title", "author__name"))
    with pytest.raises(FieldError, match="Person has no field 'nope'"):
        Book.objects.only("author__nope")
    with pytest.raises(FieldError, match="Book.title is not a relation to follow"):
        Book.objects.defer("title__x")


def test_async_iteration_with_related_only(books: Any) -> None:
    async def main() -> list[tuple[str, str]]:
        qs = Book.objects.select_related("author").only("title", "author__name")
        return [(b.title, b.author.name) async for b in qs.order_by("title")]

    assert asyncio.run(main()) == [(t, n) for t, _p, n, *_r in sorted(DATA)]
