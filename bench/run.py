"""dorm and its peer ORMs against the raw drivers, scenario by scenario, on SQLite and PostgreSQL.

``make bench`` (or ``python bench/run.py --scale small``; the peers come from
``bench/requirements.txt``). Each ORM (dorm, Django, SQLAlchemy, peewee, Tortoise) runs in
its own subprocess (``python bench/run.py --orm django --vendor sqlite`` prints JSON), on
its own database (a SQLite file, or a PostgreSQL database on one throwaway cluster started
by the parent process and passed down in ``DORM_BENCH_DB``). Inside that process every
scenario runs the ORM and the raw driver (sqlite3 / psycopg) interleaved, as pairs (ORM
first on even pairs, raw first on odd ones): the scale's repeats, then more pairs until
the raw side has run PAIR_SECONDS in all (MAX_PAIRS at most), and reports the median of
the paired ratios orm / raw (lower is better; 1.0 = the driver's own speed). PostgreSQL is measured
only when the server binaries are found. A peer that is not installed is skipped.

Data (``seed``, written by the raw driver): 500 authors with exactly 10 books each, one
filler author after them that owns any book beyond those 5000 (when the scale's ``rows``
is larger) and every book ``bulk_insert`` adds, 20 tags, and 3 tags on each of the first
500 books. Scenarios: ``insert_one`` (n single-row inserts), ``bulk_insert`` (rows books in
one call), ``get_by_pk`` (n lookups), ``filter_iterate`` and ``values_list`` (rows books),
``select_related`` (rows / 2 books with their author), ``prefetch_related`` (the first 500
authors by id with their 5000 books), ``m2m_prefetch`` (the first 500 books by id with
their 1500 tags), ``count_filter`` (n counts), ``update_filter`` (5 UPDATE statements on
the seeded books with fewer than rows / 2 pages: bulk-inserted books are numbered from
``BULK_PAGES``, so every run updates the same rows) and ``async_filter_iterate`` (below).
Each timed call starts after an untimed full garbage collection and an untimed
``Raw.settle`` on a connection of its own (before a writing scenario on SQLite, a passive
WAL checkpoint; before ``bulk_insert``, the books earlier calls added are deleted).

Async: each child process has one long-lived event loop (``peers.run``) that hosts every
async pool and connection for its whole life; an ``async def`` scenario is timed inside a
coroutine on that loop. ``async_filter_iterate`` (PostgreSQL only) is the async twin of
``filter_iterate``, paired with raw asyncpg (``await conn.fetch(sql)`` on one connection);
dorm, Tortoise and SQLAlchemy's asyncio extension (asyncpg driver) measure it. Tortoise ORM
is async-only: its sync-scenario cells are its coroutines run on that loop, paired with
the same sync raw driver as every other column (so they include its async overhead).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(REPO / "tests"))

from peers import BULK_PAGES, Ctx, Scenarios, close_loop, run, scenarios_in  # noqa: E402

SCALES = {
    "small": {"n": 300, "rows": 2000, "repeats": 5},
    "full": {"n": 2000, "rows": 10000, "repeats": 7},
}
# Pairs per scenario: the scale's repeats at least, then more until the raw side has run
# PAIR_SECONDS in all, MAX_PAIRS at most.
PAIR_SECONDS = 0.6
MAX_PAIRS = 25
NOISY_IQR = 0.2
# The scenarios whose calls write (Raw.settle checkpoints SQLite's WAL before each call).
WRITES = frozenset({"insert_one", "bulk_insert", "update_filter"})
ORMS = ["dorm", "django", "sqlalchemy", "peewee", "tortoise"]
PEERS = ORMS[1:]
ENV_DB = "DORM_BENCH_DB"


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
            # settle()'s own connection: neither timed side's is touched between calls.
            self.settler: Any = sqlite3.connect(settings["NAME"], isolation_level=None)
            self.settler.execute("PRAGMA foreign_keys = ON")
        else:
            import psycopg

            def connect() -> Any:
                return psycopg.connect(
                    host=settings["HOST"],
                    port=settings["PORT"],
                    user=settings["USER"],
                    dbname=settings["NAME"],
                    autocommit=True,
                )

            self.conn = connect()
            self.settler = connect()
            self.ph = "%s"
            import asyncpg

            # The async baseline: one asyncpg connection, on the process's one event loop.
            self.aconn = run(
                asyncpg.connect(
                    host=settings["HOST"],
                    port=settings["PORT"],
                    user=settings["USER"],
                    password=settings.get("PASSWORD") or None,
                    database=settings["NAME"],
                )
            )

    def settle(self, scenario: str) -> None:
        """Untimed, before every timed call of either side: the same starting point.

        ``bulk_insert``: the books earlier calls added are deleted (and, on PostgreSQL,
        vacuumed away), so every call inserts into the seeded table and the scenario can
        take as many pairs as the others; the later scenarios never read those rows.

        SQLite, before a scenario that writes: the WAL's pages are copied into the
        database file (a passive checkpoint, which waits for no one). SQLite checkpoints
        on its own at the commit that takes the WAL past 1000 pages, inside whichever call
        commits it, ORM or raw; started from a checkpointed WAL (the next writer rewinds
        it) no call reaches that: the most any writes is about 600 pages (insert_one's 300
        commits). In a 25-pair run of bulk_insert, the middle half of the paired ratios
        spanned 1.1-2.3x without it and 1.2-1.5x with it, at the same median. Reads leave
        the WAL as it is; a checkpoint before each of their calls read 1-3% higher for
        dorm in three alternated runs, so they get none.

        All of it runs on a connection of its own: a statement on the raw side's
        connection just before its timed call would warm that side only."""
        if scenario == "bulk_insert":
            self.settler.execute(f'DELETE FROM "bench_book" WHERE "pages" >= {BULK_PAGES}')
            if self.vendor == "postgresql":
                self.settler.execute('VACUUM "bench_book"')
        if self.vendor == "sqlite" and scenario in WRITES:
            self.settler.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self.vendor == "sqlite":
            return self.conn.execute(sql, params).fetchall()
        # psycopg's binary format for the rows: 5-9% faster than its default text format
        # for these reads (2,000 rows; 300 lookups by key).
        return self.conn.execute(sql.replace("?", "%s"), params, binary=True).fetchall()

    def insert_id(self, sql: str, params: tuple[Any, ...]) -> Any:
        """Insert one row and return its new id, in each driver's fastest way."""
        if self.vendor == "sqlite":
            return self.conn.execute(sql, params).lastrowid
        cur = self.conn.execute(sql.replace("?", "%s") + ' RETURNING "id"', params, binary=True)
        return cur.fetchone()

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

    def bulk(self, sql: str, seq: list[tuple[Any, ...]], types: tuple[str, ...]) -> None:
        """The timed bulk insert, in the fastest honest form of each driver, in one
        transaction: SQLite, multi-row ``INSERT ... VALUES (...), (...)`` in batches as
        large as its limit of bound variables allows (faster than ``executemany``), the
        keys taken from each statement's last rowid (``RETURNING`` doubles the time);
        PostgreSQL, ``INSERT ... SELECT * FROM unnest(%b::type[], ...) RETURNING id`` (the
        keys read back, as every ORM reads them; faster than multi-row VALUES), the arrays
        in psycopg's binary format (about 12% faster than its text format here)."""
        head = sql.split("VALUES")[0]
        width = len(seq[0])
        if self.vendor == "sqlite":
            import sqlite3

            limit = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
            step = max(1, limit // width)
            row = "(" + ", ".join(["?"] * width) + ")"
            self.conn.execute("BEGIN")
            keys: list[int] = []
            for start in range(0, len(seq), step):
                chunk = seq[start : start + step]
                flat = [v for r in chunk for v in r]
                cur = self.conn.execute(f"{head}VALUES {', '.join([row] * len(chunk))}", flat)
                # The keys, from the statement's last rowid (consecutive on this table).
                keys.extend(range(cur.lastrowid - len(chunk) + 1, cur.lastrowid + 1))
            self.conn.execute("COMMIT")
            return
        arrays = ", ".join(f"%b::{t}[]" for t in types)
        with self.conn.transaction():
            columns = [[r[i] for r in seq] for i in range(width)]
            self.conn.execute(
                f'{head}SELECT * FROM unnest({arrays}) RETURNING "id"', columns
            ).fetchall()

    async def afetch(self, sql: str) -> list[Any]:
        rows: list[Any] = await self.aconn.fetch(sql)
        return rows

    def close(self) -> None:
        self.conn.close()
        self.settler.close()
        if self.vendor == "postgresql":
            run(self.aconn.close())


def raw_scenarios(raw: Raw, ctx: Ctx) -> Scenarios:
    n, rows, half, ids, filler_id = ctx.n, ctx.rows, ctx.half, ctx.ids, ctx.filler_id
    book_cols = '"id", "title", "pages", "author_id"'

    def insert_one() -> None:
        # The new id is read, as every ORM reads it: on SQLite as the cursor's last rowid
        # (RETURNING makes SQLite's insert about 70% more work), on PostgreSQL by RETURNING.
        for i in range(n):
            raw.insert_id('INSERT INTO "bench_author" ("name") VALUES (?)', (f"raw-{i}",))

    def bulk_insert() -> None:
        raw.bulk(
            'INSERT INTO "bench_book" ("title", "pages", "author_id") VALUES (?, ?, ?)',
            [(f"r{i}", BULK_PAGES + i, filler_id) for i in range(rows)],
            ("varchar", "integer", "bigint"),
        )

    def get_by_pk() -> None:
        for pk in ids:
            raw.all(f'SELECT {book_cols} FROM "bench_book" WHERE "id" = ?', (pk,))

    def filter_iterate() -> None:
        raw.all(f'SELECT {book_cols} FROM "bench_book" LIMIT {rows}')

    def values_list() -> None:
        raw.all(f'SELECT "id", "title", "pages" FROM "bench_book" LIMIT {rows}')

    def select_related() -> None:
        raw.all(
            'SELECT b."id", b."title", b."pages", b."author_id", a."id", a."name" '
            'FROM "bench_book" b JOIN "bench_author" a ON a."id" = b."author_id" '
            f"LIMIT {half}"
        )

    def prefetch_related() -> None:
        authors = raw.all('SELECT "id", "name" FROM "bench_author" ORDER BY "id" LIMIT 500')
        keys = [a[0] for a in authors]
        marks = ", ".join(["?"] * len(keys))
        raw.all(f'SELECT {book_cols} FROM "bench_book" WHERE "author_id" IN ({marks})', tuple(keys))

    def m2m_prefetch() -> None:
        books = raw.all(f'SELECT {book_cols} FROM "bench_book" ORDER BY "id" LIMIT 500')
        keys = [b[0] for b in books]
        marks = ", ".join(["?"] * len(keys))
        raw.all(
            'SELECT t."id", t."name", bt."book_id" FROM "bench_tag" t '
            'JOIN "bench_book_tags" bt ON bt."tag_id" = t."id" '
            f'WHERE bt."book_id" IN ({marks})',
            tuple(keys),
        )

    def count_filter() -> None:
        for i in range(n):
            raw.all('SELECT COUNT(*) FROM "bench_book" WHERE "pages" >= ?', (i,))

    def update_filter() -> None:
        for threshold in range(half, half - 5, -1):
            raw.run('UPDATE "bench_book" SET "pages" = "pages" + 0 WHERE "pages" < ?', (threshold,))

    async def async_filter_iterate() -> None:
        # Mirrors filter_iterate: the driver's own rows (asyncpg Records), nothing built.
        await raw.afetch(f'SELECT {book_cols} FROM "bench_book" LIMIT {rows}')

    return scenarios_in(locals(), raw.vendor == "postgresql")


AUTHORS = 500  # prefetch_related reads them all, BOOKS_PER_AUTHOR books each
BOOKS_PER_AUTHOR = 10
TAGGED = 500  # m2m_prefetch reads the first TAGGED books, 3 tags each


def seed(raw: Raw, scale: dict[str, int]) -> Ctx:
    """The same data for every ORM, written by the raw driver into the ORM's own tables.

    500 authors with exactly 10 books each (book i belongs to author i % 500), then one
    filler author (the largest id) that owns the books beyond those 5000 when the scale's
    ``rows`` asks for more, and every book ``bulk_insert`` adds. The first 500 books get 3
    distinct tags each out of 20.
    """
    raw.many(
        'INSERT INTO "bench_author" ("name") VALUES (?)',
        [(f"author-{i}",) for i in range(AUTHORS)],
    )
    author_ids = [r[0] for r in raw.all('SELECT "id" FROM "bench_author" ORDER BY "id"')]
    raw.run('INSERT INTO "bench_author" ("name") VALUES (?)', ("filler",))
    filler_id = raw.all('SELECT MAX("id") FROM "bench_author"')[0][0]
    raw.many('INSERT INTO "bench_tag" ("name") VALUES (?)', [(f"tag-{i}",) for i in range(20)])
    tag_ids = [r[0] for r in raw.all('SELECT "id" FROM "bench_tag" ORDER BY "id"')]
    owned = AUTHORS * BOOKS_PER_AUTHOR
    raw.many(
        'INSERT INTO "bench_book" ("title", "pages", "author_id") VALUES (?, ?, ?)',
        [(f"book-{i}", i, author_ids[i % AUTHORS]) for i in range(owned)]
        + [(f"book-{i}", i, filler_id) for i in range(owned, scale["rows"])],
    )
    book_ids = [r[0] for r in raw.all('SELECT "id" FROM "bench_book" ORDER BY "id"')]
    assert len(book_ids) >= scale["rows"]  # LIMIT rows returns rows rows
    raw.many(
        'INSERT INTO "bench_book_tags" ("book_id", "tag_id") VALUES (?, ?)',
        [(pk, tag_ids[(pk + k) % 20]) for pk in book_ids[:TAGGED] for k in (0, 7, 13)],
    )
    return Ctx(
        vendor=raw.vendor,
        n=scale["n"],
        rows=scale["rows"],
        ids=book_ids[: scale["n"]],
        author_ids=author_ids,
        filler_id=filler_id,
    )


def timed(fn: Callable[[], Any], settle: Callable[[], Any] | None = None) -> float:
    """Seconds one call takes; an ``async def`` is awaited (and timed) on the process's loop.

    ``settle`` runs first, untimed (``Raw.settle``). A full collection then runs, untimed,
    so that every call starts with the cyclic GC in the same state: the collections a
    call's own allocations trigger are timed, not the leftovers of whatever ran before it.
    """
    if settle is not None:
        settle()
    gc.collect()
    if inspect.iscoroutinefunction(fn):
        return run(atimed(fn))
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def atimed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def measure(
    orm: str, vendor: str, settings: dict[str, Any], scale: dict[str, int]
) -> dict[str, Any]:
    """One ORM on one backend, each scenario paired with the raw driver (child process)."""
    adapter = importlib.import_module(f"peers.{orm}_peer")
    adapter.setup(vendor, settings)
    raw = Raw(vendor, settings)
    results: dict[str, Any] = {}
    try:
        ctx = seed(raw, scale)
        raw_fns = raw_scenarios(raw, ctx)
        for name, orm_fn in adapter.scenarios(ctx).items():
            raw_fn = raw_fns[name]
            settle = functools.partial(raw.settle, name)
            timed(orm_fn, settle), timed(raw_fn, settle)  # warm caches, prepared statements
            ratios: list[float] = []
            orm_times: list[float] = []
            raw_times: list[float] = []
            i = 0
            # At least the scale's repeats, then more pairs (up to MAX_PAIRS) until the raw
            # side has run PAIR_SECONDS in all: a fast scenario's median then rests on many
            # pairs instead of five, which one slow moment of the machine can move.
            while i < scale["repeats"] or (i < MAX_PAIRS and sum(raw_times) < PAIR_SECONDS):
                # Alternate which side runs first, so neither always gets the warmer cache.
                if i % 2 == 0:
                    o, r = timed(orm_fn, settle), timed(raw_fn, settle)
                else:
                    r, o = timed(raw_fn, settle), timed(orm_fn, settle)
                orm_times.append(o)
                raw_times.append(r)
                ratios.append(o / r)
                i += 1
            q1, _q2, q3 = statistics.quantiles(ratios, n=4)
            median = statistics.median(ratios)
            results[name] = {
                "ratio": round(median, 2),
                "orm_ms": round(statistics.median(orm_times) * 1000, 2),
                "raw_ms": round(statistics.median(raw_times) * 1000, 2),
                "pairs": len(ratios),
                # The middle half of the pairs spread over more than a fifth of the median.
                "noisy": (q3 - q1) / median > NOISY_IQR,
            }
    finally:
        raw.close()
        adapter.teardown()
        close_loop()
    return results


def run_child(orm: str, vendor: str, scale: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """``python bench/run.py --orm ORM ...`` in a fresh interpreter; None if it failed."""
    proc = subprocess.run(
        [sys.executable, __file__, "--orm", orm, "--vendor", vendor, "--scale", scale],
        env={**os.environ, ENV_DB: json.dumps(settings)},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"{orm} on {vendor}: skipped ({tail[0]})", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{orm} on {vendor}: done", file=sys.stderr)
    return result


def fmt(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "n/a"
    return f"{cell['ratio']:.2f}x{' (noisy)' if cell['noisy'] else ''}"


def render(report: dict[str, Any], repeats: int) -> str:
    lines = [
        f"# ORM / raw driver ({report['scale']} scale, median of {repeats} to {MAX_PAIRS} "
        "paired runs)",
        "",
        "Each cell: the ORM's time over the raw driver's, measured interleaved in the same "
        "process (lower is better); (noisy): the middle half of its paired ratios spans more "
        f"than {NOISY_IQR:.0%} of their median. Last column: dorm's ratio over the fastest peer's "
        "(below 1.00 = dorm is faster); n/a = not measured. async_filter_iterate pairs "
        "each ORM's async API with raw asyncpg; Tortoise (async-only) runs every scenario "
        "as coroutines on one event loop, against the same raw driver as the other columns.",
    ]
    for vendor, by_orm in report["backends"].items():
        orms = [o for o in ORMS if o in by_orm]
        peers = [o for o in orms if o != "dorm"]
        lines += ["", f"## {vendor}", ""]
        lines.append("| scenario | " + " | ".join(orms) + " | dorm / fastest peer |")
        lines.append("|---|" + "---|" * (len(orms) + 1))
        names = list(dict.fromkeys(name for o in orms for name in by_orm[o]))
        for name in names:
            cells = [fmt(by_orm[o].get(name)) for o in orms]
            versus = "n/a"
            measured = [p for p in peers if name in by_orm[p]]
            if name in by_orm.get("dorm", {}) and measured:
                best = min(measured, key=lambda p: by_orm[p][name]["ratio"])
                versus = (
                    f"{by_orm['dorm'][name]['ratio'] / by_orm[best][name]['ratio']:.2f} ({best})"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {versus} |")
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in (
        "django",
        "sqlalchemy",
        "peewee",
        "tortoise-orm",
        "psycopg",
        "asyncpg",
        "aiosqlite",
    ):
        with contextlib.suppress(PackageNotFoundError):
            found[dist] = version(dist)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--out", default=str(BENCH / "results"))
    parser.add_argument("--orms", default=",".join(ORMS), help="comma-separated subset")
    parser.add_argument("--orm", choices=ORMS, help="child mode: measure one ORM, print JSON")
    parser.add_argument("--vendor", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]

    if args.orm:
        settings = json.loads(os.environ[ENV_DB])
        print(json.dumps(measure(args.orm, args.vendor, settings, scale)))
        return 0

    orms = [o for o in args.orms.split(",") if o]
    unknown = set(orms) - set(ORMS)
    if unknown:
        parser.error(f"unknown ORM(s): {', '.join(sorted(unknown))}")
    report: dict[str, Any] = {
        "scale": args.scale,
        "python": platform.python_version(),
        "versions": versions(),
        "backends": {},
    }

    def run_all(vendor: str, settings_for: Callable[[str], dict[str, Any]]) -> None:
        by_orm = {}
        for orm in orms:
            result = run_child(orm, vendor, args.scale, settings_for(orm))
            if result is not None:
                by_orm[orm] = result
        report["backends"][vendor] = by_orm

    with tempfile.TemporaryDirectory() as tmp:
        run_all("sqlite", lambda orm: {"ENGINE": "sqlite", "NAME": os.path.join(tmp, f"{orm}.db")})
    from conftest import PgCluster, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        print("PostgreSQL server binaries not found: measuring SQLite only", file=sys.stderr)
    else:
        cluster = PgCluster(bindir)
        cluster.start()
        try:

            def pg_settings(orm: str) -> dict[str, Any]:
                cluster.create_database(f"bench_{orm}")
                return cluster.settings(f"bench_{orm}")

            run_all("postgresql", pg_settings)
        finally:
            cluster.stop()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    table = render(report, scale["repeats"])
    (out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
