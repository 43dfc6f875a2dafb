"""dorm's pytest plugin, used the way a project uses it: pytester runs generated projects.

The project of docs/testing.md is written out from its ``# file:`` blocks and run on SQLite
and on a throwaway PostgreSQL cluster, together with the rules below (rows do not leak
between tests, savepoints, transaction=True, writes outside the test's transaction).
Runs that need no database happen in-process; the others in a subprocess, as a user's.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

# Imported here, not first inside an in-process run: pytester restores sys.modules after
# each run, and a driver first imported inside one would be imported a second time later
# (its C extension staying the first one), so that its exception classes stop matching.
with contextlib.suppress(ImportError):
    import psycopg  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "testing.md"
# Plugins that take a second to import and that no run here needs.
QUIET = ("-p", "no:cacheprovider", "-p", "no:faker", "-p", "no:hypothesispytest")


@pytest.fixture(autouse=True)
def _no_outer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DORM_SETTINGS", "DORM_PROFILE", "DATABASE_URL", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


def _doc_files() -> dict[str, str]:
    blocks = re.findall(r"^```\w*\n# file: (\S+)\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)
    return dict(blocks)


def _write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = pytester.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# --- off unless enabled ------------------------------------------------------------------------


def test_the_pytest11_entry_point_is_the_switch_and_is_installed() -> None:
    pyproject = tomllib.loads((REPO / "packages" / "dorm-core" / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"dorm": "dorm.test.pytest_switch"}
    installed = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    assert installed.get("dorm") == "dorm.test.pytest_switch", (
        "dorm-core's installed metadata lacks the pytest11 entry point: reinstall it "
        "(python tools/dev_install.py, or make test)"
    )


PLUGIN_STATE = """
def test_state(pytestconfig):
    manager = pytestconfig.pluginmanager
    assert manager.has_plugin("dorm")  # the switch, from the entry point
    assert manager.has_plugin("dorm.test.pytest_plugin") is {loaded}
"""


def test_the_plugin_is_off_unless_the_project_enables_it(pytester: pytest.Pytester) -> None:
    from dorm.conf import settings

    before = settings._values
    pytester.makepyfile(
        test_state=PLUGIN_STATE.format(loaded=False),
        test_uses_db="""
        import pytest

        def test_fixture(dorm_db):
            pass

        @pytest.mark.dorm_db
        def test_marker():
            pass
        """,
    )
    result = pytester.runpytest_inprocess("-W", "ignore::pytest.PytestUnknownMarkWarning", *QUIET)
    result.assert_outcomes(passed=2, errors=1)  # the marker alone does nothing
    result.stdout.fnmatch_lines(["*fixture 'dorm_db' not found*"])
    result = pytester.runpytest_inprocess("--strict-markers", "test_uses_db.py", *QUIET)
    result.stdout.fnmatch_lines(["*'dorm_db' not found in `markers`*"])
    assert settings._values is before  # no settings discovered, no database touched

    helped = pytester.runpytest_inprocess("--help", *QUIET).stdout.str()
    assert "dorm_plugin" in helped  # the only thing the switch adds
    assert "--dorm-database" not in helped and "dorm_database" not in helped


@pytest.mark.parametrize("way", ["ini", "-p", "conftest", "ini and conftest"])
def test_each_way_of_enabling_the_plugin(pytester: pytest.Pytester, way: str) -> None:
    pytester.makepyfile(test_state=PLUGIN_STATE.format(loaded=True))
    args: list[str] = []
    if "ini" in way:
        pytester.makeini("[pytest]\ndorm_plugin = true\n")
    if "conftest" in way:
        pytester.makeconftest('pytest_plugins = ["dorm.test.pytest_plugin"]\n')
    if way == "-p":
        args = ["-p", "dorm.test.pytest_plugin"]
    # --dorm-database is only accepted when the plugin was loaded before the command line
    # was parsed; the marker only exists with the plugin.
    result = pytester.runpytest_inprocess(
        *args, "--dorm-database=sqlite", "--strict-markers", "--markers", *QUIET
    )
    result.stdout.fnmatch_lines(["@pytest.mark.dorm_db(transaction=False):*"])
    result = pytester.runpytest_inprocess(*args, "--dorm-database=sqlite", *QUIET)
    result.assert_outcomes(passed=1)


def test_no_dorm_turns_the_switch_off(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndorm_plugin = true\n")
    pytester.makepyfile(
        test_state="""
        def test_state(pytestconfig):
            assert not pytestconfig.pluginmanager.has_plugin("dorm")
            assert not pytestconfig.pluginmanager.has_plugin("dorm.test.pytest_plugin")
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:dorm", "-W", "ignore::pytest.PytestConfigWarning", *QUIET
    )
    result.assert_outcomes(passed=1)


def test_a_misused_marker_or_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    from dorm.conf import settings

    before = settings._values
    pytester.makeconftest('pytest_plugins = ["dorm.test.pytest_plugin"]\n')
    pytester.makepyfile(
        test_marker="""
        import pytest

        @pytest.mark.dorm_db("yes")
        def test_positional():
            pass

        @pytest.mark.dorm_db(transactional=True)
        def test_misspelt(dorm_db):
            pass
        """,
        test_setting="def test_db(dorm_db):\n    pass\n",
    )
    result = pytester.runpytest_inprocess("test_marker.py", *QUIET)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*takes only transaction=True/False*"] * 2)
    pytester.makeini("[pytest]\ndorm_database = mysql\n")
    result = pytester.runpytest_inprocess("test_setting.py", *QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*dorm_database = 'mysql' is not one of settings, sqlite, postgres*"]
    )
    assert settings._values is before


@pytest.mark.parametrize(
    ("ci", "outcome", "reason"),
    [("", "skipped", "no PostgreSQL test server"), ("true", "errors", "PostgreSQL is required")],
    ids=["local-skips", "ci-fails"],
)
def test_dorm_postgres_without_binaries(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str, reason: str
) -> None:
    monkeypatch.setenv("DORM_PG_BINDIR", "/nonexistent/bin")
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("DORM_REQUIRE_POSTGRES", "")
    pytester.makeconftest('pytest_plugins = ["dorm.test.pytest_plugin"]\n')
    pytester.makepyfile("def test_cluster(dorm_postgres):\n    pass\n")
    result = pytester.runpytest_inprocess("-rs", *QUIET)
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines([f"*{reason}*/nonexistent/bin*"])


# --- the example project of docs/testing.md, and the rules -----------------------------------

RULES = '''
"""The rules of dorm_db that docs/testing.md states, each tried."""

import asyncio
import os
import threading
from decimal import Decimal
from pathlib import Path

import pytest

import dorm
from dorm import transaction
from dorm.db.connection import get_connection
from dorm.exceptions import OperationalError, TransactionManagementError
from dorm.migrations.schema import SchemaEditor
from shop.models import Product


def make(name):
    return Product.objects.create(name=name, price=Decimal("1.00"))


def test_01_writes(dorm_db):
    make("a")
    with transaction.atomic():  # a savepoint, released
        make("b")
    assert Product.objects.count() == 2


def test_02_sees_none_of_them(dorm_db):
    assert Product.objects.count() == 0


def test_03_nested_blocks_are_savepoints(dorm_db):
    make("kept")
    with pytest.raises(ZeroDivisionError):
        with transaction.atomic():
            make("undone")
            with transaction.atomic():
                make("undone too")
            1 / 0
    assert [p.name for p in Product.objects.all()] == ["kept"]


def test_04_on_commit_never_runs_and_durable_is_refused(dorm_db):
    ran = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append(1))
    assert ran == []
    with pytest.raises(TransactionManagementError):
        with transaction.atomic(durable=True):
            pass


class Scratch(dorm.Model):
    label = dorm.CharField(max_length=10)

    class Meta:
        app_label = "scratch"


def test_05_a_table_made_in_a_test(dorm_db):
    with SchemaEditor() as editor:
        editor.create_model(Scratch)
    Scratch.objects.create(label="x")
    assert "scratch_scratch" in get_connection().table_names()


def test_06_is_rolled_back_too(dorm_db):
    assert "scratch_scratch" not in get_connection().table_names()


@pytest.mark.dorm_db(transaction=True)
def test_07_transaction_true_commits(dorm_db):
    worker = threading.Thread(target=make, args=("from a thread",))
    worker.start()
    worker.join()
    make("from the test")
    assert Product.objects.count() == 2  # each sees the other's committed row


def test_08_then_the_tables_are_empty_and_ids_restart(dorm_db):
    assert Product.objects.count() == 0
    assert make("first").pk == 1


def short_busy_timeout(dorm_db, monkeypatch):
    """On SQLite another connection waits for the test's lock: not for long, here."""
    if dorm_db.vendor == "sqlite":
        monkeypatch.setitem(get_connection().settings_dict["OPTIONS"], "timeout", 0.1)


def test_09_a_write_outside_the_transaction_is_reported(dorm_db, monkeypatch):
    short_busy_timeout(dorm_db, monkeypatch)
    failed = []

    def write():
        try:
            make("outside")
        except OperationalError as exc:
            failed.append(str(exc))

    worker = threading.Thread(target=write)
    worker.start()
    worker.join()
    assert failed == (["database is locked"] if dorm_db.vendor == "sqlite" else [])


def test_10_after_which_the_tables_are_empty(dorm_db):
    assert Product.objects.count() == 0


def test_10b_so_is_a_write_through_the_async_api(dorm_db, monkeypatch):
    short_busy_timeout(dorm_db, monkeypatch)
    try:
        asyncio.run(Product.objects.acreate(name="async", price=Decimal("1.00")))
    except OperationalError as exc:
        assert dorm_db.vendor == "sqlite" and str(exc) == "database is locked"


def test_10c_after_which_the_tables_are_empty(dorm_db):
    assert Product.objects.count() == 0


def test_11_a_block_left_open_is_reported(dorm_db):
    transaction.atomic().__enter__()
    make("in the leaked block")


def test_12_after_which_nothing_is_left(dorm_db):
    assert Product.objects.count() == 0
    assert not get_connection().state.blocks[1:]


def test_13_the_databases(dorm_db):
    assert dorm_db.vendor == os.environ["EXPECT_VENDOR"]
    assert dorm_db.databases["default"]["NAME"].endswith(os.environ["EXPECT_NAME_END"])
    assert not Path("shop.sqlite3").exists()  # the project's own database is not touched
'''


def _run_example(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    files = _doc_files()
    assert {"conftest.py", "settings.py", "tests/test_products.py"} <= set(files)
    _write(pytester, {**files, "tests/test_rules.py": RULES})
    return pytester.runpytest_subprocess(
        "-p", "no:randomly", "-W", "ignore::DeprecationWarning", *QUIET, *args, timeout=240
    )


def _check_rules(result: pytest.RunResult) -> None:
    out = result.stdout.str()
    assert "ERROR at teardown of test_09_a_write_outside_the_transaction_is_reported" in out
    assert "1 write(s) ran on a connection outside the test's transaction" in out
    assert "ERROR at teardown of test_10b_so_is_a_write_through_the_async_api" in out
    assert "[default, the async API] INSERT INTO" in out
    assert "[default, another thread] INSERT INTO" in out
    assert "Mark the test @pytest.mark.dorm_db(transaction=True)." in out
    assert "ERROR at teardown of test_11_a_block_left_open_is_reported" in out
    assert "the test left 1 atomic() block(s) open on 'default'" in out


def test_the_example_project_on_sqlite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPECT_VENDOR", "sqlite")
    monkeypatch.setenv("EXPECT_NAME_END", "default.sqlite3")
    result = _run_example(pytester, "--ignore=tests/test_cluster.py")
    # docs: 5 products + 2 api + 1 async + 1 plugin; rules: 15, three of them erroring at
    # teardown after passing.
    result.assert_outcomes(passed=9 + 15, errors=3)
    _check_rules(result)
    assert not (pytester.path / "shop.sqlite3").exists()


@pytest.mark.postgres
def test_the_example_project_on_a_throwaway_cluster(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pg_cluster: Any
) -> None:
    # pg_cluster: the outer run's, only to skip (or fail under CI) without server binaries.
    monkeypatch.setenv("EXPECT_VENDOR", "postgresql")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")  # as a pytest-xdist worker
    monkeypatch.setenv("EXPECT_NAME_END", "test_default_gw7")
    result = _run_example(pytester, "--dorm-database=postgres")
    result.assert_outcomes(passed=10 + 15, errors=3)
    _check_rules(result)


SERVER_SETTINGS = """
import os

DATABASES = {
    "default": os.environ["DATABASE_URL"],
    "replica": os.environ["DATABASE_URL"] + "?max_pool_size=3",
}
INSTALLED_APPS = ["shop"]
"""

SERVER_TESTS = """
import os
from decimal import Decimal

from dorm.db.connection import get_connection
from shop.models import Product


def test_writes(dorm_db):
    name = "test_" + os.environ["OUTER_DB"]
    assert dorm_db.databases["default"]["NAME"] == name
    assert dorm_db.databases["replica"]["NAME"] == name  # one database, shared
    assert dorm_db.databases["replica"]["MAX_POOL_SIZE"] == 3
    assert "leftover" not in get_connection().table_names()  # replaced, not reused
    Product.objects.create(name="kettle", price=Decimal("2.50"))
    assert Product.objects.using("default").count() == 1


def test_sees_nothing(dorm_db):
    assert Product.objects.count() == 0
    assert Product.objects.using("replica").count() == 0
"""


@pytest.mark.postgres
def test_project_settings_on_a_postgresql_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pg_database: Any
) -> None:
    """dorm_database = settings on PostgreSQL: test_NAME on the project's server, made
    for the run (replacing a leftover one) and dropped at its end."""
    import psycopg

    test_name = f"test_{pg_database.name}"
    pg_database.cluster.create_database(test_name)
    with psycopg.connect(pg_database.cluster.dsn(test_name), autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (id int)")
    monkeypatch.setenv("DATABASE_URL", pg_database.dsn)
    monkeypatch.setenv("OUTER_DB", pg_database.name)
    files = _doc_files()
    _write(
        pytester,
        {
            "settings.py": SERVER_SETTINGS,
            "shop/__init__.py": "",
            "shop/models.py": files["shop/models.py"],
            "conftest.py": files["conftest.py"],
            "test_server.py": SERVER_TESTS,
        },
    )
    result = pytester.runpytest_subprocess(*QUIET, timeout=120)
    result.assert_outcomes(passed=2)
    with psycopg.connect(pg_database.cluster.dsn(), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    assert (test_name,) not in rows, "the test database must be dropped at the end"
    assert (pg_database.name,) in rows
