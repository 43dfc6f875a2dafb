"""Migrations: the ``vector`` extension, HNSW / IVFFlat indexes from ``Meta.indexes`` and
AddIndex / RemoveIndex, with their opclass and parameters; the index serves the query."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import (
    HnswIndex,
    IvfflatIndex,
    SearchVectorField,
    VectorExtension,
    VectorExtensionMissingError,
    VectorField,
)
from dorm.db.connection import get_connection
from dorm.migrations import operations as ops
from dorm.migrations.exceptions import MigrationError
from dorm.migrations.migration import Migration
from dorm.migrations.schema import SchemaEditor
from dorm.migrations.state import ProjectState
from dorm.migrations.writer import serialize


@pytest.fixture
def vdb(vbackend: Any, register_plugin: Any, fresh_settings: Any) -> Any:
    """Settings for ``vbackend``; the migrations below create the tables."""
    from dorm.contrib.pgvector import plugin

    register_plugin(plugin, "pgvector")
    dorm.configure(DATABASES={"default": vbackend.settings})
    return vbackend


HNSW = HnswIndex(
    name="pgv_doc_hnsw",
    fields=["embedding"],
    m=8,
    ef_construction=32,
    opclasses=["vector_cosine_ops"],
)
IVF = IvfflatIndex(name="pgv_doc_ivf", fields=["embedding"], lists=4, opclasses=["vector_ip_ops"])


class Initial(Migration):
    operations = [
        VectorExtension(),
        ops.CreateModel(
            name="Doc",
            fields=[
                ("id", dorm.BigAutoField(primary_key=True)),
                ("title", dorm.CharField(max_length=50)),
                ("embedding", VectorField(dimensions=3)),
                ("search_vector", SearchVectorField(source_fields=["title"])),
            ],
            options={"indexes": [HNSW]},
        ),
    ]


class AddIvf(Migration):
    operations = [ops.AddIndex(model_name="Doc", index=IVF)]


class DropHnsw(Migration):
    operations = [ops.RemoveIndex(model_name="Doc", name="pgv_doc_hnsw")]


def _indexes(vendor: str) -> dict[str, str]:
    conn = get_connection()
    if vendor == "postgresql":
        rows = conn.fetchall(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", ["pgv_mig_doc"]
        )
    else:
        rows = conn.fetchall(
            "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = ?",
            ["pgv_mig_doc"],
        )
    return {name: sql for name, sql in rows if not name.endswith("_pkey")}


def test_migrations_create_and_drop_vector_indexes(vdb: Any) -> None:
    state = ProjectState()
    with SchemaEditor() as editor:
        state = Initial("0001_initial", "pgv_mig").apply(state, editor)
    with SchemaEditor() as editor:
        state = AddIvf("0002_ivf", "pgv_mig").apply(state, editor)
    found = _indexes(vdb.vendor)
    if vdb.vendor == "postgresql":
        assert found["pgv_doc_hnsw"].endswith(
            "USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')"
        )
        assert found["pgv_doc_ivf"].endswith(
            "USING ivfflat (embedding vector_ip_ops) WITH (lists='4')"
        )
        extension = get_connection().fetchone(
            "SELECT extname FROM pg_extension WHERE extname = %s", ["vector"]
        )
        assert extension == ("vector",)
    else:
        assert found == {}  # SQLite has no vector index: queries there are exact scans
    with SchemaEditor() as editor:
        after = DropHnsw("0003_drop", "pgv_mig").apply(state, editor)
    assert "pgv_doc_hnsw" not in _indexes(vdb.vendor)
    with SchemaEditor() as editor:
        DropHnsw("0003_drop", "pgv_mig").unapply(state, editor)
        AddIvf("0002_ivf", "pgv_mig").unapply(state, editor)
    assert set(_indexes(vdb.vendor)) == ({"pgv_doc_hnsw"} if vdb.vendor == "postgresql" else set())
    model = after.apps.get_model("pgv_mig", "Doc")
    with SchemaEditor() as editor:
        editor.delete_model(model)


@pytest.mark.postgres
def test_the_hnsw_index_serves_order_by_distance(
    pgvector_cluster: Any, fresh_settings: Any
) -> None:
    from dorm.contrib.pgvector import CosineDistance, L2Distance

    pgvector_cluster.create_database("pgv_explain")
    dorm.configure(DATABASES={"default": pgvector_cluster.settings("pgv_explain")})
    state = ProjectState()
    with SchemaEditor() as editor:
        state = Initial("0001_initial", "pgv_mig").apply(state, editor)
    doc = state.apps.get_model("pgv_mig", "Doc")
    doc.objects.bulk_create([doc(title=f"t{i}", embedding=[i, 1, -i]) for i in range(50)])
    conn = get_connection()
    with dorm.transaction.atomic():
        conn.execute("SET LOCAL enable_seqscan = off", [])
        plan = doc.objects.order_by(CosineDistance("embedding", [1, 2, 3]))[:5].explain()
        other = doc.objects.order_by(L2Distance("embedding", [1, 2, 3]))[:5].explain()
    assert "Index Scan using pgv_doc_hnsw" in plan
    assert "pgv_doc_hnsw" not in other  # L2 does not match the cosine opclass
    pgvector_cluster.drop_database("pgv_explain")


@pytest.mark.postgres
def test_a_server_without_pgvector_gets_an_error_saying_what_to_install(
    pg_database: Any, fresh_settings: Any
) -> None:
    """The shared test cluster runs the machine's PostgreSQL, built without pgvector."""
    import psycopg

    with psycopg.connect(pg_database.dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if row is not None:
        pytest.skip("this PostgreSQL has pgvector installed")
    dorm.configure(DATABASES={"default": pg_database.settings})
    with pytest.raises(MigrationError) as info, SchemaEditor() as editor:
        Initial("0001_initial", "pgv_mig").apply(ProjectState(), editor)
    cause = info.value.__cause__
    assert isinstance(cause, VectorExtensionMissingError)
    assert "has no 'vector' extension: install pgvector on the database server" in str(cause)
    assert "postgresql-" in str(cause) and "-pgvector package" in str(cause)
    assert "operation 1 of 2 (Create the pgvector extension)" in str(info.value)


@pytest.mark.postgres
def test_sqlmigrate_shows_the_index_statement(pgvector_cluster: Any, fresh_settings: Any) -> None:
    pgvector_cluster.create_database("pgv_collect")
    dorm.configure(DATABASES={"default": pgvector_cluster.settings("pgv_collect")})
    editor = SchemaEditor(collect_sql=True)
    with editor:
        Initial("0001_initial", "pgv_mig").apply(ProjectState(), editor)
    text = "\n".join(editor.collected)
    assert "CREATE EXTENSION IF NOT EXISTS vector" in text
    assert 'USING hnsw ("embedding" vector_cosine_ops) WITH (m = 8, ef_construction = 32)' in text
    pgvector_cluster.drop_database("pgv_collect")


def test_indexes_serialize_for_migration_files() -> None:
    for index in (HNSW, IVF, HnswIndex(name="plain", fields=["embedding"])):
        source, imports = serialize(index)
        namespace: dict[str, Any] = {}
        exec("\n".join(sorted(imports)), namespace)
        assert eval(source, namespace) == index
    assert HnswIndex(name="a", fields=["e"]) != HnswIndex(name="a", fields=["e"], m=4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: HnswIndex(name="x", fields=["a", "b"]), "fields must name one vector field"),
        (lambda: HnswIndex(name="x", fields=["-a"]), "fields must name one vector field"),
        (lambda: HnswIndex(name="x", fields=["a"], m=1), "m must be an int from 2 to 100, got 1"),
        (
            lambda: HnswIndex(name="x", fields=["a"], ef_construction="64"),
            "ef_construction must be an int from 4 to 1000, got '64'",
        ),
        (
            lambda: HnswIndex(name="x", fields=["a"], opclasses=["vector_bad_ops"]),
            "opclasses must be one of",
        ),
        (lambda: IvfflatIndex(name="x", fields=["a"], lists=0), "lists must be an int from 1"),
        (lambda: HnswIndex(name="bad name", fields=["a"]), "Index name must be an identifier"),
        (lambda: HnswIndex(name="", fields=["a"]), "HnswIndex needs a name="),
    ],
)
def test_bad_index_options_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()
