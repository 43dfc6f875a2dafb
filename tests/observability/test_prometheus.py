"""Prometheus metrics, read back through the text exposition of a real registry."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

import dorm
from dorm import plugins, transaction
from dorm.contrib import prometheus
from dorm.exceptions import IntegrityError
from dorm.test.queries import CaptureQueriesContext


class Gadget(dorm.Model):
    name = dorm.CharField(max_length=40, unique=True)
    size = dorm.IntegerField(default=0)

    class Meta:
        app_label = "obs_prom"


MODELS = [Gadget]


def _statements(captured: CaptureQueriesContext, operation: str) -> int:
    return sum(1 for q in captured.captured_queries if q["sql"].upper().startswith(operation))


def test_queries_counted_and_timed_by_alias_and_operation(
    clean_tables: Any, registry: CollectorRegistry, scrape: Any
) -> None:
    prometheus.install(registry)
    with CaptureQueriesContext() as captured:
        for i in range(3):
            Gadget.objects.create(name=f"g{i}", size=i)
        assert len(list(Gadget.objects.filter(size__gte=1))) == 2
        Gadget.objects.get(name="g0")
        Gadget.objects.filter(name="g1").update(size=10)
    inserts, selects = _statements(captured, "INSERT"), _statements(captured, "SELECT")
    assert (inserts, selects) == (3, 2)
    assert scrape.value("dorm_queries_total", alias="default", operation="insert") == inserts
    assert scrape.value("dorm_queries_total", alias="default", operation="select") == selects
    assert scrape.value("dorm_queries_total", alias="default", operation="update") == 1
    count = scrape.value("dorm_query_duration_seconds_count", alias="default", operation="select")
    assert count == selects
    assert scrape.value("dorm_query_duration_seconds_sum", alias="default", operation="select") > 0
    inf = scrape.value(
        "dorm_query_duration_seconds_bucket", alias="default", operation="insert", le="+Inf"
    )
    assert inf == inserts
    assert scrape.value("dorm_query_errors_total", alias="default", operation="insert") == 0


def test_failed_statements_are_counted_as_errors(
    clean_tables: Any, registry: CollectorRegistry, scrape: Any
) -> None:
    prometheus.install(registry)
    Gadget.objects.create(name="twice")
    with pytest.raises(IntegrityError):
        Gadget.objects.create(name="twice")
    assert scrape.value("dorm_query_errors_total", alias="default", operation="insert") == 1
    assert scrape.value("dorm_queries_total", alias="default", operation="insert") == 2


def test_transaction_duration_by_outcome_outermost_blocks_only(
    clean_tables: Any, registry: CollectorRegistry, scrape: Any
) -> None:
    prometheus.install(registry)
    with transaction.atomic():
        Gadget.objects.create(name="kept")
        with transaction.atomic():  # a savepoint: part of the transaction, not counted
            Gadget.objects.create(name="nested")
    with pytest.raises(RuntimeError), transaction.atomic():
        Gadget.objects.create(name="gone")
        raise RuntimeError("roll back")
    labels = {"alias": "default"}
    commit = scrape.value("dorm_transaction_duration_seconds_count", outcome="commit", **labels)
    rollback = scrape.value("dorm_transaction_duration_seconds_count", outcome="rollback", **labels)
    assert (commit, rollback) == (1, 1)
    assert scrape.value("dorm_transaction_duration_seconds_sum", outcome="commit", **labels) > 0
    assert sorted(g.name for g in Gadget.objects.all()) == ["kept", "nested"]


def test_warmup_gauge_is_recorded_by_warmup_pool_and_awarmup_pool(
    clean_tables: Any, registry: CollectorRegistry, scrape: Any
) -> None:
    prometheus.install(registry)
    seconds = dorm.warmup_pool(target=1)
    assert scrape.value("dorm_pool_warmup_seconds", alias="default") == pytest.approx(seconds)

    async def warm() -> float:
        return float(await dorm.awarmup_pool(target=1))

    async_seconds = asyncio.run(warm())
    assert scrape.value("dorm_pool_warmup_seconds", alias="default") == pytest.approx(async_seconds)


def test_warmup_gauge_goes_to_the_default_registry_without_install(clean_tables: Any) -> None:
    assert prometheus.installed() is None
    seconds = dorm.warmup_pool(target=1)
    assert REGISTRY.get_sample_value("dorm_pool_warmup_seconds", {"alias": "default"}) == (
        pytest.approx(seconds)
    )


def test_install_without_registry_uses_the_default_one_and_is_idempotent(
    clean_tables: Any,
) -> None:
    metrics = prometheus.install()
    assert prometheus.install() is metrics and metrics.registry is REGISTRY
    labels = {"alias": "default", "operation": "select"}
    before = REGISTRY.get_sample_value("dorm_queries_total", labels) or 0.0
    list(Gadget.objects.all())
    assert REGISTRY.get_sample_value("dorm_queries_total", labels) == before + 1
    prometheus.uninstall()
    list(Gadget.objects.all())
    assert REGISTRY.get_sample_value("dorm_queries_total", labels) == before + 1


def test_an_installed_but_unused_plugin_observes_no_query(registry: CollectorRegistry) -> None:
    prometheus.install(registry)
    prometheus.install_tracing()
    names = {
        plugins.get_plugin_manager().get_name(p) for p in plugins.get_plugin_manager().get_plugins()
    }
    assert {n for n in names if n and n.startswith("observability.")}
    prometheus.uninstall()
    prometheus.uninstall_tracing()
    names = {
        plugins.get_plugin_manager().get_name(p) for p in plugins.get_plugin_manager().get_plugins()
    }
    assert not {n for n in names if n and n.startswith("observability.")}
    assert "dorm_pre_query" not in plugins.hooks_of("observability")
    assert "dorm_post_query" not in plugins.hooks_of("observability")


def test_names_and_labels_follow_prometheus_conventions(
    clean_tables: Any, registry: CollectorRegistry, scrape: Any
) -> None:
    prometheus.install(registry)
    Gadget.objects.create(name="x")
    with transaction.atomic():
        list(Gadget.objects.all())
    dorm.warmup_pool(target=1)
    types = scrape.families()
    assert types["dorm_queries"] == "counter" and types["dorm_query_errors"] == "counter"
    assert types["dorm_query_duration_seconds"] == "histogram"
    assert types["dorm_transaction_duration_seconds"] == "histogram"
    assert types["dorm_pool_warmup_seconds"] == "gauge"
    assert types["dorm_pool_connections_in_use"] == "gauge"
    assert types["dorm_pool_connections_idle"] == "gauge"
    for (name, labels), _value in scrape.samples().items():
        assert re.fullmatch(r"dorm_[a-z_]+", name), name
        if types.get(name.removesuffix("_total")) == "counter":
            assert name.endswith(("_total", "_created")), name
        for label, _v in labels:
            assert re.fullmatch(r"[a-z_]+", label) and not label.startswith("__"), label


def test_install_rejects_what_is_not_a_registry() -> None:
    with pytest.raises(TypeError, match="CollectorRegistry, got str"):
        prometheus.install("default")  # type: ignore[arg-type]


def test_pool_gauges_report_connections_in_use_and_idle(
    clean_tables: Any, registry: CollectorRegistry, scrape: Any
) -> None:
    if clean_tables.vendor != "postgresql":
        pytest.skip("SQLite has no connection pool (one connection per thread): no pool gauges")
    prometheus.install(registry)
    dorm.warmup_pool(target=2)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            Gadget.objects.create(name="held")
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        assert inside.wait(10)
        assert scrape.value("dorm_pool_connections_in_use", alias="default", api="sync") == 1
        assert scrape.value("dorm_pool_connections_idle", alias="default", api="sync") >= 1
    finally:
        release.set()
        worker.join(10)
    assert scrape.value("dorm_pool_connections_in_use", alias="default", api="sync") == 0
    assert scrape.value("dorm_pool_connections_idle", alias="default", api="sync") >= 2

    async def in_async_transaction() -> float:
        async with transaction.aatomic():
            await Gadget.objects.acreate(name="async")
            return scrape.value("dorm_pool_connections_in_use", alias="default", api="async")

    assert asyncio.run(in_async_transaction()) == 1


def test_counts_from_concurrent_and_finished_threads_are_all_kept(
    clean_tables: Any, registry: CollectorRegistry, scrape: Any
) -> None:
    """Each thread counts in cells of its own; a finished thread's counts are folded into
    a shared total, so a scrape sees every statement, exactly once."""
    import gc

    prometheus.install(registry)
    Gadget.objects.create(name="one")
    barrier = threading.Barrier(6)

    def reads() -> None:
        barrier.wait(10)
        for _ in range(40):
            Gadget.objects.filter(name="one").exists()

    threads = [threading.Thread(target=reads) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    del threads
    gc.collect()
    labels = {"alias": "default", "operation": "select"}
    assert scrape.value("dorm_queries_total", **labels) == 240
    assert scrape.value("dorm_query_duration_seconds_count", **labels) == 240
    metrics = prometheus.installed()
    assert metrics is not None and len(metrics.queries._live) <= 2  # this thread (and none)
    list(Gadget.objects.all())  # counting goes on after the merge
    assert scrape.value("dorm_queries_total", **labels) == 241
