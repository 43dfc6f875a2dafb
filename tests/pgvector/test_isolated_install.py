"""dorm-pgvector works in a virtual environment that holds only dorm-core and dorm-pgvector.

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network. Neither numpy nor
sqlite-vec is there: vectors are lists, distances Python functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import tempfile
import dorm
from dorm.contrib.pgvector import L2Distance, SearchVectorField, VectorField
from dorm.contrib.pgvector.reranker import rerank
from dorm.migrations.schema import SchemaEditor

class Doc(dorm.Model):
    title = dorm.CharField(max_length=20)
    embedding = VectorField(dimensions=2)
    search_vector = SearchVectorField(source_fields=["title"])
    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    editor.create_model(Doc)
Doc.objects.bulk_create([Doc(title="red apple", embedding=[1, 0]),
                         Doc(title="green apple", embedding=[0, 1]),
                         Doc(title="red car", embedding=[0.9, 0.1])])
print([d.title for d in Doc.objects.order_by(L2Distance("embedding", [1, 0]))])
hits = rerank(Doc, vector_field="embedding", text_field_tsv="search_vector",
              query_vector=[0, 1], query_text="apple", mode="rrf", weight_vector=0.5)
print([d.title for d in hits])
for name in ("numpy", "sqlite_vec", "dorm.contrib.temporal"):
    try:
        __import__(name)
    except ImportError:
        print("no", name)
"""


def test_core_and_pgvector_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-pgvector"],
        deps=["pluggy", "greenlet", "pytest"],
        install=["dorm-core", "dorm-pgvector"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "['red apple', 'red car', 'green apple']",
        "['green apple', 'red apple', 'red car']",
        "no numpy",
        "no sqlite_vec",
        "no dorm.contrib.temporal",
    ]
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-pgvector installed.
    venv.run_sqlite_tests("tests/pgvector/test_distances.py")
    venv.run_sqlite_tests("tests/pgvector/test_reranker.py")
    venv.assert_installed("dorm.contrib.pgvector", tmp_path)
