"""Fixtures for the dorm-observability tests: the plugin's hooks, a private metrics
registry, an in-memory span exporter, and every feature switched off after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dorm.contrib.plan_drift import plugin as observability_plugin


@pytest.fixture(autouse=True)
def observability_registered(register_plugin: Callable[[Any, str], None]) -> Iterator[None]:
    """The plugin's static hooks for every test; the switchable features off afterwards."""
    register_plugin(observability_plugin, "observability")
    yield
    from dorm.contrib import prometheus, slow_tx

    prometheus.uninstall()
    prometheus.uninstall_tracing()
    slow_tx.uninstall()


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry (tests never write into the process-wide one)."""
    return CollectorRegistry()


class Spans:
    """A real SDK tracer provider whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def finished(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def queries(self) -> list[Any]:
        return [s for s in self.finished() if "db.query.text" in (s.attributes or {})]


@pytest.fixture
def spans() -> Iterator[Spans]:
    found = Spans()
    yield found
    found.provider.shutdown()


class Scraper:
    """Reads a registry back through the Prometheus text exposition, as a scraper does."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = generate_latest(self.registry).decode()
        found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def value(self, name: str, **labels: str) -> float:
        """The sample's value, 0.0 when it is not exposed."""
        return self.samples().get((name, tuple(sorted(labels.items()))), 0.0)

    def families(self) -> dict[str, str]:
        text = generate_latest(self.registry).decode()
        return {f.name: f.type for f in text_string_to_metric_families(text)}


@pytest.fixture
def scrape(registry: CollectorRegistry) -> Scraper:
    return Scraper(registry)
