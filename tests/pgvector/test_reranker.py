"""rerank(): nearest candidates by vector fused with the text rank, in one statement; the
result is checked against a brute-force computation in Python on the fixed data set."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import (
    CosineDistance,
    HnswIndex,
    SearchVectorField,
    TextRank,
    VectorField,
)
from dorm.contrib.pgvector.reranker import rerank
from dorm.db.connection import get_connection
from dorm.exceptions import FieldError, ValidationError
from dorm.test import assert_num_queries


class Document(dorm.Model):
    title = dorm.CharField(max_length=20)
    body = dorm.TextField()
    group = dorm.IntegerField(default=0)
    embedding = VectorField(dimensions=8)
    search_vector = SearchVectorField(source_fields=["title", "body"])

    class Meta:
        app_label = "pgv_rerank"
        indexes = [
            HnswIndex(name="pgv_rerank_hnsw", fields=["embedding"], opclasses=["vector_cosine_ops"])
        ]


class Scored(dorm.Model):
    score = dorm.FloatField()
    embedding = VectorField(dimensions=8)
    search_vector = SearchVectorField(source_fields=["score"])

    class Meta:
        app_label = "pgv_rerank"


MODELS = [Document]


@pytest.fixture(scope="module")
def loaded(vdb: Any, ref: Any) -> Any:
    docs = ref.dataset()
    Document.objects.bulk_create(
        [
            Document(title=d["title"], body=d["body"], group=i % 2, embedding=d["embedding"])
            for i, d in enumerate(docs)
        ]
    )
    pks = dict(Document.objects.values_list("title", "pk"))
    return vdb, docs, pks


def brute_force(
    ref: Any,
    docs: list[dict[str, Any]],
    pks: dict[str, int],
    text_ranks: dict[str, float],
    *,
    q: list[float],
    candidates: int,
    weight: float,
    mode: str,
    limit: int | None,
    distance: str = "cosine",
    rrf_k: int = 60,
    only: Any = None,
) -> list[tuple[str, float]]:
    """The fusion computed in Python: distances by brute force, text ranks as given."""
    pool = [d for i, d in enumerate(docs) if only is None or only(i)]
    near = sorted(pool, key=lambda d: (ref.brute[distance](d["embedding"], q), pks[d["title"]]))
    cand = [(d["title"], ref.brute[distance](d["embedding"], q)) for d in near[:candidates]]
    dists = [d for _t, d in cand]
    dmin, dmax = min(dists), max(dists)
    tmax = max(text_ranks[t] for t, _d in cand)
    by_text = sorted(cand, key=lambda c: (-text_ranks[c[0]], pks[c[0]]))
    tpos = {t: i for i, (t, _d) in enumerate(by_text, 1)}
    scores = []
    for vpos, (title, d) in enumerate(cand, 1):
        tr = text_ranks[title]
        if mode == "weighted":
            v = (dmax - d) / (dmax - dmin) if dmax > dmin else 1.0
            t = tr / tmax if tmax > 0 else 0.0
            score = weight * v + (1 - weight) * t
        else:
            score = weight / (rrf_k + vpos) + (1 - weight) * (
                1 / (rrf_k + tpos[title]) if tr > 0 else 0.0
            )
        scores.append((title, score))
    scores.sort(key=lambda s: (-s[1], pks[s[0]]))
    ordered = scores[: limit or candidates]
    gaps = [a[1] - b[1] for a, b in zip(ordered, ordered[1:], strict=False)]
    assert not gaps or min(gaps) > 2e-6  # no near-ties: the order is well defined
    return ordered


def _text_ranks(query: str) -> dict[str, float]:
    return dict(
        Document.objects.annotate(r=TextRank("search_vector", query)).values_list("title", "r")
    )


CASES = [
    pytest.param("weighted", 40, 0.7, None, "cosine", None, id="weighted-cosine"),
    pytest.param("rrf", 40, 0.7, 15, "cosine", None, id="rrf-cosine"),
    pytest.param("weighted", 25, 0.3, 10, "l2", None, id="weighted-l2"),
    pytest.param("rrf", 30, 0.5, None, "inner_product", None, id="rrf-ip"),
    pytest.param("weighted", 20, 0.7, 8, "cosine", 1, id="weighted-filtered"),
]


@pytest.mark.parametrize(("mode", "candidates", "weight", "limit", "distance", "group"), CASES)
def test_fusion_matches_brute_force(
    loaded: Any,
    ref: Any,
    mode: str,
    candidates: int,
    weight: float,
    limit: Any,
    distance: str,
    group: Any,
) -> None:
    _backend, docs, pks = loaded
    q, text = ref.query_vector(), "machine learning"
    queryset = Document.objects.filter(group=group) if group is not None else None
    with assert_num_queries(1):
        got = rerank(
            Document,
            vector_field="embedding",
            text_field_tsv="search_vector",
            query_vector=q,
            query_text=text,
            candidates=candidates,
            weight_vector=weight,
            mode=mode,
            limit=limit,
            distance=distance,
            queryset=queryset,
        )
    only = (lambda i: i % 2 == group) if group is not None else None
    expected = brute_force(
        ref,
        docs,
        pks,
        _text_ranks(text),
        q=q,
        candidates=candidates,
        weight=weight,
        mode=mode,
        limit=limit,
        distance=distance,
        only=only,
    )
    assert [d.title for d in got] == [t for t, _s in expected]
    for doc, (_title, score) in zip(got, expected, strict=True):
        assert doc.score == pytest.approx(score, rel=1e-5, abs=1e-6)
    assert any(d.text_rank > 0 for d in got) and any(d.text_rank == 0 for d in got)
    first = got[0]
    assert (
        isinstance(first, Document)
        and first.embedding == docs[int(first.title.split()[1])]["embedding"]
    )
    assert first.vector_distance == pytest.approx(
        ref.brute[distance](first.embedding, q), rel=1e-5, abs=1e-6
    )
    if group is not None:
        assert {d.group for d in got} == {group}


def test_text_changes_the_order_only_through_its_weight(loaded: Any, ref: Any) -> None:
    q = ref.query_vector()
    kwargs: dict[str, Any] = dict(
        vector_field="embedding",
        text_field_tsv="search_vector",
        query_vector=q,
        query_text="graph database",
        candidates=30,
    )
    pure_vector = rerank(Document, weight_vector=1.0, **kwargs)
    nearest = Document.objects.order_by(CosineDistance("embedding", q))[:30]
    assert [d.title for d in pure_vector] == [d.title for d in nearest]
    pure_text = rerank(Document, weight_vector=0.0, **kwargs)
    ranks = [d.text_rank for d in pure_text]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"vector_field": "nope"}, FieldError, "Document has no field 'nope' \\(vector_field\\)"),
        (
            {"vector_field": "body"},
            FieldError,
            "Document.body \\(vector_field\\) is a TextField, not a VectorField",
        ),
        ({"text_field_tsv": "embedding"}, FieldError, "is a VectorField, not a SearchVectorField"),
        ({"candidates": 0}, ValueError, "candidates must be a positive int, got 0"),
        ({"weight_vector": 1.5}, ValueError, "weight_vector must be between 0 and 1, got 1.5"),
        ({"mode": "sum"}, ValueError, "mode must be 'weighted' or 'rrf', got 'sum'"),
        ({"limit": -1}, ValueError, "limit must be a positive int or None, got -1"),
        ({"distance": "hamming"}, ValueError, "distance must be one of cosine, inner_product, l2"),
        ({"rrf_k": -1}, ValueError, "rrf_k must be a non-negative int"),
        (
            {"query_vector": [1.0] * 3},
            ValidationError,
            "Document.embedding: expected 8 dimensions, got 3",
        ),
        ({"query_text": None}, TypeError, "query_text must be a str, got NoneType"),
        (
            {"queryset": Scored.objects.all()},
            ValueError,
            "queryset= must be a QuerySet of Document",
        ),
    ],
)
def test_bad_arguments_are_refused(
    loaded: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    arguments: dict[str, Any] = dict(
        vector_field="embedding",
        text_field_tsv="search_vector",
        query_vector=[0.5] * 8,
        query_text="graph",
    )
    arguments.update(kwargs)
    with assert_num_queries(0), pytest.raises(error, match=message):
        rerank(Document, **arguments)


def test_a_model_with_a_score_field_is_refused() -> None:
    with pytest.raises(FieldError, match="Scored has a field named 'score', which rerank sets"):
        rerank(
            Scored,
            vector_field="embedding",
            text_field_tsv="search_vector",
            query_vector=[0.0] * 8,
            query_text="x",
        )
    with pytest.raises(TypeError, match="model must be a dorm Model class"):
        rerank(
            "Document",
            vector_field="embedding",
            text_field_tsv="search_vector",
            query_vector=[0.0] * 8,
            query_text="x",
        )


def test_the_candidate_step_is_served_by_the_hnsw_index(loaded: Any, ref: Any) -> None:
    backend, _docs, _pks = loaded
    if backend.vendor != "postgresql":
        pytest.skip("vector indexes exist on PostgreSQL only")
    with assert_num_queries(1) as ctx:
        rerank(
            Document,
            vector_field="embedding",
            text_field_tsv="search_vector",
            query_vector=ref.query_vector(),
            query_text="graph",
            candidates=10,
        )
    statement = ctx[0]
    conn = get_connection()
    with dorm.transaction.atomic():
        conn.execute("SET LOCAL enable_seqscan = off", [])
        plan = "\n".join(
            r[0] for r in conn.fetchall("EXPLAIN " + statement["sql"], statement["params"])
        )
    assert "Index Scan using pgv_rerank_hnsw" in plan


def test_an_hnsw_scan_caps_candidates_at_ef_search(loaded: Any, ref: Any) -> None:
    """What docs/vectors.md warns about: raise hnsw.ef_search to get every candidate."""
    backend, _docs, _pks = loaded
    if backend.vendor != "postgresql":
        pytest.skip("vector indexes exist on PostgreSQL only")
    conn = get_connection()
    kwargs: dict[str, Any] = dict(
        vector_field="embedding",
        text_field_tsv="search_vector",
        query_vector=ref.query_vector(),
        query_text="graph",
        candidates=60,
    )
    with dorm.transaction.atomic():
        conn.execute("SET LOCAL enable_seqscan = off", [])
        capped = rerank(Document, **kwargs)
        conn.execute("SET LOCAL hnsw.ef_search = 60", [])
        full = rerank(Document, **kwargs)
    assert (len(capped), len(full)) == (40, 60)
