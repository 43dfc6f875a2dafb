"""L2, cosine and inner-product distances in annotate / order_by / filter, checked against a
brute-force computation in Python on a fixed data set, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import CosineDistance, L2Distance, MaxInnerProduct, VectorField
from dorm.exceptions import FieldError, ValidationError


class Point(dorm.Model):
    title = dorm.CharField(max_length=20)
    group = dorm.IntegerField(default=0)
    embedding = VectorField(dimensions=8)

    class Meta:
        app_label = "pgv_distances"


MODELS = [Point]
EXPRESSIONS = {"l2": L2Distance, "cosine": CosineDistance, "inner_product": MaxInnerProduct}


@pytest.fixture(scope="module")
def loaded(vdb: Any, ref: Any) -> Any:
    docs = ref.dataset()
    Point.objects.bulk_create(
        [Point(title=d["title"], group=i % 3, embedding=d["embedding"]) for i, d in enumerate(docs)]
    )
    return vdb, docs


def _reference(ref: Any, docs: list[dict[str, Any]], kind: str, q: list[float]) -> list[Any]:
    scored = sorted((ref.brute[kind](d["embedding"], q), d["title"]) for d in docs)
    # The fixed data set has no near-ties among the first 11: the order is well defined
    # at float32 precision on every backend.
    gaps = [b[0] - a[0] for a, b in zip(scored[:11], scored[1:12], strict=True)]
    assert min(gaps) > 1e-5
    return scored


@pytest.mark.parametrize("kind", ["l2", "cosine", "inner_product"])
def test_order_by_gives_the_exact_nearest_neighbours(loaded: Any, ref: Any, kind: str) -> None:
    _backend, docs = loaded
    q = ref.query_vector()
    expected = _reference(ref, docs, kind, q)
    nearest = Point.objects.order_by(EXPRESSIONS[kind]("embedding", q))[:10]
    assert [p.title for p in nearest] == [title for _d, title in expected[:10]]


@pytest.mark.parametrize("kind", ["l2", "cosine", "inner_product"])
def test_annotate_values_match_python(loaded: Any, ref: Any, kind: str) -> None:
    _backend, docs = loaded
    q = ref.query_vector(seed=11)
    expected = {title: d for d, title in _reference(ref, docs, kind, q)}
    rows = Point.objects.annotate(d=EXPRESSIONS[kind]("embedding", q)).values_list("title", "d")
    got = dict(rows)
    assert set(got) == set(expected)
    for title, value in got.items():
        assert value == pytest.approx(expected[title], rel=1e-5, abs=1e-5)


def test_filter_on_a_distance_and_other_conditions(loaded: Any, ref: Any) -> None:
    _backend, docs = loaded
    q = ref.query_vector(seed=3)
    scored = _reference(ref, docs, "l2", q)
    radius = (scored[14][0] + scored[15][0]) / 2  # halfway between the 15th and 16th
    within = {
        title
        for d, title in scored
        if d < radius
        and docs[int(title.split()[1])]["title"] == title
        and int(title.split()[1]) % 3 == 1
    }
    found = (
        Point.objects.annotate(d=L2Distance("embedding", q))
        .filter(d__lt=radius, group=1)
        .order_by("d")
        .values_list("title", flat=True)
    )
    assert set(found) == within
    assert list(found) == [t for d, t in scored if t in within]


def test_descending_order_and_values(loaded: Any, ref: Any) -> None:
    _backend, docs = loaded
    q = ref.query_vector(seed=5)
    scored = _reference(ref, docs, "cosine", q)
    farthest = Point.objects.annotate(d=CosineDistance("embedding", q)).order_by("-d")[:3]
    assert [p.title for p in farthest] == [t for _d, t in scored[::-1][:3]]


def test_query_vector_is_validated_by_the_field(loaded: Any) -> None:
    with pytest.raises(ValidationError, match=r"Point\.embedding: expected 8 dimensions, got 2"):
        list(Point.objects.order_by(L2Distance("embedding", [1.0, 2.0])))
    with pytest.raises(ValidationError, match=r"Point\.embedding: element 0 is nan"):
        list(Point.objects.annotate(d=L2Distance("embedding", [float("nan")] * 8)))


def test_distance_on_a_non_vector_field_is_refused(loaded: Any) -> None:
    with pytest.raises(FieldError, match=r"L2Distance: .* is not a VectorField \(got CharField\)"):
        list(Point.objects.annotate(d=L2Distance("title", [0.0] * 8)))
    with pytest.raises(TypeError, match="CosineDistance: the query vector is None"):
        CosineDistance("embedding", None)


def test_the_query_vector_is_a_bound_parameter(loaded: Any) -> None:
    backend, _docs = loaded
    qs = Point.objects.annotate(d=L2Distance("embedding", [0.25] * 8)).order_by("d")
    sql, params = qs.query.get_compiler(using="default").as_sql()
    assert "0.25" not in sql
    assert any(str(p).startswith("[0.25,") for p in params)
    if backend.vendor == "postgresql":
        assert "<->" in sql and "AS vector" in sql
    else:
        assert "vec_distance_l2(" in sql


def test_the_same_query_shape_with_new_vectors_gives_new_answers(loaded: Any, ref: Any) -> None:
    """Compiled SQL may be reused across calls; the bound vector must never be."""
    _backend, docs = loaded
    for seed in range(20, 26):
        q = ref.query_vector(seed=seed)
        expected = _reference(ref, docs, "l2", q)
        nearest = Point.objects.order_by(L2Distance("embedding", q)).values_list("title", flat=True)
        assert list(nearest[:5]) == [t for _d, t in expected[:5]], seed
