"""The cost of ActivePassiveRouter on reads: the router against a fixed-alias router, one run.

``make bench-routing`` (or ``python bench/routing.py``). A throwaway PostgreSQL primary
and a hot standby made from it with ``pg_basebackup -R`` (``PgCluster.start_replica``),
both on loopback (fsync off, as the test suite's). Reads of ``Item.objects.get(pk=...)``
go through one of two routers sending reads to the standby:

- ``fixed``: ``db_for_read`` returns ``"node_b"``, nothing else (the floor);
- ``active_passive``: ``ActivePassiveRouter(aliases=["node_a", "node_b"])`` with
  ``sticky_seconds`` and ``max_replica_lag_seconds`` set, so every read also checks the
  sticky window and the thread's ``atomic()`` blocks.

Both sit behind the same one-line switch (core builds its routers once per settings), so
they pay the same indirection. Each round runs both, the order alternating, ``READS``
reads each; reported: reads per second and the median of the paired time ratios
(active_passive / fixed; 1.00 = no overhead). Target: at most 1.03. The routing decision
alone (``db_for_read`` without a query) is timed too. Results go to
``bench/results/routing.md``.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROUNDS = 101
READS = 600
ROWS = 500
DECISIONS = 200_000
TARGET = 1.03


class FixedRouter:
    def db_for_read(self, model: type, **hints: Any) -> str:
        return "node_b"

    def db_for_write(self, model: type, **hints: Any) -> str:
        return "node_a"


class Switch:
    """Delegates to ``target``: lets one configured router list serve both variants."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def db_for_read(self, model: type, **hints: Any) -> str:
        return str(self.target.db_for_read(model, **hints))

    def db_for_write(self, model: type, **hints: Any) -> str:
        return str(self.target.db_for_write(model, **hints))


def _reads(model: Any) -> float:
    gc.collect()
    start = time.perf_counter()
    for i in range(READS):
        model.objects.get(pk=1 + i % ROWS)
    return time.perf_counter() - start


def _wait_replayed(model: Any) -> None:
    from dorm.exceptions import ProgrammingError

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if model.objects.using("node_b").count() >= ROWS:
                return
        except ProgrammingError:  # the table itself is not replayed yet
            pass
        time.sleep(0.02)
    raise RuntimeError("the standby did not replay the bench rows within 60 s")


def _decisions(router: Any, model: Any) -> float:
    start = time.perf_counter()
    for _ in range(DECISIONS):
        router.db_for_read(model)
    return (time.perf_counter() - start) / DECISIONS * 1e9


def run() -> dict[str, Any]:
    import dorm
    from dorm.contrib.active_passive import ActivePassiveRouter
    from dorm.db.connection import get_connection, reset_connections
    from dorm.migrations.schema import SchemaEditor
    from dorm.test.postgres import start_cluster

    class Item(dorm.Model):
        name = dorm.CharField(max_length=40)

        class Meta:
            app_label = "bench_routing"

    primary = start_cluster()
    try:
        standby = primary.start_replica()
        try:
            fixed = FixedRouter()
            routed = ActivePassiveRouter(
                aliases=["node_a", "node_b"], sticky_seconds=1.0, max_replica_lag_seconds=30.0
            )
            switch = Switch(fixed)
            dorm.configure(
                DATABASES={
                    "node_a": primary.settings("postgres"),
                    "node_b": standby.settings("postgres"),
                },
                DATABASE_ROUTERS=[switch],
            )
            with SchemaEditor(get_connection("node_a")) as editor:
                editor.create_model(Item)
            Item.objects.using("node_a").bulk_create([Item(name=f"n{i}") for i in range(ROWS)])
            _wait_replayed(Item)
            assert routed.db_for_read(Item) == "node_b"  # probed; sticky window unused
            time.sleep(1.1)
            for target in (fixed, routed):  # warm both paths and the pool
                switch.target = target
                _reads(Item)
            fixed_times: list[float] = []
            routed_times: list[float] = []
            ratios: list[float] = []
            for r in range(ROUNDS):
                order = [(fixed, fixed_times), (routed, routed_times)]
                for target, times in order if r % 2 == 0 else reversed(order):
                    switch.target = target
                    times.append(_reads(Item))
                ratios.append(routed_times[-1] / fixed_times[-1])
            decision = {"fixed": _decisions(fixed, Item), "routed": _decisions(routed, Item)}
            probes = {s.alias: s.probes for s in routed.status()}
            routed.close()
            reset_connections()
        finally:
            standby.stop()
    finally:
        primary.stop()
    return {
        "fixed_rps": READS / statistics.median(fixed_times),
        "routed_rps": READS / statistics.median(routed_times),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "decision": decision,
        "probes": probes,
    }


def main() -> int:
    result = run()
    ratio = result["ratio"]
    verdict = "within target" if ratio <= TARGET else "over target"
    extra = result["decision"]["routed"] - result["decision"]["fixed"]
    per_read = 1e6 / result["fixed_rps"]
    lines = [
        "# dorm-routing: ActivePassiveRouter / fixed-alias router, reads (lower is better)",
        "",
        f"One primary and one streaming standby on loopback; {READS} `get(pk=...)` reads per",
        f"round, {ROUNDS} rounds, order alternating; median of the paired time ratios.",
        "",
        "| measure | fixed | active_passive | ratio | target |",
        "|---|---|---|---|---|",
        f"| reads per second | {result['fixed_rps']:,.0f} | {result['routed_rps']:,.0f} | "
        f"{ratio:.3f}x ({verdict}) | {TARGET:.2f}x |",
        f"| `db_for_read` alone (ns per call) | {result['decision']['fixed']:.0f} | "
        f"{result['decision']['routed']:.0f} | - | - |",
        "",
        f"The routing decision adds {extra:.0f} ns to a read of {per_read:.0f} us: "
        f"{extra / (per_read * 1000) * 100:.2f}% (the paired ratios below also carry the noise",
        "of a shared machine).",
        "",
        "Paired ratios: " + ", ".join(f"{r:.3f}" for r in result["ratios"]),
        "",
        f"Probes during the run: {result['probes']} (the first, then one per 10 s at most;",
        "queries never probe).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "routing.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
