"""``dorm init``: each template is written, imports, and the tests it ships pass right after
``dorm init``, ``dorm makemigrations`` and ``dorm migrate``, run as a user runs them."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dorm.apps import apps
from dorm.cli import main
from dorm.conf import settings
from dorm.db.connection import reset_connections

COMMON = ["settings.py", "conftest.py", "tests/test_notes.py", "{app}/__init__.py"]
TEMPLATE_FILES = {
    "plain": [*COMMON, "{app}/models.py"],
    "fastapi-postgres": [*COMMON, "{app}/models.py", "{app}/main.py"],
    "litestar-sqlite": [*COMMON, "{app}/models.py", "{app}/main.py"],
}


def _forget(app: str) -> None:
    settings._reset()
    reset_connections()
    apps.clear(app)
    for name in list(sys.modules):
        if name in ("settings", app) or name.startswith(f"{app}."):
            del sys.modules[name]


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str], Path]]:
    """``project(template, app)`` runs ``dorm init`` in tmp_path and makes it importable."""
    used: list[str] = []
    monkeypatch.delenv("DORM_SETTINGS", raising=False)
    monkeypatch.delenv("DORM_PROFILE", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def make(template: str, app: str) -> Path:
        used.append(app)
        _forget(app)
        assert main(["init", str(tmp_path), "--app", app, "--template", template]) == 0
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        return tmp_path

    yield make
    for app in used:
        _forget(app)


@pytest.mark.parametrize("template", sorted(TEMPLATE_FILES))
def test_init_writes_the_template_files(
    template: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "proj"
    assert main(["init", str(target), "--app", "blog", "--template", template]) == 0
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == sorted(f.format(app="blog") for f in TEMPLATE_FILES[template])
    for path in target.rglob("*.py"):
        text = path.read_text()
        assert "$" not in text, path
        compile(text, str(path), "exec")
    settings_py = (target / "settings.py").read_text()
    assert 'INSTALLED_APPS = ["blog"]' in settings_py
    out = capsys.readouterr().out
    assert "settings.py" in out and "blog/models.py" in out
    assert "dorm makemigrations" in out and "dorm migrate" in out and "  pytest\n" in out
    assert 'pytest_plugins = ["dorm.test.pytest_plugin"]' in (target / "conftest.py").read_text()
    if template != "plain":
        assert "uvicorn blog.main:app" in out
        main_py = (target / "blog" / "main.py").read_text()
        assert "async def" in main_py and "await dorm.awarmup_pool(" in main_py


def test_plain_template_settings_and_models_import(
    project: Callable[[str, str], Path],
) -> None:
    project("plain", "initplain")
    assert 'DATABASES = {"default": "sqlite:///db.sqlite3"}' in Path("settings.py").read_text()
    assert settings.INSTALLED_APPS == ["initplain"]  # discovered from the working directory
    assert settings.DATABASES["default"]["NAME"] == "db.sqlite3"
    models = importlib.import_module("initplain.models")
    assert models.Note._meta.db_table == "initplain_note"
    assert apps.get_model("initplain.Note") is models.Note


def test_default_directory_and_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert (tmp_path / "settings.py").is_file()
    assert (tmp_path / "app" / "models.py").is_file()


@pytest.mark.parametrize("mine", ["settings.py", "conftest.py", "tests/test_notes.py"])
def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mine: str
) -> None:
    (tmp_path / mine).parent.mkdir(exist_ok=True)
    (tmp_path / mine).write_text("MINE = 1\n")
    assert main(["init", str(tmp_path), "--app", "blog"]) == 1
    err = capsys.readouterr().err
    assert mine in err and "--force" in err
    assert (tmp_path / mine).read_text() == "MINE = 1\n"
    assert not (tmp_path / "blog").exists()  # nothing written at all

    assert main(["init", str(tmp_path), "--app", "blog", "--force"]) == 0
    assert "INSTALLED_APPS" in (tmp_path / "settings.py").read_text()
    assert (tmp_path / "blog" / "models.py").is_file()


@pytest.mark.parametrize(
    "name", ["1blog", "my-app", "class", "json", "dorm", "settings", "tests", "conftest", ""]
)
def test_bad_app_name(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path), "--app", name]) == 1
    assert "--app" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_unknown_template_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path), "--template", "django"]) == 2
    assert "plain" in capsys.readouterr().err


# --- the generated project's own tests --------------------------------------------------------

# Plugins of this environment that take a second to import and that no template needs.
QUIET = ("-p", "no:cacheprovider", "-p", "no:faker", "-p", "no:hypothesispytest")


def _user_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DORM_SETTINGS", "DORM_PROFILE", "DATABASE_URL", "PYTEST_ADDOPTS")
        and not k.startswith("PYTEST_XDIST")
    }
    return {**env, **extra}


def _accept(root: Path, template: str, env: dict[str, str], tests: int) -> None:
    """``dorm init``, ``dorm makemigrations``, ``dorm migrate``, ``pytest``, as typed."""
    dorm_script = str(Path(sys.executable).with_name("dorm"))

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)

    root.mkdir()
    for argv in (
        ["init", "--app", "blog", "--template", template],
        ["makemigrations"],
        ["migrate"],
    ):
        done = run(dorm_script, *argv)
        assert done.returncode == 0, f"dorm {' '.join(argv)}: {done.stdout}{done.stderr}"
    assert (root / "blog" / "migrations" / "0001_initial.py").is_file()
    result = run(sys.executable, "-m", "pytest", "-p", "no:randomly", *QUIET)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{tests} passed" in result.stdout, result.stdout[-2000:]


def test_the_plain_template_tests_pass(tmp_path: Path) -> None:
    _accept(tmp_path / "proj", "plain", _user_env(), tests=5)
    _dev_database_is_untouched(tmp_path / "proj" / "db.sqlite3")


def _dev_database_is_untouched(path: Path) -> None:
    """``dorm migrate`` made the project's database; the tests ran on a copy."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM blog_note").fetchone() == (0,)
    finally:
        conn.close()


def test_the_litestar_sqlite_template_tests_pass(tmp_path: Path) -> None:
    pytest.importorskip("litestar")
    _accept(tmp_path / "proj", "litestar-sqlite", _user_env(), tests=8)
    _dev_database_is_untouched(tmp_path / "proj" / "db.sqlite3")


@pytest.mark.postgres
def test_the_fastapi_postgres_template_tests_pass(tmp_path: Path, pg_database: Any) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import psycopg

    _accept(tmp_path / "proj", "fastapi-postgres", _user_env(DATABASE_URL=pg_database.dsn), 8)
    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
        databases = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        assert conn.execute("SELECT count(*) FROM blog_note").fetchone() == (0,)
    assert {"blog_note", "dorm_migrations"} <= tables  # dorm migrate ran on DATABASE_URL
    # The tests ran on test_<NAME>, made for the run and dropped at its end.
    assert f"test_{pg_database.name}" not in databases
