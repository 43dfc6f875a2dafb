"""Settings: configure(), settings.py discovery, profiles, URLs, apps, misconfiguration."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import dorm
from dorm.apps import apps
from dorm.conf import parse_database_url, settings
from dorm.db.connection import get_connection, reset_connections
from dorm.exceptions import ImproperlyConfigured


class Item(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_settings"


MODELS = [Item]
pytestmark = pytest.mark.usefixtures("clean_tables")

_counter = itertools.count()


@pytest.fixture
def restore(db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Leave the module's backend configured again, whatever the test did to settings."""
    monkeypatch.delenv("DORM_SETTINGS", raising=False)
    monkeypatch.delenv("DORM_PROFILE", raising=False)
    before = set(sys.modules)
    yield db
    for name in set(sys.modules) - before:
        del sys.modules[name]
    reset_connections()
    dorm.configure(DATABASES={"default": db.settings})


def _unique(stem: str) -> str:
    return f"{stem}_{next(_counter)}_{id(_counter) % 10000}"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _discover_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings._reset()
    reset_connections()
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


# -- configure() -------------------------------------------------------------------------------


def test_configure_sets_databases_and_queries_run(restore: Any) -> None:
    Item.objects.create(name="a")
    dorm.configure(DATABASES={"default": restore.settings}, CUSTOM_FLAG=42)
    assert settings.CUSTOM_FLAG == 42
    assert settings.SETTINGS_MODULE is None
    assert settings.DATABASES["default"]["ENGINE"] == restore.vendor
    assert settings.DATABASES["default"]["MAX_POOL_SIZE"] == 10  # defaults filled in
    assert settings.DATABASES["default"]["POOL_TIMEOUT"] == 30.0
    assert get_connection().vendor == restore.vendor
    assert list(Item.objects.values_list("name", flat=True)) == ["a"]


def test_configure_replaces_earlier_settings(restore: Any) -> None:
    dorm.configure(DATABASES={"default": restore.settings}, ONLY_ONCE=1)
    dorm.configure(DATABASES={"default": restore.settings})
    with pytest.raises(AttributeError, match="'ONLY_ONCE' is not defined"):
        _ = settings.ONLY_ONCE


def test_lower_case_names_are_not_settings(restore: Any) -> None:
    dorm.configure(DATABASES={"default": restore.settings}, helper=1)
    with pytest.raises(AttributeError, match="'helper'"):
        _ = settings.helper


def test_installed_apps_imports_each_apps_models(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _unique("tset_shop")
    _write(tmp_path / app / "__init__.py", "")
    _write(
        tmp_path / app / "models.py",
        """
        import dorm

        class Product(dorm.Model):
            title = dorm.CharField(max_length=20)
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        dorm.configure(DATABASES={"default": restore.settings}, INSTALLED_APPS=[app])
        assert f"{app}.models" in sys.modules
        model = apps.get_model(f"{app}.Product")
        assert model._meta.db_table == f"{app}_product"
        assert apps.installed == [app]
    finally:
        apps.clear(app)


def test_installed_app_without_models_is_fine(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _unique("tset_nomodels")
    _write(tmp_path / app / "__init__.py", "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    dorm.configure(DATABASES={"default": restore.settings}, INSTALLED_APPS=[app])
    assert app in sys.modules and f"{app}.models" not in sys.modules


def test_installed_app_that_cannot_be_imported(restore: Any) -> None:
    with pytest.raises(
        ImproperlyConfigured, match=r"INSTALLED_APPS: cannot import 'no_such_app_x'"
    ):
        dorm.configure(DATABASES={"default": restore.settings}, INSTALLED_APPS=["no_such_app_x"])


def test_installed_apps_must_be_a_list_of_names(restore: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"INSTALLED_APPS must be a list.*'shop'"):
        dorm.configure(DATABASES={"default": restore.settings}, INSTALLED_APPS="shop")


def test_models_module_with_a_broken_import_is_not_swallowed(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _unique("tset_broken")
    _write(tmp_path / app / "__init__.py", "")
    _write(tmp_path / app / "models.py", "import no_such_dependency_zz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_zz"):
        dorm.configure(DATABASES={"default": restore.settings}, INSTALLED_APPS=[app])


# -- settings.py discovery ---------------------------------------------------------------------


def test_settings_py_in_the_working_directory_is_found(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_file = tmp_path / "found.db"
    _write(
        tmp_path / "settings.py",
        f"""
        DATABASES = {{"default": {{"ENGINE": "sqlite", "NAME": {str(db_file)!r}}}}}
        INSTALLED_APPS = []
        GREETING = "hello"
        lower_case = "ignored"
        """,
    )
    _discover_in(tmp_path, monkeypatch)
    assert not settings.configured
    assert settings.GREETING == "hello"
    assert settings.configured and settings.SETTINGS_MODULE == "settings"
    assert not hasattr(settings, "lower_case")
    conn = get_connection()
    assert conn.vendor == "sqlite"
    conn.execute("CREATE TABLE probe (x integer)", ())
    conn.execute("INSERT INTO probe VALUES (7)", ())
    assert conn.fetchall("SELECT x FROM probe", ()) == [(7,)]
    assert db_file.is_file()


def test_dorm_settings_names_the_module(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _unique("tset_conf")
    _write(
        tmp_path / "pkg_cfg" / f"{name}.py",
        f"""
        DATABASES = {{"default": {{"ENGINE": "sqlite", "NAME": ":memory:"}}}}
        INSTALLED_APPS = []
        FROM_MODULE = {name!r}
        """,
    )
    # A settings.py in the working directory loses to DORM_SETTINGS.
    _write(tmp_path / "cwd" / "settings.py", "FROM_MODULE = 'cwd'\n")
    _discover_in(tmp_path / "cwd", monkeypatch)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg_cfg"))
    monkeypatch.setenv("DORM_SETTINGS", name)
    assert settings.FROM_MODULE == name
    assert settings.SETTINGS_MODULE == name
    assert settings.DATABASES["default"]["NAME"] == ":memory:"


def test_dorm_settings_that_cannot_be_imported(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _discover_in(tmp_path, monkeypatch)
    monkeypatch.setenv("DORM_SETTINGS", "tset_missing_settings_mod")
    with pytest.raises(
        ImproperlyConfigured, match=r"DORM_SETTINGS='tset_missing_settings_mod'.*cannot be imported"
    ):
        _ = settings.DATABASES


def test_dorm_profile_overrides_the_base_settings(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path / "settings" / "__init__.py",
        f"""
        DATABASES = {{"default": {{"ENGINE": "sqlite", "NAME": {str(tmp_path / "dev.db")!r}}}}}
        INSTALLED_APPS = []
        DEBUG = True
        SHARED = "base"
        """,
    )
    _write(
        tmp_path / "settings" / "prod.py",
        f"""
        DATABASES = {{"default": {{"ENGINE": "sqlite", "NAME": {str(tmp_path / "prod.db")!r}}}}}
        DEBUG = False
        """,
    )
    _discover_in(tmp_path, monkeypatch)
    monkeypatch.setenv("DORM_PROFILE", "prod")
    assert settings.DEBUG is False
    assert settings.SHARED == "base"  # not overridden: the base value stays
    assert settings.SETTINGS_MODULE == "settings.prod"
    assert settings.DATABASES["default"]["NAME"] == str(tmp_path / "prod.db")
    get_connection().execute("CREATE TABLE p (x integer)", ())
    assert (tmp_path / "prod.db").is_file() and not (tmp_path / "dev.db").exists()


def test_dorm_profile_without_its_module(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "settings" / "__init__.py", "INSTALLED_APPS = []\n")
    _discover_in(tmp_path, monkeypatch)
    monkeypatch.setenv("DORM_PROFILE", "staging")
    with pytest.raises(ImproperlyConfigured, match=r"DORM_PROFILE='staging'.*'settings.staging'"):
        _ = settings.DATABASES


def test_no_settings_anywhere_means_missing_databases(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _discover_in(tmp_path, monkeypatch)
    assert settings.DATABASES == {}
    with pytest.raises(ImproperlyConfigured, match=r"DATABASES is empty.*dorm.configure"):
        get_connection()


def test_discovered_installed_apps_are_imported(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _unique("tset_blog")
    _write(tmp_path / app / "__init__.py", "")
    _write(
        tmp_path / app / "models.py",
        """
        import dorm

        class Post(dorm.Model):
            title = dorm.CharField(max_length=20)
        """,
    )
    _write(
        tmp_path / "settings.py",
        f"""
        DATABASES = {{"default": {{"ENGINE": "sqlite", "NAME": ":memory:"}}}}
        INSTALLED_APPS = [{app!r}]
        """,
    )
    _discover_in(tmp_path, monkeypatch)
    try:
        assert settings.INSTALLED_APPS == [app]
        assert apps.get_model(app, "Post").__module__ == f"{app}.models"
    finally:
        apps.clear(app)


def test_sibling_packages_with_models_are_autodiscovered(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_models, without_models = _unique("tset_orders"), _unique("tset_util")
    _write(tmp_path / with_models / "__init__.py", "")
    _write(
        tmp_path / with_models / "models.py",
        """
        import dorm

        class Order(dorm.Model):
            total = dorm.IntegerField(default=0)
        """,
    )
    _write(tmp_path / without_models / "__init__.py", "")
    _write(tmp_path / "not-an-identifier" / "models.py", "raise RuntimeError('never')\n")
    _write(
        tmp_path / "settings.py",
        'DATABASES = {"default": {"ENGINE": "sqlite", "NAME": ":memory:"}}\n',
    )
    _discover_in(tmp_path, monkeypatch)
    try:
        assert settings.INSTALLED_APPS == [with_models]
        model = apps.get_model(with_models, "Order")
        assert [f.name for f in model._meta.concrete_fields] == ["id", "total"]
    finally:
        apps.clear(with_models)


# -- DATABASES as URLs -------------------------------------------------------------------------


def test_parse_postgresql_url() -> None:
    parsed = parse_database_url(
        "postgresql://ada:p%40ss%3Aw@db.example:6543/shop?sslmode=disable&max_pool_size=4"
    )
    assert parsed == {
        "ENGINE": "postgresql",
        "NAME": "shop",
        "USER": "ada",
        "PASSWORD": "p@ss:w",
        "HOST": "db.example",
        "PORT": 6543,
        "MAX_POOL_SIZE": "4",
        "OPTIONS": {"sslmode": "disable"},
    }


def test_parse_sqlite_urls() -> None:
    assert parse_database_url("sqlite:///relative.db") == {
        "ENGINE": "sqlite",
        "NAME": "relative.db",
    }
    assert parse_database_url("sqlite:////abs/path.db") == {
        "ENGINE": "sqlite",
        "NAME": "/abs/path.db",
    }
    assert parse_database_url("sqlite://")["NAME"] == ":memory:"
    assert parse_database_url("sqlite:///:memory:")["NAME"] == ":memory:"


def test_unsupported_url_scheme_is_named_and_the_password_masked() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"unsupported URL scheme 'mysql'") as info:
        parse_database_url("mysql://root:hunter2@localhost/app")
    assert "hunter2" not in str(info.value) and "root:***@" in str(info.value)


def test_sqlite_relative_url_is_relative_to_the_working_directory(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dorm.configure(DATABASES={"default": "sqlite:///relative.db"})
    assert settings.DATABASES["default"]["NAME"] == "relative.db"
    get_connection().execute("CREATE TABLE r (x integer)", ())
    assert (tmp_path / "relative.db").is_file()


def test_sqlite_absolute_url(restore: Any, tmp_path: Path) -> None:
    target = tmp_path / "abs" / "path.db"
    target.parent.mkdir()
    dorm.configure(DATABASES={"default": f"sqlite:///{target}"})
    assert str(target).startswith("/")
    assert settings.DATABASES["default"]["NAME"] == str(target)
    conn = get_connection()
    conn.execute("CREATE TABLE a (x text)", ())
    conn.execute("INSERT INTO a VALUES ('ok')", ())
    assert conn.fetchall("SELECT x FROM a", ()) == [("ok",)]
    assert target.is_file()


def test_url_settings_connect(restore: Any) -> None:
    """Build a URL from the module's DATABASES entry and run the ORM through it."""
    s = restore.settings
    if restore.vendor == "sqlite":
        url = f"sqlite:///{s['NAME']}"
    else:
        password = f":{quote(s['PASSWORD'], safe='')}" if s["PASSWORD"] else ""
        url = (
            f"postgresql://{quote(s['USER'], safe='')}{password}@{s['HOST']}:{s['PORT']}/"
            f"{s['NAME']}?sslmode=disable&application_name=dorm_url_test"
        )
    Item.objects.create(name="via-dict")
    dorm.configure(DATABASES={"default": url})
    conn = get_connection()
    assert conn.vendor == restore.vendor
    Item.objects.create(name="via-url")
    assert sorted(Item.objects.values_list("name", flat=True)) == ["via-dict", "via-url"]
    if restore.vendor == "postgresql":
        assert settings.DATABASES["default"]["OPTIONS"] == {
            "sslmode": "disable",
            "application_name": "dorm_url_test",
        }
        assert settings.DATABASES["default"]["PORT"] == s["PORT"]
        assert conn.fetchone("SELECT current_setting('application_name')", ()) == ("dorm_url_test",)
        assert conn.fetchone("SELECT current_database()", ()) == (s["NAME"],)


# -- misconfiguration --------------------------------------------------------------------------


def test_unknown_databases_key(restore: Any) -> None:
    bad = {**restore.settings, "PASWORD": "x"}
    with pytest.raises(
        ImproperlyConfigured, match=r"DATABASES\['default'\] has unknown key\(s\) 'PASWORD'"
    ):
        dorm.configure(DATABASES={"default": bad})


def test_bad_port(restore: Any) -> None:
    bad = {"ENGINE": "postgresql", "NAME": "x", "PORT": "fifty"}
    with pytest.raises(ImproperlyConfigured, match=r"\['PORT'\] must be a number, got 'fifty'"):
        dorm.configure(DATABASES={"default": bad})


def test_url_with_bad_port(restore: Any) -> None:
    with pytest.raises(
        ImproperlyConfigured, match=r"the PORT in .postgresql://u@h:notaport/db. must be a number"
    ):
        dorm.configure(DATABASES={"default": "postgresql://u@h:notaport/db"})


def test_min_pool_size_larger_than_max(restore: Any) -> None:
    bad = {**restore.settings, "MIN_POOL_SIZE": 5, "MAX_POOL_SIZE": 2}
    with pytest.raises(
        ImproperlyConfigured,
        match=r"DATABASES\['default'\]: MIN_POOL_SIZE \(5\) is larger than MAX_POOL_SIZE \(2\)",
    ):
        dorm.configure(DATABASES={"default": bad})


@pytest.mark.parametrize("value", [0, -1, "many"])
def test_pool_sizes_must_be_positive(restore: Any, value: Any) -> None:
    bad = {**restore.settings, "MAX_POOL_SIZE": value}
    with pytest.raises(
        ImproperlyConfigured, match=rf"\['MAX_POOL_SIZE'\] must be a positive number, got {value!r}"
    ):
        dorm.configure(DATABASES={"default": bad})


def test_unknown_engine_fails_on_first_connection(restore: Any) -> None:
    dorm.configure(DATABASES={"default": {"ENGINE": "oracle", "NAME": "x"}})
    with pytest.raises(
        ImproperlyConfigured, match=r"DATABASES\['default'\]\['ENGINE'\] = 'oracle'.*not a known"
    ):
        get_connection()


def test_dotted_engine_names_are_accepted(restore: Any) -> None:
    engine = "dorm.db.backends.sqlite" if restore.vendor == "sqlite" else "postgres"
    dorm.configure(DATABASES={"default": {**restore.settings, "ENGINE": engine}})
    assert settings.DATABASES["default"]["ENGINE"] == restore.vendor
    Item.objects.create(name="x")
    assert Item.objects.count() == 1


def test_missing_engine_and_name(restore: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"\['ENGINE'\] is missing"):
        dorm.configure(DATABASES={"default": {"NAME": "x.db"}})
    with pytest.raises(ImproperlyConfigured, match=r"\['NAME'\] is empty"):
        dorm.configure(DATABASES={"default": {"ENGINE": "sqlite"}})


def test_databases_must_be_a_dict(restore: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASES must be a dict of aliases, got list"):
        dorm.configure(DATABASES=["sqlite:///x.db"])
    with pytest.raises(
        ImproperlyConfigured, match=r"DATABASES\['default'\] must be a dict or a URL"
    ):
        dorm.configure(DATABASES={"default": 5})


def test_missing_databases(restore: Any) -> None:
    dorm.configure(INSTALLED_APPS=[])
    with pytest.raises(ImproperlyConfigured, match=r"DATABASES is empty"):
        Item.objects.count()


def test_unknown_alias_in_using(restore: Any) -> None:
    Item.objects.create(name="x")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"database alias 'replica' is not in DATABASES \(known: default\)",
    ):
        list(Item.objects.using("replica"))


def test_second_alias_is_used(restore: Any, tmp_path: Path) -> None:
    other = {"ENGINE": "sqlite", "NAME": str(tmp_path / "other.db")}
    dorm.configure(DATABASES={"default": restore.settings, "other": other})
    Item.objects.create(name="default-row")
    get_connection("other").execute(
        'CREATE TABLE "t_settings_item" ("id" integer PRIMARY KEY, "name" text)', ()
    )
    Item.objects.using("other").create(name="other-row")
    assert list(Item.objects.values_list("name", flat=True)) == ["default-row"]
    assert list(Item.objects.using("other").values_list("name", flat=True)) == ["other-row"]


def test_setting_an_attribute_revalidates(restore: Any) -> None:
    settings.FEATURE = "on"
    assert settings.FEATURE == "on"
    with pytest.raises(ImproperlyConfigured, match=r"\['PORT'\] must be a number, got 'x'"):
        settings.DATABASES = {"default": {"ENGINE": "postgresql", "NAME": "n", "PORT": "x"}}
    assert settings.DATABASES["default"]["ENGINE"] == restore.vendor  # unchanged


def test_pool_keys_in_a_url(restore: Any) -> None:
    dorm.configure(
        DATABASES={
            "default": restore.settings,
            "pg": "postgresql://u@h:5433/db?min_pool_size=2&max_pool_size=4&pool_timeout=1.5",
        }
    )
    pg = settings.DATABASES["pg"]
    assert (pg["MIN_POOL_SIZE"], pg["MAX_POOL_SIZE"], pg["POOL_TIMEOUT"]) == (2, 4, 1.5)
    assert pg["OPTIONS"] == {} and pg["PORT"] == 5433
    with pytest.raises(ImproperlyConfigured, match=r"MIN_POOL_SIZE \(5\) is larger"):
        dorm.configure(DATABASES={"default": "postgresql://u@h/db?min_pool_size=5&max_pool_size=2"})


def test_profile_needs_a_settings_package(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "settings.py", "INSTALLED_APPS = []\n")
    _discover_in(tmp_path, monkeypatch)
    monkeypatch.setenv("DORM_PROFILE", "prod")
    with pytest.raises(ImproperlyConfigured, match=r"DORM_PROFILE='prod'.*settings/prod.py"):
        _ = settings.INSTALLED_APPS


def test_settings_module_with_a_url(
    restore: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "settings.py", 'DATABASES = {"default": "sqlite:///from_url.db"}\n')
    _discover_in(tmp_path, monkeypatch)
    get_connection().execute("CREATE TABLE u (x integer)", ())
    assert (tmp_path / "from_url.db").is_file()
