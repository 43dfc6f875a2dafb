"""Tortoise ORM (async-only): every scenario is a coroutine, run on the harness's one loop.

asyncpg on PostgreSQL, aiosqlite on SQLite. Tortoise keeps its state in a context variable:
the context is entered in the main thread before ``Tortoise.init`` so that every task the
loop runs (each one copies the main thread's context) sees the same connections.
"""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections, fields
from tortoise.context import TortoiseContext
from tortoise.expressions import F
from tortoise.models import Model
from tortoise.transactions import in_transaction

from peers import BULK_PAGES, Ctx, Scenarios, run, scenarios_in


class Author(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)

    class Meta:
        table = "bench_author"


class Tag(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=50)

    class Meta:
        table = "bench_tag"


class Book(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=200, db_index=True)
    pages = fields.IntField(db_index=True)
    author: fields.ForeignKeyRelation[Author] = fields.ForeignKeyField(
        "models.Author", related_name="books", db_index=True
    )
    tags: fields.ManyToManyRelation[Tag] = fields.ManyToManyField(
        "models.Tag",
        related_name="books",
        through="bench_book_tags",
        forward_key="tag_id",
        backward_key="book_id",
    )

    class Meta:
        table = "bench_book"


context: TortoiseContext | None = None


def setup(vendor: str, settings: dict[str, Any]) -> None:
    global context
    if vendor == "sqlite":
        connection: dict[str, Any] = {
            "engine": "tortoise.backends.sqlite",
            # Pragmas, like the other peers: WAL, foreign keys (its defaults) and NORMAL sync.
            "credentials": {"file_path": settings["NAME"], "synchronous": "NORMAL"},
        }
    else:
        connection = {
            "engine": "tortoise.backends.asyncpg",
            "credentials": {
                "host": settings["HOST"],
                "port": settings["PORT"],
                "user": settings["USER"],
                "password": settings.get("PASSWORD", ""),
                "database": settings["NAME"],
            },
        }
    context = TortoiseContext()
    context.__enter__()
    run(
        Tortoise.init(
            config={
                "connections": {"default": connection},
                "apps": {"models": {"models": [__name__], "default_connection": "default"}},
            }
        )
    )
    run(Tortoise.generate_schemas(safe=False))
    # Its through table has the unique (book_id, tag_id) index but no single-column ones (nor
    # an "id" column, which no scenario reads): add the indexes the other peers have.
    run(
        connections.get("default").execute_script(
            'CREATE INDEX "bench_book_tags_book_id" ON "bench_book_tags" ("book_id");'
            'CREATE INDEX "bench_book_tags_tag_id" ON "bench_book_tags" ("tag_id");'
        )
    )


def scenarios(ctx: Ctx) -> Scenarios:
    n, rows, half, ids, filler_id = ctx.n, ctx.rows, ctx.half, ctx.ids, ctx.filler_id

    async def insert_one() -> None:
        for i in range(n):
            await Author.create(name=f"one-{i}")

    async def bulk_insert() -> None:
        async with in_transaction():
            await Book.bulk_create(
                [
                    Book(title=f"b{i}", pages=BULK_PAGES + i, author_id=filler_id)
                    for i in range(rows)
                ],
                batch_size=1000,
            )

    async def get_by_pk() -> None:
        for pk in ids:
            await Book.get(pk=pk)

    async def filter_iterate() -> None:
        await Book.all().limit(rows)

    async def values_list() -> None:
        await Book.all().limit(rows).values_list("id", "title", "pages")

    async def select_related() -> None:
        for b in await Book.all().select_related("author").limit(half):
            _ = b.author.name

    async def prefetch_related() -> None:
        for a in await Author.all().order_by("id").limit(500).prefetch_related("books"):
            _ = len(a.books)

    async def m2m_prefetch() -> None:
        for b in await Book.all().order_by("id").limit(500).prefetch_related("tags"):
            _ = [t.name for t in b.tags]

    async def count_filter() -> None:
        for i in range(n):
            await Book.filter(pages__gte=i).count()

    async def update_filter() -> None:
        for threshold in range(half, half - 5, -1):
            await Book.filter(pages__lt=threshold).update(pages=F("pages") + 0)

    async def async_filter_iterate() -> None:
        [b async for b in Book.all().limit(rows)]

    return scenarios_in(locals(), ctx.vendor == "postgresql")


def teardown() -> None:
    run(Tortoise.close_connections())
    if context is not None:
        context.__exit__(None, None, None)
