"""Prometheus metrics of dorm: queries, transactions, pools and pool warm-up.

``install()`` creates the metrics in a registry (the default one unless you pass yours)
and starts recording them through the core's observer hooks; nothing is measured before,
so having the plugin installed costs nothing until then. ``dorm_pool_warmup_seconds`` is
the exception: every ``warmup_pool`` / ``awarmup_pool`` records it (in the default
registry while ``install()`` has not chosen another). Pool gauges are read from the pools
when the registry is scraped, so they cost nothing per query; the per-query metrics are
counted per thread without locks and summed when scraped (see querystats.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dorm import plugins
from dorm.contrib.prometheus.querystats import QueryStats

__all__ = [
    "QUERY_BUCKETS",
    "DormMetrics",
    "install",
    "installed",
    "record_warmup",
    "uninstall",
]

#: Query latencies are mostly well under a millisecond: the default buckets start at 5 ms.
QUERY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class DormMetrics:
    """The metric objects of one registry (see the module docstring for their names)."""

    def __init__(self, registry: CollectorRegistry, warmup: Gauge | None = None) -> None:
        self.registry = registry
        # The per-query metrics: see querystats.py for why they are not Histogram/Counter.
        self.queries = QueryStats(QUERY_BUCKETS)
        registry.register(self.queries)
        self.transaction_duration = Histogram(
            "dorm_transaction_duration_seconds",
            "Wall time of outermost atomic() blocks, by alias and outcome (commit, rollback).",
            ["alias", "outcome"],
            registry=registry,
        )
        self.pool_warmup = warmup or Gauge(
            "dorm_pool_warmup_seconds",
            "Seconds the last warmup_pool / awarmup_pool of the alias took.",
            ["alias"],
            registry=registry,
        )
        self.pools = PoolCollector()
        registry.register(self.pools)

    # The observer hooks (registered by install(); methods so that pluggy binds them).

    @plugins.hookimpl
    def dorm_post_query(
        self, alias: str, sql: str, duration: float, error: BaseException | None
    ) -> None:
        self.queries.observe(alias, sql, duration, error is not None)

    @plugins.hookimpl
    def dorm_transaction_committed(self, alias: str, savepoint: bool, duration: float) -> None:
        if not savepoint:
            self.transaction_duration.labels(alias, "commit").observe(duration)

    @plugins.hookimpl
    def dorm_transaction_rolled_back(self, alias: str, savepoint: bool, duration: float) -> None:
        if not savepoint:
            self.transaction_duration.labels(alias, "rollback").observe(duration)


class PoolCollector(Collector):
    """``dorm_pool_connections_in_use`` / ``_idle`` {alias, api}, read at scrape time.

    Pools that are not open yet are not reported; SQLite has no pool (one connection per
    thread) and is not reported either.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use = GaugeMetricFamily(
            "dorm_pool_connections_in_use",
            "Connections of the alias's pool checked out now.",
            labels=["alias", "api"],
        )
        idle = GaugeMetricFamily(
            "dorm_pool_connections_idle",
            "Open connections of the alias's pool waiting to be used.",
            labels=["alias", "api"],
        )
        for alias, api, busy, free in pool_stats():
            in_use.add_metric([alias, api], busy)
            idle.add_metric([alias, api], free)
        yield in_use
        yield idle

    def describe(self) -> list[Any]:
        # Describing without collecting: registering must not touch the pools.
        return [
            GaugeMetricFamily("dorm_pool_connections_in_use", "", labels=["alias", "api"]),
            GaugeMetricFamily("dorm_pool_connections_idle", "", labels=["alias", "api"]),
        ]


def pool_stats() -> list[tuple[str, str, int, int]]:
    """``(alias, api, in_use, idle)`` of every open pool; opens nothing."""
    from dorm.db.backends.bridged import AsyncPool
    from dorm.db.connection import connections

    found: list[tuple[str, str, int, int]] = []
    with connections._lock:
        sync = dict(connections._wrappers)
        asyncs = dict(connections._async)
    for alias, wrapper in sorted(sync.items()):
        pool = getattr(getattr(wrapper, "_pools", None), "current", None)
        if pool is not None and hasattr(pool, "get_stats"):
            stats = pool.get_stats()
            size = int(stats.get("pool_size", 0))
            free = int(stats.get("pool_available", 0))
            found.append((alias, "sync", max(size - free, 0), free))
    for alias, api in sorted(asyncs.items()):
        entries = list(getattr(api.bridged, "_pools", {}).values())
        busy = free = 0
        seen = False
        for entry in entries:
            pool = entry
            if hasattr(entry, "done"):  # the task that opens the loop's pool
                if not entry.done() or entry.cancelled() or entry.exception() is not None:
                    continue
                pool = entry.result()
            if isinstance(pool, AsyncPool):
                seen = True
                free += len(pool.idle)
                busy += max(pool.size - len(pool.idle), 0)
        if seen:
            found.append((alias, "async", busy, free))
    return found


_lock = threading.Lock()
_by_registry: dict[int, DormMetrics] = {}
_active: DormMetrics | None = None
_default_warmup: Gauge | None = None


def install(registry: CollectorRegistry | None = None) -> DormMetrics:
    """Record dorm's metrics in ``registry`` (default: prometheus_client's REGISTRY).

    Calling it again with the same registry returns the same metrics; with another
    registry, recording moves there. Returns the metric objects.
    """
    global _active
    target = REGISTRY if registry is None else registry
    if not isinstance(target, CollectorRegistry):
        raise TypeError(
            f"prometheus.install(registry=...): expected a prometheus_client "
            f"CollectorRegistry, got {type(registry).__name__}"
        )
    with _lock:
        metrics = _by_registry.get(id(target))
        if metrics is None or metrics.registry is not target:
            warmup = _default_warmup if target is REGISTRY else None
            metrics = _by_registry[id(target)] = DormMetrics(target, warmup)
        pm = plugins.get_plugin_manager()
        if _active is not None and _active is not metrics and pm.is_registered(_active):
            plugins.unregister(_active)
        if not pm.is_registered(metrics):
            plugins.register(metrics, name=f"observability.prometheus.{id(metrics)}")
        _active = metrics
        return metrics


def uninstall() -> None:
    """Stop recording (the metrics stay in their registry with their last values)."""
    global _active
    with _lock:
        if _active is not None and plugins.get_plugin_manager().is_registered(_active):
            plugins.unregister(_active)
        _active = None


def installed() -> DormMetrics | None:
    """The metrics being recorded now, or None."""
    active = _active
    if active is not None and plugins.get_plugin_manager().is_registered(active):
        return active
    return None


def record_warmup(alias: str, seconds: float) -> None:
    """Set ``dorm_pool_warmup_seconds{alias}`` (called by the plugin's dorm_pool_warmed)."""
    global _default_warmup
    active = installed()
    if active is not None:
        active.pool_warmup.labels(alias).set(seconds)
        return
    with _lock:
        if _default_warmup is None:
            metrics = _by_registry.get(id(REGISTRY))
            _default_warmup = (
                metrics.pool_warmup
                if metrics is not None
                else Gauge(
                    "dorm_pool_warmup_seconds",
                    "Seconds the last warmup_pool / awarmup_pool of the alias took.",
                    ["alias"],
                )
            )
        gauge = _default_warmup
    gauge.labels(alias).set(seconds)
