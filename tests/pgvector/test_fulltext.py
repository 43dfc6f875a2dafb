"""SearchVectorField kept up to date from its source fields by the database, and TextRank."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import SearchVectorField, TextRank
from dorm.contrib.pgvector.fulltext import fts_query
from dorm.db.connection import get_connection
from dorm.migrations.schema import SchemaEditor


class Article(dorm.Model):
    title = dorm.CharField(max_length=50)
    body = dorm.TextField(default="")
    search_vector = SearchVectorField(source_fields=["title", "body"])

    class Meta:
        app_label = "pgv_fulltext"


MODELS = [Article]


@pytest.fixture
def rows(vdb: Any) -> Any:
    yield vdb
    Article.objects.all().delete()


def _matching(query: str) -> list[str]:
    ranked = (
        Article.objects.annotate(r=TextRank("search_vector", query))
        .filter(r__gt=0)
        .order_by("-r", "pk")
    )
    return [a.title for a in ranked]


def _stored_document(backend: Any, pk: int) -> str | None:
    conn = get_connection()
    if backend.vendor == "postgresql":
        row = conn.fetchone(
            'SELECT search_vector::text FROM "pgv_fulltext_article" WHERE id = %s', [pk]
        )
    else:
        row = conn.fetchone(
            'SELECT document FROM "pgv_fulltext_article_search_vector_fts" WHERE rowid = ?', [pk]
        )
    return None if row is None else row[0]


def test_every_write_path_keeps_the_column_current(rows: Any) -> None:
    a = Article.objects.create(title="Vector search", body="with learning machines")
    Article.objects.bulk_create([Article(title="cooking"), Article(title="graph database")])
    doc = _stored_document(rows, a.pk)
    if rows.vendor == "postgresql":
        assert doc == "'learn':4 'machin':5 'search':2 'vector':1"
    else:
        assert doc == "Vector search with learning machines"
    assert _matching("machine learning") == ["Vector search"]
    a.body = "nothing"
    a.save()
    assert _matching("machine learning") == []
    Article.objects.filter(title="cooking").update(body="machine learning recipes")
    assert _matching("learning machine") == ["cooking"]
    Article.objects.filter(title="cooking").delete()
    assert _matching("learning") == []
    assert _stored_document(rows, a.pk) is not None
    a.delete()
    assert _stored_document(rows, a.pk) is None


def test_raw_sql_writes_are_indexed_too(rows: Any) -> None:
    conn = get_connection()
    ph = conn.ops.placeholder
    conn.execute(
        f'INSERT INTO "pgv_fulltext_article" (title, body) VALUES ({ph}, {ph})',
        ["raw insert", "graph databases"],
    )
    assert _matching("graph database") == ["raw insert"]
    conn.execute(f'UPDATE "pgv_fulltext_article" SET body = {ph}', ["nothing"])
    assert _matching("graph") == []


def test_rank_orders_by_how_well_the_text_matches(rows: Any, ref: Any) -> None:
    docs = ref.dataset()
    Article.objects.bulk_create([Article(title=d["title"], body=d["body"]) for d in docs])
    for query in ("machine learning", "graph", "vector index query"):
        words = set(query.split())
        expected = {d["title"] for d in docs if words <= set(d["body"].split())}
        assert expected, query  # the data set has matches for each query
        assert set(_matching(query)) == expected
    Article.objects.bulk_create(
        [Article(title="once", body="graph"), Article(title="thrice", body="graph graph graph")]
    )
    ranks = dict(
        Article.objects.filter(title__in=["once", "thrice", "doc 0"])
        .annotate(r=TextRank("search_vector", "graph"))
        .values_list("title", "r")
    )
    assert ranks["thrice"] > ranks["once"] > 0
    assert ranks["doc 0"] == (0.0 if "graph" not in docs[0]["body"].split() else ranks["doc 0"])


@pytest.mark.parametrize("query", ['machine" OR "x', "NEAR(machine learning)", "a*b - c:d ^e", ""])
def test_query_text_is_words_never_syntax(rows: Any, query: str) -> None:
    Article.objects.create(title="t", body="machine learning x")
    result = _matching(query)
    assert result in ([], ["t"])
    if not query:
        assert result == []


def test_fts_query_quotes_every_word() -> None:
    assert fts_query('say "hi" OR bye') == '"say" "hi" "OR" "bye"'
    assert fts_query("  --  ") is None


def test_a_table_rebuild_keeps_the_triggers(rows: Any) -> None:
    old = Article._meta.get_field("title")
    new = dorm.CharField(max_length=80)
    new.set_attributes_from_name("title")
    new.model = Article
    with SchemaEditor() as editor:
        editor.alter_field(Article, old, new)  # SQLite rebuilds the table
    try:
        Article.objects.create(title="after rebuild", body="graph")
        assert _matching("graph") == ["after rebuild"]
    finally:
        with SchemaEditor() as editor:
            editor.alter_field(Article, new, old)


def test_declaration_errors() -> None:
    with pytest.raises(ValueError, match="source_fields must be a non-empty list"):
        SearchVectorField(source_fields="title")
    with pytest.raises(
        ValueError,
        match=r"config must be a text search configuration name .* "
        r"got \"english'; drop\"",
    ):
        SearchVectorField(source_fields=["a"], config="english'; drop")
    with pytest.raises(TypeError, match="TextRank: the query must be a str, got int"):
        TextRank("search_vector", 3)  # type: ignore[arg-type]
