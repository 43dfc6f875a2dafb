"""dorm-pgvector: k-NN latency with and without HNSW, recall@10, rerank, dorm against raw.

``make bench-pgvector`` (or ``python bench/pgvector.py [--sizes 10000,100000]``). Runs on a
throwaway PostgreSQL 16 cluster started from the binaries of the ``pgserver`` distribution
(they include pgvector), or from ``DORM_PG_BINDIR``. For each size, a table of 384-dimension
vectors is filled with a binary COPY (200 clusters in a 32-dimension latent space mapped
into 384 dimensions, plus noise: the low intrinsic dimension of text embeddings; numpy
makes them), then, over ``QUERIES`` query vectors of the same distribution:

- ``exact k-NN``: ``order_by(CosineDistance(...))[:10]`` with index scans off (a scan);
- ``HNSW k-NN``: the same with an HNSW index (``vector_cosine_ops``, pgvector's default
  ``m``, ``ef_construction`` and ``ef_search``), and its recall@10 against the exact answer;
- ``rerank``: ``rerank(candidates=200, limit=10)`` with the HNSW index;
- each measured through dorm (``values_list("pk")`` for k-NN; model instances for rerank)
  and as the same statement and parameters sent through a bare psycopg connection,
  interleaved; the ratio is the median of the paired ratios dorm / raw. The first raw
  column sends the parameter dorm built (pgvector's text form, printed before the
  timing); the second, the baseline of the target, packs the query vector on each call
  in pgvector's binary form, the fastest a client without dorm can send it (dorm's own
  encoding, also binary on psycopg, is inside its time).

SQLite (10k rows only: an exact scan through Python or sqlite-vec distance functions) is
reported alongside, and the recall of the index on a harder distribution (isotropic noise
around random centres, ``--isotropic-size``, default 100k) in the notes. Targets: dorm
within 1.3x of raw; recall@10 at least 0.95 with default HNSW parameters. Results go to
``bench/results/pgvector.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
DIMS = 384
QUERIES = 30
CENTRES = 200
LATENT = 32
TARGET_RATIO = 1.3
TARGET_RECALL = 0.95


def _pgserver_bindir() -> str | None:
    explicit = os.environ.get("DORM_PG_BINDIR")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return str(bindir) if (bindir / "initdb").exists() else None


def _model(table: str) -> Any:
    import dorm
    from dorm.contrib.pgvector import SearchVectorField, VectorField

    attrs = {
        "__module__": __name__,
        "title": dorm.CharField(max_length=40),
        "body": dorm.TextField(),
        "embedding": VectorField(dimensions=DIMS),
        "search_vector": SearchVectorField(source_fields=["title", "body"]),
        "Meta": type("Meta", (), {"app_label": "bench_pgvector", "db_table": table}),
    }
    return type(f"Vec{table}", (dorm.Model,), attrs)


def _vectors(count: int, seed: int) -> Any:
    """``count`` float32 vectors shaped like text embeddings: clustered in a 32-dimension
    latent space mapped into 384 dimensions, plus noise (the same map for every seed)."""
    import numpy as np

    basis = np.random.default_rng(23).standard_normal((LATENT, DIMS))
    centres = np.random.default_rng(24).standard_normal((CENTRES, LATENT)) * 2.0
    rng = np.random.default_rng(seed)
    z = centres[rng.integers(0, CENTRES, count)] + rng.standard_normal((count, LATENT))
    noise = rng.standard_normal((count, DIMS)) * 0.5
    return (z @ basis + noise).astype(np.float32)


def _fill_pg(raw: Any, table: str, count: int) -> None:
    """Rows of ``_vectors`` sent with a binary COPY (pgvector's binary format), a few words
    each for the full-text column."""
    import numpy as np

    row = np.dtype(
        [
            ("fields", ">i2"),
            ("size", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("values", ">f4", (DIMS,)),
        ]
    )
    records = np.zeros(count, dtype=row)
    records["fields"], records["size"], records["dim"] = 1, 4 + 4 * DIMS, DIMS
    records["values"] = _vectors(count, seed=count)
    data = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + records.tobytes() + b"\xff\xff"
    raw.execute("DROP TABLE IF EXISTS bench_stage")
    raw.execute(f"CREATE TABLE bench_stage (id bigserial, embedding vector({DIMS}))")
    with raw.cursor().copy("COPY bench_stage (embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.write(data)
    words = "{vector,search,machine,learning,database,index,graph,query,rank,text}"
    raw.execute(
        f"INSERT INTO {table} (title, body, embedding) "
        f"SELECT 'doc ' || id, ('{words}'::text[])[1 + id % 10] || ' ' || "
        f"('{words}'::text[])[1 + (id / 10) % 10], embedding FROM bench_stage ORDER BY id"
    )
    raw.execute("DROP TABLE bench_stage")
    raw.execute(f"ANALYZE {table}")


def _queries(count: int = QUERIES) -> list[list[float]]:
    """Query vectors drawn like the rows, not copies of rows."""
    return [[float(x) for x in v] for v in _vectors(count, seed=1)]


def _paired(fns: list[Callable[[], Any]], rounds: int) -> list[float]:
    """Median ms of each of ``fns`` (dorm first), then the medians of the paired ratios
    dorm / each other one; the order of the calls rotates from round to round."""
    for fn in fns:
        fn()  # warm caches and plans
    times: list[list[float]] = [[] for _ in fns]
    for i in range(rounds):
        order = list(range(len(fns)))
        order = order[i % len(order) :] + order[: i % len(order)]
        for k in order:
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    medians = [statistics.median(t) * 1e3 for t in times]
    ratios = [statistics.median(d / o for d, o in zip(times[0], t, strict=True)) for t in times[1:]]
    return medians + ratios


class RawVector:
    """A query vector as a client without dorm sends it in the fastest form psycopg
    offers: pgvector's binary wire form, packed per call (``raw_binary_dumper``)."""

    __slots__ = ("values",)

    def __init__(self, values: list[float]) -> None:
        self.values = values


def raw_binary_dumper(conn: Any) -> None:
    """Register on ``conn`` the dumper a raw client writes (pgvector-python's psycopg
    adapter does the same through numpy): dimensions, a zero, big-endian float32s."""
    from psycopg import pq
    from psycopg.adapt import Dumper

    class RawVectorDumper(Dumper):
        format = pq.Format.BINARY

        def dump(self, obj: Any) -> bytes:
            n = len(obj.values)
            return struct.pack(f">HH{n}f", n, 0, *obj.values)

    conn.adapters.register_dumper(RawVector, RawVectorDumper)


def _raw_of(fn: Callable[[], Any], sqlite: bool = False) -> tuple[str, list[Any], list[int]]:
    """The one statement ``fn`` sends through dorm, its parameters, where the vectors are."""
    from dorm.test import assert_num_queries

    with assert_num_queries(1) as ctx:
        fn()
    params = ctx[0]["params"]
    # A bound vector is a str subclass that also carries the SQLite blob: send each driver
    # what dorm's parameter turns into for it.
    where = [i for i, p in enumerate(params) if hasattr(p, "blob")]
    plain = [(p.blob if sqlite else str(p)) if hasattr(p, "blob") else p for p in params]
    return ctx[0]["sql"], plain, where


def timed_pair(
    make: Callable[[list[float]], Any], queries: list[list[float]], raw: Any
) -> list[float]:
    """Per query: dorm, the same statement raw, and raw with the vector encoded per call.

    The two raw columns run on two connections, so each of the three columns has a server
    process of its own that serves one call in three (on one shared connection, the raw
    server process served two in three and stayed warmer than dorm's)."""
    import psycopg

    encoding = psycopg.connect(raw.info.dsn, autocommit=True)
    raw_binary_dumper(encoding)
    results = []
    try:
        for q in queries:
            sql, params, where = _raw_of(lambda q=q: make(q))

            def raw_encoding(
                q: list[float] = q, s: str = sql, p: list[Any] = params, where: list[int] = where
            ) -> Any:
                p = list(p)
                for i in where:
                    p[i] = RawVector(q)
                return encoding.execute(s, p).fetchall()

            fns = [
                lambda q=q: make(q),
                lambda s=sql, p=params: raw.execute(s, p).fetchall(),
                raw_encoding,
            ]
            results.append(_paired(fns, 3))
    finally:
        encoding.close()
    return [statistics.median(r[k] for r in results) for k in range(5)]


def _row(size: int, name: str, m: list[float], recall: str = "-") -> list[str]:
    return [
        f"{size:,}",
        name,
        f"{m[0]:.2f}",
        f"{m[1]:.2f}",
        f"{m[3]:.2f}x",
        f"{m[2]:.2f}",
        f"{m[4]:.2f}x",
        recall,
    ]


def recall_isotropic(raw: Any, count: int, notes: list[str]) -> None:
    """recall@10 on a harder distribution: isotropic noise around 200 random centres in
    all 384 dimensions (no low-dimensional structure), generated by the server."""
    raw.execute("SELECT setseed(0.23)")
    raw.execute(
        "CREATE TABLE bench_iso_centres AS SELECT c, ARRAY(SELECT random() * 2 - 1 "
        f"FROM generate_series(1, {DIMS}) WHERE c >= 0) AS v "
        f"FROM generate_series(0, {CENTRES - 1}) c"
    )
    raw.execute(f"CREATE TABLE bench_iso (id bigserial PRIMARY KEY, embedding vector({DIMS}))")
    raw.execute(
        "INSERT INTO bench_iso (embedding) "
        "SELECT ARRAY(SELECT x + (random() - 0.5) * 0.6 FROM unnest(bc.v) x)::vector "
        f"FROM generate_series(1, {count}) g JOIN bench_iso_centres bc ON bc.c = g % {CENTRES}"
    )
    queries = [
        "[" + ",".join(str(x) for x in v) + "]"
        for (v,) in raw.execute(
            "SELECT ARRAY(SELECT x + (random() - 0.5) * 0.6 FROM unnest(v) x) "
            f"FROM bench_iso_centres WHERE c < {QUERIES} ORDER BY c"
        )
    ]
    sql = "SELECT id FROM bench_iso ORDER BY embedding <=> %s::vector LIMIT 10"
    raw.execute("SET enable_indexscan = off")
    exact = [{i for (i,) in raw.execute(sql, [q])} for q in queries]
    raw.execute("RESET enable_indexscan")
    t0 = time.perf_counter()
    raw.execute("CREATE INDEX bench_iso_hnsw ON bench_iso USING hnsw (embedding vector_cosine_ops)")
    build = time.perf_counter() - t0
    found = {}
    for ef_search in (40, 100, 400):
        raw.execute(f"SET hnsw.ef_search = {ef_search}")
        approx = [{i for (i,) in raw.execute(sql, [q])} for q in queries]
        found[ef_search] = statistics.mean(
            len(a & e) / 10 for a, e in zip(approx, exact, strict=True)
        )
    raw.execute("RESET hnsw.ef_search")
    raw.execute("DROP TABLE bench_iso, bench_iso_centres")
    notes.append(
        f"Harder data, {count:,} rows of isotropic noise around random centres (no "
        f"low-dimensional structure; index built in {build:.0f} s): recall@10 "
        + ", ".join(f"{v:.3f} with hnsw.ef_search = {k}" for k, v in found.items())
        + "."
    )


def bench_pg(
    cluster: Any, sizes: list[int], iso: int, rows: list[list[str]], notes: list[str]
) -> None:
    import psycopg

    import dorm
    from dorm.contrib.pgvector import CosineDistance, HnswIndex
    from dorm.contrib.pgvector.reranker import rerank
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    cluster.create_database("bench_pgvector")
    dsn = cluster.dsn("bench_pgvector")
    raw = psycopg.connect(dsn, autocommit=True)
    raw_binary_dumper(raw)
    raw.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # Room for the whole HNSW graph while it is built, on every connection (dorm's too).
    raw.execute("ALTER DATABASE bench_pgvector SET maintenance_work_mem = '1GB'")
    raw.close()
    raw = psycopg.connect(dsn, autocommit=True)
    raw_binary_dumper(raw)
    reset_connections()
    dorm.configure(DATABASES={"default": cluster.settings("bench_pgvector")})
    for size in sizes:
        model = _model(f"bench_vec_{size}")
        with SchemaEditor() as editor:
            editor.create_model(model)
        t0 = time.perf_counter()
        _fill_pg(raw, model._meta.db_table, size)
        fill = time.perf_counter() - t0
        queries = _queries()

        def knn(q: list[float], m: Any = model) -> list[Any]:
            return list(
                m.objects.order_by(CosineDistance("embedding", q)).values_list("pk", flat=True)[:10]
            )

        # Exact search: no index yet, so both dorm and the raw driver scan.
        exact = {i: knn(q) for i, q in enumerate(queries)}
        rows.append(_row(size, "exact k-NN (scan), top 10", timed_pair(knn, queries, raw)))
        index = HnswIndex(
            name=f"bench_vec_{size}_hnsw", fields=["embedding"], opclasses=["vector_cosine_ops"]
        )
        t0 = time.perf_counter()
        with SchemaEditor() as editor:
            editor.add_index(model, index)
        build = time.perf_counter() - t0
        recalls = {}
        for ef_search in (40, 100):  # 40 is pgvector's default
            raw.execute(f"SET hnsw.ef_search = {ef_search}")
            approx = {}
            for i, q in enumerate(queries):
                sql, params, _where = _raw_of(lambda q=q: knn(q))
                approx[i] = [pk for (pk,) in raw.execute(sql, params).fetchall()]
            recalls[ef_search] = statistics.mean(
                len(set(exact[i]) & set(approx[i])) / 10 for i in exact
            )
        raw.execute("RESET hnsw.ef_search")
        recall = recalls[40]
        sql, params, _where = _raw_of(lambda q=queries[0]: knn(q))
        plan = raw.execute("EXPLAIN " + sql, params).fetchall()
        uses = any(f"bench_vec_{size}_hnsw" in str(line[0]) for line in plan)
        rows.append(_row(size, "HNSW k-NN, top 10", timed_pair(knn, queries, raw), f"{recall:.3f}"))

        def hybrid(q: list[float], m: Any = model, limit: int = 10) -> list[Any]:
            return rerank(
                m,
                vector_field="embedding",
                text_field_tsv="search_vector",
                query_vector=q,
                query_text="machine learning",
                candidates=200,
                limit=limit,
            )

        # An HNSW scan returns at most hnsw.ef_search rows (default 40): for 200 candidates
        # raise it, on every connection of the database (dorm's pool and the raw one).
        raw.execute("ALTER DATABASE bench_pgvector SET hnsw.ef_search = 200")
        reset_connections()
        raw.close()
        raw = psycopg.connect(dsn, autocommit=True)
        raw_binary_dumper(raw)
        got = len(hybrid(queries[0], limit=200))
        measured = timed_pair(hybrid, queries, raw)
        raw.execute("ALTER DATABASE bench_pgvector RESET hnsw.ef_search")
        reset_connections()
        raw.close()
        raw = psycopg.connect(dsn, autocommit=True)
        raw_binary_dumper(raw)
        rows.append(_row(size, "rerank (HNSW, 200 candidates, limit 10)", measured))
        notes.append(
            f"PostgreSQL {size:,} rows: filled in {fill:.1f} s, HNSW index built in {build:.1f} s, "
            f"the k-NN plan uses the index: {uses}; recall@10 {recalls[40]:.3f} with "
            f"hnsw.ef_search = 40 (default), {recalls[100]:.3f} with 100; rerank found {got} "
            f"candidates with hnsw.ef_search = 200."
        )
        with SchemaEditor() as editor:
            editor.delete_model(model)
    if iso:
        recall_isotropic(raw, iso, notes)
    raw.close()
    reset_connections()


def bench_sqlite(size: int, rows: list[list[str]], notes: list[str]) -> None:
    import sqlite3

    import dorm
    from dorm.contrib.pgvector import CosineDistance
    from dorm.contrib.pgvector.sqlite import register_functions
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    path = tempfile.mkdtemp() + "/bench.db"
    reset_connections()
    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": path}})
    model = _model("bench_vec_sqlite")
    with SchemaEditor() as editor:
        editor.create_model(model)
    batch = [
        model(title=f"doc {i}", body="machine learning", embedding=v)
        for i, v in enumerate(_vectors(size, seed=size))
    ]
    model.objects.bulk_create(batch, batch_size=500)
    raw = sqlite3.connect(path)
    path_name = register_functions(raw)
    queries = _queries(5)

    def knn(q: list[float]) -> list[Any]:
        return list(
            model.objects.order_by(CosineDistance("embedding", q)).values_list("pk", flat=True)[:10]
        )

    results = []
    for q in queries:
        sql, params, _where = _raw_of(lambda q=q: knn(q), sqlite=True)
        results.append(
            _paired([lambda q=q: knn(q), lambda s=sql, p=params: raw.execute(s, p).fetchall()], 3)
        )
    m = [statistics.median(r[k] for r in results) for k in range(3)]
    rows.append(
        [
            f"{size:,} (SQLite)",
            f"exact k-NN (scan, {path_name} functions), top 10",
            f"{m[0]:.1f}",
            f"{m[1]:.1f}",
            f"{m[2]:.2f}x",
            "-",
            "-",
            "-",
        ]
    )
    notes.append(f"SQLite {size:,} rows: distance functions from {path_name}.")
    raw.close()
    reset_connections()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="PostgreSQL table sizes")
    parser.add_argument("--sqlite-size", type=int, default=10_000)
    parser.add_argument("--isotropic-size", type=int, default=100_000, help="0: skip")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    from dorm.test.postgres import PgCluster

    rows: list[list[str]] = []
    notes: list[str] = []
    started = time.perf_counter()
    bindir = _pgserver_bindir()
    if bindir is None:
        notes.append("PostgreSQL skipped: pgserver is not installed and DORM_PG_BINDIR is not set.")
    else:
        cluster = PgCluster(bindir)
        cluster.start()
        try:
            bench_pg(cluster, sizes, args.isotropic_size, rows, notes)
        finally:
            cluster.stop()
    if args.sqlite_size:
        bench_sqlite(args.sqlite_size, rows, notes)
    header = (
        "# dorm-pgvector: k-NN and rerank latency, dorm against the raw driver\n\n"
        f"384 dimensions, {QUERIES} queries (SQLite: 5), median latency in ms; ratio = median "
        f"of paired dorm / raw (target <= {TARGET_RATIO}x); recall@10 of HNSW against the "
        f"exact answer (target >= {TARGET_RECALL}). Machine: {os.cpu_count()} cores.\n\n"
        "| rows | query | dorm ms | raw, text pre-encoded ms | dorm / that | "
        "raw, binary per call ms | dorm / raw binary (target) | recall@10 |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    table = "".join("| " + " | ".join(row) + " |\n" for row in rows)
    text = header + table + "\n" + "\n".join(f"- {n}" for n in notes)
    text += f"\n- Whole run: {time.perf_counter() - started:.0f} s.\n"
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "pgvector.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
