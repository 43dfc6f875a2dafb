"""The cost of dorm-observability on core operations: metrics on, tracing on, one run.

``make bench-observability`` (or ``python bench/observability.py``). The plugin is
installed in every mode (its entry point is loaded); the modes differ in what is switched
on:

- ``off``: nothing switched on (the reference);
- ``floor``: a plugin whose ``dorm_post_query`` does nothing: what dorm-core's observed
  statement path (masked parameters, two hook dispatches, a clock) costs any observer,
  before the observer does any work of its own;
- ``metrics``: ``prometheus.install(registry)`` (query counter, duration histogram,
  transaction histogram);
- ``tracing``: ``prometheus.install_tracing(provider)`` with the OpenTelemetry SDK, a
  ``BatchSpanProcessor`` and an exporter that drops the spans (what a production setup
  pays in-process, without the network).

Scenarios: ``get_pk`` (``Model.objects.get(pk=...)``), ``list_100`` (a filter returning
100 rows, materialized) and ``create`` (``Model.objects.create(...)``, autocommit), on
SQLite (a file) and on a throwaway PostgreSQL cluster. Each round runs every mode on the
same batch, in an order that rotates from round to round; the figure is the median over
``ROUNDS`` of the per-round ratio mode / off (1.00 = no overhead). Targets: metrics at
most 1.05, tracing at most 1.15. Results go to ``bench/results/observability.md``.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dorm import plugins

BENCH = Path(__file__).resolve().parent
ROUNDS = 21
BATCH = {"get_pk": 400, "list_100": 60, "create": 300}
TARGETS = {"metrics": 1.05, "tracing": 1.15}
MODES = ("off", "floor", "metrics", "tracing")


def _model() -> Any:
    import dorm

    class Reading(dorm.Model):
        sensor = dorm.CharField(max_length=40)
        bucket = dorm.IntegerField()
        value = dorm.FloatField(default=0.0)

        class Meta:
            app_label = "bench_observability"
            db_table = "bench_observability_reading"

    return Reading


class _DropExporter:
    """A span exporter that accepts and forgets (the SDK's SpanExporter interface)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _Floor:
    """An observer that does nothing (see ``floor`` in the module docstring)."""

    @plugins.hookimpl
    def dorm_post_query(self, alias: str) -> None:
        return None


_FLOOR = _Floor()


def _switch(mode: str, registry: Any, provider: Any) -> None:
    from dorm.contrib import prometheus

    prometheus.uninstall()
    prometheus.uninstall_tracing()
    if plugins.get_plugin_manager().is_registered(_FLOOR):
        plugins.unregister(_FLOOR)
    if mode == "floor":
        plugins.register(_FLOOR, name="bench-floor")
    elif mode == "metrics":
        prometheus.install(registry)
    elif mode == "tracing":
        prometheus.install_tracing(provider)


def _scenarios(model: Any) -> dict[str, Callable[[], Any]]:
    pks = list(model.objects.filter(bucket__lt=50).values_list("pk", flat=True))
    counter = iter(range(10**9))

    def get_pk() -> None:
        for i in range(BATCH["get_pk"]):
            model.objects.get(pk=pks[i % len(pks)])

    def list_100() -> None:
        for i in range(BATCH["list_100"]):
            rows = list(model.objects.filter(bucket=i % 10))
            assert len(rows) == 100

    def create() -> None:
        for _ in range(BATCH["create"]):
            model.objects.create(sensor=f"s{next(counter)}", bucket=1000, value=1.5)

    return {"get_pk": get_pk, "list_100": list_100, "create": create}


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _run_vendor(settings: dict[str, Any], model: Any) -> dict[str, dict[str, float]]:
    """``{scenario: {mode: median ratio, "us_<mode>": median µs per call}}``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from prometheus_client import CollectorRegistry

    import dorm
    from dorm.conf import settings as live
    from dorm.db.connection import get_connection, reset_connections
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(DATABASES={"default": settings})
    with SchemaEditor() as editor:
        editor.create_model(model)
    model.objects.bulk_create(
        [model(sensor=f"r{i}", bucket=i % 10, value=float(i)) for i in range(1000)]
    )
    registry = CollectorRegistry()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DropExporter()))  # type: ignore[arg-type]
    scenarios = _scenarios(model)
    ratios: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODES[1:]} for s in scenarios}
    micros: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODES} for s in scenarios}
    try:
        for name, fn in scenarios.items():
            for mode in MODES:  # warm-up: caches, pools, label children, span machinery
                _switch(mode, registry, provider)
                fn()
            for rnd in range(ROUNDS):
                shift = rnd % len(MODES)
                order = MODES[shift:] + MODES[:shift]
                times: dict[str, float] = {}
                for mode in order:
                    _switch(mode, registry, provider)
                    times[mode] = _timed(fn)
                for mode in MODES[1:]:
                    ratios[name][mode].append(times[mode] / times["off"])
                for mode in MODES:
                    micros[name][mode].append(times[mode] / BATCH[name] * 1e6)
            if name == "create":
                get_connection().execute(
                    'DELETE FROM "bench_observability_reading" WHERE bucket = 1000', ()
                )
    finally:
        _switch("off", registry, provider)
        provider.shutdown()
        with SchemaEditor() as editor:
            editor.delete_model(model)
        reset_connections()
        live._reset()
    found = {s: {m: statistics.median(v) for m, v in modes.items()} for s, modes in ratios.items()}
    for s, modes in micros.items():
        found[s].update({f"us_{m}": statistics.median(v) for m, v in modes.items()})
    return found


def main() -> int:
    from dorm.test.postgres import PgCluster, find_pg_bindir

    model = _model()
    table: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        table["sqlite"] = _run_vendor({"ENGINE": "sqlite", "NAME": str(Path(tmp) / "b.db")}, model)
    bindir = find_pg_bindir()
    if bindir is not None:
        cluster = PgCluster(bindir)
        cluster.start()
        try:
            cluster.create_database("bench_observability")
            table["postgresql"] = _run_vendor(cluster.settings("bench_observability"), model)
        finally:
            cluster.stop()
    else:
        print("no PostgreSQL server binaries: PostgreSQL not measured", file=sys.stderr)
    vendors = list(table)
    lines = [
        "# dorm-observability: time with the feature on / time with it off",
        "",
        f"Median of {ROUNDS} paired rounds; 1.00 = no overhead. Batches: "
        + ", ".join(f"{k} x{v}" for k, v in BATCH.items())
        + ". Tracing: OpenTelemetry SDK, BatchSpanProcessor, spans dropped by the exporter.",
        "",
        "| scenario | mode | target | " + " | ".join(vendors) + " |",
        "|---|---|---|" + "---|" * len(vendors),
    ]
    for scenario in BATCH:
        for mode in MODES[1:]:
            target = TARGETS.get(mode)
            cells = []
            for vendor in vendors:
                ratio = table[vendor][scenario][mode]
                over = target is not None and ratio > target
                cells.append(f"{ratio:.3f}" + (" (over target)" if over else ""))
            shown = "-" if target is None else f"{target:.2f}"
            lines.append(f"| {scenario} | {mode} | {shown} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Median time per call in microseconds (off / floor / metrics / tracing): what each "
        "mode adds in absolute terms.",
        "",
        "| scenario | " + " | ".join(vendors) + " |",
        "|---|" + "---|" * len(vendors),
    ]
    for scenario in BATCH:
        cells = [" / ".join(f"{table[v][scenario][f'us_{m}']:.1f}" for m in MODES) for v in vendors]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "observability.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
