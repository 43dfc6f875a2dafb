"""The async twins of the ORM on both backends: every twin reads back what it wrote, async
iteration (select_related, prefetch_related, aiterator with a server-side cursor), errors,
typed round trips, raw statements on get_async_connection(), and a loop that is never
blocked by a slow SQLite statement."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import dorm
from dorm.db.connection import get_async_connection, get_connection
from dorm.exceptions import IntegrityError, ValidationError
from dorm.test import CaptureQueriesContext

T = TypeVar("T")


class Author(dorm.Model):
    name = dorm.CharField(max_length=50, unique=True)
    age = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_async_api"


class Tag(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_async_api"


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)
    author = dorm.ForeignKey(
        Author, on_delete=dorm.CASCADE, related_name="books", null=True, blank=True
    )
    pages = dorm.IntegerField(default=0)
    tags = dorm.ManyToManyField(Tag, related_name="books")

    class Meta:
        app_label = "t_async_api"
        get_latest_by = "pages"


class Record(dorm.Model):
    uid = dorm.UUIDField(default=uuid.uuid4)
    data = dorm.JSONField(default=dict)
    price = dorm.DecimalField(max_digits=10, decimal_places=2, default=decimal.Decimal("0"))
    at = dorm.DateTimeField(null=True)

    class Meta:
        app_label = "t_async_api"


MODELS = [Author, Tag, Book, Record]
pytestmark = pytest.mark.usefixtures("clean_tables")


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` on a fresh event loop (its pool closes with the loop)."""
    return asyncio.run(main())  # type: ignore[arg-type]


def postgres_only(db: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL-specific")


def sqlite_only(db: Any) -> None:
    if db.vendor != "sqlite":
        pytest.skip("SQLite-specific")


def seed_books() -> Author:
    ada = Author.objects.create(name="Ada", age=36)
    for title, pages in (("b1", 10), ("b2", 30), ("b3", 20)):
        Book.objects.create(title=title, author=ada, pages=pages)
    return ada


# --- model instance twins --------------------------------------------------------------------


def test_asave_inserts_then_updates(db) -> None:
    async def main() -> tuple[int, int]:
        ada = Author(name="Ada", age=1)
        await ada.asave()
        first = await Author.objects.acount()
        ada.age = 2
        await ada.asave()
        return ada.pk, first

    pk, first = run(main)
    assert first == 1
    assert list(Author.objects.values_list("pk", "name", "age")) == [(pk, "Ada", 2)]


def test_asave_update_fields_writes_only_those(db) -> None:
    ada = Author.objects.create(name="Ada", age=1)

    async def main() -> None:
        stale = await Author.objects.aget(pk=ada.pk)
        stale.name = "ignored"
        stale.age = 9
        await stale.asave(update_fields=["age"])

    run(main)
    assert Author.objects.values_list("name", "age").get(pk=ada.pk) == ("Ada", 9)


def test_adelete_instance_cascades(db) -> None:
    ada = seed_books()
    Author.objects.create(name="Bob")

    async def main() -> tuple[int, dict[str, int]]:
        return await (await Author.objects.aget(name="Ada")).adelete()

    total, per_model = run(main)
    assert total == 4
    assert per_model == {"t_async_api.Book": 3, "t_async_api.Author": 1}
    assert list(Author.objects.values_list("name", flat=True)) == ["Bob"]
    assert Book.objects.count() == 0
    assert not Author.objects.filter(pk=ada.pk).exists()


def test_arefresh_from_db_reads_the_row(db) -> None:
    ada = Author.objects.create(name="Ada", age=1)
    Author.objects.filter(pk=ada.pk).update(age=42, name="Ada L.")

    async def main() -> tuple[str, int]:
        await ada.arefresh_from_db()
        return ada.name, ada.age

    assert run(main) == ("Ada L.", 42)


def test_afull_clean_runs_unique_checks_against_the_database(db) -> None:
    Author.objects.create(name="Ada")

    async def main() -> None:
        await Author(name="Bob").afull_clean()  # no clash: passes
        await Author(name="Ada").afull_clean()

    with pytest.raises(ValidationError) as info:
        run(main)
    assert "name" in str(info.value)


# --- queryset twins ----------------------------------------------------------------------------


def test_acreate_and_aget(db) -> None:
    async def main() -> tuple[Any, Any]:
        made = await Author.objects.acreate(name="Ada", age=36)
        got = await Author.objects.aget(name="Ada")
        return made, got

    made, got = run(main)
    assert made.pk is not None and got.pk == made.pk and got.age == 36
    assert Author.objects.get(pk=made.pk).name == "Ada"


def test_aget_or_create(db) -> None:
    async def main() -> list[tuple[int, bool]]:
        a, created_a = await Author.objects.aget_or_create(name="Ada", defaults={"age": 5})
        b, created_b = await Author.objects.aget_or_create(name="Ada", defaults={"age": 99})
        return [(a.pk, created_a), (b.pk, created_b)]

    (pk1, c1), (pk2, c2) = run(main)
    assert (c1, c2) == (True, False) and pk1 == pk2
    assert list(Author.objects.values_list("name", "age")) == [("Ada", 5)]


def test_aupdate_or_create(db) -> None:
    async def main() -> list[bool]:
        _a, c1 = await Author.objects.aupdate_or_create(name="Ada", defaults={"age": 1})
        _b, c2 = await Author.objects.aupdate_or_create(name="Ada", defaults={"age": 2})
        return [c1, c2]

    assert run(main) == [True, False]
    assert list(Author.objects.values_list("name", "age")) == [("Ada", 2)]


def test_aexists_or_create(db) -> None:
    async def main() -> list[tuple[bool, int]]:
        e1, a = await Author.objects.aexists_or_create(name="Ada", defaults={"age": 3})
        e2, b = await Author.objects.aexists_or_create(name="Ada", defaults={"age": 4})
        return [(e1, a.pk), (e2, b.pk)]

    (e1, pk1), (e2, pk2) = run(main)
    assert (e1, e2) == (False, True) and pk1 == pk2
    assert list(Author.objects.values_list("name", "age")) == [("Ada", 3)]


def test_abulk_create_and_abulk_update(db) -> None:
    async def main() -> tuple[list[Any], int]:
        made = await Author.objects.abulk_create(
            [Author(name=n, age=i) for i, n in enumerate(["a", "b", "c"])]
        )
        for obj in made:
            obj.age += 10
        updated = await Author.objects.abulk_update(made, ["age"])
        return made, updated

    made, updated = run(main)
    assert len(made) == 3 and all(obj.pk is not None for obj in made)
    assert updated == 3
    assert list(Author.objects.order_by("name").values_list("name", "age")) == [
        ("a", 10),
        ("b", 11),
        ("c", 12),
    ]


def test_aupsert_inserts_and_updates_on_conflict(db) -> None:
    Author.objects.create(name="Ada", age=1)

    async def main() -> None:
        await Author.objects.aupsert(
            [Author(name="Ada", age=2), Author(name="Bob", age=3)],
            unique_fields=["name"],
            update_fields=["age"],
        )

    run(main)
    assert list(Author.objects.order_by("name").values_list("name", "age")) == [
        ("Ada", 2),
        ("Bob", 3),
    ]


def test_acount_aexists_afirst_alast(db) -> None:
    seed_books()

    async def main() -> tuple[Any, ...]:
        qs = Book.objects.order_by("pages")
        return (
            await qs.acount(),
            await qs.filter(pages__gt=25).acount(),
            await qs.aexists(),
            await qs.filter(pages__gt=99).aexists(),
            (await qs.afirst()).title,
            (await qs.alast()).title,
            await qs.filter(pages__gt=99).afirst(),
        )

    assert run(main) == (3, 1, True, False, "b1", "b2", None)


def test_alatest_and_aearliest(db) -> None:
    seed_books()

    async def main() -> list[str]:
        return [
            (await Book.objects.alatest()).title,  # Meta.get_latest_by = "pages"
            (await Book.objects.aearliest()).title,
            (await Book.objects.alatest("title")).title,
            (await Book.objects.aearliest("-pages")).title,
        ]

    assert run(main) == ["b2", "b1", "b3", "b2"]


def test_ain_bulk(db) -> None:
    ada = Author.objects.create(name="Ada")
    bob = Author.objects.create(name="Bob")

    async def main() -> tuple[dict[Any, Any], dict[Any, Any]]:
        return (
            await Author.objects.ain_bulk([ada.pk, bob.pk, 10**6]),
            await Author.objects.ain_bulk(["Bob"], field_name="name"),
        )

    by_pk, by_name = run(main)
    assert {pk: obj.name for pk, obj in by_pk.items()} == {ada.pk: "Ada", bob.pk: "Bob"}
    assert list(by_name) == ["Bob"] and by_name["Bob"].pk == bob.pk


def test_aaggregate(db) -> None:
    seed_books()

    async def main() -> dict[str, Any]:
        return await Book.objects.aaggregate(
            total=dorm.Sum("pages"), most=dorm.Max("pages"), n=dorm.Count("id")
        )

    assert run(main) == {"total": 60, "most": 30, "n": 3}


def test_aupdate_returns_count_and_writes(db) -> None:
    seed_books()

    async def main() -> int:
        return await Book.objects.filter(pages__gte=20).aupdate(pages=dorm.F("pages") + 1)

    assert run(main) == 2
    assert list(Book.objects.order_by("title").values_list("pages", flat=True)) == [10, 31, 21]


def test_adelete_queryset_with_cascade(db) -> None:
    seed_books()
    Author.objects.create(name="Bob")

    async def main() -> tuple[tuple[int, dict[str, int]], int]:
        deleted = await Author.objects.filter(name="Ada").adelete()
        return deleted, await Book.objects.acount()

    (total, per_model), books_left = run(main)
    assert total == 4 and per_model == {"t_async_api.Book": 3, "t_async_api.Author": 1}
    assert books_left == 0
    assert list(Author.objects.values_list("name", flat=True)) == ["Bob"]


def test_aexplain_returns_the_plan(db) -> None:
    async def main() -> str:
        return await Author.objects.filter(name="Ada").aexplain()

    plan = run(main)
    assert isinstance(plan, str) and plan.strip()
    if db.vendor == "postgresql":
        assert "Scan" in plan
    else:
        assert "SEARCH" in plan or "SCAN" in plan


def test_alist_evaluates_and_caches(db) -> None:
    seed_books()

    async def main() -> tuple[list[str], int]:
        qs = Book.objects.order_by("title")
        with CaptureQueriesContext() as ctx:
            first = await qs.alist()
            again = await qs.alist()  # the result cache: no second query
        assert [b.pk for b in first] == [b.pk for b in again]
        return [b.title for b in first], len(ctx.captured_queries)

    titles, queries = run(main)
    assert titles == ["b1", "b2", "b3"]
    assert queries == 1


# --- related managers --------------------------------------------------------------------------


def test_reverse_fk_manager_twins(db) -> None:
    ada = Author.objects.create(name="Ada")
    loose = Book.objects.create(title="loose")
    other = Book.objects.create(title="other")

    async def main() -> list[list[str]]:
        seen: list[list[str]] = []

        async def titles() -> list[str]:
            return sorted(b.title for b in await ada.books.all().alist())

        made = await ada.books.acreate(title="made")
        assert made.author_id == ada.pk
        got, created = await ada.books.aget_or_create(title="got")
        again, created_again = await ada.books.aget_or_create(title="got")
        assert (created, created_again, again.pk) == (True, False, got.pk)
        seen.append(await titles())
        await ada.books.aadd(loose, other)
        seen.append(await titles())
        await ada.books.aremove(loose)
        seen.append(await titles())
        await ada.books.aset([loose])
        seen.append(await titles())
        await ada.books.aclear()
        seen.append(await titles())
        return seen

    assert run(main) == [
        ["got", "made"],
        ["got", "loose", "made", "other"],
        ["got", "made", "other"],
        ["loose"],
        [],
    ]
    assert Book.objects.filter(author__isnull=True).count() == 4
    assert Book.objects.count() == 4


def test_m2m_manager_twins(db) -> None:
    book = Book.objects.create(title="b")
    red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")

    async def main() -> list[list[str]]:
        seen: list[list[str]] = []

        async def names() -> list[str]:
            return sorted(t.name for t in await book.tags.all().alist())

        await book.tags.aadd(red, blue)
        seen.append(await names())
        await book.tags.aremove(red)
        seen.append(await names())
        made = await book.tags.acreate(name="made")
        assert made.pk is not None
        seen.append(await names())
        await book.tags.aset([red])
        seen.append(await names())
        await book.tags.aclear()
        seen.append(await names())
        return seen

    assert run(main) == [
        ["blue", "red"],
        ["blue"],
        ["blue", "made"],
        ["red"],
        [],
    ]
    assert Tag.objects.count() == 3  # clear() unlinks, deletes no tag
    assert list(red.books.all()) == []


def test_m2m_aget_or_create_links_the_new_object(db) -> None:
    book = Book.objects.create(title="b")

    async def main() -> tuple[bool, bool, list[str]]:
        got, created = await book.tags.aget_or_create(name="got")
        again, created_again = await book.tags.aget_or_create(name="got")
        assert again.pk == got.pk
        return created, created_again, [t.name for t in await book.tags.all().alist()]

    assert run(main) == (True, False, ["got"])
    assert Tag.objects.count() == 1


# --- async iteration ---------------------------------------------------------------------------


def test_async_for_with_select_related(db) -> None:
    seed_books()

    async def main() -> tuple[list[tuple[str, str]], int]:
        rows = []
        with CaptureQueriesContext() as ctx:
            async for book in Book.objects.select_related("author").order_by("title"):
                rows.append((book.title, book.author.name))  # cached: no query, no guard
        return rows, len(ctx.captured_queries)

    rows, queries = run(main)
    assert rows == [("b1", "Ada"), ("b2", "Ada"), ("b3", "Ada")]
    assert queries == 1


def test_async_for_with_prefetch_related_m2m(db) -> None:
    red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")
    Book.objects.create(title="one").tags.add(red, blue)
    Book.objects.create(title="two").tags.add(blue)
    Book.objects.create(title="none")

    async def main() -> tuple[list[tuple[str, list[str]]], int]:
        rows = []
        with CaptureQueriesContext() as ctx:
            async for book in Book.objects.prefetch_related("tags").order_by("title"):
                rows.append((book.title, sorted(t.name for t in book.tags.all())))
        return rows, len(ctx.captured_queries)

    rows, queries = run(main)
    assert rows == [("none", []), ("one", ["blue", "red"]), ("two", ["blue"])]
    assert queries == 2  # the books, then every book's tags at once


def test_aiterator_yields_every_row_in_order(db) -> None:
    Author.objects.bulk_create([Author(name=f"n{i:03d}", age=i) for i in range(25)])

    async def main() -> list[int]:
        return [a.age async for a in Author.objects.order_by("-age").aiterator(chunk_size=4)]

    assert run(main) == list(range(24, -1, -1))


def test_aiterator_uses_a_server_side_cursor_on_postgresql(db) -> None:
    postgres_only(db)
    Author.objects.bulk_create([Author(name=f"n{i:02d}", age=i) for i in range(10)])

    async def main() -> tuple[list[int], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        conn = get_async_connection()
        ages: list[int] = []
        during: list[tuple[Any, ...]] = []
        # Inside aatomic() the iterator and the raw query share the task's connection, so
        # pg_cursors (which lists the session's own portals) shows the iterator's cursor.
        async with dorm.transaction.aatomic():
            async for a in Author.objects.order_by("age").aiterator(chunk_size=3):
                ages.append(a.age)
                if len(ages) == 1:
                    during = await conn.fetchall(
                        "SELECT name, statement FROM pg_cursors WHERE name <> ''"
                    )
        return ages, during

    ages, during = run(main)
    assert ages == list(range(10))
    assert len(during) == 1, during
    assert during[0][0].startswith("dorm_async_")
    assert 'FROM "t_async_api_author"' in during[0][1]


OPEN_CURSORS = "SELECT name FROM pg_cursors WHERE name <> ''"


def test_finished_aiterator_closes_its_cursor_inside_aatomic(db) -> None:
    postgres_only(db)
    Author.objects.bulk_create([Author(name=f"n{i:02d}", age=i) for i in range(5)])
    with dorm.transaction.atomic():
        assert [a.age for a in Author.objects.order_by("age").iterator(chunk_size=2)] == [
            0,
            1,
            2,
            3,
            4,
        ]
        assert get_connection().fetchall(OPEN_CURSORS) == []  # sync: closed at once

    async def main() -> list[tuple[Any, ...]]:
        async with dorm.transaction.aatomic():
            ages = [a.age async for a in Author.objects.order_by("age").aiterator(2)]
            assert ages == [0, 1, 2, 3, 4]
            return await get_async_connection().fetchall(OPEN_CURSORS)

    assert run(main) == []


def idle_in_transaction(db: Any) -> list[str]:
    import psycopg

    with psycopg.connect(db.pg.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [r[0] for r in rows]


def test_aiterator_broken_off_early_leaves_the_pool_usable(db) -> None:
    Author.objects.bulk_create([Author(name=f"n{i:02d}", age=i) for i in range(20)])

    async def main() -> tuple[list[int], list[int], list[int], list[str]]:
        taken: list[int] = []
        async for a in Author.objects.order_by("age").aiterator(chunk_size=5):
            taken.append(a.age)
            if len(taken) == 7:
                break
        closing: list[int] = []
        async with contextlib.aclosing(Author.objects.order_by("age").aiterator(2)) as rows:
            async for a in rows:
                closing.append(a.age)
                break
        await asyncio.sleep(0.05)  # the abandoned generator is finalized by the loop
        # Every later query still gets a connection and a clean session.
        counts = await asyncio.gather(*(Author.objects.acount() for _ in range(12)))
        stuck = await asyncio.to_thread(idle_in_transaction, db) if db.pg else []
        return taken, closing, counts, stuck

    taken, closing, counts, stuck = run(main)
    assert taken == list(range(7))
    assert closing == [0]
    assert counts == [20] * 12
    assert stuck == []
    assert Author.objects.count() == 20


# --- errors ------------------------------------------------------------------------------------


def test_aget_raises_does_not_exist_and_multiple_objects_returned(db) -> None:
    Author.objects.create(name="Ada", age=1)
    Author.objects.create(name="Bob", age=1)

    async def missing() -> None:
        await Author.objects.aget(name="Nobody")

    async def several() -> None:
        await Author.objects.aget(age=1)

    with pytest.raises(Author.DoesNotExist) as info:
        run(missing)
    assert "Author matching query does not exist" in str(info.value)
    with pytest.raises(Author.MultipleObjectsReturned) as info2:
        run(several)
    assert "returned 2" in str(info2.value)
    assert Author.objects.count() == 2


def test_duplicate_unique_value_raises_integrity_error(db) -> None:
    async def main() -> None:
        await Author.objects.acreate(name="Ada")
        await Author.objects.acreate(name="Ada")

    with pytest.raises(IntegrityError) as info:
        run(main)
    message = str(info.value)
    if db.vendor == "sqlite":
        assert "UNIQUE constraint failed: t_async_api_author.name" in message
    else:
        assert "duplicate key value violates unique constraint" in message
        assert "t_async_api_author_name" in message and "(name)=(Ada)" in message
    assert Author.objects.count() == 1


def test_async_api_keeps_working_after_an_integrity_error(db) -> None:
    async def main() -> int:
        await Author.objects.acreate(name="Ada")
        with pytest.raises(IntegrityError):
            await Author.objects.acreate(name="Ada")
        await Author.objects.acreate(name="Bob")
        return await Author.objects.acount()

    assert run(main) == 2


# --- typed round trips -------------------------------------------------------------------------


def test_typed_values_round_trip_through_the_async_api(db) -> None:
    uid = uuid.uuid4()
    at = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    data = {"a": [1, 2.5, None, True], "nested": {"k": "vä"}, "empty": {}}

    async def main() -> tuple[Any, Any, Any]:
        made = await Record.objects.acreate(
            uid=uid, data=data, price=decimal.Decimal("12.34"), at=at
        )
        got = await Record.objects.aget(pk=made.pk)
        by_uid = await Record.objects.aget(uid=uid)
        values = await Record.objects.values_list("uid", "data", "price", "at").aget(pk=made.pk)
        return got, by_uid, values

    got, by_uid, values = run(main)
    assert by_uid.pk == got.pk
    for uid_v, data_v, price_v, at_v in ((got.uid, got.data, got.price, got.at), values):
        assert type(uid_v) is uuid.UUID and uid_v == uid
        assert data_v == data
        assert type(price_v) is decimal.Decimal and price_v == decimal.Decimal("12.34")
        assert isinstance(at_v, datetime.datetime) and at_v == at
        assert at_v.utcoffset() == datetime.timedelta(0)
    # The sync API reads what the async one wrote.
    row = Record.objects.get(pk=got.pk)
    assert (row.uid, row.data, row.price, row.at) == (uid, data, decimal.Decimal("12.34"), at)


def test_typed_filters_through_the_async_api(db) -> None:
    early = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    late = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    Record.objects.create(price=decimal.Decimal("1.50"), at=early, data={"kind": "x"})
    Record.objects.create(price=decimal.Decimal("9.99"), at=late, data={"kind": "y"})

    async def main() -> tuple[int, int, Any]:
        return (
            await Record.objects.filter(price__gt=decimal.Decimal("2")).acount(),
            await Record.objects.filter(
                at__lt=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
            ).acount(),
            (await Record.objects.aaggregate(total=dorm.Sum("price")))["total"],
        )

    above, early, total = run(main)
    assert (above, early) == (1, 1)
    assert type(total) is decimal.Decimal and total == decimal.Decimal("11.49")


# --- get_async_connection() ----------------------------------------------------------------


def test_raw_statements_on_get_async_connection(db) -> None:
    table = Author._meta.db_table

    async def main() -> tuple[int, list[tuple[Any, ...]], Any, Any]:
        conn = get_async_connection()
        qn, p = conn.ops.quote_name, conn.ops.placeholder
        inserted = await conn.execute(
            f"INSERT INTO {qn(table)} (name, age) VALUES ({p}, {p})", ["Ada", 36]
        )
        await conn.executemany(
            f"INSERT INTO {qn(table)} (name, age) VALUES ({p}, {p})", [["Bob", 1], ["Cy", 2]]
        )
        rows = await conn.fetchall(
            f"SELECT name, age FROM {qn(table)} WHERE age < {p} ORDER BY name", [10]
        )
        one = await conn.fetchone(f"SELECT COUNT(*) FROM {qn(table)}")
        none = await conn.fetchone(f"SELECT name FROM {qn(table)} WHERE name = {p}", ["Zed"])
        return inserted, rows, one, none

    inserted, rows, one, none = run(main)
    assert inserted == 1
    assert rows == [("Bob", 1), ("Cy", 2)]
    assert one == (3,) and none is None
    assert sorted(Author.objects.values_list("name", flat=True)) == ["Ada", "Bob", "Cy"]


def test_async_connection_repr_and_vendor(db) -> None:
    conn = get_async_connection()
    assert conn.vendor == db.vendor and conn.alias == "default"
    assert repr(conn) == f"<AsyncDatabaseWrapper alias='default' vendor={db.vendor!r}>"


# --- the event loop is never blocked -----------------------------------------------------------

SLOW_SQL = (
    "WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < {n}) "
    "SELECT COUNT(*) FROM cnt"
)


def test_slow_sqlite_statement_does_not_block_the_loop(db) -> None:
    sqlite_only(db)

    async def main(n: int) -> tuple[Any, int, float]:
        conn = get_async_connection()
        await conn.fetchone("SELECT 1")  # open the pool first
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        start = time.perf_counter()
        try:
            row = await conn.fetchone(SLOW_SQL.format(n=n))
        finally:
            elapsed = time.perf_counter() - start
            stop.set()
            await task
        return row, ticks, elapsed

    # A statement long enough to prove something on this machine: four times longer each
    # time it ran under 0.1 s.
    for n in (600_000, 2_400_000, 9_600_000):
        row, ticks, elapsed = run(lambda n=n: main(n))
        assert row == (n,)
        if elapsed > 0.1:
            break
    assert elapsed > 0.1, f"the statement was too fast ({elapsed:.3f}s) to prove anything"
    # A blocked loop would tick at most once; a free one ticks about every 5 ms.
    assert ticks >= max(5, int(elapsed / 0.005 * 0.3)), (ticks, elapsed)


def test_a_sync_receiver_sent_with_asend_uses_cursors_without_blocking(db) -> None:
    """Sync code run by the async API (here a receiver, through ``asend``) may use the
    DB-API cursor: execute, fetch and iterate, all awaited on the loop."""
    from dorm import signals
    from dorm.db.connection import get_connection

    Author.objects.bulk_create([Author(name=f"c{i}", age=i) for i in range(5)])
    seen: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        conn = get_connection()
        table = conn.ops.quote_name(Author._meta.db_table)
        ph = conn.ops.placeholder
        with conn.cursor() as cur:
            cur.execute(f"SELECT age FROM {table} WHERE age >= {ph} ORDER BY age", [2])
            seen.append([row for row in cur])
            cur.execute(f"SELECT count(*) FROM {table}")
            seen.append(cur.fetchone())

    signals.pre_delete.connect(receiver, sender=Author, weak=False)
    try:
        obj = Author.objects.get(name="c0")
        run(
            lambda: signals.pre_delete.asend(
                sender=Author, instance=obj, using="default", origin=obj
            )
        )
    finally:
        signals.pre_delete.disconnect(receiver, sender=Author)
    assert seen == [[(2,), (3,), (4,)], (5,)]
    assert all(type(row) is tuple for row in [*seen[0], seen[1]])
