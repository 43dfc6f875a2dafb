"""dorm-async's loaders against the N+1 loop and ``select_related``, one run.

``make bench-async`` (or ``python bench/dataloaders.py``). 1,000 books by 100 authors, on
SQLite (a file) and on a throwaway PostgreSQL cluster; each way reads every book and its
author's name, and must produce the same list as the others:

- ``n_plus_one``: ``book.author.name`` per book (sync), ``await Author.objects.aget(pk=...)``
  per book (async): one query for the books, then one per book;
- ``loader``: the release note's pattern, ``SyncDataLoader`` (load each key, ``flush()``,
  load again) or ``DataLoader`` (every book's ``load`` gathered in one tick): one query for
  the books, one for the authors;
- ``select_related``: one join;
- async only, a floor for the loader: the same two queries and the same 1,000 coroutines
  gathered, each reading its author from a dict (no loader): what the per-book coroutine
  pattern costs by itself.

Each way runs ``ROUNDS`` times, interleaved; the table gives the median time, the queries
counted by ``CaptureQueriesContext``, and two ratios of medians: N+1 / loader (how much the
loader saves) and loader / select_related (what it costs against a join known up front).
Results go to ``bench/results/dataloaders.md``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROUNDS = 7
BOOKS = 1_000
AUTHORS = 100
WAYS = ("n_plus_one", "loader", "select_related")


def _models() -> tuple[Any, Any]:
    import dorm

    class Author(dorm.Model):
        name = dorm.CharField(max_length=50)

        class Meta:
            app_label = "bench_dataloaders"

    class Book(dorm.Model):
        title = dorm.CharField(max_length=50)
        author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE)

        class Meta:
            app_label = "bench_dataloaders"

    return Author, Book


def _sync_ways(author: Any, book: Any) -> dict[str, Callable[[], list[str]]]:
    from dorm.contrib.sync_dataloader import SyncDataLoader

    def n_plus_one() -> list[str]:
        return [b.author.name for b in book.objects.order_by("pk")]

    def loader() -> list[str]:
        books = list(book.objects.order_by("pk"))
        loader = SyncDataLoader(lambda ids: author.objects.in_bulk(ids))
        for b in books:
            loader.load(b.author_id)
        loader.flush()
        return [loader.load(b.author_id).name for b in books]

    def select_related() -> list[str]:
        return [b.author.name for b in book.objects.select_related("author").order_by("pk")]

    return {"n_plus_one": n_plus_one, "loader": loader, "select_related": select_related}


def _async_ways(author: Any, book: Any) -> dict[str, Callable[[], list[str]]]:
    from dorm.contrib.dataloader import DataLoader

    async def n_plus_one() -> list[str]:
        names = []
        async for b in book.objects.order_by("pk"):
            names.append((await author.objects.aget(pk=b.author_id)).name)
        return names

    async def loader() -> list[str]:
        books = [b async for b in book.objects.order_by("pk")]
        loader = DataLoader(lambda ids: author.objects.ain_bulk(ids))

        async def name(b: Any) -> str:
            return str((await loader.load(b.author_id)).name)

        return list(await asyncio.gather(*(name(b) for b in books)))

    async def select_related() -> list[str]:
        qs = book.objects.select_related("author").order_by("pk")
        return [b.author.name async for b in qs]

    async def gather_floor() -> list[str]:
        books = [b async for b in book.objects.order_by("pk")]
        found = await author.objects.ain_bulk({b.author_id for b in books})

        async def name(b: Any) -> str:
            return str(found[b.author_id].name)

        return list(await asyncio.gather(*(name(b) for b in books)))

    ways = {
        "n_plus_one": n_plus_one,
        "loader": loader,
        "select_related": select_related,
        "gather_floor": gather_floor,
    }
    # One event loop per call, as one request each; its pool closes with it.
    return {k: (lambda fn=fn: asyncio.run(fn())) for k, fn in ways.items()}


def _measure(ways: dict[str, Callable[[], list[str]]]) -> dict[str, tuple[float, int]]:
    """(median seconds, queries) of each way; every way must give the same names."""
    from dorm.test import CaptureQueriesContext

    expected = ways["select_related"]()
    names_of_ways = tuple(ways)
    times: dict[str, list[float]] = {way: [] for way in names_of_ways}
    queries: dict[str, int] = {}
    for round_ in range(ROUNDS):
        order = names_of_ways if round_ % 2 == 0 else tuple(reversed(names_of_ways))
        for way in order:
            gc.collect()
            with CaptureQueriesContext() as captured:
                start = time.perf_counter()
                names = ways[way]()
                times[way].append(time.perf_counter() - start)
            assert names == expected, way
            queries[way] = len(captured)
    return {way: (statistics.median(times[way]), queries[way]) for way in names_of_ways}


def _run_vendor(settings: dict[str, Any], author: Any, book: Any) -> dict[str, Any]:
    import dorm
    from dorm.conf import settings as live
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(DATABASES={"default": settings})
    with SchemaEditor() as editor:
        editor.create_model(author)
        editor.create_model(book)
    try:
        authors = author.objects.bulk_create([author(name=f"author {i}") for i in range(AUTHORS)])
        book.objects.bulk_create(
            [book(title=f"book {i}", author=authors[(i * 37) % AUTHORS]) for i in range(BOOKS)]
        )
        return {
            "sync": _measure(_sync_ways(author, book)),
            "async": _measure(_async_ways(author, book)),
        }
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(book)
            editor.delete_model(author)
        reset_connections()
        live._reset()


def _table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"# dorm-async: {BOOKS:,} books and their authors' names, three ways",
        "",
        f"Median of {ROUNDS} interleaved rounds; queries counted. Ratios are of medians: "
        "N+1 / loader (higher: the loader saves more), loader / select_related "
        "(1.0: as fast as the join).",
        "",
        "| backend | API | N+1 | loader | select_related | N+1 / loader | "
        "loader / select_related |",
        "|---|---|---|---|---|---|---|",
    ]
    for vendor, apis in results.items():
        for api, rows in apis.items():
            cells = [f"{rows[w][0] * 1000:.1f} ms ({rows[w][1]} q)" for w in WAYS]
            saved = rows["n_plus_one"][0] / rows["loader"][0]
            cost = rows["loader"][0] / rows["select_related"][0]
            lines.append(
                f"| {vendor} | {api} | " + " | ".join(cells) + f" | {saved:.1f}x | {cost:.2f}x |"
            )
    lines += [
        "",
        "Async floor: the same two queries and 1,000 gathered coroutines without a loader "
        "(the loader's own cost is the difference):",
        "",
    ]
    for vendor, apis in results.items():
        floor, loader = apis["async"]["gather_floor"][0], apis["async"]["loader"][0]
        lines.append(
            f"- {vendor}: floor {floor * 1000:.1f} ms, loader {loader * 1000:.1f} ms "
            f"({loader / floor:.2f}x the floor)"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.path.insert(0, str(BENCH.parent / "tests"))
    from dorm.test.postgres import PgCluster, find_pg_bindir

    author, book = _models()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = _run_vendor(
            {"ENGINE": "sqlite", "NAME": str(Path(tmp) / "bench.db")}, author, book
        )
    bindir = find_pg_bindir()
    if bindir is not None:
        cluster = PgCluster(bindir)
        cluster.start()
        try:
            cluster.create_database("bench_dataloaders")
            results["postgresql"] = _run_vendor(cluster.settings("bench_dataloaders"), author, book)
        finally:
            cluster.stop()
    text = _table(results)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "dataloaders.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
