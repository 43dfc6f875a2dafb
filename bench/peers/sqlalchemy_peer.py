"""SQLAlchemy 2 ORM: declarative models, a Session and ``select()``.

On PostgreSQL its asyncio extension (``AsyncSession`` on the asyncpg driver) also runs
``async_filter_iterate``, on the harness's one event loop.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

from peers import BULK_PAGES, Ctx, Scenarios, run, scenarios_in


class Base(DeclarativeBase):
    pass


book_tags = Table(
    "bench_book_tags",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("book_id", ForeignKey("bench_book.id"), nullable=False, index=True),
    Column("tag_id", ForeignKey("bench_tag.id"), nullable=False, index=True),
    UniqueConstraint("book_id", "tag_id"),
)


class Author(Base):
    __tablename__ = "bench_author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    books: Mapped[list[Book]] = relationship(back_populates="author")


class Tag(Base):
    __tablename__ = "bench_tag"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[Book]] = relationship(secondary=book_tags, back_populates="tags")


class Book(Base):
    __tablename__ = "bench_book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), index=True)
    pages: Mapped[int] = mapped_column(index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("bench_author.id"), index=True)
    author: Mapped[Author] = relationship(back_populates="books")
    tags: Mapped[list[Tag]] = relationship(secondary=book_tags, back_populates="books")


engine: Engine | None = None
async_engine: AsyncEngine | None = None


def setup(vendor: str, settings: dict[str, Any]) -> None:
    global engine, async_engine
    if vendor == "sqlite":
        engine = create_engine(f"sqlite:///{settings['NAME']}")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

    else:
        where = f"{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
        engine = create_engine(f"postgresql+psycopg://{where}")
        async_engine = create_async_engine(f"postgresql+asyncpg://{where}")
    Base.metadata.create_all(engine)


def scenarios(ctx: Ctx) -> Scenarios:
    assert engine is not None
    eng = engine
    n, rows, half, ids, filler_id = ctx.n, ctx.rows, ctx.half, ctx.ids, ctx.filler_id

    def insert_one() -> None:
        with Session(eng) as s:
            for i in range(n):
                s.add(Author(name=f"one-{i}"))
                s.commit()

    def bulk_insert() -> None:
        with Session(eng) as s:
            s.execute(
                insert(Book),
                [
                    {"title": f"b{i}", "pages": BULK_PAGES + i, "author_id": filler_id}
                    for i in range(rows)
                ],
            )
            s.commit()

    def get_by_pk() -> None:
        with Session(eng) as s:
            for pk in ids:
                s.get(Book, pk)

    def filter_iterate() -> None:
        with Session(eng) as s:
            s.scalars(select(Book).limit(rows)).all()

    def values_list() -> None:
        with Session(eng) as s:
            s.execute(select(Book.id, Book.title, Book.pages).limit(rows)).all()

    def select_related() -> None:
        with Session(eng) as s:
            for b in s.scalars(select(Book).options(joinedload(Book.author)).limit(half)):
                _ = b.author.name

    def prefetch_related() -> None:
        with Session(eng) as s:
            query = select(Author).options(selectinload(Author.books)).order_by(Author.id)
            for a in s.scalars(query.limit(500)):
                _ = len(a.books)

    def m2m_prefetch() -> None:
        with Session(eng) as s:
            query = select(Book).options(selectinload(Book.tags)).order_by(Book.id)
            for b in s.scalars(query.limit(500)):
                _ = [t.name for t in b.tags]

    def count_filter() -> None:
        with Session(eng) as s:
            for i in range(n):
                s.scalar(select(func.count()).select_from(Book).where(Book.pages >= i))

    def update_filter() -> None:
        with Session(eng) as s:
            for threshold in range(half, half - 5, -1):
                s.execute(update(Book).where(Book.pages < threshold).values(pages=Book.pages + 0))
            s.commit()

    async def async_filter_iterate() -> None:
        assert async_engine is not None
        async with AsyncSession(async_engine) as s:
            (await s.scalars(select(Book).limit(rows))).all()

    return scenarios_in(locals(), async_engine is not None)


def teardown() -> None:
    if async_engine is not None:
        run(async_engine.dispose())
    if engine is not None:
        engine.dispose()
