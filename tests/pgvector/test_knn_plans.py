"""k-NN querysets served by dorm-core's expression plans, on SQLite and PostgreSQL.

``order_by(Distance(...))`` with a new vector reuses the compiled statement and binds
the new vector; the answers are checked against brute force for every vector, distance
class, field, value type and direction; bypasses, plugin overrides and resets are too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm import plugins
from dorm.contrib.pgvector import CosineDistance, L2Distance, MaxInnerProduct, VectorField
from dorm.contrib.pgvector import sqlite as sqlite_functions
from dorm.db.connection import reset_connections
from dorm.exceptions import ValidationError
from dorm.plugins import hookimpl
from dorm.sql import expression_plans
from dorm.test import CaptureQueriesContext


class Doc(dorm.Model):
    title = dorm.CharField(max_length=20)
    embedding = VectorField(dimensions=8)
    other = VectorField(dimensions=8)

    class Meta:
        app_label = "pgv_knn_plans"


MODELS = [Doc]
KINDS = {L2Distance: "l2", CosineDistance: "cosine", MaxInnerProduct: "inner_product"}


class CosineByAnotherName(L2Distance):
    """Class data only (operator and function): served by plans, as a cosine distance."""

    pg_operator = "<=>"
    sqlite_function = sqlite_functions.COSINE


class OwnRendering(CosineDistance):
    """Its own rendering methods: compiled every time."""

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return super().as_postgresql(compiler, connection)

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return super().as_sqlite(compiler, connection)


@pytest.fixture(scope="module")
def docs(vdb: Any, ref: Any) -> list[dict[str, Any]]:
    data = ref.dataset()
    others = ref.dataset(seed=99)
    Doc.objects.bulk_create(
        [
            Doc(title=d["title"], embedding=d["embedding"], other=o["embedding"])
            for d, o in zip(data, others, strict=True)
        ]
    )
    for d, o in zip(data, others, strict=True):
        d["other"] = o["embedding"]
    return data


@pytest.fixture
def cold(docs: Any) -> Iterator[list[dict[str, Any]]]:
    expression_plans.clear()
    yield docs
    expression_plans.clear()


def _brute(ref: Any, docs: list[dict[str, Any]], kind: str, q: Any, field: str) -> list[str]:
    scored = sorted((ref.brute[kind](d[field], list(q)), d["title"]) for d in docs)
    return [title for _d, title in scored]


def _knn(cls: type, q: Any, k: int = 5, field: str = "embedding") -> list[str]:
    qs = Doc.objects.order_by(cls(field, q)).values_list("title", flat=True)
    return list(qs[:k])


@pytest.mark.parametrize("cls", [L2Distance, CosineDistance, MaxInnerProduct])
def test_new_vectors_reuse_the_statement_and_find_their_own_neighbours(
    cold: Any, ref: Any, cls: type
) -> None:
    statements = set()
    for seed in range(40, 48):
        q = ref.query_vector(seed=seed)
        with CaptureQueriesContext() as ctx:
            got = _knn(cls, q)
        assert got == _brute(ref, cold, KINDS[cls], q, "embedding")[:5], seed
        (query,) = ctx.captured_queries
        statements.add(query["sql"])
    assert len(statements) == 1
    assert expression_plans.size() == 1


def test_classes_fields_value_types_and_directions_do_not_collide(cold: Any, ref: Any) -> None:
    for seed in (3, 4):
        q = ref.query_vector(seed=seed)
        for cls, kind in KINDS.items():
            for field in ("embedding", "other"):
                assert _knn(cls, q, field=field) == _brute(ref, cold, kind, q, field)[:5]
            assert _knn(cls, tuple(q)) == _brute(ref, cold, kind, q, "embedding")[:5]
        cosine = _brute(ref, cold, "cosine", q, "embedding")
        assert _knn(CosineByAnotherName, q) == cosine[:5]
        assert _knn(OwnRendering, q) == cosine[:5]
        far = Doc.objects.order_by(CosineDistance("embedding", q).desc())
        assert list(far.values_list("title", flat=True)[:3]) == cosine[::-1][:3]
        objs = list(Doc.objects.order_by(L2Distance("other", q))[:3])
        assert [d.title for d in objs] == _brute(ref, cold, "l2", q, "other")[:3]
        assert objs[0].other == ref.f32(
            next(d for d in cold if d["title"] == objs[0].title)["other"]
        )
    # 3 classes x (2 fields + tuples) + the renamed cosine + desc + instances; OwnRendering
    # has none.
    assert expression_plans.size() == 12


def test_a_bad_vector_raises_the_same_error_from_a_plan(cold: Any, ref: Any) -> None:
    with pytest.raises(ValidationError) as compiled:
        _knn(CosineDistance, [1.0] * 7)  # nothing stored yet: the compiler validates
    _knn(CosineDistance, ref.query_vector())
    assert expression_plans.size() == 1
    with pytest.raises(ValidationError) as planned:
        _knn(CosineDistance, [1.0] * 7)  # the plan's binder validates
    assert str(planned.value) == str(compiled.value)
    assert "Doc.embedding: expected 8 dimensions, got 7" in str(planned.value)
    with pytest.raises(ValidationError, match=r"element 2 is nan"):
        _knn(CosineDistance, [1.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 1.0, 1.0])


def test_filtered_and_annotated_k_nn_bypass_the_plans(cold: Any, ref: Any) -> None:
    q = ref.query_vector(seed=8)
    want = _brute(ref, cold, "l2", q, "embedding")
    odd = {d["title"] for d in cold if int(d["title"].split()[1]) % 2}
    for _ in range(2):
        filtered = Doc.objects.filter(title__in=sorted(odd)).order_by(L2Distance("embedding", q))
        assert (
            list(filtered.values_list("title", flat=True)[:4]) == [t for t in want if t in odd][:4]
        )
        annotated = Doc.objects.annotate(d=L2Distance("embedding", q)).order_by("d")
        assert [x.title for x in annotated[:4]] == want[:4]
    assert expression_plans.size() == 0


class CosineMarker:
    """Renders CosineDistance through a plugin override (marked)."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    @hookimpl
    def dorm_register_vendor_sql(self) -> list[tuple[type, str, Any]]:
        def render(node: Any, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
            method = node.as_postgresql if connection.vendor == "postgresql" else node.as_sqlite
            sql, params = method(compiler, connection)
            return f"{sql} /* marked */", params

        return [(CosineDistance, self.vendor, render)]


def test_a_plugin_override_and_a_reset_empty_the_plans(cold: Any, ref: Any, vdb: Any) -> None:
    q = ref.query_vector(seed=12)
    want = _brute(ref, cold, "cosine", q, "embedding")[:5]
    assert _knn(CosineDistance, q) == want
    assert expression_plans.size() == 1
    plugins.register(CosineMarker(vdb.vendor), name="t-knn-marker")
    try:
        for seed in (12, 13):
            v = ref.query_vector(seed=seed)
            with CaptureQueriesContext() as ctx:
                got = _knn(CosineDistance, v)
            assert "/* marked */" in ctx.captured_queries[0]["sql"]
            assert got == _brute(ref, cold, "cosine", v, "embedding")[:5]
    finally:
        plugins.unregister("t-knn-marker")
    with CaptureQueriesContext() as ctx:
        assert _knn(CosineDistance, q) == want
    assert "/* marked */" not in ctx.captured_queries[0]["sql"]
    assert expression_plans.size() == 1
    reset_connections()
    assert expression_plans.size() == 0
    assert _knn(CosineDistance, q) == want
