"""dorm's pytest plugin: the ``dorm_db`` and ``dorm_postgres`` fixtures (docs/testing.md).

Off unless the project enables it, with any one of::

    pytest_plugins = ["dorm.test.pytest_plugin"]     # in the root conftest.py
    pytest -p dorm.test.pytest_plugin                  # or in addopts
    dorm_plugin = true                                 # in the pytest configuration

``dorm_db`` gives a test the session's test databases (``dorm.test.databases``): made on
first use, with the tables of ``INSTALLED_APPS``, and rolled back after each test. With
``@pytest.mark.dorm_db(transaction=True)`` the test runs without the enclosing
transaction and every table is emptied afterwards instead: for code under test that uses
its own connections (an ASGI test client, threads, ``async def`` tests).

``dorm_database`` (ini) or ``--dorm-database`` picks the databases: ``settings`` (the
project's DATABASES, as test copies; SQLite when there are none), ``sqlite``, or
``postgres`` (a throwaway cluster from the server binaries: ``dorm_postgres``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

from dorm.test.databases import MODES, SessionDatabases

if TYPE_CHECKING:
    from dorm.test.postgres import PgCluster

__all__ = ["dorm_db", "dorm_postgres"]

_MARKER = "dorm_db"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "dorm_database",
        "where dorm_db runs: settings (the project's DATABASES, as test databases; "
        "SQLite without any), sqlite, or postgres (a throwaway cluster)",
        default="settings",
    )
    group = parser.getgroup("dorm", "dorm test databases")
    group.addoption(
        "--dorm-database",
        choices=MODES,
        default=None,
        help="where dorm_db runs (overrides the dorm_database ini setting)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(transaction=False): give the test dorm's test databases (the dorm_db "
        "fixture); transaction=True commits and empties the tables afterwards instead of "
        "rolling back, for code that uses its own connections",
    )


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("dorm_database") or config.getini("dorm_database") or "settings"
    mode = str(mode).strip().lower()
    if mode not in MODES:
        raise pytest.UsageError(
            f"dorm_database = {mode!r} is not one of {', '.join(MODES)} "
            f"(settings: the project's DATABASES; postgres: a throwaway cluster)"
        )
    return mode


def _unavailable(reason: str) -> NoReturn:
    from dorm.test.postgres import postgres_required

    if postgres_required():
        pytest.fail(
            f"PostgreSQL is required here (CI=true / DORM_REQUIRE_POSTGRES=1): {reason}",
            pytrace=False,
        )
    pytest.skip(f"no PostgreSQL test server: {reason}")


@pytest.fixture(scope="session")
def dorm_postgres() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the test session (``dorm.test.postgres``).

    Started on first use from the server binaries, on a free loopback port, removed at the
    end. Without binaries (or psycopg) the tests using it skip with the reason, and fail
    instead under ``CI=true`` or ``DORM_REQUIRE_POSTGRES=1``.
    """
    from dorm.test.postgres import PostgresUnavailableError, start_cluster

    try:
        cluster = start_cluster()
    except PostgresUnavailableError as exc:
        _unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def _dorm_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionDatabases]:
    mode = _mode(request.config)
    cluster = request.getfixturevalue("dorm_postgres") if mode == "postgres" else None
    # pytest-xdist runs one session per worker: each gets databases of its own.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    databases = SessionDatabases(mode, tmp_path_factory.mktemp("dorm"), cluster, worker)
    databases.setup()
    try:
        yield databases
    finally:
        databases.teardown()


def _transaction(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker(_MARKER)
    if marker is None:
        return False
    unknown = sorted(set(marker.kwargs) - {"transaction"})
    if marker.args or unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER} takes only transaction=True/False, "
            f"got {marker.args!r} {unknown}"
        )
    return bool(marker.kwargs.get("transaction", False))


@pytest.fixture
def dorm_db(request: pytest.FixtureRequest) -> Iterator[SessionDatabases]:
    """The session's test databases, rolled back after the test.

    Each alias runs the test inside an ``atomic()`` block that is rolled back at the end,
    so a nested ``atomic()`` in the test is a savepoint and nothing is ever committed.
    Under ``@pytest.mark.dorm_db(transaction=True)`` the test commits normally and every
    table (but the migration history) is emptied afterwards.
    """
    transaction = _transaction(request)  # a misused marker fails before any database work
    databases: SessionDatabases = request.getfixturevalue("_dorm_session")
    if transaction:
        try:
            yield databases
        finally:
            databases.flush()
        return
    with databases.rolled_back() as outside:
        yield databases
    if outside:
        shown = "\n  ".join(outside[:5]) + ("\n  ..." if len(outside) > 5 else "")
        pytest.fail(
            f"{len(outside)} write(s) ran on a connection outside the test's transaction "
            f"(another thread's, or the async API's), which dorm_db cannot roll back: the "
            f"tables were emptied instead. Such code does not see the test's uncommitted "
            f"rows either (on SQLite it waits for the test's lock until 'database is "
            f"locked').\n  {shown}\nMark the test @pytest.mark.{_MARKER}(transaction=True).",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _dorm_db_marker(request: pytest.FixtureRequest) -> None:
    """``@pytest.mark.dorm_db`` on a test that does not ask for the fixture gives it."""
    if request.node.get_closest_marker(_MARKER) is not None:
        request.getfixturevalue("dorm_db")
