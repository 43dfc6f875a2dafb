"""SQLite's two paths to the distance functions: sqlite-vec where the interpreter can load
extensions, Python functions otherwise. Both give the brute-force answer on the data set.

This interpreter may be built without loadable extensions; the sqlite-vec path then runs
in a subprocess of another interpreter of the same Python version that has them, with this
environment's packages on its path.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import CosineDistance, L2Distance, MaxInnerProduct, VectorField
from dorm.contrib.pgvector import plugin as pgvector_plugin
from dorm.migrations.schema import SchemaEditor


class Item(dorm.Model):
    title = dorm.CharField(max_length=20)
    embedding = VectorField(dimensions=8)

    class Meta:
        app_label = "pgv_paths"


EXPRESSIONS = {"l2": L2Distance, "cosine": CosineDistance, "inner_product": MaxInnerProduct}

SCRIPT = r"""
import json, site, sys, tempfile
site.addsitedir(sys.argv[1])
import dorm
from dorm.contrib.pgvector import CosineDistance, L2Distance, MaxInnerProduct, VectorField
from dorm.db.connection import get_connection
from dorm.migrations.schema import SchemaEditor

class Item(dorm.Model):
    title = dorm.CharField(max_length=20)
    embedding = VectorField(dimensions=8)
    class Meta:
        app_label = "pgv_paths_sub"

data = json.load(sys.stdin)
dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/vec.db"}})
with SchemaEditor() as editor:
    editor.create_model(Item)
Item.objects.bulk_create([Item(title=d["title"], embedding=d["embedding"]) for d in data["docs"]])
exprs = {"l2": L2Distance, "cosine": CosineDistance, "inner_product": MaxInnerProduct}
out = {"version": get_connection().fetchone("SELECT vec_version()", [])[0], "values": {}}
for kind, expr in exprs.items():
    rows = Item.objects.annotate(d=expr("embedding", data["q"])).order_by("d")
    out["values"][kind] = rows.values_list("title", "d")[:]
print(json.dumps(out, default=list))
"""


def _reference(ref: Any, docs: list[dict[str, Any]], q: list[float]) -> dict[str, list[Any]]:
    return {
        kind: sorted((ref.brute[kind](d["embedding"], q), d["title"]) for d in docs)
        for kind in EXPRESSIONS
    }


def _check(values: dict[str, list[Any]], expected: dict[str, list[Any]]) -> None:
    for kind, rows in values.items():
        assert [t for t, _d in rows][:10] == [t for _d, t in expected[kind]][:10], kind
        want = {t: d for d, t in expected[kind]}
        for title, d in rows:
            assert d == pytest.approx(want[title], rel=1e-5, abs=1e-5), (kind, title)


@pytest.fixture
def python_path(
    tmp_path: Path, register_plugin: Any, fresh_settings: Any, caplog: pytest.LogCaptureFixture
) -> Any:
    register_plugin(pgvector_plugin, "pgvector")
    caplog.set_level(logging.DEBUG, logger="dorm.contrib.pgvector")
    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "py.db")}},
        PGVECTOR_SQLITE_VEC=False,
    )
    with SchemaEditor() as editor:
        editor.create_model(Item)
    yield caplog
    with SchemaEditor() as editor:
        editor.delete_model(Item)


def test_python_functions_give_the_exact_answer(python_path: Any, ref: Any) -> None:
    from dorm.db.connection import get_connection
    from dorm.exceptions import DatabaseError

    docs, q = ref.dataset(), ref.query_vector()
    Item.objects.bulk_create([Item(title=d["title"], embedding=d["embedding"]) for d in docs])
    values = {
        kind: list(
            Item.objects.annotate(d=expr("embedding", q)).order_by("d").values_list("title", "d")
        )
        for kind, expr in EXPRESSIONS.items()
    }
    _check(values, _reference(ref, docs, q))
    assert any(
        r.getMessage() == "vector distance functions on a new SQLite connection: python"
        for r in python_path.get_records("setup")  # the connection opened in the fixture
    )
    with pytest.raises(DatabaseError, match="no such function: vec_version"):
        get_connection().fetchone("SELECT vec_version()", [])


def _interpreter_with_extensions() -> str | None:
    """An interpreter of this Python version that can load SQLite extensions."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    probe = (
        "import sqlite3, sys; "
        f"assert '%d.%d' % sys.version_info[:2] == '{version}'; "
        "sqlite3.connect(':memory:').enable_load_extension(True)"
    )
    # Every python of that version on PATH, not only the first one.
    candidates = [sys.executable] + [
        str(Path(d) / name)
        for d in os.environ.get("PATH", "").split(os.pathsep)
        for name in (f"python{version}", "python3")
        if d and (Path(d) / name).is_file()
    ]
    for candidate in dict.fromkeys(candidates):
        if subprocess.run([candidate, "-c", probe], capture_output=True).returncode == 0:
            return candidate
    return None


def test_sqlite_vec_gives_the_same_exact_answer(ref: Any) -> None:
    pytest.importorskip("sqlite_vec")
    python = _interpreter_with_extensions()
    if python is None:
        pytest.skip(f"no Python {sys.version_info[:2]} here can load SQLite extensions")
    docs, q = ref.dataset(), ref.query_vector()
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run(
            [python, "-c", SCRIPT, sysconfig.get_paths()["purelib"]],
            input=json.dumps({"docs": docs, "q": q}),
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["version"].startswith("v0.")  # sqlite-vec answered, not a Python function
    _check(out["values"], _reference(ref, docs, q))


def test_without_loadable_extensions_the_default_falls_back_to_python(
    tmp_path: Path, register_plugin: Any, fresh_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        pytest.skip("this interpreter can load extensions: the fallback is not taken here")
    register_plugin(pgvector_plugin, "pgvector")
    caplog.set_level(logging.DEBUG, logger="dorm.contrib.pgvector")
    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "d.db")}})
    with SchemaEditor() as editor:
        editor.create_model(Item)
    Item.objects.create(title="a", embedding=[1.0] + [0.0] * 7)
    d = Item.objects.annotate(d=L2Distance("embedding", [0.0] * 8)).values_list("d", flat=True)
    assert list(d) == [1.0]
    assert "functions on a new SQLite connection: python" in caplog.text


def test_every_thread_connection_gets_the_functions(python_path: Any, ref: Any) -> None:
    """dorm opens one SQLite connection per thread: each is set up by the hook. (The
    threads' connections are closed with the others when the fixture resets them.)"""
    import threading

    docs = ref.dataset(n=30)
    Item.objects.bulk_create([Item(title=d["title"], embedding=d["embedding"]) for d in docs])
    answers: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            q = ref.query_vector(seed=n)
            rows = Item.objects.order_by(CosineDistance("embedding", q)).values_list(
                "title", flat=True
            )
            answers[n] = list(rows[:3])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n, titles in answers.items():
        q = ref.query_vector(seed=n)
        expected = sorted((ref.brute["cosine"](d["embedding"], q), d["title"]) for d in docs)
        assert titles == [t for _d, t in expected[:3]]
    assert len(answers) == 6
