"""The async API: distance querysets and ``arerank`` on the async connections (asyncpg on
PostgreSQL, SQLite's thread I/O), with the same answers as the sync API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import L2Distance, SearchVectorField, TextRank, VectorField
from dorm.contrib.pgvector.reranker import arerank, rerank
from dorm.exceptions import ValidationError


class Note(dorm.Model):
    title = dorm.CharField(max_length=20)
    body = dorm.TextField()
    embedding = VectorField(dimensions=8)
    search_vector = SearchVectorField(source_fields=["body"])

    class Meta:
        app_label = "pgv_async"


MODELS = [Note]


@pytest.fixture(scope="module")
def loaded(vdb: Any, ref: Any) -> Any:
    docs = ref.dataset(n=40, seed=99)
    Note.objects.bulk_create(
        [Note(title=d["title"], body=d["body"], embedding=d["embedding"]) for d in docs]
    )
    return vdb, docs


def test_async_queries_and_arerank_match_the_sync_api(loaded: Any, ref: Any) -> None:
    _backend, docs = loaded
    q = ref.query_vector(seed=4)
    kwargs: dict[str, Any] = dict(
        vector_field="embedding",
        text_field_tsv="search_vector",
        query_vector=q,
        query_text="vector search",
        candidates=25,
        mode="rrf",
        limit=10,
    )

    async def run() -> tuple[list[Any], list[Any], Any]:
        created = await Note.objects.acreate(title="async", body="vector search", embedding=q)
        nearest = [
            (n.title, n.d, n.r)
            async for n in Note.objects.annotate(
                d=L2Distance("embedding", q), r=TextRank("search_vector", "vector search")
            ).order_by("d")[:5]
        ]
        hits = await arerank(Note, **kwargs)
        await created.adelete()
        return nearest, hits, created

    nearest, hits, created = asyncio.run(run())
    assert nearest[0][:2] == ("async", pytest.approx(0.0, abs=1e-6)) and nearest[0][2] > 0
    expected = sorted((ref.brute["l2"](d["embedding"], q), d["title"]) for d in docs)[:4]
    assert [t for t, _d, _r in nearest[1:]] == [t for _d, t in expected]
    # The async row was the best hit while it existed; rerank now agrees with the rest.
    assert hits[0].title == "async" and hits[0].score > hits[1].score
    again = rerank(Note, **kwargs)
    assert [h.title for h in hits[1:]] == [h.title for h in again][:9]


def test_async_validation_errors_name_the_field(loaded: Any) -> None:
    async def run() -> None:
        await arerank(
            Note,
            vector_field="embedding",
            text_field_tsv="search_vector",
            query_vector=[1.0],
            query_text="x",
        )

    with pytest.raises(ValidationError, match=r"Note\.embedding: expected 8 dimensions, got 1"):
        asyncio.run(run())
