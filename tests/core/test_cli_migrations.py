"""The migration commands of the ``dorm`` CLI end to end, in a throwaway project directory.

Each test writes ``settings.py`` and a ``shop`` app, then drives ``dorm.cli.main([...])``
in-process as if each call were a fresh ``dorm`` process (settings, connections, the app's
models and modules are forgotten before every call). One test runs the console script.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.cli import main
from dorm.conf import settings
from dorm.db.connection import get_connection, reset_connections

REPO = Path(__file__).resolve().parents[2]
DORM = REPO / ".venv" / "bin" / "dorm"

MODELS_V1 = """
import dorm


class Book(dorm.Model):
    title = dorm.CharField(max_length=100)
    author = dorm.CharField(max_length=50)
    pages = dorm.IntegerField()
"""

MODELS_V2 = """
import dorm


class Book(dorm.Model):
    name = dorm.CharField(max_length=100)
    author = dorm.CharField(max_length=200)
    pages = dorm.IntegerField()
    price = dorm.IntegerField(default=5)
"""


def _forget_project() -> None:
    settings._reset()
    reset_connections()
    apps.clear("shop")
    for name in list(sys.modules):
        if name.split(".")[0] in ("shop", "settings"):
            del sys.modules[name]
    importlib.invalidate_caches()


class Project:
    def __init__(self, root: Path, database: dict[str, Any], capsys: Any) -> None:
        self.root = root
        self.database = database
        self.capsys = capsys
        (root / "shop").mkdir()
        (root / "shop" / "__init__.py").write_text("")
        self.write_models(MODELS_V1)
        self.write_settings(root / "settings.py", database)

    @staticmethod
    def write_settings(path: Path, database: dict[str, Any]) -> None:
        path.write_text(f'DATABASES = {{"default": {database!r}}}\nINSTALLED_APPS = ["shop"]\n')

    def write_models(self, source: str) -> None:
        (self.root / "shop" / "models.py").write_text(textwrap.dedent(source))

    def run(self, *argv: str) -> tuple[int, str, str]:
        _forget_project()
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def migration(self, name: str) -> str:
        return (self.root / "shop" / "migrations" / name).read_text()

    def migrations(self) -> list[str]:
        return sorted(p.name for p in (self.root / "shop" / "migrations").glob("0*.py"))

    def tables(self) -> set[str]:
        return set(get_connection().table_names())

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in get_connection().fetchall(sql, ())]


def _drop_tables(database: dict[str, Any]) -> None:
    _forget_project()
    dorm.configure(DATABASES={"default": database})
    conn = get_connection()
    qn = conn.ops.quote_name
    for table in conn.table_names():
        if table.startswith("shop_") or table == "dorm_migrations":
            conn.execute(f"DROP TABLE {qn(table)}", ())


@pytest.fixture
def project_factory(
    db: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[[dict[str, Any]], Project]]:
    for name in ("DORM_SETTINGS", "DORM_PROFILE"):  # set first, so the teardown restores them
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # edited models.py: no stale .pyc
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    used: list[dict[str, Any]] = []

    def make(database: dict[str, Any]) -> Project:
        used.append(database)
        return Project(tmp_path, database, capsys)

    yield make
    for database in used:
        _drop_tables(database)
    _forget_project()
    dorm.configure(DATABASES={"default": db.settings})  # for the db fixture's teardown


@pytest.fixture
def project(db: Any, project_factory: Callable[[dict[str, Any]], Project]) -> Iterator[Project]:
    _drop_tables(db.settings)
    yield project_factory(db.settings)


def test_full_cycle(project: Project) -> None:
    code, out, _ = project.run("makemigrations", "--check")
    assert code == 1 and "Create model Book" in out
    assert not (project.root / "shop" / "migrations").exists()

    code, out, _ = project.run("makemigrations")
    assert code == 0, out
    assert "Migrations for 'shop':" in out
    assert "shop/migrations/0001_initial.py" in out and "- Create model Book" in out
    assert (project.root / "shop" / "migrations" / "__init__.py").exists()
    assert "CreateModel(" in project.migration("0001_initial.py")
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")

    code, out, _ = project.run("migrate", "--plan")
    assert code == 0 and "shop.0001_initial" in out and "Create model Book" in out
    assert "shop_book" not in project.tables()

    code, out, _ = project.run("migrate")
    assert code == 0 and "Applied 1 migration" in out
    assert "[1/1]" not in out  # progress lines only on a TTY
    assert "shop_book" in project.tables()
    assert project.run("migrate")[1] == "No migrations to apply.\n"

    book = apps.get_model("shop", "Book")
    book.objects.create(title="Dune", author="Herbert", pages=412)
    book.objects.create(title="Emma", author="Austen", pages=320)

    project.write_models(MODELS_V2)
    code, out, _ = project.run("makemigrations", "--check")
    assert code == 1
    code, out, _ = project.run("makemigrations", "shop")
    assert code == 0, out
    (second,) = [n for n in project.migrations() if n.startswith("0002_")]
    assert second.startswith("0002_auto_")
    assert f"shop/migrations/{second}" in out
    assert "- Rename field title on Book to name" in out
    assert "- Add field price to Book" in out and "- Alter field author on Book" in out
    source = project.migration(second)
    assert "operations.RenameField(" in source and "'title'" in source and "'name'" in source
    assert "operations.AddField(" in source and "'price'" in source
    assert "operations.AlterField(" in source and "max_length=200" in source
    assert ('"shop", "0001_initial"' in source) or ("'shop', '0001_initial'" in source)

    code, out, _ = project.run("showmigrations")
    assert out == f"shop\n [X] 0001_initial\n [ ] {second[:-3]}\n"

    code, out, _ = project.run("sqlmigrate", "shop", "0001")
    assert code == 0 and "CREATE TABLE" in out and "shop_book" in out
    code, out, _ = project.run("sqlmigrate", "shop", "0001_initial", "--backwards")
    assert code == 0 and "DROP TABLE" in out

    code, out, _ = project.run("migrate", "shop")
    assert code == 0 and "Applied 1 migration" in out
    rows = project.rows("SELECT name, author, pages, price FROM shop_book ORDER BY name")
    assert rows == [("Dune", "Herbert", 412, 5), ("Emma", "Austen", 320, 5)]
    code, out, _ = project.run("showmigrations", "shop")
    assert out == f"shop\n [X] 0001_initial\n [X] {second[:-3]}\n"

    code, out, _ = project.run("migrate", "shop", "0001_initial", "--plan")
    assert code == 0 and f"shop.{second[:-3]} (unapply)" in out
    code, out, _ = project.run("migrate", "shop", "zero")
    assert code == 0 and "Unapplied 2 migrations" in out
    assert not any(t.startswith("shop_") for t in project.tables())
    code, out, _ = project.run("showmigrations", "shop")
    assert out == f"shop\n [ ] 0001_initial\n [ ] {second[:-3]}\n"


def test_fake_name_empty_and_dry_run(project: Project) -> None:
    code, out, _ = project.run("makemigrations", "--dry-run")
    assert code == 0 and "0001_initial.py" in out and project.migrations() == []
    assert project.run("makemigrations", "--name", "books")[0] == 0
    assert project.migrations() == ["0001_books.py"]

    code, out, _ = project.run("migrate", "--fake")
    assert code == 0 and "faked" in out
    assert "shop_book" not in project.tables()
    assert project.run("showmigrations")[1] == "shop\n [X] 0001_books\n"
    code, out, _ = project.run("migrate", "shop", "zero", "--fake")
    assert code == 0 and project.run("showmigrations")[1] == "shop\n [ ] 0001_books\n"

    code, out, _ = project.run("makemigrations", "shop", "--empty")
    assert code == 0 and project.migrations() == ["0001_books.py", "0002_custom.py"]
    assert "dependencies = [" in project.migration("0002_custom.py")
    assert "operations = []" in project.migration("0002_custom.py")
    assert project.run("migrate")[0] == 0
    assert "shop_book" in project.tables()


def test_errors_are_one_line(project: Project) -> None:
    project.run("makemigrations")
    cases = [
        (["migrate", "nope"], "unknown app 'nope'"),
        (["migrate", "shop", "0009_missing"], "no migration '0009_missing' in app 'shop'"),
        (["sqlmigrate", "shop", "0042"], "no migration '0042'"),
        (["showmigrations", "nope"], "unknown app 'nope'"),
        (["makemigrations", "nope"], "unknown app 'nope'"),
        (["migrate", "--database", "other"], "unknown database alias 'other'"),
        (["migrate", "--settings", "no_such_settings"], "no_such_settings"),
    ]
    for argv, message in cases:
        code, out, err = project.run(*argv)
        assert code == 1, argv
        assert err.startswith(f"dorm {argv[0]}: error: ") and message in err, err
        assert err.count("\n") == 1


def test_conflicting_migrations(project: Project) -> None:
    project.run("makemigrations")
    for name in ("0002_a", "0002_b"):
        (project.root / "shop" / "migrations" / f"{name}.py").write_text(
            "from dorm.migrations import Migration as BaseMigration\n\n\n"
            "class Migration(BaseMigration):\n"
            "    dependencies = [('shop', '0001_initial')]\n"
            "    operations = []\n"
        )
    for argv in (["migrate"], ["makemigrations"]):
        code, _out, err = project.run(*argv)
        assert code == 1 and "conflicting migrations" in err and "0002_a, 0002_b" in err


def test_missing_settings(
    project_factory: Callable[[dict[str, Any]], Project], tmp_path: Path
) -> None:
    project = project_factory({"ENGINE": "sqlite", "NAME": str(tmp_path / "x.db")})
    (tmp_path / "settings.py").unlink()
    code, _out, err = project.run("migrate")
    assert code == 1 and "no database configured" in err


def test_settings_option_and_profile(
    project_factory: Callable[[dict[str, Any]], Project],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = project_factory({"ENGINE": "sqlite", "NAME": str(tmp_path / "cwd.db")})
    (tmp_path / "settings.py").unlink()
    conf = tmp_path / "conf"
    conf.mkdir()
    Project.write_settings(conf / "__init__.py", {"ENGINE": "sqlite", "NAME": "base.db"})
    Project.write_settings(conf / "prod.py", {"ENGINE": "sqlite", "NAME": "prod.db"})
    assert project.run("makemigrations", "--settings", "conf")[0] == 0
    assert project.run("migrate", "--settings", "conf")[0] == 0
    assert (tmp_path / "base.db").exists() and not (tmp_path / "prod.db").exists()

    monkeypatch.delenv("DORM_SETTINGS")
    monkeypatch.setenv("DORM_PROFILE", "prod")
    (tmp_path / "conf").rename(tmp_path / "settings")  # settings/ package in the cwd
    code, out, _ = project.run("migrate")
    assert code == 0 and "Applied 1 migration" in out
    assert settings.SETTINGS_MODULE == "settings.prod"
    assert (tmp_path / "prod.db").exists()
    assert project.run("showmigrations")[1] == "shop\n [X] 0001_initial\n"
    reset_connections()
    (tmp_path / "prod.db").unlink()


def test_shell_and_dbshell(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = project.run("shell", "-c", "print(Book.__name__, Book._meta.db_table)")
    assert code == 0 and out == "Book shop_book\n"

    calls: list[tuple[str, list[str], dict[str, str]]] = []
    from dorm.cli import migration_commands

    monkeypatch.setattr(
        migration_commands, "_exec", lambda binary, argv, env: calls.append((binary, argv, env))
    )
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert project.run("dbshell")[0] == 0
    binary, argv, env = calls[-1]
    database = project.database
    if database["ENGINE"] == "sqlite":
        assert binary == "/usr/bin/sqlite3" and argv == ["sqlite3", database["NAME"]]
    else:
        assert binary == "/usr/bin/psql" and argv[-1] == database["NAME"]
        assert ["-p", str(database["PORT"])] == argv[argv.index("-p") : argv.index("-p") + 2]
        if database.get("PASSWORD"):
            assert env["PGPASSWORD"] == database["PASSWORD"]

    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, _out, err = project.run("dbshell")
    assert code == 1 and "client is not installed" in err and err.count("\n") == 1


def test_console_script(project: Project) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DORM_SETTINGS", "DORM_PROFILE")}

    def dorm_cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DORM), *argv], cwd=project.root, env=env, capture_output=True, text=True
        )

    result = dorm_cli("makemigrations")
    assert result.returncode == 0, result.stderr
    assert "shop/migrations/0001_initial.py" in result.stdout
    result = dorm_cli("migrate")
    assert result.returncode == 0 and "Applied 1 migration" in result.stdout, result.stderr
    result = dorm_cli("showmigrations")
    assert result.stdout == "shop\n [X] 0001_initial\n"
    result = dorm_cli("migrate", "nope")
    assert result.returncode == 1 and "unknown app 'nope'" in result.stderr
    result = dorm_cli("migrate", "shop", "zero")
    assert result.returncode == 0, result.stderr


def test_progress_on_a_tty(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.run("makemigrations")
    _forget_project()
    project.capsys.readouterr()
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["migrate"]) == 0
    out = project.capsys.readouterr().out
    assert "[1/1] shop.0001_initial (1 operation) OK " in out and "Applied 1 migration" in out


def test_init_makemigrations_migrate_edit_and_back_to_zero(project: Project) -> None:
    """The acceptance path as a user types it: dorm init, then the migration cycle."""
    shutil.rmtree(project.root / "shop")
    (project.root / "settings.py").unlink()
    code, out, _ = project.run("init", "--app", "shop")
    assert code == 0, out
    assert (project.root / "shop" / "models.py").is_file()
    project.write_settings(project.root / "settings.py", project.database)  # this backend

    assert project.run("makemigrations")[0] == 0
    assert "CreateModel(" in project.migration("0001_initial.py")
    assert project.run("migrate")[0] == 0
    note_model = sys.modules["shop.models"].Note
    note_model.objects.create(title="kept", body="across migrations")

    models_py = project.root / "shop" / "models.py"
    models_py.write_text(
        models_py.read_text().replace(
            '    body = dorm.TextField(blank=True, default="")\n',
            '    body = dorm.TextField(blank=True, default="")\n'
            "    stars = dorm.IntegerField(default=0)\n",
        )
    )
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Add field stars to Note" in out, out
    assert project.run("migrate")[0] == 0
    assert project.rows('SELECT "title", "body", "stars" FROM "shop_note"') == [
        ("kept", "across migrations", 0)
    ]

    code, out, _ = project.run("migrate", "shop", "zero")
    assert code == 0, out
    assert "shop_note" not in project.tables()


# -- errors that say what to do ----------------------------------------------------------------


def test_makemigrations_without_settings_fails_like_migrate(
    db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DORM_SETTINGS", raising=False)
    monkeypatch.chdir(tmp_path)
    _forget_project()
    try:
        assert main(["makemigrations"]) == 1
        err = capsys.readouterr().err
        assert "dorm makemigrations: error: no settings found" in err
        assert "No changes detected" not in err
        _forget_project()
        assert main(["migrate"]) == 1
        assert "dorm migrate: error: no database configured" in capsys.readouterr().err
    finally:
        _forget_project()
        dorm.configure(DATABASES={"default": db.settings})  # for the db fixture's teardown


def test_settings_with_a_syntax_error_is_one_line(project: Project) -> None:
    (project.root / "settings.py").write_text(
        'DATABASES = {"default": {"ENGINE": "sqlite", "NAME": "x.db"}}\n'
        'INSTALLED_APPS = ["shop"]\n'
        "DEBUG = (True\n"
    )
    try:
        code, out, err = project.run("migrate")
        assert code == 1
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "settings.py, line 3" in err and "SyntaxError" in err
        (project.root / "settings.py").write_text("INSTALLED_APPS = ['shop']\nX = 1 / 0\n")
        code, out, err = project.run("makemigrations")
        assert code == 1 and err.count("\n") == 1
        assert "settings.py, line 2: ZeroDivisionError" in err
    finally:
        project.write_settings(project.root / "settings.py", project.database)


def test_failed_migration_names_app_migration_and_operation_and_suggests_fake(
    project: Project,
) -> None:
    assert project.run("makemigrations")[0] == 0
    # The table exists already (made by hand): the migration cannot create it.
    get_connection().execute("CREATE TABLE shop_book (id integer PRIMARY KEY)", ())
    code, out, err = project.run("migrate")
    assert code == 1
    assert "shop.0001_initial: operation 1 of 1 (Create model Book) failed" in err
    assert "already exists" in err
    assert "dorm migrate shop 0001_initial --fake" in err
    assert err.count("\n") == 1
    code, out, _err = project.run("migrate", "shop", "0001_initial", "--fake")
    assert code == 0 and "faked" in out
    assert "[X] 0001_initial" in project.run("showmigrations")[1]


def test_makemigrations_merge_writes_the_merge_migration(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    empty = (
        "from dorm import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    dependencies = [('shop', '0001_initial')]\n    operations = []\n"
    )
    for name in ("0002_left", "0002_right"):
        (project.root / "shop" / "migrations" / f"{name}.py").write_text(empty)
    code, _out, err = project.run("migrate")
    assert code == 1 and "conflicting migrations" in err and "makemigrations --merge" in err
    code, out, err = project.run("makemigrations", "--merge")
    assert code == 0, err
    assert "Merging shop: 0002_left, 0002_right" in out
    assert "0003_merge_0002_left_0002_right.py" in project.migrations()
    merge = project.migration("0003_merge_0002_left_0002_right.py")
    assert "('shop', '0002_left')" in merge and "('shop', '0002_right')" in merge
    code, out, err = project.run("migrate")
    assert code == 0, err
    assert "Applied 4 migrations" in out
    assert project.run("makemigrations", "--merge")[1].strip() == "No conflicts detected to merge."


# --- Meta changes the migrations follow: db_table, options, model renames ----------------------

MODELS_TABLE_V1 = """
import dorm


class Tag(dorm.Model):
    label = dorm.CharField(max_length=20)


class Book(dorm.Model):
    title = dorm.CharField(max_length=100, db_index=True)
    pages = dorm.IntegerField()
    tag = dorm.ForeignKey(Tag, on_delete=dorm.CASCADE, null=True)
    tags = dorm.ManyToManyField(Tag, related_name="books")

    class Meta:
        unique_together = [("title", "pages")]
        indexes = [dorm.Index(fields=["pages"])]
"""


def _index_names(table: str) -> set[str]:
    conn = get_connection()
    if conn.vendor == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
        return {r[0] for r in conn.fetchall(sql, (table,)) if not r[0].startswith("sqlite_")}
    sql = "SELECT indexname FROM pg_indexes WHERE tablename = %s"
    return {r[0] for r in conn.fetchall(sql, (table,)) if not r[0].endswith("_pkey")}


def _fill_books(project: Project) -> None:
    tag_model = apps.get_model("shop", "Tag")
    book_model = apps.get_model("shop", "Book")
    sf = tag_model.objects.create(label="sf")
    dune = book_model.objects.create(title="Dune", pages=412, tag=sf)
    dune.tags.add(sf)
    book_model.objects.create(title="Emma", pages=320)


def test_changing_db_table_is_migrated_forwards_and_back(project: Project) -> None:
    project.write_models(MODELS_TABLE_V1)
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    _fill_books(project)
    before = _index_names("shop_book")
    assert len({n for n in before if n.endswith("_idx")}) == 3  # title, pages, tag_id

    project.write_models(
        MODELS_TABLE_V1.replace(
            'indexes = [dorm.Index(fields=["pages"])]',
            'indexes = [dorm.Index(fields=["pages"])]\n        db_table = "shop_volumes"',
        )
    )
    code, out, _ = project.run("makemigrations")
    assert code == 0, out
    assert "- Rename table for Book to shop_volumes" in out
    (second,) = [n for n in project.migrations() if n.startswith("0002_")]
    assert "operations.AlterModelTable(" in project.migration(second)
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    code, out, _ = project.run("migrate")
    assert code == 0, out
    tables = project.tables()
    assert {"shop_volumes", "shop_volumes_tags"} <= tables
    assert not {"shop_book", "shop_book_tags"} & tables
    assert project.rows("SELECT title, pages FROM shop_volumes ORDER BY title") == [
        ("Dune", 412),
        ("Emma", 320),
    ]
    book_model = apps.get_model("shop", "Book")
    assert [t.label for t in book_model.objects.get(title="Dune").tags.all()] == ["sf"]
    after = _index_names("shop_volumes")
    assert len(after) == len(before)
    assert not any(name.startswith("shop_book_") for name in after)

    # The renamed indexes and constraints are found by the next change under their names.
    project.write_models(
        MODELS_TABLE_V1.replace("db_index=True", "db_index=False").replace(
            'unique_together = [("title", "pages")]', 'db_table = "shop_volumes"'
        )
    )
    assert project.run("makemigrations")[0] == 0
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert not any("title" in n for n in _index_names("shop_volumes"))

    code, out, _ = project.run("migrate", "shop", "0001_initial")
    assert code == 0 and "Unapplied 2 migrations" in out, out
    tables = project.tables()
    assert {"shop_book", "shop_book_tags"} <= tables and "shop_volumes" not in tables
    assert _index_names("shop_book") == before
    assert project.rows("SELECT title, pages FROM shop_book ORDER BY title") == [
        ("Dune", 412),
        ("Emma", 320),
    ]
    assert project.rows("SELECT COUNT(*) FROM shop_book_tags") == [(1,)]
    # The unique pair is back under its old name and enforced.
    with pytest.raises(dorm.exceptions.IntegrityError):
        get_connection().execute("INSERT INTO shop_book (title, pages) VALUES ('Dune', 412)", ())
    assert project.run("migrate", "shop", "zero")[0] == 0
    assert not any(t.startswith("shop_") for t in project.tables())


def test_changing_meta_options_is_migrated_and_kept_in_state(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    project.write_models(
        MODELS_V1
        + "\n    class Meta:\n        ordering = ['-pages']\n        verbose_name = 'volume'\n"
        "        permissions = [('can_lend', 'Can lend')]\n"
        "        default_permissions = ('view',)\n"
    )
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Change Meta options on Book" in out, out
    (second,) = [n for n in project.migrations() if n.startswith("0002_")]
    source = project.migration(second)
    assert "operations.AlterModelOptions(" in source and "'-pages'" in source
    assert "'can_lend'" in source and "'volume'" in source
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    assert project.run("migrate")[0] == 0
    book = apps.get_model("shop", "Book")
    book.objects.create(title="Thin", author="a", pages=10)
    book.objects.create(title="Thick", author="b", pages=900)
    assert [b.title for b in book.objects.all()] == ["Thick", "Thin"]
    assert book._meta.permissions == [("can_lend", "Can lend")]
    # Dropping the options again is a change too, and migrating back keeps the rows.
    project.write_models(MODELS_V1)
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Change Meta options on Book" in out
    assert project.run("migrate")[0] == 0
    code, out, _ = project.run("migrate", "shop", "0001_initial")
    assert code == 0 and "Unapplied 2 migrations" in out
    assert project.rows("SELECT COUNT(*) FROM shop_book") == [(2,)]


def test_renaming_a_model_renames_its_automatic_m2m_table(project: Project) -> None:
    project.write_models(MODELS_TABLE_V1)
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    _fill_books(project)
    project.write_models(MODELS_TABLE_V1.replace("class Book(", "class Volume("))
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Rename model Book to Volume" in out, out
    code, out, _ = project.run("migrate")
    assert code == 0, out
    tables = project.tables()
    assert {"shop_volume", "shop_volume_tags"} <= tables and "shop_book_tags" not in tables
    assert project.rows("SELECT volume_id, tag_id FROM shop_volume_tags") == project.rows(
        "SELECT v.id, t.id FROM shop_volume v, shop_tag t WHERE v.title = 'Dune'"
    )
    volume = apps.get_model("shop", "Volume")
    dune = volume.objects.get(title="Dune")
    assert [t.label for t in dune.tags.all()] == ["sf"]
    dune.tags.clear()
    dune.tags.add(apps.get_model("shop", "Tag").objects.get(label="sf"))
    code, out, _ = project.run("migrate", "shop", "0001_initial")
    assert code == 0, out
    assert project.rows("SELECT COUNT(*) FROM shop_book_tags WHERE book_id IS NOT NULL") == [(1,)]
    assert project.run("migrate")[0] == 0  # and forwards again
    assert project.rows("SELECT COUNT(*) FROM shop_volume_tags") == [(1,)]
    assert project.run("migrate", "shop", "zero")[0] == 0


MODELS_FK_V1 = """
import dorm


class Shelf(dorm.Model):
    code = dorm.CharField(max_length=10)


class Room(dorm.Model):
    name = dorm.CharField(max_length=10)


class Book(dorm.Model):
    title = dorm.CharField(max_length=100)
    shelf = dorm.IntegerField(null=True)
"""

FK_TO_SHELF = "dorm.ForeignKey(Shelf, on_delete=dorm.SET_NULL, null=True)"
FK_TO_ROOM = "dorm.ForeignKey(Room, on_delete=dorm.SET_NULL, null=True)"


def _insert_book(title: str, shelf: int | None, column: str) -> None:
    get_connection().execute(
        f'INSERT INTO shop_book (title, "{column}") VALUES (%s, %s)'.replace(
            "%s", get_connection().ops.placeholder
        ),
        (title, shelf),
    )


def test_alter_field_adds_retargets_and_drops_a_foreign_key(project: Project) -> None:
    project.write_models(MODELS_FK_V1)
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    shelf = apps.get_model("shop", "Shelf").objects.create(code="S")
    room = apps.get_model("shop", "Room").objects.create(name="R")
    room2 = apps.get_model("shop", "Room").objects.create(name="R2")
    _insert_book("loose", 999, "shelf")  # no key yet: anything goes
    get_connection().execute("DELETE FROM shop_book WHERE title = 'loose'", ())
    _insert_book("Dune", shelf.pk, "shelf")

    # An integer becomes a foreign key: constraint and index appear.
    project.write_models(MODELS_FK_V1.replace("dorm.IntegerField(null=True)", FK_TO_SHELF))
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Alter field shelf on Book" in out, out
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert project.rows("SELECT title, shelf_id FROM shop_book") == [("Dune", shelf.pk)]
    with pytest.raises(dorm.exceptions.IntegrityError):
        _insert_book("bad", 999, "shelf_id")
    assert any("shelf_id" in n for n in _index_names("shop_book"))

    # Retargeted to another table: the old constraint goes, the new one checks.
    project.write_models(MODELS_FK_V1.replace("dorm.IntegerField(null=True)", FK_TO_ROOM))
    assert project.run("makemigrations")[0] == 0
    get_connection().execute(
        f"UPDATE shop_book SET shelf_id = {int(room.pk)}", ()
    )  # rows must satisfy the new key
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    _insert_book("in room 2", room2.pk, "shelf_id")
    with pytest.raises(dorm.exceptions.IntegrityError):
        _insert_book("bad", room2.pk + 100, "shelf_id")
    book = apps.get_model("shop", "Book")
    assert book.objects.get(title="in room 2").shelf.name == "R2"

    # Dropped again: no constraint, the values stay.
    project.write_models(MODELS_FK_V1)
    assert project.run("makemigrations")[0] == 0
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    _insert_book("loose", 999, "shelf")
    assert project.rows("SELECT COUNT(*) FROM shop_book") == [(3,)]
    assert not any("shelf" in n for n in _index_names("shop_book"))

    # Back one step (the key to rooms returns and checks the rows), then to the start.
    get_connection().execute("DELETE FROM shop_book WHERE title = 'loose'", ())
    (third,) = [n[:-3] for n in project.migrations() if n.startswith("0003_")]
    code, out, err = project.run("migrate", "shop", third)
    assert code == 0, out + err
    with pytest.raises(dorm.exceptions.IntegrityError):
        _insert_book("bad", 999, "shelf_id")
    # Undoing the retarget makes the key point at shelves again: the rows must match it.
    get_connection().execute(f"UPDATE shop_book SET shelf_id = {int(shelf.pk)}", ())
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0, out + err
    assert sorted(project.rows("SELECT title FROM shop_book")) == [("Dune",), ("in room 2",)]
    _insert_book("loose", 999, "shelf")
    get_connection().execute("DELETE FROM shop_book", ())
    assert project.run("migrate", "shop", "zero")[0] == 0


ONLINE_CHECK_MIGRATION = """
from dorm.migrations import Migration as BaseMigration
from dorm.migrations import operations


class Migration(BaseMigration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        operations.AddCheckConstraintOnline(
            table="shop_book", name="shop_book_pages_positive", check_sql='"pages" > 0'
        ),
    ]
"""


def test_an_online_check_survives_a_later_table_rebuild(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    (project.root / "shop" / "migrations" / "0002_online_check.py").write_text(
        ONLINE_CHECK_MIGRATION
    )
    assert project.run("migrate")[0] == 0
    book = apps.get_model("shop", "Book")
    book.objects.create(title="Dune", author="Herbert", pages=412)
    with pytest.raises(dorm.exceptions.IntegrityError):
        book.objects.create(title="Void", author="x", pages=0)
    # The check is the migrations' own: makemigrations does not propose to drop it.
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")

    # A type change: on SQLite a rebuild of the table, which must keep the check.
    project.write_models(MODELS_V1.replace("max_length=50", "max_length=300"))
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Alter field author on Book" in out, out
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    book = apps.get_model("shop", "Book")
    with pytest.raises(dorm.exceptions.IntegrityError):
        book.objects.create(title="Void", author="x" * 200, pages=-3)
    assert project.rows("SELECT title, pages FROM shop_book") == [("Dune", 412)]

    # Back past the online check: the constraint goes, the rows stay.
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0 and "Unapplied 2 migrations" in out, out + err
    get_connection().execute(
        "INSERT INTO shop_book (title, author, pages) VALUES ('Void', 'x', 0)", ()
    )
    assert sorted(project.rows("SELECT title FROM shop_book")) == [("Dune",), ("Void",)]


def _comments() -> tuple[Any, dict[str, Any]]:
    conn = get_connection()
    (table,) = conn.fetchone("SELECT obj_description('shop_book'::regclass, 'pg_class')", ())
    rows = conn.fetchall(
        "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
        "WHERE attrelid = 'shop_book'::regclass AND attnum > 0 AND NOT attisdropped",
        (),
    )
    return table, dict(rows)


def test_comments_are_migrated_forwards_and_back(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    apps.get_model("shop", "Book").objects.create(title="Dune", author="Herbert", pages=412)
    project.write_models(
        MODELS_V1.replace(
            "pages = dorm.IntegerField()", 'pages = dorm.IntegerField(db_comment="Printed pages")'
        )
        + '\n    class Meta:\n        db_table_comment = "The catalogue"\n'
    )
    code, out, _ = project.run("makemigrations")
    assert code == 0, out
    assert "- Alter field pages on Book" in out and "- Alter Book table comment" in out
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    pg = get_connection().vendor == "postgresql"
    if pg:
        assert _comments()[0] == "The catalogue"
        assert _comments()[1]["pages"] == "Printed pages"
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0, out + err
    if pg:
        table, columns = _comments()
        assert table is None and columns["pages"] is None
    assert project.rows("SELECT title, pages FROM shop_book") == [("Dune", 412)]


def test_db_default_is_migrated_and_fills_existing_rows(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    apps.get_model("shop", "Book").objects.create(title="Dune", author="Herbert", pages=412)
    project.write_models(
        "from dorm.functions import Lower\n"
        + MODELS_V1
        + '    shelf = dorm.CharField(max_length=10, db_default="A1")\n'
        + '    code = dorm.CharField(max_length=10, db_default=Lower(dorm.Value("NEW")))\n'
    )
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Add field shelf to Book" in out and "- Add field code" in out, out
    (second,) = [n for n in project.migrations() if n.startswith("0002_")]
    source = project.migration(second)
    assert "db_default='A1'" in source
    assert "db_default=dorm.functions.Lower(dorm.Value('NEW'))" in source
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert project.rows("SELECT title, shelf, code FROM shop_book") == [("Dune", "A1", "new")]
    book = apps.get_model("shop", "Book").objects.create(title="Emma", author="Austen", pages=1)
    assert (book.shelf, book.code) == ("A1", "new")
    # A changed db_default is an AlterField; the column's DEFAULT follows.
    project.write_models(
        "from dorm.functions import Lower\n"
        + MODELS_V1
        + '    shelf = dorm.CharField(max_length=10, db_default="B2")\n'
        + '    code = dorm.CharField(max_length=10, db_default=Lower(dorm.Value("NEW")))\n'
    )
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Alter field shelf on Book" in out and "code" not in out, out
    assert project.run("migrate")[0] == 0
    get_connection().execute(
        "INSERT INTO shop_book (title, author, pages) VALUES ('raw', 'x', 3)", ()
    )
    assert project.rows("SELECT shelf FROM shop_book WHERE title = 'raw'") == [("B2",)]
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0, out + err
    assert sorted(project.rows("SELECT title FROM shop_book")) == [("Dune",), ("Emma",), ("raw",)]


def test_unique_constraint_options_are_migrated_on_postgresql(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    project.write_models(
        MODELS_V1
        + "\n    class Meta:\n        constraints = [dorm.UniqueConstraint(fields=['title'], "
        "name='book_title_uniq', include=['pages'], deferrable=None, nulls_distinct=False)]\n"
    )
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "book_title_uniq" in out, out
    (second,) = [n for n in project.migrations() if n.startswith("0002_")]
    assert "nulls_distinct=False" in project.migration(second)
    code, out, err = project.run("migrate")
    if get_connection().vendor == "sqlite":
        assert code == 1
        assert (
            "UniqueConstraint 'book_title_uniq' on shop.Book: include=, nulls_distinct= is " in err
        )
        assert "not supported by SQLite" in err
        return
    assert code == 0, out + err
    book = apps.get_model("shop", "Book")
    book.objects.create(title="Dune", author="Herbert", pages=1)
    with pytest.raises(dorm.exceptions.IntegrityError):
        book.objects.create(title="Dune", author="other", pages=2)
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0, out + err
    book.objects.create(title="Dune", author="other", pages=2)
    assert project.rows("SELECT COUNT(*) FROM shop_book") == [(2,)]


GENERATED_LINE = (
    "    double = dorm.GeneratedField(expression=dorm.F('pages') * 2, "
    "output_field=dorm.IntegerField(), db_persist=True)\n"
)


def test_generated_field_is_migrated_forwards_and_back(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    apps.get_model("shop", "Book").objects.create(title="Dune", author="Herbert", pages=412)
    project.write_models(MODELS_V1 + GENERATED_LINE)
    code, out, _ = project.run("makemigrations")
    assert code == 0 and "- Add field double to Book" in out, out
    (second,) = [n for n in project.migrations() if n.startswith("0002_")]
    source = project.migration(second)
    assert "dorm.GeneratedField(" in source and "db_persist=True" in source
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert project.rows("SELECT title, double FROM shop_book") == [("Dune", 824)]
    # Another change to the table (a SQLite rebuild) keeps the generated column working.
    project.write_models(MODELS_V1.replace("max_length=50", "max_length=300") + GENERATED_LINE)
    assert project.run("makemigrations")[0] == 0
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    book = apps.get_model("shop", "Book").objects.create(title="Emma", author="A", pages=10)
    assert book.double == 20
    assert project.rows("SELECT double FROM shop_book ORDER BY pages") == [(20,), (824,)]
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0, out + err
    assert sorted(project.rows("SELECT title, pages FROM shop_book")) == [
        ("Dune", 412),
        ("Emma", 10),
    ]


def test_a_proxy_model_is_created_in_migrations_without_a_table(project: Project) -> None:
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    project.write_models(
        MODELS_V1
        + "\n\nclass LongBook(Book):\n    class Meta:\n        proxy = True\n"
        + "        ordering = ['-pages']\n"
    )
    code, out, err = project.run("makemigrations")
    assert code == 0 and "- Create proxy model LongBook" in out, out + err
    (second,) = [n for n in project.migrations() if n.startswith("0002_")]
    source = " ".join(project.migration(second).split())
    assert "name='LongBook', fields=[], options={'ordering': ['-pages'], 'proxy': True}" in source
    assert "bases=('shop.book',)" in source
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    tables = project.tables()
    code, out, err = project.run("migrate")
    assert code == 0 and "Applied 1 migration" in out, out + err
    assert project.tables() == tables  # no table of its own
    long_book = apps.get_model("shop", "LongBook")
    long_book.objects.create(title="Dune", author="Herbert", pages=412)
    long_book.objects.create(title="Emma", author="Austen", pages=320)
    assert [b.title for b in long_book.objects.all()] == ["Dune", "Emma"]
    assert project.rows("SELECT COUNT(*) FROM shop_book") == [(2,)]
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0 and "Unapplied 1 migration" in out, out + err
    assert project.rows("SELECT COUNT(*) FROM shop_book") == [(2,)]
    # Deleting the proxy is a DeleteModel that drops nothing either.
    assert project.run("migrate")[0] == 0
    project.write_models(MODELS_V1)
    code, out, err = project.run("makemigrations")
    assert code == 0 and "- Delete model LongBook" in out, out + err
    assert project.run("migrate")[0] == 0
    assert project.rows("SELECT COUNT(*) FROM shop_book") == [(2,)]
