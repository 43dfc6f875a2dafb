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
  ``list(Plain.objects.filter(...))`` of the same 10,000 rows;
- two floors (no target; they say what ``update_filter`` can reach): the same update
  of an untracked table against a table whose trigger does only part of dorm-temporal's
  work, without context or change detection. ``floor_copy`` copies each updated row into
  a bare log table (as little as any capture by trigger can do); ``floor_close_copy``
  closes the open version and inserts the new one in an indexed version table (what the
  design asks of every update: ``valid_to`` closed by the same statement).

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
FLOORS = {
    # name: (what the trigger does, SQLite body, PostgreSQL body)
    "copy": (
        "copies each updated row into a bare log table",
        "INSERT INTO {log} (id, name, score) VALUES (NEW.id, NEW.name, NEW.score)",
        "INSERT INTO {log} (id, name, score) SELECT id, name, score FROM dorm_new",
    ),
    "close_copy": (
        "closes the row's open version and inserts the new one, in a version table with a "
        "primary key and an (id, valid_from) index",
        "UPDATE {log} SET valid_to = 'now' WHERE id = OLD.id AND valid_to IS NULL; "
        "INSERT INTO {log} (id, name, score, valid_from) "
        "VALUES (NEW.id, NEW.name, NEW.score, 'now')",
        "UPDATE {log} AS l SET valid_to = now() FROM dorm_new AS n "
        "WHERE l.id = n.id AND l.valid_to IS NULL; "
        "INSERT INTO {log} (id, name, score, valid_from) SELECT id, name, score, now() "
        "FROM dorm_new",
    ),
}


FLOOR_MODELS: dict[str, Any] = {}


def _floor_sql(vendor: str, floor: str) -> tuple[list[str], list[str]]:
    """Create and drop a floor table, its log table and its trigger."""
    t, log = f"bench_temporal_floor_{floor}", f"bench_temporal_floor_{floor}_log"
    _, sqlite_body, pg_body = FLOORS[floor]
    if vendor == "sqlite":
        create = [
            f"CREATE TABLE {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "name VARCHAR(100) NOT NULL, score INTEGER NOT NULL)",
            f"CREATE TABLE {log} (log_id INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER, "
            "name VARCHAR(100), score INTEGER, valid_from TEXT, valid_to TEXT)",
            f"CREATE TRIGGER {t}_copy AFTER UPDATE ON {t} FOR EACH ROW BEGIN "
            f"{sqlite_body.format(log=log)}; END",
        ]
        drop = [f"DROP TABLE {t}", f"DROP TABLE {log}"]
    else:
        create = [
            f"CREATE TABLE {t} (id serial PRIMARY KEY, name varchar(100) NOT NULL, "
            "score integer NOT NULL)",
            f"CREATE TABLE {log} (log_id bigserial PRIMARY KEY, id integer, "
            "name varchar(100), score integer, valid_from timestamptz, valid_to timestamptz)",
            f"CREATE FUNCTION {t}_copy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"{pg_body.format(log=log)}; RETURN NULL; END $$",
            f"CREATE TRIGGER {t}_copy AFTER UPDATE ON {t} REFERENCING NEW TABLE AS dorm_new "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {t}_copy()",
        ]
        drop = [f"DROP TABLE {t}", f"DROP TABLE {log}", f"DROP FUNCTION {t}_copy()"]
    if floor == "copy":  # a bare log: no key, no index
        create[1] = f"CREATE TABLE {log} (id integer, name varchar(100), score integer)"
    else:
        create.insert(2, f"CREATE INDEX {log}_idx ON {log} (id, valid_from)")
    return create, drop


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

    for floor in FLOORS:  # tables and triggers made by _floor_sql: the same columns
        meta = type(
            "Meta",
            (),
            {
                "app_label": "bench_temporal",
                "managed": False,
                "db_table": f"bench_temporal_floor_{floor}",
            },
        )
        FLOOR_MODELS[floor] = type(
            f"Floor_{floor}",
            (dorm.Model,),
            {
                "__module__": __name__,
                "name": dorm.CharField(max_length=100),
                "score": dorm.IntegerField(default=0),
                "Meta": meta,
            },
        )
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
    for floor in FLOORS:
        results[f"floor_{floor}"] = _update_floor(floor, plain)
    return results


def _update_floor(floor: str, plain: Any) -> float:
    """``update_filter`` of the plain model against the same update of a floor table."""
    import dorm
    from dorm.db.connection import get_connection

    conn = get_connection()
    model = FLOOR_MODELS[floor]
    log = f"{model._meta.db_table}_log"
    ratios = []
    for round_ in range(ROUNDS):
        times = {}
        for m in (plain, model) if round_ % 2 == 0 else (model, plain):
            _empty(m)
            conn.execute(f"DELETE FROM {log}", ())
            _seed(m, UPDATE * 2)
            if m is model and floor != "copy":  # one open version per row
                conn.execute(
                    f"INSERT INTO {log} (id, name, score, valid_from) "
                    f"SELECT id, name, score, '2000-01-01' FROM {model._meta.db_table}",
                    (),
                )
            query = m.objects.filter(score__lt=UPDATE)
            times[m.__name__] = _timed(lambda q=query: q.update(score=dorm.F("score") + 1))
        ratios.append(times[model.__name__] / times[plain.__name__])
    return statistics.median(ratios)


def _run_vendor(settings: dict[str, Any], tracked: Any, plain: Any) -> dict[str, float]:
    import dorm
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(DATABASES={"default": settings})
    from dorm.db.connection import get_connection

    vendor = get_connection().vendor
    create_floor = [sql for floor in FLOORS for sql in _floor_sql(vendor, floor)[0]]
    drop_floor = [sql for floor in FLOORS for sql in _floor_sql(vendor, floor)[1]]
    with SchemaEditor() as editor:
        editor.create_model(plain)
        editor.create_model(tracked)
        editor.create_model(tracked._temporal_model)
        for sql in create_floor:
            editor.execute(sql)
    try:
        return measure(tracked, plain)
    finally:
        with SchemaEditor() as editor:
            for sql in drop_floor:
                editor.execute(sql)
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
    for floor, (what, _, _) in FLOORS.items():
        cells = " | ".join(f"{table[vendor][f'floor_{floor}']:.2f}x" for vendor in table)
        lines.append(f"| floor_{floor}: a trigger that {what} | - | {cells} |")
    text = "\n".join(lines) + "\n"
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "temporal.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
