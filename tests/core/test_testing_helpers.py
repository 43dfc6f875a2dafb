"""dorm.test: assert_num_queries, register_plugin, the cluster helpers and SessionDatabases."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm import plugins, transaction
from dorm.exceptions import ImproperlyConfigured, PluginConflictError, PluginLoadError
from dorm.migrations.schema import SchemaEditor
from dorm.plugins import hookimpl
from dorm.test import (
    CaptureQueriesContext,
    SessionDatabases,
    assert_num_queries,
    assertNumQueries,
    register_plugin,
)
from dorm.test import postgres as pg

REPO = Path(__file__).resolve().parents[2]


class Gadget(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "testing_helpers"


@pytest.fixture
def gadgets(tmp_path: Path, fresh_settings: None) -> Iterator[None]:
    """Two SQLite aliases with the Gadget table, for this test only."""
    dorm.configure(
        DATABASES={
            "default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "a.db")},
            "other": {"ENGINE": "sqlite", "NAME": str(tmp_path / "b.db")},
        }
    )
    for alias in ("default", "other"):
        with SchemaEditor(dorm.db.connection.get_connection(alias)) as editor:
            editor.create_model(Gadget)
    yield


def test_importing_dorm_test_is_cheap() -> None:
    code = (
        "import sys, dorm.test; "
        "print(sorted(m for m in sys.modules if m in ('pytest', 'psycopg', "
        "'dorm.test.pytest_plugin', 'dorm.test.postgres', 'dorm.test.pytest_switch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_old_names_stay_importable() -> None:
    assert assertNumQueries is assert_num_queries
    assert CaptureQueriesContext.__module__ == "dorm.test.queries"


# --- assert_num_queries --------------------------------------------------------------------


def test_assert_num_queries_passes_on_the_exact_count(gadgets: None) -> None:
    Gadget.objects.create(name="a")
    with assert_num_queries(2) as ctx:
        list(Gadget.objects.all())
        Gadget.objects.filter(name="a").update(name="b")
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["SELECT", "UPDATE"]
    with assert_num_queries(0):
        Gadget.objects.filter(name="x")  # builds a query, runs none


def test_assert_num_queries_fails_listing_the_statements(gadgets: None) -> None:
    with pytest.raises(AssertionError) as info, assert_num_queries(1):
        Gadget.objects.count()
        Gadget.objects.exists()
    message = str(info.value)
    assert message.startswith("2 queries executed, 1 expected (database 'default')")
    assert "1. SELECT COUNT(*)" in message and "\n2. SELECT" in message


def test_assert_num_queries_counts_savepoints_not_transaction_control(gadgets: None) -> None:
    # INSERT, SAVEPOINT, INSERT, RELEASE SAVEPOINT; BEGIN and COMMIT are not counted.
    with assert_num_queries(4) as ctx, transaction.atomic():
        Gadget.objects.create(name="a")
        with transaction.atomic():
            Gadget.objects.create(name="b")
    assert any(q["sql"].startswith("SAVEPOINT") for q in ctx.captured_queries)


def test_assert_num_queries_counts_async_statements_and_one_alias(gadgets: None) -> None:
    with assert_num_queries(1):
        assert asyncio.run(Gadget.objects.acount()) == 0
    with assert_num_queries(1, using="other"), assert_num_queries(0):
        Gadget.objects.using("other").create(name="elsewhere")


def test_assert_num_queries_checks_nothing_when_the_block_raises(gadgets: None) -> None:
    with pytest.raises(KeyError), assert_num_queries(5):
        raise KeyError("the block's own error")


@pytest.mark.parametrize("bad", ["1", 1.0, True, None])
def test_assert_num_queries_wants_an_int(bad: Any) -> None:
    with pytest.raises(TypeError, match="num must be an int"), assert_num_queries(bad):
        pass


# --- register_plugin -----------------------------------------------------------------------


class SaveSpy:
    def __init__(self) -> None:
        self.saved: list[str] = []

    @hookimpl
    def dorm_post_save(self, sender: type, instance: Any, created: bool) -> None:
        if sender is Gadget:
            self.saved.append(instance.name)


def test_register_plugin_registers_for_the_block_only(gadgets: None) -> None:
    spy = SaveSpy()
    manager = plugins.get_plugin_manager()
    with register_plugin(spy, name="save_spy") as name:
        assert name == "save_spy"
        assert manager.is_registered(spy)
        assert "dorm_post_save" in plugins.hooks_of("save_spy")
        Gadget.objects.create(name="seen")
    assert not manager.is_registered(spy)
    Gadget.objects.create(name="unseen")
    assert spy.saved == ["seen"]


def test_register_plugin_unregisters_after_an_error_and_names_by_default() -> None:
    spy = SaveSpy()
    with pytest.raises(RuntimeError), register_plugin(spy) as name:
        assert name == f"plugin-{id(spy)}"
        raise RuntimeError("the test failed")
    assert not plugins.get_plugin_manager().is_registered(spy)


def test_register_plugin_leaves_an_already_registered_plugin_registered() -> None:
    spy = SaveSpy()
    plugins.register(spy, name="installed_spy")  # as its entry point would have
    try:
        with register_plugin(spy, name="ignored") as name:
            assert name == "installed_spy"
        assert plugins.get_plugin_manager().is_registered(spy)
    finally:
        plugins.unregister(spy)


def test_register_plugin_tolerates_a_block_that_unregistered_it() -> None:
    spy = SaveSpy()
    with register_plugin(spy, name="short_lived"):
        plugins.unregister("short_lived")
    assert not plugins.get_plugin_manager().is_registered(spy)


def test_register_plugin_validates_like_an_entry_point() -> None:
    class Misspelt:
        @hookimpl
        def dorm_post_saved(self, sender: type) -> None: ...

    misspelt = Misspelt()
    unknown = pytest.raises(PluginLoadError, match="unknown hook 'dorm_post_saved'")
    with unknown, register_plugin(misspelt, name="misspelt"):
        pass
    assert not plugins.get_plugin_manager().is_registered(misspelt)
    taken = pytest.raises(PluginConflictError)
    with register_plugin(SaveSpy(), name="taken"), taken, register_plugin(SaveSpy(), name="taken"):
        pass


# --- the cluster helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "require", "required"),
    [("", "", False), ("true", "", True), ("1", "", True), ("no", "", False), ("", "1", True)],
)
def test_postgres_required(
    monkeypatch: pytest.MonkeyPatch, ci: str, require: str, required: bool
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("DORM_REQUIRE_POSTGRES", require)
    assert pg.postgres_required() is required


def test_start_cluster_says_why_it_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DORM_PG_BINDIR", "/nonexistent/bin")
    with pytest.raises(pg.PostgresUnavailableError, match="from /nonexistent/bin"):
        pg.start_cluster()
    monkeypatch.setattr(pg, "find_pg_bindir", lambda: None)
    with pytest.raises(pg.PostgresUnavailableError, match="server binaries not found"):
        pg.start_cluster()


def test_cluster_database_names_are_plain_identifiers(tmp_path: Path) -> None:
    cluster = pg.PgCluster("/nonexistent/bin", root=tmp_path)
    with pytest.raises(ValueError, match="not a plain identifier"):
        cluster.create_database('x"; DROP DATABASE postgres; --')
    assert cluster.settings("shop")["USER"] == pg.PG_USER
    assert cluster.dsn("shop").endswith("/shop")


def test_the_repository_conftest_reexports_the_cluster_class() -> None:
    code = (
        "import sys; sys.path.insert(0, 'tests'); "
        "from conftest import PgCluster, find_pg_bindir; import dorm.test.postgres as p; "
        "assert PgCluster is p.PgCluster and find_pg_bindir is p.find_pg_bindir"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- SessionDatabases --------------------------------------------------------------------------


def test_session_databases_check_their_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode 'mysql'"):
        SessionDatabases("mysql", tmp_path)
    with pytest.raises(ValueError, match="needs a cluster"):
        SessionDatabases("postgres", tmp_path)


def test_an_unknown_engine_is_refused_and_the_settings_restored(
    tmp_path: Path, fresh_settings: None
) -> None:
    from dorm.conf import settings

    dorm.configure(DATABASES={"default": {"ENGINE": "mysql", "NAME": "shop"}})
    databases = SessionDatabases("settings", tmp_path)
    with pytest.raises(ImproperlyConfigured, match="not ENGINE 'mysql'"):
        databases.setup()
    assert settings.DATABASES["default"]["ENGINE"] == "mysql"


def test_an_unreachable_postgresql_server_is_named(tmp_path: Path, fresh_settings: None) -> None:
    pytest.importorskip("psycopg")
    from dorm.conf import settings

    dorm.configure(
        DATABASES={
            "default": {"ENGINE": "postgresql", "NAME": "shop", "HOST": "127.0.0.1", "PORT": 1}
        }
    )
    databases = SessionDatabases("settings", tmp_path)
    with pytest.raises(ImproperlyConfigured, match=r"CREATE DATABASE \"test_shop\".*port 1"):
        databases.setup()
    assert settings.DATABASES["default"]["NAME"] == "shop"


def test_sqlite_mode_replaces_every_alias_and_gives_the_settings_back(
    tmp_path: Path, fresh_settings: None
) -> None:
    from dorm.conf import settings

    dorm.configure(
        DATABASES={
            "default": {"ENGINE": "postgresql", "NAME": "shop", "MAX_POOL_SIZE": 4},
            "memory": {"ENGINE": "sqlite", "NAME": ":memory:"},
        }
    )
    databases = SessionDatabases("sqlite", tmp_path)
    databases.setup()
    try:
        assert settings.DATABASES["default"]["NAME"] == str(tmp_path / "default.sqlite3")
        assert settings.DATABASES["default"]["MAX_POOL_SIZE"] == 4
        assert settings.DATABASES["memory"]["NAME"] == str(tmp_path / "memory.sqlite3")
        assert databases.vendor == "sqlite"
        assert "dorm_migrations" in dorm.db.connection.get_connection().table_names()
    finally:
        databases.teardown()
    assert settings.DATABASES["default"]["ENGINE"] == "postgresql"
