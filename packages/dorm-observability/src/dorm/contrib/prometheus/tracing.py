"""OpenTelemetry spans for dorm statements, named and attributed by the database conventions.

``install_tracing()`` registers observer hooks that open a CLIENT span when a statement
is sent (``dorm_pre_query``) and end it when it finishes (``dorm_post_query``). The span is
a child of whatever span is current in the caller's context: a thread's, or an asyncio
task's (the async API runs its statements in that task's context). Attributes follow the
OpenTelemetry database semantic conventions: ``db.system.name`` (and the older
``db.system``), ``db.namespace``, ``db.operation.name``, ``db.collection.name``,
``db.query.text`` and, for a SELECT whose driver tells the row count (PostgreSQL),
``db.response.returned_rows``. The query text is dorm's SQL with its
placeholders, so it never holds a value; ``capture_parameters=True`` adds
``db.query.parameter.<n>`` with the values masked exactly as dorm masks them in logs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from dorm import plugins
from dorm.contrib.prometheus.sqlinfo import statement_info

__all__ = ["QueryTracer", "install_tracing", "tracing_installed", "uninstall_tracing"]

_SYSTEMS = {"postgresql": "postgresql", "sqlite": "sqlite"}
# The spans opened by dorm_pre_query and not ended yet, innermost last (per thread / task).
_open: ContextVar[tuple[Any, ...]] = ContextVar("dorm_query_spans", default=())


class QueryTracer:
    """The hook object ``install_tracing`` registers."""

    def __init__(self, tracer: trace.Tracer, capture_parameters: bool) -> None:
        self.tracer = tracer
        self.capture_parameters = capture_parameters
        self._namespaces: dict[str, tuple[Any, str]] = {}

    def _namespace(self, alias: str) -> str:
        from dorm.conf import settings

        config = settings.DATABASES.get(alias, {})
        found = self._namespaces.get(alias)
        # Keyed on the alias's settings dict too: a reconfigured alias gets its new name.
        if found is None or found[0] is not config:
            name = str(config.get("NAME", "") or alias)
            if config.get("ENGINE") == "sqlite":
                name = os.path.basename(name) or name  # a file path says more than needed
            found = self._namespaces[alias] = (config, name)
        return found[1]

    @plugins.hookimpl
    def dorm_pre_query(self, alias: str, vendor: str, sql: str, params: Sequence[object]) -> None:
        info = statement_info(sql)
        system = _SYSTEMS.get(vendor, vendor)
        namespace = self._namespace(alias)
        attributes: dict[str, Any] = {
            "db.system.name": system,
            "db.system": system,
            "db.namespace": namespace,
            "db.operation.name": info.operation,
            "db.query.text": sql,
        }
        if info.collection:
            attributes["db.collection.name"] = info.collection
            name = f"{info.operation} {info.collection}"
        else:
            name = f"{info.operation} {namespace}"
        if self.capture_parameters:
            for i, value in enumerate(params):
                attributes[f"db.query.parameter.{i}"] = str(value)
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        _open.set((*_open.get(), (span, info.operation == "SELECT")))

    @plugins.hookimpl
    def dorm_post_query(self, rowcount: int, error: BaseException | None) -> None:
        spans = _open.get()
        if not spans:
            return
        span, is_select = spans[-1]
        _open.set(spans[:-1])
        if error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        elif is_select and rowcount >= 0:
            span.set_attribute("db.response.returned_rows", rowcount)
        span.end()


_lock = threading.Lock()
_active: QueryTracer | None = None


def install_tracing(
    tracer_provider: trace.TracerProvider | None = None, *, capture_parameters: bool = False
) -> QueryTracer:
    """Open a span for every dorm statement; replaces an earlier ``install_tracing``.

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace``).
    """
    global _active
    if tracer_provider is not None and not isinstance(tracer_provider, trace.TracerProvider):
        raise TypeError(
            f"install_tracing(tracer_provider=...): expected an opentelemetry TracerProvider, "
            f"got {type(tracer_provider).__name__}"
        )
    from dorm.contrib.prometheus import __version__

    tracer = trace.get_tracer("dorm", __version__, tracer_provider=tracer_provider)
    with _lock:
        if _active is not None and plugins.get_plugin_manager().is_registered(_active):
            plugins.unregister(_active)
        _active = QueryTracer(tracer, capture_parameters)
        plugins.register(_active, name=f"observability.tracing.{id(_active)}")
        return _active


def uninstall_tracing() -> None:
    """Stop opening spans for statements."""
    global _active
    with _lock:
        if _active is not None and plugins.get_plugin_manager().is_registered(_active):
            plugins.unregister(_active)
        _active = None


def tracing_installed() -> bool:
    active = _active
    return active is not None and plugins.get_plugin_manager().is_registered(active)
