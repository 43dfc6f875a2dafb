"""OpenTelemetry: one CLIENT span per statement, parented to the caller's span, with the
database semantic-convention attributes and values masked as dorm masks them."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import dorm
from dorm.contrib import prometheus
from dorm.exceptions import IntegrityError


class Account(dorm.Model):
    login = dorm.CharField(max_length=40, unique=True)
    password = dorm.CharField(max_length=80)  # a sensitive column name
    email = dorm.EmailField(pii=True, default="")

    class Meta:
        app_label = "obs_trace"


MODELS = [Account]


def _system(db: Any) -> str:
    return "postgresql" if db.vendor == "postgresql" else "sqlite"


def test_a_span_per_query_with_semantic_convention_attributes(
    clean_tables: Any, spans: Any
) -> None:
    prometheus.install_tracing(spans.provider)
    with spans.tracer.start_as_current_span("request") as parent:
        account = Account.objects.create(login="ada", password="pw")
        found = Account.objects.get(pk=account.pk)
    assert found.login == "ada"
    insert, select = spans.queries()
    for span in (insert, select):
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.context.trace_id == parent.get_span_context().trace_id
        assert span.attributes["db.system.name"] == _system(clean_tables)
        assert span.attributes["db.system"] == _system(clean_tables)
        assert span.attributes["db.collection.name"] == "obs_trace_account"
    expected_namespace = (
        clean_tables.settings["NAME"]
        if clean_tables.vendor == "postgresql"
        else clean_tables.settings["NAME"].rsplit("/", 1)[-1]
    )
    assert select.attributes["db.namespace"] == expected_namespace
    assert insert.attributes["db.operation.name"] == "INSERT"
    assert select.attributes["db.operation.name"] == "SELECT"
    assert select.name == "SELECT obs_trace_account"
    assert select.attributes["db.query.text"].startswith('SELECT "obs_trace_account"')
    if clean_tables.vendor == "postgresql":  # sqlite3 does not count the rows of a SELECT
        assert select.attributes["db.response.returned_rows"] == 1
    assert select.status.status_code is StatusCode.UNSET


def test_query_text_and_parameters_are_masked_as_the_core_masks_them(
    clean_tables: Any, spans: Any
) -> None:
    prometheus.install_tracing(spans.provider, capture_parameters=True)
    Account.objects.create(login="bob", password="hunter2-secret", email="bob@example.org")
    (insert,) = spans.queries()
    shown = [str(v) for v in insert.attributes.values()]
    assert not any("hunter2-secret" in v or "bob@example.org" in v for v in shown), shown
    params = [
        v for k, v in sorted(insert.attributes.items()) if k.startswith("db.query.parameter.")
    ]
    assert "bob" in params and params.count("***") == 2
    # Without capture_parameters no value at all leaves the process.
    prometheus.install_tracing(spans.provider)
    Account.objects.filter(login="bob").update(password="other-secret")
    update = spans.queries()[-1]
    assert not [k for k in update.attributes if k.startswith("db.query.parameter.")]
    assert "other-secret" not in str(dict(update.attributes))


def test_a_failed_statement_ends_its_span_with_an_error(clean_tables: Any, spans: Any) -> None:
    prometheus.install_tracing(spans.provider)
    Account.objects.create(login="dup", password="x")
    with pytest.raises(IntegrityError):
        Account.objects.create(login="dup", password="x")
    failed = spans.queries()[-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "IntegrityError"
    assert [e.name for e in failed.events] == ["exception"]


def test_async_queries_are_parented_to_the_current_span_of_their_task(
    clean_tables: Any, spans: Any
) -> None:
    prometheus.install_tracing(spans.provider)

    async def handler(name: str) -> int:
        with spans.tracer.start_as_current_span(f"task-{name}") as parent:
            await Account.objects.acreate(login=name, password="x")
            await Account.objects.aget(login=name)
            return int(parent.get_span_context().span_id)

    async def main() -> list[int]:
        return list(await asyncio.gather(handler("a"), handler("b"), handler("c")))

    parents = asyncio.run(main())
    queries = spans.queries()
    assert len(queries) == 6
    for parent_id in parents:
        children = [s for s in queries if s.parent is not None and s.parent.span_id == parent_id]
        assert [s.attributes["db.operation.name"] for s in children] == ["INSERT", "SELECT"]


def test_threads_parent_their_queries_to_their_own_spans(clean_tables: Any, spans: Any) -> None:
    prometheus.install_tracing(spans.provider)
    parents: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with spans.tracer.start_as_current_span(name) as parent:
                parents[name] = parent.get_span_context().span_id
                for i in range(5):
                    Account.objects.create(login=f"{name}-{i}", password="x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    queries = spans.queries()
    for name, span_id in parents.items():
        mine = [s for s in queries if s.parent is not None and s.parent.span_id == span_id]
        assert len(mine) == 5, name
    assert Account.objects.count() == 20


def test_install_tracing_rejects_a_wrong_provider() -> None:
    with pytest.raises(TypeError, match="TracerProvider, got str"):
        prometheus.install_tracing("otlp")  # type: ignore[arg-type]
