"""Prometheus metrics and OpenTelemetry spans for dorm.

Usage::

    from prometheus_client import CollectorRegistry, generate_latest
    from dorm.contrib import prometheus

    registry = CollectorRegistry()            # or leave it out: the default REGISTRY
    prometheus.install(registry)              # queries, transactions, pools, warm-up
    prometheus.install_tracing()              # one span per statement (global provider)
    ...
    print(generate_latest(registry).decode())

Metrics: ``dorm_queries_total`` and ``dorm_query_errors_total`` {alias, operation},
``dorm_query_duration_seconds`` {alias, operation} (histogram),
``dorm_transaction_duration_seconds`` {alias, outcome}, ``dorm_pool_connections_in_use`` /
``dorm_pool_connections_idle`` {alias, api} and ``dorm_pool_warmup_seconds`` {alias}, which
``warmup_pool`` / ``awarmup_pool`` record even before ``install()``.
"""

from __future__ import annotations

from dorm.contrib.prometheus.metrics import (
    QUERY_BUCKETS,
    DormMetrics,
    install,
    installed,
    pool_stats,
    record_warmup,
    uninstall,
)
from dorm.contrib.prometheus.tracing import (
    QueryTracer,
    install_tracing,
    tracing_installed,
    uninstall_tracing,
)

__version__ = "1.0.0"

__all__ = [
    "QUERY_BUCKETS",
    "DormMetrics",
    "QueryTracer",
    "__version__",
    "install",
    "install_tracing",
    "installed",
    "pool_stats",
    "record_warmup",
    "tracing_installed",
    "uninstall",
    "uninstall_tracing",
]
