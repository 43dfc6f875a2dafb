"""docs/vectors.md and the README run as printed; the release note's rerank snippet runs as
written on SQLite and PostgreSQL and gives the brute-force answer."""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "vectors.md"
README = REPO / "packages" / "dorm-pgvector" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)

RELEASE_NOTE = """\
from dorm.contrib.pgvector.reranker import rerank

results = rerank(
    Document,
    vector_field="embedding",
    text_field_tsv="search_vector",
    query_vector=embed("machine learning"),
    query_text="machine learning",
    candidates=200,
    weight_vector=0.7,
)
"""

TEXTS = [
    "machine learning for search",
    "deep learning machine translation",
    "cooking with a machine",
    "learning to cook",
    "vector databases and machine learning",
    "graph query languages",
    "search engines rank documents",
    "learning machine learning",
]


def embed(text: str, dims: int = 16) -> list[float]:
    """A deterministic bag-of-words embedding: each word adds 1 to a hashed dimension."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha1(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = math.hypot(*vector) or 1.0
    return [v / norm for v in vector]


@pytest.fixture
def clean_apps() -> Any:
    yield
    from dorm.apps import apps

    for label in list(apps.all_models):
        if label in ("docs_vectors", "readme", "release_note"):
            apps.clear(label)


@pytest.fixture
def plugin_registered(register_plugin: Any) -> None:
    from dorm.contrib.pgvector import plugin

    register_plugin(plugin, "pgvector")


def test_vectors_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, plugin_registered: Any, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(DOC, "docs_vectors") == 6


def test_readme_example_runs(fresh_settings: Any, clean_apps: Any, plugin_registered: Any) -> None:
    (code,) = [c for lang, c in _FENCE.findall(README.read_text()) if lang == "python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_release_note_snippet_runs_as_written(
    vbackend: Any, fresh_settings: Any, clean_apps: Any, plugin_registered: Any, ref: Any
) -> None:
    """whats-new-4.3, "Tier 9", with only the setup it leaves out (model, embed) added."""
    import dorm
    from dorm.contrib.pgvector import SearchVectorField, TextRank, VectorField
    from dorm.migrations.schema import SchemaEditor

    settings = vbackend.settings
    if vbackend.vendor == "sqlite":
        settings = {"ENGINE": "sqlite", "NAME": tempfile.mkdtemp() + "/note.db"}
    dorm.configure(DATABASES={"default": settings})

    class Document(dorm.Model):
        title = dorm.CharField(max_length=100)
        embedding = VectorField(dimensions=16)
        search_vector = SearchVectorField(source_fields=["title"])

        class Meta:
            app_label = "release_note"

    with SchemaEditor() as editor:
        editor.create_model(Document)
    try:
        Document.objects.bulk_create([Document(title=t, embedding=embed(t)) for t in TEXTS])
        namespace: dict[str, Any] = {"Document": Document, "embed": embed}
        exec(RELEASE_NOTE, namespace)
        results = namespace["results"]
        # Brute force: every row is a candidate (200 > 8); weighted fusion, weight 0.7.
        q = ref.f32(embed("machine learning"))
        dist = {t: ref.brute["cosine"](ref.f32(embed(t)), q) for t in TEXTS}
        ranks = dict(
            Document.objects.annotate(r=TextRank("search_vector", "machine learning")).values_list(
                "title", "r"
            )
        )
        assert {t for t, r in ranks.items() if r > 0} == {
            t for t in TEXTS if {"machine", "learning"} <= set(t.split())
        }
        dmin, dmax, tmax = min(dist.values()), max(dist.values()), max(ranks.values())
        pks = dict(Document.objects.values_list("title", "pk"))
        score = {t: 0.7 * (dmax - dist[t]) / (dmax - dmin) + 0.3 * ranks[t] / tmax for t in TEXTS}
        expected = sorted(TEXTS, key=lambda t: (-round(score[t], 6), pks[t]))
        assert [d.title for d in results] == expected
        for doc in results:
            assert doc.score == pytest.approx(score[doc.title], abs=1e-5)
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(Document)
