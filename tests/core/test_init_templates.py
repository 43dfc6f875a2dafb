"""``dorm init``: each template is written, imports, and its web app answers through the ORM."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dorm.apps import apps
from dorm.cli import main
from dorm.conf import settings
from dorm.db.connection import reset_connections

TEMPLATE_FILES = {
    "plain": ["settings.py", "{app}/__init__.py", "{app}/models.py"],
    "fastapi-postgres": ["settings.py", "{app}/__init__.py", "{app}/models.py", "{app}/main.py"],
    "litestar-sqlite": ["settings.py", "{app}/__init__.py", "{app}/models.py", "{app}/main.py"],
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
    assert "dorm makemigrations" in out and "dorm migrate" in out
    if template != "plain":
        assert "uvicorn blog.main:app" in out


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


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "settings.py").write_text("MINE = 1\n")
    assert main(["init", str(tmp_path), "--app", "blog"]) == 1
    err = capsys.readouterr().err
    assert "settings.py" in err and "--force" in err
    assert (tmp_path / "settings.py").read_text() == "MINE = 1\n"
    assert not (tmp_path / "blog").exists()  # nothing written at all

    assert main(["init", str(tmp_path), "--app", "blog", "--force"]) == 0
    assert "INSTALLED_APPS" in (tmp_path / "settings.py").read_text()
    assert (tmp_path / "blog" / "models.py").is_file()


@pytest.mark.parametrize("name", ["1blog", "my-app", "class", "json", "dorm", "settings", ""])
def test_bad_app_name(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path), "--app", name]) == 1
    assert "--app" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_unknown_template_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path), "--template", "django"]) == 2
    assert "plain" in capsys.readouterr().err


def _check_create_and_read(client: Any, app: str) -> None:
    created = client.post("/notes", json={"title": "hello", "body": "first note"})
    assert created.status_code == 201, created.text
    note = created.json()
    assert note["title"] == "hello" and note["body"] == "first note"
    assert isinstance(note["id"], int)

    read = client.get(f"/notes/{note['id']}")
    assert read.status_code == 200, read.text
    assert read.json() == note
    assert client.get(f"/notes/{note['id'] + 1000}").status_code == 404

    models = importlib.import_module(f"{app}.models")
    row = models.Note.objects.get(pk=note["id"])
    assert (row.title, row.body) == ("hello", "first note")
    assert models.Note.objects.count() == 1


@pytest.mark.postgres
# Starlette's TestClient prefers httpx2 and warns when it falls back to httpx.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_fastapi_postgres_app(
    project: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch, pg_database: Any
) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    db = pg_database.settings
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    monkeypatch.setenv("DATABASE_URL", url)
    project("fastapi-postgres", "initfa")
    main_module = importlib.import_module("initfa.main")
    with TestClient(main_module.app) as client:  # runs the lifespan: creates the table
        assert "initfa_note" in main_module.get_connection().table_names()
        _check_create_and_read(client, "initfa")
    assert settings.DATABASES["default"]["ENGINE"] == "postgresql"


def test_litestar_sqlite_app(project: Callable[[str, str], Path]) -> None:
    pytest.importorskip("litestar")
    pytest.importorskip("httpx")
    from litestar.testing import TestClient

    root = project("litestar-sqlite", "initls")
    main_module = importlib.import_module("initls.main")
    with TestClient(app=main_module.app) as client:  # runs on_startup: creates the table
        _check_create_and_read(client, "initls")
    assert settings.DATABASES["default"]["NAME"] == "db.sqlite3"
    assert (root / "db.sqlite3").is_file()
    # a second start finds the table and keeps the row
    with TestClient(app=main_module.app) as client:
        assert client.get("/notes/1").json()["title"] == "hello"
