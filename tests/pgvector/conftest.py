"""Fixtures of dorm-pgvector's tests: a PostgreSQL 16 cluster with pgvector, and a data set.

The machine's PostgreSQL (the shared ``pg_cluster``) may lack pgvector; the ``pgserver``
distribution (requirements-dev.txt) ships PostgreSQL 16 binaries with the extension, and
``pgvector_cluster`` starts a throwaway cluster from them with ``PgCluster(bindir)``. Without
them the PostgreSQL tests skip, and fail under ``CI=true`` / ``DORM_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import random
import re
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dorm.test.postgres import PgCluster, postgres_required

DIMS = 8
WORDS = ["vector", "search", "machine", "learning", "database", "index", "graph", "query"]


def pgserver_bindir() -> str | None:
    """The ``bin`` directory of the installed pgserver distribution (not imported: its
    import has side effects), or None."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return str(bindir) if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() else None


def _unavailable(reason: str) -> None:
    if postgres_required():
        pytest.fail(f"PostgreSQL with pgvector is required here (CI=true): {reason}")
    pytest.skip(f"no PostgreSQL with pgvector: {reason}")


@pytest.fixture(scope="session")
def pgvector_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL 16 cluster from pgserver's binaries (pgvector included)."""
    bindir = pgserver_bindir()
    if bindir is None:
        _unavailable("the pgserver distribution is not installed (pip install pgserver)")
    assert bindir is not None
    cluster = PgCluster(bindir)
    try:
        cluster.start()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        cluster.stop()
        _unavailable(f"could not start a cluster from {bindir}: {exc}")
    yield cluster
    cluster.stop()


def module_db_name(request: pytest.FixtureRequest) -> str:
    digest = hashlib.sha1(request.module.__name__.encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9_]", "_", Path(str(request.path)).stem.lower())[:40]
    return f"v_{stem}_{digest}"


@dataclass(frozen=True)
class VBackend:
    vendor: str
    settings: dict[str, Any]
    cluster: PgCluster | None = None

    @property
    def dsn(self) -> str:
        assert self.cluster is not None
        return self.cluster.dsn(self.settings["NAME"])


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def vbackend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VBackend]:
    """SQLite, then a database of the pgvector cluster with the extension created."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("pgvector") / "test.db"
        yield VBackend("sqlite", {"ENGINE": "sqlite", "NAME": str(path)})
        return
    cluster: PgCluster = request.getfixturevalue("pgvector_cluster")
    name = module_db_name(request)
    cluster.create_database(name)
    import psycopg

    with psycopg.connect(cluster.dsn(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    yield VBackend("postgresql", cluster.settings(name), cluster)
    cluster.drop_database(name)


@pytest.fixture(scope="module")
def vdb(vbackend: VBackend, request: pytest.FixtureRequest) -> Iterator[VBackend]:
    """Configure dorm for ``vbackend`` and create the module's ``MODELS`` tables."""
    import dorm
    from dorm import plugins
    from dorm.conf import settings
    from dorm.contrib.pgvector import plugin
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    added = not plugins.get_plugin_manager().is_registered(plugin)
    if added:  # plugin autoload is off: register the hooks before any connection opens
        plugins.register(plugin, name="pgvector")
    models = list(getattr(request.module, "MODELS", []))
    dorm.configure(DATABASES={"default": vbackend.settings})
    with SchemaEditor() as editor:
        for model in models:
            editor.create_model(model)
    yield vbackend
    with SchemaEditor() as editor:
        for model in reversed(models):
            editor.delete_model(model)
    reset_connections()
    settings._reset()
    if added:
        plugins.unregister(plugin)


# -- the fixed data set and brute-force reference ------------------------------------------------


def f32(values: list[float]) -> list[float]:
    """``values`` rounded to float32, as VectorField stores them."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def dataset(n: int = 80, seed: int = 23) -> list[dict[str, Any]]:
    """``n`` documents: a title, a body from a small vocabulary, an 8-dimension vector."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        docs.append(
            {
                "title": f"doc {i}",
                "body": " ".join(words),
                "embedding": f32([rng.uniform(-1.0, 1.0) for _ in range(DIMS)]),
            }
        )
    return docs


def query_vector(seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return f32([rng.uniform(-1.0, 1.0) for _ in range(DIMS)])


def l2(a: list[float], b: list[float]) -> float:
    return math.dist(a, b)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return 1.0 - dot / (math.hypot(*a) * math.hypot(*b))


def neg_inner(a: list[float], b: list[float]) -> float:
    return -sum(x * y for x, y in zip(a, b, strict=True))


BRUTE = {"l2": l2, "cosine": cosine, "inner_product": neg_inner}


@pytest.fixture(scope="session")
def ref() -> SimpleNamespace:
    """The data set and the brute-force reference, for the test modules."""
    return SimpleNamespace(
        DIMS=DIMS,
        WORDS=WORDS,
        f32=f32,
        dataset=dataset,
        query_vector=query_vector,
        brute=BRUTE,
    )
