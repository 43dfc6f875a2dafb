"""Django ORM, configured in-process (no settings module, no migrations)."""

from __future__ import annotations

from typing import Any

from peers import BULK_PAGES, Ctx, Scenarios, scenarios_in


def setup(vendor: str, settings: dict[str, Any]) -> None:
    import django
    from django.conf import settings as dj_settings

    if vendor == "sqlite":
        db = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": settings["NAME"],
            "OPTIONS": {"init_command": "PRAGMA synchronous = NORMAL"},
        }
    else:
        db = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": settings["NAME"],
            "USER": settings["USER"],
            "PASSWORD": settings.get("PASSWORD", ""),
            "HOST": settings["HOST"],
            "PORT": str(settings["PORT"]),
        }
    dj_settings.configure(
        DATABASES={"default": db},
        INSTALLED_APPS=["peers.django_app.apps.BenchConfig"],
        USE_TZ=True,
    )
    django.setup()
    from django.db import connection

    from peers.django_app.models import Author, Book, Tag

    with connection.schema_editor() as editor:
        for model in (Author, Tag, Book):
            editor.create_model(model)  # also creates the M2M table bench_book_tags


def scenarios(ctx: Ctx) -> Scenarios:
    from django.db.models import F

    from peers.django_app.models import Author, Book

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
            Book.objects.filter(pages__lt=threshold).update(pages=F("pages") + 0)

    return scenarios_in(locals())


def teardown() -> None:
    from django.db import connections

    connections.close_all()
