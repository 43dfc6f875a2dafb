"""Shared fixtures: the backend matrix (SQLite, PostgreSQL) and the throwaway PostgreSQL cluster.

The PostgreSQL cluster is started once per test run from the installed server binaries
(``initdb`` / ``pg_ctl``), listens on a free loopback port only, and is removed at the end.
Each test module gets its own database. Without server binaries PostgreSQL tests skip with
a one-line reason, except under ``CI=true`` or ``DORM_REQUIRE_POSTGRES=1`` where they fail.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The cluster code ships with dorm-core (the dorm_postgres fixture of dorm's pytest plugin
# uses it too); bench/ imports PgCluster and find_pg_bindir from here.
from dorm.test.postgres import (
    PgCluster,
    PostgresUnavailableError,
    find_pg_bindir,
    postgres_required,
    start_cluster,
)

__all__ = ["PgCluster", "find_pg_bindir"]

REQUIRE_POSTGRES = postgres_required()


def _unavailable(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"PostgreSQL is required here (CI=true / DORM_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"no PostgreSQL test server: {reason}")


def _start_cluster() -> PgCluster:
    """A new cluster from the server binaries, or skip / fail (CI) with the reason."""
    try:
        return start_cluster()
    except PostgresUnavailableError as exc:
        _unavailable(str(exc))
        raise  # _unavailable() skips or fails


@pytest.fixture(scope="module")
def private_pg_cluster() -> Iterator[PgCluster]:
    """A cluster of the module's own, for fault drills that stop or restart the server."""
    cluster = _start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The run's one throwaway PostgreSQL cluster, started on first use."""
    cluster = _start_cluster()
    yield cluster
    cluster.stop()


def _module_db_name(request: pytest.FixtureRequest) -> str:
    digest = hashlib.sha1(request.module.__name__.encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9_]", "_", Path(str(request.path)).stem.lower())[:40]
    return f"t_{stem}_{digest}"


@dataclass(frozen=True)
class PgDatabase:
    """One test module's database on the shared cluster."""

    cluster: PgCluster
    name: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.name)

    @property
    def settings(self) -> dict[str, Any]:
        return self.cluster.settings(self.name)


@pytest.fixture(scope="module")
def pg_database(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> Iterator[PgDatabase]:
    """A fresh database for the requesting test module, dropped when the module ends."""
    name = _module_db_name(request)
    pg_cluster.create_database(name)
    yield PgDatabase(pg_cluster, name)
    pg_cluster.drop_database(name)


@dataclass(frozen=True)
class Backend:
    """What a test needs to reach one database: the vendor and its ``DATABASES`` entry."""

    vendor: str
    settings: dict[str, Any]
    pg: PgDatabase | None = None

    def count_rows(self, table: str) -> int:
        """Count a table's rows through a connection dorm does not manage: it sees only
        what other transactions have committed."""
        if self.vendor == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.settings["NAME"], timeout=5)
            try:
                return int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
            finally:
                conn.close()
        import psycopg

        assert self.pg is not None
        with psycopg.connect(self.pg.dsn, autocommit=True) as conn:
            row = conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
            assert row is not None
            return int(row[0])


@pytest.fixture(scope="module")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A ``DATABASES`` entry for a fresh SQLite file, one per test module."""
    return {"ENGINE": "sqlite", "NAME": str(tmp_path_factory.mktemp("sqlite") / "test.db")}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Run the test once on SQLite and once on the private PostgreSQL cluster.

    Module-scoped, so pytest runs a module's SQLite tests, then its PostgreSQL tests.
    """
    if request.param == "sqlite":
        return Backend("sqlite", request.getfixturevalue("sqlite_settings"))
    db: PgDatabase = request.getfixturevalue("pg_database")
    return Backend("postgresql", db.settings, db)


def _all_tables(models: list[Any]) -> list[Any]:
    """The models plus their automatic many-to-many tables, parents before children."""
    result: list[Any] = []
    for model in models:
        result.append(model)
        for m2m in model._meta.local_many_to_many:
            through = m2m.through
            if not isinstance(through, str) and through is not None and through._meta.auto_created:
                result.append(through)
    return result


@pytest.fixture(scope="module")
def db(backend: Backend, request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Configure dorm for ``backend`` and create the tables of the module's ``MODELS``.

    A test module lists its models, parents first, in ``MODELS = [Author, Book, ...]``
    (and may add extra aliases in ``EXTRA_DATABASES = {"other": ...}`` built from
    ``backend``). Rows are deleted after each test by the ``clean_tables`` fixture.
    """
    import dorm
    from dorm.conf import settings
    from dorm.migrations.schema import SchemaEditor

    models = list(getattr(request.module, "MODELS", []))
    dorm.configure(DATABASES={"default": backend.settings})
    with SchemaEditor() as editor:
        for model in models:
            editor.create_model(model)
    yield backend
    with SchemaEditor() as editor:
        for model in reversed(models):
            editor.delete_model(model)
    from dorm.db.connection import reset_connections

    reset_connections()
    settings._reset()


@pytest.fixture
def clean_tables(db: Backend, request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Yield the configured backend; afterwards delete every row of the module's tables."""
    yield db
    from dorm.db.connection import get_connection

    conn = get_connection()
    qn = conn.ops.quote_name
    for model in reversed(_all_tables(list(getattr(request.module, "MODELS", [])))):
        conn.execute(f"DELETE FROM {qn(model._meta.db_table)}", ())


@dataclass
class IsolatedVenv:
    """A fresh virtual environment holding only the given distributions (see below)."""

    root: Path
    python: Path
    env: dict[str, str]
    purelib: Path

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, env=self.env, cwd=cwd)

    def script_lines(self, script: str, cwd: Path) -> list[str]:
        """Run ``python -c script``; return its output lines (it must exit 0)."""
        result = self.run(str(self.python), "-c", script, cwd=cwd)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    def dorm_help(self, cwd: Path) -> str:
        return self.run(str(self.root / "bin" / "dorm"), "--help", cwd=cwd).stdout

    def run_sqlite_tests(self, path: str) -> None:
        """The SQLite half of the repository's test file ``path``, inside this venv."""
        repo = Path(__file__).resolve().parent.parent
        # Tests whose names say "sqlite" also run as [postgresql]: those are left out.
        args = [
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "sqlite and not postgresql",
            path,
        ]
        tests = self.run(str(self.python), *args, cwd=repo)
        assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
        assert " passed" in tests.stdout

    def assert_installed(self, module: str, cwd: Path) -> None:
        """``module`` is imported from this venv's site-packages (a wheel install)."""
        location = self.script_lines(f"import {module} as m; print(m.__file__)", cwd)[0]
        assert location.startswith(str(self.purelib)), location


@pytest.fixture
def isolated_venv(tmp_path: Path) -> Callable[..., IsolatedVenv]:
    """``isolated_venv(["dorm-core", "dorm-x"], deps=[...], install=["dorm-core", ...])``:
    build the workspace packages' wheels, copy ``deps`` (and what they require) from this
    environment, and pip-install ``install`` from those wheels alone: no network."""
    from importlib import metadata

    from packaging.requirements import Requirement

    repo = Path(__file__).resolve().parent.parent

    def closure(names: list[str]) -> list[metadata.Distribution]:
        seen: dict[str, metadata.Distribution] = {}
        todo = list(names)
        while todo:
            dist = metadata.distribution(todo.pop())
            key = dist.metadata["Name"].lower().replace("_", "-")
            if key in seen:
                continue
            seen[key] = dist
            for line in dist.requires or []:
                req = Requirement(line)
                if req.marker is None or req.marker.evaluate({"extra": ""}):
                    todo.append(req.name)
        return list(seen.values())

    def make(packages: list[str], deps: list[str], install: list[str]) -> IsolatedVenv:
        import sys

        wheels = tmp_path / "wheels"
        for pkg in packages:
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys, hatchling.build as b; b.build_wheel(sys.argv[1])",
                    str(wheels),
                ],
                cwd=repo / "packages" / pkg,
                check=True,
                capture_output=True,
            )
        root = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        python = root / "bin" / "python"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "VIRTUAL_ENV", "DORM_SETTINGS"))
        }
        purelib = Path(
            subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout.strip()
        )
        for dist in closure(deps):
            for file in dist.files or []:
                if str(file).startswith(".."):  # scripts outside site-packages
                    continue
                target = purelib / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(dist.locate_file(file), target)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "--disable-pip-version-check",
                "install",
                "--no-index",
                "--find-links",
                str(wheels),
                *install,
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        return IsolatedVenv(root, python, env, purelib)

    return make


# --- shared by the plugin distributions' tests -----------------------------------------------


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings and connections as a fresh process has them, after a test configured its
    own (a documentation page run as a script does)."""
    from dorm.conf import settings
    from dorm.db.connection import reset_connections

    yield
    reset_connections()
    settings._reset()


@pytest.fixture
def register_plugin() -> Iterator[Callable[[Any, str], None]]:
    """``register_plugin(module, name)``: the module's hooks for the test, unless its entry
    point already registered them (plugin autoload off); unregistered afterwards."""
    from dorm import plugins

    added: list[Any] = []

    def register(module: Any, name: str) -> None:
        if not plugins.get_plugin_manager().is_registered(module):
            plugins.register(module, name=name)
            added.append(module)

    yield register
    for module in reversed(added):
        plugins.unregister(module)


_DOC_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


def _run_printed_markdown(doc: Path, namespace_name: str) -> int:
    """Run ``doc``'s python blocks in order in one namespace; a plain block right after a
    block that printed must be exactly what it printed. Return how many were compared."""
    import contextlib
    import io

    namespace: dict[str, Any] = {"__name__": namespace_name}
    pending: str | None = None
    checked = 0
    for lang, code in _DOC_FENCE.findall(doc.read_text()):
        if lang == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, str(doc), "exec"), namespace)
            pending = printed.getvalue() or None
        elif pending is not None:
            assert pending == code, f"{doc.name}: printed {pending!r}, the page shows {code!r}"
            checked += 1
            pending = None
    return checked


@pytest.fixture
def run_printed_markdown() -> Callable[[Path, str], int]:
    """``run_printed_markdown(doc, namespace_name)``: see ``_run_printed_markdown``."""
    return _run_printed_markdown
