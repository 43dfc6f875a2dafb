"""Every write path records exactly the expected versions, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.contrib.temporal import as_of, temporal

UTC = datetime.UTC


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "temporal_capture"


@temporal
class Book(dorm.Model):
    title = dorm.CharField(max_length=100, unique=True)
    pages = dorm.IntegerField(default=0)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "temporal_capture"


BookTemporal = Book._temporal_model
# The version table first: the triggers go in when the second of the two is created.
MODELS = [Author, BookTemporal, Book]

pytestmark = pytest.mark.usefixtures("clean_tables")


def versions(pk: Any = None) -> list[tuple[Any, ...]]:
    qs = Book.history.all() if pk is None else Book.history.filter(pk=pk)
    return [(v.operation, v.id, v.title, v.pages, v.valid_to is None) for v in qs]


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def tick() -> datetime.datetime:
    """An instant strictly between what came before and what comes after."""
    time.sleep(0.003)
    t = now()
    time.sleep(0.003)
    return t


def test_sibling_model_mirrors_the_columns() -> None:
    names = [f.name for f in BookTemporal._meta.concrete_fields]
    assert names == [
        "history_id",
        "id",
        "title",
        "pages",
        "author_id",
        "valid_from",
        "valid_to",
        "operation",
        "user",
        "reason",
    ]
    assert BookTemporal._meta.app_label == "temporal_capture"
    assert BookTemporal.__name__ == "BookTemporal"
    assert temporal(Book) is Book and Book._temporal_model is BookTemporal  # idempotent
    title = BookTemporal._meta.get_field("title")
    assert not title.unique and not title.primary_key
    assert not BookTemporal._meta.get_field("author_id").is_relation


def test_save_create_delete(db: Any) -> None:
    book = Book.objects.create(title="a", pages=1)
    book.pages = 2
    book.save()
    book.save()  # changes nothing: no version
    pk = book.pk
    book.delete()
    assert versions(pk) == [
        ("insert", pk, "a", 1, False),
        ("update", pk, "a", 2, False),
        ("delete", pk, "a", 2, False),
    ]
    first, second, tomb = Book.history.filter(pk=pk)
    assert first.valid_to == second.valid_from
    assert second.valid_to == tomb.valid_from == tomb.valid_to


def test_bulk_create_and_bulk_update(db: Any) -> None:
    books = Book.objects.bulk_create([Book(title="x", pages=1), Book(title="y", pages=1)])
    for b in books:
        b.pages = 5
    Book.objects.bulk_update(books, ["pages"])
    x, y = Book.objects.order_by("title")
    assert versions(x.pk) == [("insert", x.pk, "x", 1, False), ("update", x.pk, "x", 5, True)]
    assert versions(y.pk) == [("insert", y.pk, "y", 1, False), ("update", y.pk, "y", 5, True)]


def test_queryset_update_writes_only_changed_rows(db: Any) -> None:
    a = Book.objects.create(title="a", pages=1)
    b = Book.objects.create(title="b", pages=2)
    assert Book.objects.filter(pk__in=[a.pk, b.pk]).update(pages=2) == 2
    assert versions(a.pk) == [("insert", a.pk, "a", 1, False), ("update", a.pk, "a", 2, True)]
    assert versions(b.pk) == [("insert", b.pk, "b", 2, True)]  # no-op update: nothing


def test_queryset_delete_and_cascade(db: Any) -> None:
    author = Author.objects.create(name="ann")
    a = Book.objects.create(title="a", author=author)
    b = Book.objects.create(title="b", author=author)
    c = Book.objects.create(title="c")
    author_pk = author.pk
    Book.objects.filter(pk=c.pk).delete()
    author.delete()  # cascades to a and b
    assert [v[0] for v in versions(c.pk)] == ["insert", "delete"]
    for book in (a, b):
        assert [(v[0], v[4]) for v in versions(book.pk)] == [("insert", False), ("delete", False)]
    assert BookTemporal.objects.filter(valid_to__isnull=True).count() == 0
    assert Book.history.filter(pk=a.pk, operation="delete").get().author_id == author_pk


def test_upsert(db: Any) -> None:
    Book.objects.create(title="a", pages=1)
    Book.objects.bulk_create(
        [Book(title="a", pages=7), Book(title="n", pages=1)],
        update_conflicts=True,
        unique_fields=["title"],
        update_fields=["pages"],
    )
    a = Book.objects.get(title="a")
    n = Book.objects.get(title="n")
    assert versions(a.pk) == [("insert", a.pk, "a", 1, False), ("update", a.pk, "a", 7, True)]
    assert versions(n.pk) == [("insert", n.pk, "n", 1, True)]
    # QuerySet.upsert(): one changed row, one unchanged (no version), one new.
    Book.objects.upsert(
        [Book(title="a", pages=8), Book(title="n", pages=1), Book(title="z", pages=2)],
        unique_fields=["title"],
        update_fields=["pages"],
    )
    z = Book.objects.get(title="z")
    assert [v[3] for v in versions(a.pk)] == [1, 7, 8]
    assert versions(n.pk) == [("insert", n.pk, "n", 1, True)]
    assert versions(z.pk) == [("insert", z.pk, "z", 2, True)]


def test_raw_sql_through_a_bare_driver_connection(db: Any) -> None:
    book = Book.objects.create(title="a", pages=1)
    table = Book._meta.db_table
    if db.vendor == "sqlite":
        import sqlite3

        conn = sqlite3.connect(db.settings["NAME"], isolation_level=None)
        conn.execute(f'UPDATE "{table}" SET "pages" = ? WHERE "id" = ?', (9, book.pk))
        conn.execute(f'INSERT INTO "{table}" ("title", "pages") VALUES (?, ?)', ("raw", 3))
        conn.execute(f'UPDATE "{table}" SET "pages" = "pages"')  # no change: nothing
        conn.close()
    else:
        import psycopg

        assert db.pg is not None
        with psycopg.connect(db.pg.dsn, autocommit=True) as conn:
            conn.execute(f'UPDATE "{table}" SET "pages" = %s WHERE "id" = %s', (9, book.pk))
            conn.execute(f'INSERT INTO "{table}" ("title", "pages") VALUES (%s, %s)', ("raw", 3))
            conn.execute(f'UPDATE "{table}" SET "pages" = "pages"')
    raw = Book.objects.get(title="raw")
    assert versions(book.pk) == [
        ("insert", book.pk, "a", 1, False),
        ("update", book.pk, "a", 9, True),
    ]
    assert versions(raw.pk) == [("insert", raw.pk, "raw", 3, True)]


def test_as_of_at_several_instants(db: Any) -> None:
    t0 = tick()
    book = Book.objects.create(title="a", pages=1)
    t1 = tick()
    # One transaction. On SQLite only a temporal.context() block pins one timestamp
    # for the transaction (plain statements get their statement time).
    with transaction.atomic(), temporal.context(reason="two updates"):
        Book.objects.filter(pk=book.pk).update(pages=2)
        Book.objects.filter(pk=book.pk).update(pages=3)
    t2 = tick()
    other = Book.objects.create(title="b", pages=10)
    pk = book.pk
    book.delete()
    t3 = tick()

    assert list(as_of(Book, t0)) == []
    assert [(b.title, b.pages) for b in as_of(Book, t1)] == [("a", 1)]
    # The two updates share their transaction's timestamp: the middle version (pages=2)
    # is recorded but was never visible to anyone outside the transaction.
    assert [(b.title, b.pages) for b in as_of(Book, t2)] == [("a", 3)]
    assert [v[3] for v in versions(pk)] == [1, 2, 3, 3]
    middle = Book.history.filter(pk=pk)[1]
    assert middle.valid_from == middle.valid_to
    snapshot = as_of(Book, t3)
    assert [(b.pk, b.title) for b in snapshot] == [(other.pk, "b")]
    assert isinstance(snapshot.get(), Book)
    # Chainable like any QuerySet.
    mixed = as_of(Book, t2.replace(tzinfo=None))  # naive: UTC
    assert mixed.filter(pages__gte=3).count() == 1
    assert mixed.exclude(title="a").exists() is False
    assert list(mixed.values_list("pages", flat=True)) == [3]
    assert list(mixed.values("title")) == [{"title": "a"}]
    assert [b.pages for b in mixed.order_by("-pages").iterator()] == [3]


def test_as_of_async_iteration(db: Any) -> None:
    import asyncio

    book = Book.objects.create(title="a", pages=4)
    t = tick()
    book.delete()

    async def read() -> list[int]:
        return [b.pages async for b in as_of(Book, t).filter(title="a")]

    assert asyncio.run(read()) == [4]


def test_as_of_is_read_only(db: Any) -> None:
    with pytest.raises(TypeError, match="read-only"):
        as_of(Book, now()).update(pages=1)
    with pytest.raises(TypeError, match="read-only"):
        as_of(Book, now()).delete()


def test_as_of_argument_errors() -> None:
    with pytest.raises(TypeError, match="not @temporal-tracked"):
        as_of(Author, now())
    with pytest.raises(TypeError, match="datetime"):
        as_of(Book, "2024-01-01")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="datetime"):
        as_of(Book, datetime.date(2024, 1, 1))  # type: ignore[arg-type]


def test_postgresql_versions_of_a_row_never_go_backwards(db: Any) -> None:
    """A transaction that began before another one, but updates the row after it, gets
    a version stamped no earlier than the one it closes (now() is the start time)."""
    if db.vendor != "postgresql":
        pytest.skip("transaction start times are PostgreSQL's (SQLite serialises writers)")
    import psycopg

    book = Book.objects.create(title="a", pages=1)
    table = Book._meta.db_table
    assert db.pg is not None
    with psycopg.connect(db.pg.dsn) as early, psycopg.connect(db.pg.dsn, autocommit=True) as late:
        early.execute("SELECT now()")  # fixes the early transaction's timestamp
        time.sleep(0.01)
        late.execute(f'UPDATE "{table}" SET "pages" = 2 WHERE "id" = %s', (book.pk,))
        early.execute(f'UPDATE "{table}" SET "pages" = 3 WHERE "id" = %s', (book.pk,))
        early.commit()
    rows = list(Book.history.filter(pk=book.pk))
    assert [v.pages for v in rows] == [1, 2, 3]
    for older, newer in zip(rows, rows[1:], strict=False):
        assert older.valid_from <= older.valid_to == newer.valid_from
    assert as_of(Book, now()).get().pages == 3
