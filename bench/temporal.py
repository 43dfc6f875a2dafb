"""The cost of dorm-temporal: a tracked table against the same untracked table, one run.

``make bench-temporal`` (or ``python bench/temporal.py``). Two models with the same
columns, one ``@temporal``; on SQLite (a file) and on a throwaway PostgreSQL cluster
(fsync off, as the test suite's: the trigger's own work is not hidden behind a disk
flush). Each scenario runs the untracked and the tracked model interleaved, ``ROUNDS``
times (the order alternating), each time on emptied tables, and reports the median of the
paired ratios tracked / untracked (lower is better; 1.0 = no overhead):

- ``insert_one``: 300 ``create()`` calls, each its own transaction;
- ``bulk_insert``: one ``bulk_create`` of 10,000 rows;
- ``update_filter``: one ``filter(...).update(score=F("score") + 1)`` of 1,000 rows;
- ``as_of_read``: ``list(as_of(Tracked, t))`` of 10,000 rows against
  ``list(Plain.objects.filter(...))`` of the same 10,000 rows.

Targets: single-row writes 1.5x at most, bulk writes and the as-of read 2.0x at most.
Results go to ``bench/results/temporal.md``.
"""

from __future__ import annotations

import datetime
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROUNDS = 5
SINGLE = 300
BULK = 10_000
UPDATE = 1_000
TARGETS = {"insert_one": 1.5, "bulk_insert": 2.0, "update_filter": 2.0, "as_of_read": 2.0}


def _models() -> tuple[Any, Any]:
    import dorm
    from dorm.contrib.temporal import temporal

    @temporal
    class Tracked(dorm.Model):
        name = dorm.CharField(max_length=100)
        score = dorm.IntegerField(default=0)

        class Meta:
            app_label = "bench_temporal"

    class Plain(dorm.Model):
        name = dorm.CharField(max_length=100)
        score = dorm.IntegerField(default=0)

        class Meta:
            app_label = "bench_temporal"

    return Tracked, Plain


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _empty(model: Any) -> None:
    from dorm.db.connection import get_connection

    conn = get_connection()
    qn = conn.ops.quote_name
    history = getattr(model, "_temporal_model", None)
    for table in [model._meta.db_table] + ([history._meta.db_table] if history else []):
        conn.execute(f"DELETE FROM {qn(table)}", ())


def _seed(model: Any, count: int) -> None:
    model.objects.bulk_create([model(name=f"row {i}", score=i) for i in range(count)])


def measure(tracked: Any, plain: Any) -> dict[str, float]:
    """The median tracked/plain ratio of each scenario."""
    import dorm
    from dorm.contrib.temporal import as_of

    def insert_one(model: Any) -> Callable[[], Any]:
        return lambda: [model.objects.create(name=f"n{i}", score=i) for i in range(SINGLE)]

    def bulk_insert(model: Any) -> Callable[[], Any]:
        return lambda: model.objects.bulk_create(
            [model(name=f"b{i}", score=i) for i in range(BULK)]
        )

    def update_filter(model: Any) -> Callable[[], Any]:
        return lambda: model.objects.filter(score__lt=UPDATE).update(score=dorm.F("score") + 1)

    scenarios: dict[str, tuple[Callable[[Any], Callable[[], Any]], int]] = {
        "insert_one": (insert_one, 0),
        "bulk_insert": (bulk_insert, 0),
        "update_filter": (update_filter, UPDATE * 2),
    }
    results: dict[str, float] = {}
    for name, (make, seed) in scenarios.items():
        ratios = []
        for round_ in range(ROUNDS):
            times: dict[str, float] = {}
            order = (plain, tracked) if round_ % 2 == 0 else (tracked, plain)
            for model in order:
                _empty(model)
                if seed:
                    _seed(model, seed)
                times[model.__name__] = _timed(make(model))
            ratios.append(times[tracked.__name__] / times[plain.__name__])
        results[name] = statistics.median(ratios)
    for model in (plain, tracked):
        _empty(model)
        _seed(model, BULK)
    at = datetime.datetime.now(datetime.UTC)
    ratios = []
    for round_ in range(ROUNDS):
        times = {}
        readers = {
            "plain": lambda: list(plain.objects.filter(score__gte=0)),
            "tracked": lambda: list(as_of(tracked, at)),
        }
        for key in ("plain", "tracked") if round_ % 2 == 0 else ("tracked", "plain"):
            times[key] = _timed(readers[key])
        assert len(readers["tracked"]()) == BULK
        ratios.append(times["tracked"] / times["plain"])
    results["as_of_read"] = statistics.median(ratios)
    return results


def _run_vendor(settings: dict[str, Any], tracked: Any, plain: Any) -> dict[str, float]:
    import dorm
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(DATABASES={"default": settings})
    with SchemaEditor() as editor:
        editor.create_model(plain)
        editor.create_model(tracked)
        editor.create_model(tracked._temporal_model)
    try:
        return measure(tracked, plain)
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(tracked._temporal_model)
            editor.delete_model(tracked)
            editor.delete_model(plain)
        reset_connections()


def main() -> int:
    sys.path.insert(0, str(BENCH.parent / "tests"))
    from dorm.test.postgres import PgCluster, find_pg_bindir

    tracked, plain = _models()
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        table["sqlite"] = _run_vendor(
            {"ENGINE": "sqlite", "NAME": str(Path(tmp) / "bench.db")}, tracked, plain
        )
    bindir = find_pg_bindir()
    if bindir is not None:
        cluster = PgCluster(bindir)
        cluster.start()
        try:
            cluster.create_database("bench_temporal")
            table["postgresql"] = _run_vendor(cluster.settings("bench_temporal"), tracked, plain)
        finally:
            cluster.stop()
    lines = [
        "# dorm-temporal: tracked / untracked (median of paired ratios; lower is better)",
        "",
        "| scenario | target | " + " | ".join(table) + " |",
        "|---|---|" + "---|" * len(table),
    ]
    for name, target in TARGETS.items():
        cells = []
        for vendor in table:
            ratio = table[vendor][name]
            cells.append(f"{ratio:.2f}x" + ("" if ratio <= target else " (over target)"))
        lines.append(f"| {name} | {target:.1f}x | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "temporal.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
