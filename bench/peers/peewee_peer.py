"""peewee: models bound to a DatabaseProxy, initialised per backend."""

from __future__ import annotations

from typing import Any

import peewee as pw

from peers import BULK_PAGES, Ctx, Scenarios, scenarios_in

db = pw.DatabaseProxy()


class Base(pw.Model):
    class Meta:
        database = db


class Author(Base):
    name = pw.CharField(max_length=100)

    class Meta:
        table_name = "bench_author"


class Tag(Base):
    name = pw.CharField(max_length=50)

    class Meta:
        table_name = "bench_tag"


BookTagsThrough = pw.DeferredThroughModel()


class Book(Base):
    title = pw.CharField(max_length=200, index=True)
    pages = pw.IntegerField(index=True)
    author = pw.ForeignKeyField(Author, backref="books")  # indexed by default
    tags = pw.ManyToManyField(Tag, backref="books", through_model=BookTagsThrough)

    class Meta:
        table_name = "bench_book"


class BookTags(Base):
    book = pw.ForeignKeyField(Book, backref="tag_links")
    tag = pw.ForeignKeyField(Tag)

    class Meta:
        table_name = "bench_book_tags"
        indexes = ((("book", "tag"), True),)


BookTagsThrough.set_model(BookTags)


def setup(vendor: str, settings: dict[str, Any]) -> None:
    if vendor == "sqlite":
        database: pw.Database = pw.SqliteDatabase(
            settings["NAME"],
            pragmas={"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1},
        )
    else:
        database = pw.PostgresqlDatabase(
            settings["NAME"],
            user=settings["USER"],
            host=settings["HOST"],
            port=settings["PORT"],
            prefer_psycopg3=True,
        )
    db.initialize(database)
    db.connect()
    db.create_tables([Author, Tag, Book, BookTags])


def scenarios(ctx: Ctx) -> Scenarios:
    n, rows, half, ids, filler_id = ctx.n, ctx.rows, ctx.half, ctx.ids, ctx.filler_id

    def insert_one() -> None:
        for i in range(n):
            Author.create(name=f"one-{i}")

    def bulk_insert() -> None:
        data = [(f"b{i}", BULK_PAGES + i, filler_id) for i in range(rows)]
        fields = [Book.title, Book.pages, Book.author]
        with db.atomic():
            for batch in pw.chunked(data, 1000):
                Book.insert_many(batch, fields=fields).execute()

    def get_by_pk() -> None:
        for pk in ids:
            Book.get_by_id(pk)

    def filter_iterate() -> None:
        list(Book.select().limit(rows))

    def values_list() -> None:
        list(Book.select(Book.id, Book.title, Book.pages).limit(rows).tuples())

    def select_related() -> None:
        for b in Book.select(Book, Author).join(Author).limit(half):
            _ = b.author.name

    def prefetch_related() -> None:
        for a in pw.prefetch(Author.select().order_by(Author.id).limit(500), Book):
            _ = len(a.books)

    def m2m_prefetch() -> None:
        # peewee prefetches a many-to-many through its through model: books, then their
        # links, then the links' tags (``Book.tags`` itself is always a fresh query).
        for b in pw.prefetch(Book.select().order_by(Book.id).limit(500), BookTags, Tag):
            _ = [link.tag.name for link in b.tag_links]

    def count_filter() -> None:
        for i in range(n):
            Book.select().where(Book.pages >= i).count()

    def update_filter() -> None:
        for threshold in range(half, half - 5, -1):
            Book.update(pages=Book.pages + 0).where(Book.pages < threshold).execute()

    return scenarios_in(locals())


def teardown() -> None:
    db.close()
