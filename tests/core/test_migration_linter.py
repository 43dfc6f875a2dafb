"""``dorm lint-migrations`` and ``dorm.migrations.linter``: one crafted migration per code."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import dorm
import dorm.cli
from dorm.apps import apps as global_apps
from dorm.conf import settings
from dorm.db.connection import reset_connections
from dorm.migrations.linter import Finding, lint_migrations, silence
from dorm.migrations.operations import AddIndex, RunSQL

_counter = itertools.count()

HEADER = """
import dorm
from dorm.migrations import Migration, operations
from dorm.migrations.linter import silence
"""

INITIAL = (
    HEADER
    + """
class Migration(Migration):
    initial = True
    operations = [
        operations.CreateModel(
            "Book",
            [
                ("id", dorm.BigAutoField(primary_key=True)),
                ("title", dorm.CharField(max_length=50)),
                ("pages", dorm.IntegerField(default=0)),
            ],
        ),
        # Same migration as the CreateModel: the table is empty, nothing to report.
        operations.AddField("Book", "isbn", dorm.CharField(max_length=13, db_index=True)),
    ]
"""
)

MODELS = """
import dorm


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)
    pages = dorm.IntegerField(default=0)
    isbn = dorm.CharField(max_length=13, db_index=True)
"""


def _second(body: str, extra: str = "") -> str:
    return (
        HEADER
        + f"""
class Migration(Migration):
    dependencies = [("{{app}}", "0001_initial")]
{textwrap.indent(textwrap.dedent(extra), "    ")}
    operations = [
{textwrap.indent(textwrap.dedent(body).strip(), "        ")}
    ]
"""
    )


class Project:
    """Writes one app package into ``root`` and configures dorm with it installed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.app = f"lintapp_{next(_counter)}_{os.getpid()}"
        package = root / self.app
        (package / "migrations").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "migrations" / "__init__.py").write_text("")
        (package / "models.py").write_text(MODELS)
        self.write("0001_initial", INITIAL)

    def write(self, name: str, source: str) -> None:
        text = source.replace("{app}", self.app)
        (self.root / self.app / "migrations" / f"{name}.py").write_text(text)

    def configure(self) -> None:
        dorm.configure(
            DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(self.root / "db.sqlite3")}},
            INSTALLED_APPS=[self.app],
        )

    def lint(self, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        self.configure()
        code = dorm.cli.main(["lint-migrations", *args])
        out, err = capsys.readouterr()
        return code, out, err

    def findings(self, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
        code, out, _err = self.lint("--format", "json", self.app, capsys=capsys)
        data: list[dict[str, object]] = json.loads(out)
        assert code == (1 if data else 0)
        return data


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DORM_SETTINGS", raising=False)
    proj = Project(tmp_path)
    try:
        yield proj
    finally:
        settings._reset()
        reset_connections()
        global_apps.clear(proj.app)
        for name in [m for m in sys.modules if m.split(".")[0] in (proj.app, "lint_settings")]:
            del sys.modules[name]


def _codes(data: list[dict[str, object]]) -> list[str]:
    return [str(d["code"]) for d in data]


def test_clean_migrations_report_nothing_and_exit_0(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(
        "0002_ok",
        _second(
            """
            operations.AddField("Book", "subtitle", dorm.CharField(max_length=50, null=True)),
            operations.AlterField("Book", "title", dorm.CharField(max_length=50, null=True)),
            operations.RunSQL("UPDATE x SET a = 1", reverse_sql=operations.RunSQL.noop),
            """
        ),
    )
    code, out, err = project.lint(capsys=capsys)
    assert (code, err) == (0, "")
    assert "No findings in 2 migration(s)." in out
    assert project.findings(capsys) == []


def test_m001_not_null_column_without_default(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write("0002_x", _second('operations.AddField("Book", "year", dorm.IntegerField()),'))
    data = project.findings(capsys)
    assert _codes(data) == ["DORM-M001"]
    assert data[0]["operation"] == 0 and data[0]["migration"] == "0002_x"
    assert "null=True" in str(data[0]["message"])


def test_m002_index_without_concurrently(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(
        "0002_x",
        _second(
            """
            operations.AddIndex("Book", dorm.Index(fields=["title"], name="book_title_idx")),
            operations.AddField("Book", "code", dorm.IntegerField(null=True, db_index=True)),
            operations.RunSQL("CREATE INDEX i ON t (a)", reverse_sql="DROP INDEX i"),
            operations.RunSQL("CREATE INDEX CONCURRENTLY j ON t (a)", reverse_sql="DROP INDEX j"),
            """
        ),
    )
    data = project.findings(capsys)
    assert [(d["code"], d["operation"]) for d in data] == [
        ("DORM-M002", 0),
        ("DORM-M002", 1),
        ("DORM-M002", 2),
    ]
    assert "CONCURRENTLY" in str(data[0]["message"])
    # The configured database is SQLite: naming it drops the PostgreSQL-only advice.
    code, out, _err = project.lint("--database", "default", "--format", "json", capsys=capsys)
    assert (code, json.loads(out)) == (0, [])


def test_m003_alter_field_changes_column_type(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(
        "0002_x",
        _second(
            """
            operations.AlterField("Book", "pages", dorm.CharField(max_length=10, default="0")),
            operations.AlterField("Book", "title", dorm.CharField(max_length=20)),
            """
        ),
    )
    data = project.findings(capsys)
    assert [(d["code"], d["operation"]) for d in data] == [("DORM-M003", 0), ("DORM-M003", 1)]
    assert "IntegerField -> CharField" in str(data[0]["message"])


def test_m004_drop_what_current_models_use(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(
        "0002_x",
        _second(
            """
            operations.RemoveField("Book", "pages"),
            operations.DeleteModel("Book"),
            """
        ),
    )
    data = project.findings(capsys)
    assert [(d["code"], d["operation"]) for d in data] == [("DORM-M004", 0), ("DORM-M004", 1)]
    assert "still has that field" in str(data[0]["message"])


def test_m004_not_reported_once_the_models_dropped_the_field(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / project.app / "models.py").write_text(
        MODELS.replace("    pages = dorm.IntegerField(default=0)\n", "")
    )
    project.write("0002_x", _second('operations.RemoveField("Book", "pages"),'))
    assert project.findings(capsys) == []


def test_m005_irreversible_operations(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(
        "0002_x",
        HEADER
        + """
def forwards(apps, schema_editor):
    pass


class Migration(Migration):
    dependencies = [("{app}", "0001_initial")]
    operations = [
        operations.RunPython(forwards),
        operations.RunSQL("UPDATE t SET a = 1"),
        operations.RunPython(forwards, reverse_code=operations.RunPython.noop),
    ]
""",
    )
    data = project.findings(capsys)
    assert [(d["code"], d["operation"]) for d in data] == [("DORM-M005", 0), ("DORM-M005", 1)]
    assert "RunPython(forwards) has no reverse_code" in str(data[0]["message"])
    assert "reverse_sql" in str(data[1]["message"])


def test_m006_destructive_run_sql(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(
        "0002_x",
        _second(
            """
            operations.RunSQL("drop table old_stuff", reverse_sql=""),
            operations.RunSQL(["ALTER TABLE t DROP  COLUMN c"], reverse_sql=operations.RunSQL.noop),
            operations.RunSQL("TRUNCATE t"),
            operations.RunSQL("INSERT INTO log ('DROP TABLE x') -- truncate", reverse_sql=""),
            operations.RunSQL("/* DROP TABLE x */ SELECT 1", reverse_sql=""),
            operations.RunSQL("DROP TABLE t", reverse_sql="CREATE TABLE t (a int)"),
            """
        ),
    )
    code, out, _err = project.lint(capsys=capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines == [line for line in lines if line.startswith(f"{project.app}/0002_x.py:op ")]
    data = project.findings(capsys)
    assert [(d["code"], d["operation"]) for d in data] == [
        ("DORM-M006", 0),
        ("DORM-M006", 1),
        ("DORM-M005", 2),
        ("DORM-M006", 2),
    ]
    assert f"{project.app}/0002_x.py:op 1: DORM-M006 RunSQL runs DROP COLUMN" in out


def test_silencing_per_migration_and_per_operation(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(
        "0002_x",
        _second(
            """
            operations.AddField("Book", "year", dorm.IntegerField()),
            operations.RunSQL("TRUNCATE t"),
            silence(operations.AddIndex("Book", dorm.Index(fields=["title"], name="b_t")), "M002"),
            operations.AddIndex("Book", dorm.Index(fields=["pages"], name="b_p")),
            """,
            extra='lint_ignore = {"DORM-M005": None, "DORM-M006": [1], "DORM-M002": [0]}',
        ),
    )
    data = project.findings(capsys)
    assert [(d["code"], d["operation"]) for d in data] == [("DORM-M001", 0), ("DORM-M002", 3)]
    # A new file name: the module 0002_x stays imported in sys.modules.
    (project.root / project.app / "migrations" / "0002_x.py").unlink()
    project.write(
        "0002_y",
        _second(
            'operations.AddField("Book", "year", dorm.IntegerField()),',
            extra='lint_ignore = ["DORM-M001"]',
        ),
    )
    assert project.findings(capsys) == []


def test_lint_migrations_api_without_graph() -> None:
    class M(dorm.migrations.Migration):
        operations = [
            RunSQL("TRUNCATE t"),
            silence(AddIndex("Book", dorm.Index(fields=["a"], name="i")), "DORM-M002"),
        ]

    findings = lint_migrations([M("0001_x", "shop")])
    assert findings == [
        Finding("DORM-M005", "shop", "0001_x", 0, findings[0].message),
        Finding("DORM-M006", "shop", "0001_x", 0, findings[1].message),
    ]
    assert lint_migrations([M("0001_x", "shop")], vendor="sqlite")[0].code == "DORM-M005"


def test_usage_errors_exit_2(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = project.lint("no_such_app", capsys=capsys)
    assert code == 2 and "unknown app 'no_such_app'" in err
    code, _out, err = project.lint("--database", "replica", capsys=capsys)
    assert code == 2 and "unknown database alias 'replica'" in err
    code, _out, _err = project.lint("--format", "xml", capsys=capsys)
    assert code == 2


def test_console_script_with_settings_module(project: Project) -> None:
    project.write("0002_x", _second('operations.RunSQL("DROP TABLE t", reverse_sql=""),'))
    (project.root / "lint_settings.py").write_text(
        f"DATABASES = {{'default': {{'ENGINE': 'sqlite', 'NAME': 'db.sqlite3'}}}}\n"
        f"INSTALLED_APPS = [{project.app!r}]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(project.root)}
    env.pop("DORM_SETTINGS", None)
    script = Path(sys.executable).with_name("dorm")
    result = subprocess.run(
        [str(script), "lint-migrations", "--settings", "lint_settings", "--format", "json"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert [(d["code"], d["app"], d["migration"], d["operation"]) for d in data] == [
        ("DORM-M006", project.app, "0002_x", 0)
    ]
    assert set(data[0]) == {"code", "app", "migration", "operation", "message"}
