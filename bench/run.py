"""dorm against the raw drivers, scenario by scenario, on SQLite and PostgreSQL.

``make bench`` (or ``python bench/run.py --scale small``). Each scenario runs dorm and the
raw driver (sqlite3 / psycopg) interleaved in the same process, several times, and
reports the median of the paired ratios dorm / raw (lower is better; 1.0 = the driver's
own speed). PostgreSQL runs on a throwaway cluster on a loopback port, started here from
the server binaries; without them only SQLite is measured.

Peer ORMs (Django, SQLAlchemy, peewee, Tortoise) are not measured yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import dorm  # noqa: E402
from dorm.db.connection import reset_connections  # noqa: E402
from dorm.migrations.schema import SchemaEditor  # noqa: E402

SCALES = {
    "small": {"n": 300, "rows": 2000, "repeats": 3},
    "full": {"n": 2000, "rows": 10000, "repeats": 7},
}


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


class Raw:
    """The same statements through the bare driver (the physical limit)."""

    def __init__(self, vendor: str, settings: dict[str, Any]) -> None:
        self.vendor = vendor
        if vendor == "sqlite":
            import sqlite3

            self.conn = sqlite3.connect(settings["NAME"], isolation_level=None)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.ph = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(
                host=settings["HOST"],
                port=settings["PORT"],
                user=settings["USER"],
                dbname=settings["NAME"],
                autocommit=True,
            )
            self.ph = "%s"

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        cur = self.conn.execute(sql.replace("?", self.ph), params)
        return cur.fetchall()

    def run(self, sql: str, params: Any = ()) -> None:
        self.conn.execute(sql.replace("?", self.ph), params)

    def many(self, sql: str, seq: list[tuple[Any, ...]]) -> None:
        if self.vendor == "sqlite":
            self.conn.execute("BEGIN")
            self.conn.executemany(sql, seq)
            self.conn.execute("COMMIT")
        else:
            width = len(seq[0])
            row = "(" + ", ".join(["%s"] * width) + ")"
            with self.conn.transaction():
                for start in range(0, len(seq), 1000):
                    chunk = seq[start : start + 1000]
                    flat = [v for r in chunk for v in r]
                    head = sql.split("VALUES")[0]
                    self.conn.execute(f"{head}VALUES {', '.join([row] * len(chunk))}", flat)

    def close(self) -> None:
        self.conn.close()


def scenarios(
    raw: Raw, scale: dict[str, int]
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    n, rows = scale["n"], scale["rows"]
    ids = list(Book.objects.values_list("id", flat=True)[:n])
    author_ids = list(Author.objects.values_list("id", flat=True))
    book_cols = '"id", "title", "pages", "author_id"'

    def dorm_insert_one() -> None:
        for i in range(n):
            Author.objects.create(name=f"one-{i}")

    def raw_insert_one() -> None:
        for i in range(n):
            raw.run('INSERT INTO "bench_author" ("name") VALUES (?) RETURNING "id"', (f"raw-{i}",))

    def dorm_bulk() -> None:
        Book.objects.bulk_create(
            [
                Book(title=f"b{i}", pages=i, author_id=author_ids[i % len(author_ids)])
                for i in range(rows)
            ]
        )

    def raw_bulk() -> None:
        raw.many(
            'INSERT INTO "bench_book" ("title", "pages", "author_id") VALUES (?, ?, ?)',
            [(f"r{i}", i, author_ids[i % len(author_ids)]) for i in range(rows)],
        )

    def dorm_get() -> None:
        for pk in ids:
            Book.objects.get(pk=pk)

    def raw_get() -> None:
        for pk in ids:
            raw.all(f'SELECT {book_cols} FROM "bench_book" WHERE "id" = ?', (pk,))

    def dorm_iterate() -> None:
        list(Book.objects.all()[:rows])

    def raw_iterate() -> None:
        raw.all(f'SELECT {book_cols} FROM "bench_book" LIMIT {rows}')

    def dorm_values() -> None:
        list(Book.objects.values_list("id", "title", "pages")[:rows])

    def raw_values() -> None:
        raw.all(f'SELECT "id", "title", "pages" FROM "bench_book" LIMIT {rows}')

    half = rows // 2

    def dorm_select_related() -> None:
        for b in Book.objects.select_related("author")[:half]:
            _ = b.author.name

    def raw_select_related() -> None:
        raw.all(
            'SELECT b."id", b."title", b."pages", b."author_id", a."id", a."name" '
            'FROM "bench_book" b JOIN "bench_author" a ON a."id" = b."author_id" '
            f"LIMIT {half}"
        )

    def dorm_prefetch() -> None:
        for a in Author.objects.prefetch_related("books")[:50]:
            _ = len(a.books.all())

    def raw_prefetch() -> None:
        authors = raw.all('SELECT "id", "name" FROM "bench_author" LIMIT 50')
        keys = [a[0] for a in authors]
        marks = ", ".join(["?"] * len(keys))
        raw.all(f'SELECT {book_cols} FROM "bench_book" WHERE "author_id" IN ({marks})', tuple(keys))

    def dorm_count() -> None:
        for i in range(n):
            Book.objects.filter(pages__gte=i).count()

    def raw_count() -> None:
        for i in range(n):
            raw.all('SELECT COUNT(*) FROM "bench_book" WHERE "pages" >= ?', (i,))

    def dorm_update() -> None:
        Book.objects.filter(pages__lt=half).update(pages=dorm.F("pages") + 0)

    def raw_update() -> None:
        raw.run('UPDATE "bench_book" SET "pages" = "pages" + 0 WHERE "pages" < ?', (half,))

    return {
        "insert_one": (dorm_insert_one, raw_insert_one),
        "bulk_insert": (dorm_bulk, raw_bulk),
        "get_by_pk": (dorm_get, raw_get),
        "filter_iterate": (dorm_iterate, raw_iterate),
        "values_list": (dorm_values, raw_values),
        "select_related": (dorm_select_related, raw_select_related),
        "prefetch_related": (dorm_prefetch, raw_prefetch),
        "count_filter": (dorm_count, raw_count),
        "update_filter": (dorm_update, raw_update),
    }


def seed(scale: dict[str, int]) -> None:
    authors = Author.objects.bulk_create([Author(name=f"author-{i}") for i in range(500)])
    tags = Tag.objects.bulk_create([Tag(name=f"tag-{i}") for i in range(20)])
    Book.objects.bulk_create(
        [
            Book(title=f"book-{i}", pages=i, author=authors[i % len(authors)])
            for i in range(scale["rows"])
        ]
    )
    for book in Book.objects.all()[:200]:
        book.tags.add(tags[book.pk % 20], tags[(book.pk + 7) % 20])


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(vendor: str, settings: dict[str, Any], scale: dict[str, int]) -> dict[str, Any]:
    dorm.configure(DATABASES={"default": settings})
    with SchemaEditor() as editor:
        for model in (Author, Tag, Book):
            editor.create_model(model)
    seed(scale)
    raw = Raw(vendor, settings)
    results: dict[str, Any] = {}
    try:
        for name, (dorm_fn, raw_fn) in scenarios(raw, scale).items():
            dorm_fn(), raw_fn()  # warm up caches and prepared statements
            ratios, dorm_times, raw_times = [], [], []
            for _ in range(scale["repeats"]):
                d, r = timed(dorm_fn), timed(raw_fn)
                dorm_times.append(d)
                raw_times.append(r)
                ratios.append(d / r)
            spread = (max(ratios) - min(ratios)) / statistics.median(ratios)
            results[name] = {
                "ratio": round(statistics.median(ratios), 2),
                "dorm_ms": round(statistics.median(dorm_times) * 1000, 2),
                "raw_ms": round(statistics.median(raw_times) * 1000, 2),
                "noisy": spread > 0.5,
            }
    finally:
        raw.close()
        with SchemaEditor() as editor:
            for model in (Book, Tag, Author):
                editor.delete_model(model)
        reset_connections()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    report: dict[str, Any] = {
        "scale": args.scale,
        "python": platform.python_version(),
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        report["backends"]["sqlite"] = measure(
            "sqlite", {"ENGINE": "sqlite", "NAME": os.path.join(tmp, "bench.db")}, scale
        )
    from conftest import PgCluster, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        print("PostgreSQL server binaries not found: measuring SQLite only", file=sys.stderr)
    else:
        cluster = PgCluster(bindir)
        cluster.start()
        try:
            cluster.create_database("bench")
            report["backends"]["postgresql"] = measure(
                "postgresql", cluster.settings("bench"), scale
            )
        finally:
            cluster.stop()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"# dorm / raw driver ({args.scale} scale, median of {scale['repeats']} paired runs)",
        "",
    ]
    vendors = list(report["backends"])
    lines.append("| scenario | " + " | ".join(vendors) + " |")
    lines.append("|---|" + "---|" * len(vendors))
    for name in report["backends"]["sqlite"]:
        cells = []
        for vendor in vendors:
            cell = report["backends"][vendor][name]
            cells.append(f"{cell['ratio']:.2f}x{' (noisy)' if cell['noisy'] else ''}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
