"""The cost of dorm-security's anonymizer: rows per second, and how it grows, in one run.

``make bench-security`` (or ``python bench/security.py``). A table of people (email unique,
phone, notes, and untouched columns) is filled with 10,000 and then 100,000 rows, on
SQLite (a file) and on a throwaway PostgreSQL cluster. For each size, ``ROUNDS`` times:

- ``anonymize_model(Person, mapping, batch_size=1000, seed=...)``: keyset batches, one
  transaction and one ``UPDATE ... FROM (VALUES ...)`` each. Two mappings: email (unique,
  so a uniqueness check per batch and random keys written into a unique index), phone and
  notes; then phone and notes alone;
- the floor: one hand-written ``UPDATE`` of the same rows and columns computed in SQL
  (``'anon.' || id || '@example.invalid'``...): no round trip per batch, no hashing in
  Python, nothing to check, and one transaction for the whole table.

Each run works on the output of the previous one (the work per row is the same). The
medians are reported; targets: linear growth, 100k rows in at most 12x the time of 10k.
Results go to ``bench/results/security.md``.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROUNDS = 3
SIZES = (10_000, 100_000)
LINEAR_LIMIT = 12.0
MAPPINGS = {
    # name: (anonymize_model mapping, the hand-written UPDATE's SET clause)
    "with unique email": (
        {"email": "random_email", "phone": "random_phone", "notes": "redact"},
        "{email} = 'anon.' || {id} || '@example.invalid', {phone} = '+999' || {id}, "
        "{notes} = '[REDACTED]'",
    ),
    "no unique column": (
        {"phone": "random_phone", "notes": "redact"},
        "{phone} = '+999' || {id}, {notes} = '[REDACTED]'",
    ),
}


def _model() -> Any:
    import dorm

    class Person(dorm.Model):
        email = dorm.EmailField(unique=True, pii=True)
        phone = dorm.CharField(max_length=20)
        notes = dorm.TextField()
        city = dorm.CharField(max_length=40)
        score = dorm.IntegerField()

        class Meta:
            app_label = "bench_security"

    return Person


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _fill(model: Any, count: int) -> None:
    from dorm.db.connection import get_connection

    conn = get_connection()
    conn.execute(f"DELETE FROM {conn.ops.quote_name(model._meta.db_table)}", ())
    for start in range(0, count, 10_000):
        model.objects.bulk_create(
            [
                model(
                    email=f"person{i}@corp.example",
                    phone=f"+34600{i:07d}",
                    notes=f"notes about person {i}",
                    city="Madrid",
                    score=i,
                )
                for i in range(start, min(start + 10_000, count))
            ]
        )


def _hand_update(model: Any, template: str) -> Callable[[], Any]:
    from dorm.db.connection import get_connection

    conn = get_connection()
    qn = conn.ops.quote_name
    names = {n: qn(n) for n in ("id", "email", "phone", "notes")}
    sql = f"UPDATE {qn(model._meta.db_table)} SET {template.format(**names)}"
    return lambda: conn.execute(sql, ())


Results = dict[str, dict[int, tuple[float, float]]]


def measure(model: Any) -> Results:
    """``{scenario: {rows: (median anonymize s, median hand-written UPDATE s)}}``."""
    from dorm.contrib.anonymizer import anonymize_model

    results: Results = {name: {} for name in MAPPINGS}
    for size in SIZES:
        _fill(model, size)
        for name, (mapping, template) in MAPPINGS.items():
            ours, floor = [], []
            for round_ in range(ROUNDS):
                seed = f"bench-{round_}"
                ours.append(
                    _timed(lambda: anonymize_model(model, mapping, batch_size=1000, seed=seed))  # noqa: B023
                )
                floor.append(_timed(_hand_update(model, template)))
            assert model.objects.count() == size
            assert model.objects.values("email").distinct().count() == size
            results[name][size] = (statistics.median(ours), statistics.median(floor))
    return results


def _run_vendor(settings: dict[str, Any], model: Any) -> Results:
    import logging

    import dorm
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    logging.getLogger("dorm.contrib.anonymizer").setLevel(logging.ERROR)
    dorm.configure(DATABASES={"default": settings})
    with SchemaEditor() as editor:
        editor.create_model(model)
    try:
        return measure(model)
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(model)
        reset_connections()


def main() -> int:
    from dorm.test.postgres import PgCluster, find_pg_bindir

    model = _model()
    table: dict[str, Results] = {}
    with tempfile.TemporaryDirectory() as tmp:
        table["sqlite"] = _run_vendor(
            {"ENGINE": "sqlite", "NAME": str(Path(tmp) / "bench.db")}, model
        )
    bindir = find_pg_bindir()
    if bindir is not None:
        cluster = PgCluster(bindir)
        cluster.start()
        try:
            cluster.create_database("bench_security")
            table["postgresql"] = _run_vendor(cluster.settings("bench_security"), model)
        finally:
            cluster.stop()
    small, large = SIZES
    lines = [
        f"# dorm-security: anonymize_model (median of {ROUNDS} runs; batch_size=1000, seeded)",
        "",
        "| backend | columns | rows | anonymize_model | rows/s | hand-written UPDATE | rows/s "
        "| anonymize / UPDATE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for vendor, scenarios in table.items():
        for name, results in scenarios.items():
            for size, (ours, floor) in results.items():
                lines.append(
                    f"| {vendor} | {name} | {size:,} | {ours:.3f} s | {size / ours:,.0f} | "
                    f"{floor:.3f} s | {size / floor:,.0f} | {ours / floor:.1f}x |"
                )
    lines += [
        "",
        f"Time for {large:,} rows / time for {small:,} rows (target for anonymize_model: "
        f"at most {LINEAR_LIMIT:.0f}x; the hand-written UPDATE's growth for comparison):",
        "",
    ]
    for vendor, scenarios in table.items():
        for name, results in scenarios.items():
            growth = results[large][0] / results[small][0]
            floor_growth = results[large][1] / results[small][1]
            verdict = "within target" if growth <= LINEAR_LIMIT else "OVER TARGET"
            lines.append(
                f"- {vendor}, {name}: anonymize_model {growth:.1f}x ({verdict}); "
                f"hand-written UPDATE {floor_growth:.1f}x"
            )
    text = "\n".join(lines) + "\n"
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "security.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
