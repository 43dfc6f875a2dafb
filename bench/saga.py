"""The cost of dorm-saga's primitives, each against the plain way of doing the same work.

``make bench-saga`` (or ``python bench/saga.py``). A throwaway PostgreSQL cluster with
durable commits (fsync and synchronous_commit on: a PREPARE TRANSACTION is a disk write,
and hiding it would flatter two-phase commit), and a SQLite file. Each scenario runs the
pair interleaved, ``ROUNDS`` times (the order alternating); the figure is the median.

- ``two_phase_commit``: one row inserted on each of two databases in
  ``two_phase_commit(["a", "b"])`` against the same two inserts as two plain
  ``atomic()`` commits, one per database (PostgreSQL only). Reported per commit and as the
  ratio 2PC / plain.
- ``idempotent``: a handler that inserts one row, called through ``@idempotent(Inbox)``
  with a new message id each time, against the same handler in a plain ``atomic()``.
- ``named_lock``: ``with named_lock(name): pass`` acquisitions per second (on PostgreSQL a
  transaction with ``pg_advisory_xact_lock``; on SQLite the in-process lock).

Results go to ``bench/results/saga.md``.
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
ROUNDS = 5
COMMITS = 300
HANDLED = 1000
LOCKS = 2000


def _models() -> dict[str, Any]:
    import dorm
    from dorm.contrib.inbox import InboxRecord

    class BenchInbox(InboxRecord):
        class Meta:
            app_label = "bench_saga"
            db_table = "bench_saga_inbox"

    class BenchRow(dorm.Model):
        key = dorm.CharField(max_length=40)

        class Meta:
            app_label = "bench_saga"
            db_table = "bench_saga_row"

    return {"inbox": BenchInbox, "row": BenchRow}


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _paired(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[float, float]:
    """Median times of ``first`` and ``second`` over ROUNDS interleaved rounds."""
    a, b = [], []
    for round_ in range(ROUNDS):
        if round_ % 2 == 0:
            a.append(_timed(first))
            b.append(_timed(second))
        else:
            b.append(_timed(second))
            a.append(_timed(first))
    return statistics.median(a), statistics.median(b)


def two_phase(models: dict[str, Any]) -> dict[str, float]:
    from dorm.contrib.two_phase import two_phase_commit
    from dorm.transaction import atomic

    row = models["row"]
    counter = iter(range(10**9))

    def with_2pc() -> None:
        for _ in range(COMMITS):
            n = next(counter)
            with two_phase_commit(["a", "b"]):
                row.objects.using("a").create(key=f"2pc-{n}")
                row.objects.using("b").create(key=f"2pc-{n}")

    def plain() -> None:
        for _ in range(COMMITS):
            n = next(counter)
            with atomic(using="a"):
                row.objects.using("a").create(key=f"plain-{n}")
            with atomic(using="b"):
                row.objects.using("b").create(key=f"plain-{n}")

    with_2pc()  # warm: pools, the decision table, plan caches
    plain()
    t_2pc, t_plain = _paired(with_2pc, plain)
    return {
        "2pc_ms": t_2pc / COMMITS * 1000,
        "plain_ms": t_plain / COMMITS * 1000,
        "ratio": t_2pc / t_plain,
    }


def idempotent(models: dict[str, Any], using: str) -> dict[str, float]:
    from dorm.contrib.inbox import idempotent as idem
    from dorm.transaction import atomic

    row = models["row"]
    counter = iter(range(10**9))

    def work(message_id: str) -> None:
        row.objects.using(using).create(key=message_id)

    handler = idem(models["inbox"], handler_name="bench", using=using)(work)

    def through_inbox() -> None:
        for _ in range(HANDLED):
            handler(f"m-{next(counter)}")

    def plain() -> None:
        for _ in range(HANDLED):
            with atomic(using=using):
                work(f"p-{next(counter)}")

    through_inbox()
    plain()
    t_inbox, t_plain = _paired(through_inbox, plain)
    return {
        "inbox_per_s": HANDLED / t_inbox,
        "plain_per_s": HANDLED / t_plain,
        "ratio": t_inbox / t_plain,
    }


def locks(using: str) -> float:
    from dorm.contrib.concurrency import named_lock

    def run() -> None:
        for _ in range(LOCKS):
            with named_lock("bench-lock", using=using):
                pass

    run()
    return LOCKS / statistics.median(_timed(run) for _ in range(ROUNDS))


def _create(models: dict[str, Any], aliases: list[str]) -> None:
    from dorm.db.connection import connections
    from dorm.migrations.schema import SchemaEditor

    for alias in aliases:
        with SchemaEditor(connection=connections[alias]) as editor:
            for model in models.values():
                editor.create_model(model)


def main() -> int:
    sys.path.insert(0, str(BENCH.parent / "tests"))
    import dorm
    from dorm.db.connection import reset_connections
    from dorm.test.postgres import PgCluster, find_pg_bindir

    models = _models()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dorm.configure(
            DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(Path(tmp) / "bench.db")}}
        )
        _create(models, ["default"])
        results["sqlite"] = {
            "idempotent": idempotent(models, "default"),
            "locks": locks("default"),
        }
        reset_connections()
    bindir = find_pg_bindir()
    if bindir is not None:
        cluster = PgCluster(bindir, durable=True)
        cluster.start()
        try:
            for name in ("bench_saga_a", "bench_saga_b"):
                cluster.create_database(name)
            dorm.configure(
                DATABASES={
                    "default": cluster.settings("bench_saga_a"),
                    "a": cluster.settings("bench_saga_a"),
                    "b": cluster.settings("bench_saga_b"),
                }
            )
            _create(models, ["a", "b"])
            results["postgresql"] = {
                "two_phase": two_phase(models),
                "idempotent": idempotent(models, "a"),
                "locks": locks("a"),
            }
            reset_connections()
        finally:
            cluster.stop()
    lines = ["# dorm-saga: each primitive against the plain way (median of paired runs)", ""]
    if "postgresql" in results:
        tp = results["postgresql"]["two_phase"]
        lines += [
            "## Two-phase commit (PostgreSQL, fsync on)",
            "",
            "| one row on each of two databases | per commit | ratio |",
            "|---|---|---|",
            f"| two plain atomic() commits | {tp['plain_ms']:.2f} ms | 1.00x |",
            f"| two_phase_commit | {tp['2pc_ms']:.2f} ms | {tp['ratio']:.2f}x |",
            "",
        ]
    lines += [
        "## @idempotent and named_lock",
        "",
        "| backend | plain handler | @idempotent handler | ratio | named_lock per s |",
        "|---|---|---|---|---|",
    ]
    for vendor, found in results.items():
        idem = found["idempotent"]
        lines.append(
            f"| {vendor} | {idem['plain_per_s']:,.0f}/s | {idem['inbox_per_s']:,.0f}/s | "
            f"{idem['ratio']:.2f}x | {found['locks']:,.0f} |"
        )
    text = "\n".join(lines) + "\n"
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "saga.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
