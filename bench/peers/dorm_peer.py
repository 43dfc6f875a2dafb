"""dorm itself."""

from __future__ import annotations

from typing import Any

import dorm
from dorm.db.connection import awarmup_pool, reset_connections
from dorm.migrations.schema import SchemaEditor
from peers import BULK_PAGES, Ctx, Scenarios, close_loop, run, scenarios_in


class Author(dorm.Model):
    name = dorm.CharField(max_length=100)

    class Meta:
        app_label = "bench"


class Tag(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "bench"


class Book(dorm.Model):
    title = dorm.CharField(max_length=200, db_index=True)
    pages = dorm.IntegerField(db_index=True)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="books")
    tags = dorm.ManyToManyField(Tag, related_name="books")

    class Meta:
        app_label = "bench"


def setup(vendor: str, settings: dict[str, Any]) -> None:
    dorm.configure(DATABASES={"default": settings})
    with SchemaEditor() as editor:
        for model in (Author, Tag, Book):
            editor.create_model(model)
    if vendor == "postgresql":
        run(awarmup_pool())  # the asyncpg pool of the harness's one event loop


def scenarios(ctx: Ctx) -> Scenarios:
    n, rows, half, ids, filler_id = ctx.n, ctx.rows, ctx.half, ctx.ids, ctx.filler_id

    def insert_one() -> None:
        for i in range(n):
            Author.objects.create(name=f"one-{i}")

    def bulk_insert() -> None:
        Book.objects.bulk_create(
            [Book(title=f"b{i}", pages=BULK_PAGES + i, author_id=filler_id) for i in range(rows)]
        )

    def get_by_pk() -> None:
        for pk in ids:
            Book.objects.get(pk=pk)

    def filter_iterate() -> None:
        list(Book.objects.all()[:rows])

    def values_list() -> None:
        list(Book.objects.values_list("id", "title", "pages")[:rows])

    def select_related() -> None:
        for b in Book.objects.select_related("author")[:half]:
            _ = b.author.name

    def prefetch_related() -> None:
        for a in Author.objects.order_by("id").prefetch_related("books")[:500]:
            _ = len(a.books.all())

    def m2m_prefetch() -> None:
        for b in Book.objects.order_by("id").prefetch_related("tags")[:500]:
            _ = [t.name for t in b.tags.all()]

    def count_filter() -> None:
        for i in range(n):
            Book.objects.filter(pages__gte=i).count()

    def update_filter() -> None:
        for threshold in range(half, half - 5, -1):
            Book.objects.filter(pages__lt=threshold).update(pages=dorm.F("pages") + 0)

    async def async_filter_iterate() -> None:
        [b async for b in Book.objects.all()[:rows]]

    return scenarios_in(locals(), ctx.vendor == "postgresql")


def teardown() -> None:
    close_loop()  # as asyncio.run() ends: the pool's keeper task closes the asyncpg pool
    reset_connections()
