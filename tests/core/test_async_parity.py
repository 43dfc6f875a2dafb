"""The sync and the async API return and raise the same things.

Each scenario is written once against a tiny ``api`` object: ``await api(target, "count")``
runs ``target.count()`` (in a worker thread, as plain sync code) for the sync API and
``await target.acount()`` for the async one. Every scenario runs on fresh data with each
API, and the two results must be equal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import dorm
from dorm.db.connection import get_connection


class Author(dorm.Model):
    name = dorm.CharField(max_length=50, unique=True)
    age = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_async_parity"
        ordering = ["name"]
        get_latest_by = "age"


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="books")
    pages = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_async_parity"


MODELS = [Author, Book]


class Api:
    """``await api(target, "name", *args)``: ``target.name(*args)`` or ``target.aname(*args)``.

    ``"list"`` evaluates a queryset, ``"iterator"`` streams it.
    """

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    async def __call__(self, target: Any, method: str, /, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            if method == "list":
                return await target.alist()
            if method == "iterator":
                return [obj async for obj in target.aiterator(*args, **kwargs)]
            return await getattr(target, f"a{method}")(*args, **kwargs)

        def call() -> Any:
            if method == "list":
                return list(target)
            if method == "iterator":
                return list(target.iterator(*args, **kwargs))
            return getattr(target, method)(*args, **kwargs)

        return await asyncio.to_thread(call)

    async def error(
        self, target: Any, method: str, /, *args: Any, **kwargs: Any
    ) -> tuple[str, str]:
        """The type name and message of what the call raised."""
        try:
            await self(target, method, *args, **kwargs)
        except Exception as exc:
            return type(exc).__name__, str(exc)
        raise AssertionError(f"{method}() raised nothing")


Scenario = Callable[[Api], Awaitable[Any]]
SCENARIOS: list[Scenario] = []
UNSET = object()


def scenario(expect: Any = UNSET) -> Callable[[Scenario], Scenario]:
    """Register a scenario; ``expect`` pins what both APIs must return, when it does not
    depend on the backend."""

    def register(func: Scenario) -> Scenario:
        func.expect = expect  # type: ignore[attr-defined]
        SCENARIOS.append(func)
        return func

    return register


def seed() -> None:
    """Fresh data; results below never show primary keys (they differ between runs)."""
    ada, bob, _cy = Author.objects.bulk_create(
        [Author(name="Ada", age=36), Author(name="Bob", age=20), Author(name="Cy", age=20)]
    )
    Book.objects.bulk_create(
        [
            Book(title="a1", author=ada, pages=100),
            Book(title="a2", author=ada, pages=300),
            Book(title="b1", author=bob, pages=50),
        ]
    )


def names(objs: Any) -> list[str]:
    return [obj.name for obj in objs]


@scenario(expect=[3, 2, True, False])
async def counts(api: Api) -> Any:
    return [
        await api(Author.objects.all(), "count"),
        await api(Author.objects.filter(age=20), "count"),
        await api(Book.objects.filter(author__name="Ada"), "exists"),
        await api(Book.objects.filter(pages__gt=1000), "exists"),
    ]


@scenario()
async def values_lists(api: Api) -> Any:
    return [
        await api(Author.objects.values_list("name", "age"), "list"),
        await api(Book.objects.order_by("-pages").values_list("title", flat=True), "list"),
        await api(Book.objects.values("title", "author__name").order_by("title"), "list"),
        names(await api(Author.objects.order_by("-age", "name"), "iterator", chunk_size=2)),
    ]


@scenario(expect=[20, "Ada", "Cy", "Ada", "Cy", None])
async def single_objects(api: Api) -> Any:
    qs = Author.objects.all()
    return [
        (await api(qs, "get", name="Bob")).age,
        (await api(qs, "first")).name,
        (await api(qs, "last")).name,
        (await api(qs, "latest")).name,
        (await api(qs, "earliest", "age", "-name")).name,
        await api(qs.filter(age=99), "first"),
    ]


@scenario(
    expect=[
        ("DoesNotExist", "Author matching query does not exist (name='Nobody')"),
        (
            "MultipleObjectsReturned",
            "get() returned more than one Author -- it returned 2 (age=20)",
        ),
        ("TypeError", "cannot call delete() once a slice has been taken"),
        ("ValueError", "in_bulk()'s field_name must be a unique field, 'age' is not"),
    ]
)
async def lookup_errors(api: Api) -> Any:
    return [
        await api.error(Author.objects, "get", name="Nobody"),
        await api.error(Author.objects, "get", age=20),
        await api.error(Author.objects.all()[:1], "delete"),
        await api.error(Author.objects, "in_bulk", [20], field_name="age"),
    ]


@scenario()
async def integrity_error(api: Api) -> Any:
    error = await api.error(Author.objects, "create", name="Ada")
    return [error, await api(Author.objects, "count")]


@scenario(expect=[2, 0, [("Ada", 36), ("Bob", 21), ("Cy", 21)]])
async def updates(api: Api) -> Any:
    changed = await api(Author.objects.filter(age=20), "update", age=dorm.F("age") + 1)
    none = await api(Author.objects.filter(age=99), "update", age=0)
    return [changed, none, await api(Author.objects.values_list("name", "age"), "list")]


@scenario(
    expect=[
        (3, {"t_async_parity.Book": 2, "t_async_parity.Author": 1}),
        (2, {"t_async_parity.Book": 1, "t_async_parity.Author": 1}),
        (0, {}),
        [],
    ]
)
async def deletes_with_cascade(api: Api) -> Any:
    by_queryset = await api(Author.objects.filter(name="Ada"), "delete")
    bob = await api(Author.objects, "get", name="Bob")
    by_instance = await api(bob, "delete")
    nothing = await api(Author.objects.filter(name="Nobody"), "delete")
    left = await api(Book.objects.values_list("title", flat=True), "list")
    return [by_queryset, by_instance, nothing, left]


@scenario()
async def creates(api: Api) -> Any:
    made = await api(Author.objects, "bulk_create", [Author(name="Dee"), Author(name="Eve", age=5)])
    first = await api(Author.objects, "get_or_create", name="Fay", defaults={"age": 7})
    again = await api(Author.objects, "get_or_create", name="Fay", defaults={"age": 8})
    upd = await api(Author.objects, "update_or_create", name="Ada", defaults={"age": 40})
    exists = await api(Author.objects, "exists_or_create", name="Gus")
    return [
        [(a.name, a.age, a.pk is not None) for a in made],
        [(obj.name, obj.age, created) for obj, created in (first, again, upd)],
        (exists[0], exists[1].name),
        await api(Author.objects.values_list("name", "age"), "list"),
    ]


@scenario(expect=[3, [("Ada", 1), ("Bob", 21), ("Cy", 21), ("Zed", 2)]])
async def bulk_writes(api: Api) -> Any:
    authors = await api(Author.objects.all(), "list")
    for author in authors:
        author.age += 1
    updated = await api(Author.objects, "bulk_update", authors, ["age"])
    await api(
        Author.objects,
        "upsert",
        [Author(name="Ada", age=1), Author(name="Zed", age=2)],
        unique_fields=["name"],
        update_fields=["age"],
    )
    return [updated, await api(Author.objects.values_list("name", "age"), "list")]


@scenario()
async def aggregates_and_in_bulk(api: Api) -> Any:
    agg = await api(
        Book.objects.all(),
        "aggregate",
        total=dorm.Sum("pages"),
        n=dorm.Count("id"),
        top=dorm.Max("pages"),
        avg=dorm.Avg("pages"),
    )
    by_name = await api(Author.objects, "in_bulk", ["Ada", "Cy", "Nobody"], field_name="name")
    return [agg, {name: obj.age for name, obj in by_name.items()}]


@scenario(expect=["Ada L.", 50, ("ValidationError", "name: Author with this name already exists")])
async def instance_methods(api: Api) -> Any:
    ada = await api(Author.objects, "get", name="Ada")
    ada.age = 50
    await api(ada, "save", update_fields=["age"])
    stale = await api(Author.objects, "get", name="Ada")
    await api(Author.objects.filter(name="Ada"), "update", name="Ada L.")
    await api(stale, "refresh_from_db")
    clash = Author(name="Bob")
    return [stale.name, stale.age, await api.error(clash, "full_clean")]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_sync_and_async_apis_agree(db, scenario: Scenario) -> None:
    results = []
    for is_async in (False, True):
        seed()
        try:
            results.append(asyncio.run(scenario(Api(is_async))))
        finally:
            conn = get_connection()
            for model in (Book, Author):
                conn.execute(f"DELETE FROM {conn.ops.quote_name(model._meta.db_table)}", ())
    sync_result, async_result = results
    assert async_result == sync_result
    expect = scenario.expect  # type: ignore[attr-defined]
    if expect is not UNSET:
        assert sync_result == expect
