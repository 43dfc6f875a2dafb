"""The migrations core on both backends: state, operations, loader, graph, executor, recorder.

Each test writes a throwaway app package (models.py plus hand-written migrations) into
tmp_path under a unique name, configures dorm with it installed, and migrates the module's
database back and forth, looking at the tables, columns and rows after each step.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps as global_apps
from dorm.db.connection import get_connection
from dorm.exceptions import DormError, IntegrityError
from dorm.migrations.exceptions import (
    IrreversibleError,
    MigrationConflictError,
    NodeNotFoundError,
)
from dorm.migrations.executor import MigrationExecutor
from dorm.migrations.operations import (
    AddCheckConstraintOnline,
    AddField,
    CreateModel,
    RunSQL,
    SeederMigration,
)
from dorm.migrations.recorder import MigrationRecorder
from dorm.migrations.state import ModelState, ProjectState
from dorm.test import CaptureQueriesContext

pytestmark = pytest.mark.usefixtures("db")
_counter = itertools.count()

INITIAL = """
import dorm
from dorm.migrations import Migration, operations


class Migration(Migration):
    initial = True
    dependencies = []
    operations = [
        operations.CreateModel(
            "Author",
            [
                ("id", dorm.BigAutoField(primary_key=True)),
                ("name", dorm.CharField(max_length=50)),
            ],
        ),
        operations.CreateModel(
            "Book",
            [
                ("id", dorm.BigAutoField(primary_key=True)),
                ("title", dorm.CharField(max_length=50)),
                ("author", dorm.ForeignKey("{app}.Author", on_delete=dorm.CASCADE)),
            ],
        ),
    ]
"""

SECOND = """
import dorm
from dorm.migrations import Migration, operations


class Migration(Migration):
    dependencies = [("{app}", "0001_initial")]
    operations = [
        operations.AddField("Book", "pages", dorm.IntegerField(default=0)),
        operations.AlterField("Author", "name", dorm.CharField(max_length=100, null=True)),
        operations.RenameField("Book", "title", "headline"),
    ]
"""

# -- helpers -----------------------------------------------------------------------------------


def _sql(sql: str, *params: Any) -> None:
    conn = get_connection()
    conn.execute(sql.replace("?", conn.ops.placeholder), params)


def _rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = get_connection()
    return conn.fetchall(sql.replace("?", conn.ops.placeholder), params)


def _tables() -> set[str]:
    return set(get_connection().table_names())


def _columns(table: str) -> list[str]:
    conn = get_connection()
    if conn.vendor == "sqlite":
        return [r[1] for r in conn.fetchall(f'PRAGMA table_info("{table}")', ())]
    rows = conn.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        (table,),
    )
    return [r[0] for r in rows]


class Project:
    """Writes app packages into ``root`` and (re)configures dorm with them installed."""

    def __init__(self, root: Path, settings: dict[str, Any]) -> None:
        self.root = root
        self.settings = settings
        self.apps: list[str] = []

    def app(self, prefix: str = "mig") -> str:
        name = f"{prefix}_{next(_counter)}_{id(self) % 10000}"
        package = self.root / name
        (package / "migrations").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "models.py").write_text('"""No models needed: the migrations say it all."""\n')
        (package / "migrations" / "__init__.py").write_text("")
        self.apps.append(name)
        return name

    def write(self, app: str, name: str, source: str, **fmt: str) -> None:
        text = textwrap.dedent(source).replace("{app}", app)
        for key, value in fmt.items():
            text = text.replace("{" + key + "}", value)
        (self.root / app / "migrations" / f"{name}.py").write_text(text)

    def executor(self) -> MigrationExecutor:
        dorm.configure(DATABASES={"default": self.settings}, INSTALLED_APPS=list(self.apps))
        return MigrationExecutor(get_connection())


@pytest.fixture
def project(db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.syspath_prepend(str(tmp_path))
    proj = Project(tmp_path, db.settings)
    try:
        yield proj
    finally:
        conn = get_connection()
        cascade = " CASCADE" if conn.vendor == "postgresql" else ""
        for table in sorted(_tables(), reverse=True):
            if any(table.startswith(app) for app in proj.apps) or table == "dorm_seeded_rows":
                conn.execute(f'DROP TABLE IF EXISTS "{table}"{cascade}', ())
        MigrationRecorder(conn).flush()
        dorm.configure(DATABASES={"default": db.settings})
        for app in proj.apps:
            global_apps.clear(app)


def _basic(project: Project) -> str:
    app = project.app()
    project.write(app, "0001_initial", INITIAL)
    project.write(app, "0002_change", SECOND)
    return app


# -- state -------------------------------------------------------------------------------------


def test_state_renders_models_into_a_private_registry(project: Project) -> None:
    app = _basic(project)
    executor = project.executor()
    state = executor.loader.project_state()
    book = state.apps.get_model(app, "Book")
    assert book._meta.apps is state.apps
    assert [f.name for f in book._meta.local_fields] == ["id", "headline", "author", "pages"]
    assert book._meta.get_field("author").related_model is state.apps.get_model(app, "author")
    with pytest.raises(LookupError):
        global_apps.get_model(app, "Book")
    again = ProjectState.from_apps(state.apps)
    assert again.models[(app, "book")] == state.models[(app, "book")]
    clone = state.clone()
    clone.remove_model(app, "book")
    assert (app, "book") in state.models
    with pytest.raises(LookupError):
        clone.apps.get_model(app, "Book")


def test_model_state_round_trips_a_model(project: Project) -> None:
    app = _basic(project)
    state = project.executor().loader.project_state()
    model = state.apps.get_model(app, "Author")
    ms = ModelState.from_model(model)
    assert ms.name_lower == "author"
    assert list(ms.fields) == ["id", "name"]
    assert ms.fields["name"].model is None and ms.fields["name"].max_length == 100


def test_operations_compare_by_deconstruct() -> None:
    one = AddField("Book", "pages", dorm.IntegerField(default=0))
    path, args, kwargs = one.deconstruct()
    assert path == "dorm.migrations.operations.AddField"
    assert args[:2] == ["Book", "pages"] and args[2] is one.field and not kwargs
    assert CreateModel("A", []) == CreateModel("A", [])
    assert CreateModel("A", []) != CreateModel("B", [])
    check = AddCheckConstraintOnline("t", "c", "x > 0")
    assert check.deconstruct()[0] == "dorm.migrations.operations.AddCheckConstraintOnline"
    assert not RunSQL("SELECT 1").reversible and RunSQL("SELECT 1", "SELECT 2").reversible


# -- executor ----------------------------------------------------------------------------------


def test_migrate_forwards_keeps_rows_then_back_to_middle_and_zero(project: Project) -> None:
    app = _basic(project)
    executor = project.executor()
    executor.migrate([(app, "0001_initial")])
    assert {f"{app}_author", f"{app}_book"} <= _tables()
    assert _columns(f"{app}_book") == ["id", "title", "author_id"]
    _sql(f"INSERT INTO {app}_author (name) VALUES ('ann')")
    _sql(f"INSERT INTO {app}_book (title, author_id) VALUES ('one', 1), ('two', 1)")

    calls: list[tuple[int, int, str]] = []
    executor.migrate(
        [(app, "0002_change")], progress=lambda i, n, m, t: calls.append((i, n, m.name))
    )
    assert calls == [(1, 1, "0002_change")]
    assert _columns(f"{app}_book") == ["id", "author_id", "pages", "headline"] or set(
        _columns(f"{app}_book")
    ) == {"id", "author_id", "pages", "headline"}
    assert _rows(f"SELECT headline, pages FROM {app}_book ORDER BY id") == [("one", 0), ("two", 0)]
    _sql(f"INSERT INTO {app}_author (name) VALUES (NULL)")  # name is nullable now
    assert MigrationRecorder(get_connection()).applied() >= {
        (app, "0001_initial"),
        (app, "0002_change"),
    }

    _sql(f"DELETE FROM {app}_author WHERE name IS NULL")
    executor.migrate([(app, "0001_initial")])
    assert set(_columns(f"{app}_book")) == {"id", "title", "author_id"}
    assert _rows(f"SELECT title FROM {app}_book ORDER BY id") == [("one",), ("two",)]
    assert (app, "0002_change") not in MigrationRecorder(get_connection()).applied()

    executor.migrate([(app, None)])
    assert not {f"{app}_author", f"{app}_book"} & _tables()
    assert not {k for k in MigrationRecorder(get_connection()).applied() if k[0] == app}


def test_fake_records_without_touching_the_schema(project: Project) -> None:
    app = _basic(project)
    executor = project.executor()
    executor.migrate(executor.default_targets(), fake=True)
    recorder = MigrationRecorder(get_connection())
    assert {(app, "0001_initial"), (app, "0002_change")} <= recorder.applied()
    assert f"{app}_author" not in _tables()
    stamp = recorder.applied_at()[(app, "0001_initial")]
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    executor.migrate([(app, None)], fake=True)
    assert not {k for k in recorder.applied() if k[0] == app}


def test_dependencies_across_apps_order_the_plan(project: Project) -> None:
    first = _basic(project)
    second = project.app("other")
    project.write(
        second,
        "0001_initial",
        """
        import dorm
        from dorm.migrations import Migration, operations


        class Migration(Migration):
            dependencies = [("{first}", "0002_change")]
            operations = [
                operations.CreateModel(
                    "Review",
                    [
                        ("id", dorm.BigAutoField(primary_key=True)),
                        ("book", dorm.ForeignKey("{first}.Book", on_delete=dorm.CASCADE)),
                    ],
                ),
            ]
        """,
        first=first,
    )
    executor = project.executor()
    plan = executor.migration_plan([(second, "0001_initial")])
    assert [(m.app_label, m.name, back) for m, back in plan] == [
        (first, "0001_initial", False),
        (first, "0002_change", False),
        (second, "0001_initial", False),
    ]
    executor.migrate([(second, "0001_initial")])
    _sql(f"INSERT INTO {first}_author (name) VALUES ('a')")
    _sql(f"INSERT INTO {first}_book (headline, author_id, pages) VALUES ('h', 1, 1)")
    _sql(f"INSERT INTO {second}_review (book_id) VALUES (1)")
    with pytest.raises(IntegrityError):
        _sql(f"INSERT INTO {second}_review (book_id) VALUES (99)")
    back = executor.migration_plan([(first, None)])
    assert [(m.app_label, m.name) for m, _b in back] == [
        (second, "0001_initial"),
        (first, "0002_change"),
        (first, "0001_initial"),
    ]
    executor.migrate([(first, None)])
    assert not {f"{second}_review", f"{first}_book"} & _tables()


def test_two_leaves_in_one_app_is_a_conflict(project: Project) -> None:
    app = _basic(project)
    project.write(
        app,
        "0002_other",
        """
        from dorm.migrations import Migration


        class Migration(Migration):
            dependencies = [("{app}", "0001_initial")]
        """,
    )
    executor = project.executor()
    assert executor.loader.graph.leaf_nodes(app) == [(app, "0002_change"), (app, "0002_other")]
    with pytest.raises(MigrationConflictError, match="0002_change, 0002_other") as info:
        executor.migrate(executor.default_targets())
    assert isinstance(info.value, DormError)


def test_missing_dependency_names_both_migrations(project: Project) -> None:
    app = _basic(project)
    project.write(
        app,
        "0003_broken",
        """
        from dorm.migrations import Migration


        class Migration(Migration):
            dependencies = [("{app}", "0002_change"), ("{app}", "0099_missing")]
        """,
    )
    with pytest.raises(NodeNotFoundError, match=rf"{app}\.0003_broken.*{app}\.0099_missing"):
        project.executor()


def test_a_failing_migration_stays_unapplied(project: Project) -> None:
    app = _basic(project)
    project.write(
        app,
        "0003_fails",
        """
        import dorm
        from dorm.migrations import Migration, operations


        class Migration(Migration):
            dependencies = [("{app}", "0002_change")]
            operations = [
                operations.AddField("Book", "isbn", dorm.CharField(max_length=13, null=True)),
                operations.RunSQL("SELECT * FROM no_such_table_anywhere"),
            ]
        """,
    )
    executor = project.executor()
    with pytest.raises(DormError):
        executor.migrate(executor.default_targets())
    applied = MigrationRecorder(get_connection()).applied()
    assert (app, "0002_change") in applied and (app, "0003_fails") not in applied
    assert "isbn" not in _columns(f"{app}_book")


# -- RunSQL / RunPython ------------------------------------------------------------------------

DATA = """
from dorm.migrations import Migration, operations


def forwards(apps, schema_editor):
    Author = apps.get_model("{app}", "Author")
    Author.objects.create(name="from python")


def backwards(apps, schema_editor):
    apps.get_model("{app}", "Author").objects.filter(name="from python").delete()


class Migration(Migration):
    dependencies = [("{app}", "0002_change")]
    operations = [
        operations.RunSQL(
            [("INSERT INTO {app}_author (name) VALUES ({p})", ["it's sql; --"])],
            reverse_sql="DELETE FROM {app}_author WHERE name LIKE 'it%'",
        ),
        operations.RunPython(forwards, backwards),
    ]
"""


def test_run_sql_and_run_python_both_ways(project: Project) -> None:
    app = _basic(project)
    project.write(app, "0003_data", DATA, p=get_connection().ops.placeholder)
    executor = project.executor()
    executor.migrate(executor.default_targets())
    names = {r[0] for r in _rows(f"SELECT name FROM {app}_author")}
    assert names == {"it's sql; --", "from python"}
    executor.migrate([(app, "0002_change")])
    assert _rows(f"SELECT name FROM {app}_author") == []


@pytest.mark.parametrize(
    "operation",
    ['operations.RunSQL("SELECT 1")', "operations.RunPython(lambda apps, ed: None)"],
)
def test_irreversible_operations_refuse_to_unapply(project: Project, operation: str) -> None:
    app = _basic(project)
    project.write(
        app,
        "0003_oneway",
        """
        from dorm.migrations import Migration, operations


        class Migration(Migration):
            dependencies = [("{app}", "0002_change")]
            operations = [{op}]
        """,
        op=operation,
    )
    executor = project.executor()
    executor.migrate(executor.default_targets())
    with pytest.raises(IrreversibleError, match="0003_oneway"):
        executor.migrate([(app, "0001_initial")])
    applied = MigrationRecorder(get_connection()).applied()
    assert {(app, "0002_change"), (app, "0003_oneway")} <= applied
    assert "headline" in _columns(f"{app}_book")


# -- AddCheckConstraintOnline ------------------------------------------------------------------


def test_add_check_constraint_online(project: Project) -> None:
    app = _basic(project)
    project.write(
        app,
        "0003_check",
        """
        from dorm.migrations import Migration
        from dorm.migrations.operations import AddCheckConstraintOnline


        class Migration(Migration):
            dependencies = [("{app}", "0002_change")]
            operations = [
                AddCheckConstraintOnline("{app}_book", "{app}_pages_gte_0", "pages >= 0"),
            ]
        """,
    )
    executor = project.executor()
    executor.migrate([(app, "0002_change")])
    _sql(f"INSERT INTO {app}_author (name) VALUES ('a')")
    _sql(f"INSERT INTO {app}_book (headline, author_id, pages) VALUES ('ok', 1, 5)")
    with CaptureQueriesContext() as ctx:
        executor.migrate([(app, "0003_check")])
    if get_connection().vendor == "postgresql":
        statements = [q["sql"] for q in ctx.captured_queries if "CONSTRAINT" in q["sql"]]
        assert len(statements) == 2
        assert "ADD CONSTRAINT" in statements[0] and statements[0].endswith("NOT VALID")
        assert "VALIDATE CONSTRAINT" in statements[1] and "ADD" not in statements[1]
    assert _rows(f"SELECT headline, pages FROM {app}_book") == [("ok", 5)]
    with pytest.raises(IntegrityError):
        _sql(f"INSERT INTO {app}_book (headline, author_id, pages) VALUES ('bad', 1, -1)")
    executor.migrate([(app, "0002_change")])
    _sql(f"INSERT INTO {app}_book (headline, author_id, pages) VALUES ('fine now', 1, -1)")


def test_index_and_constraint_operations_both_ways(project: Project) -> None:
    app = _basic(project)
    project.write(
        app,
        "0003_meta",
        """
        import dorm
        from dorm.migrations import Migration, operations


        class Migration(Migration):
            dependencies = [("{app}", "0002_change")]
            operations = [
                operations.AddIndex("Book", dorm.Index(fields=["pages"], name="{app}_pages_ix")),
                operations.AddConstraint(
                    "Book",
                    dorm.CheckConstraint(condition=dorm.Q(pages__gte=0), name="{app}_pages_ck"),
                ),
            ]
        """,
    )
    project.write(
        app,
        "0004_drop_meta",
        """
        from dorm.migrations import Migration, operations


        class Migration(Migration):
            dependencies = [("{app}", "0003_meta")]
            operations = [
                operations.RemoveConstraint("Book", "{app}_pages_ck"),
                operations.RemoveIndex("Book", "{app}_pages_ix"),
            ]
        """,
    )
    executor = project.executor()
    executor.migrate([(app, "0003_meta")])
    _sql(f"INSERT INTO {app}_author (name) VALUES ('a')")
    conn = get_connection()
    with pytest.raises(IntegrityError):
        _sql(f"INSERT INTO {app}_book (headline, author_id, pages) VALUES ('bad', 1, -1)")
    if conn.vendor == "postgresql":
        index_sql = "SELECT indexname FROM pg_indexes WHERE indexname = %s"
    else:
        index_sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?"
    assert _rows(index_sql, f"{app}_pages_ix") == [(f"{app}_pages_ix",)]

    executor.migrate([(app, "0004_drop_meta")])
    assert _rows(index_sql, f"{app}_pages_ix") == []
    _sql(f"INSERT INTO {app}_book (headline, author_id, pages) VALUES ('allowed', 1, -1)")

    # Backwards: the constraint and the index come back (from the migration state).
    _sql(f"DELETE FROM {app}_book")
    executor.migrate([(app, "0003_meta")])
    assert _rows(index_sql, f"{app}_pages_ix") == [(f"{app}_pages_ix",)]
    with pytest.raises(IntegrityError):
        _sql(f"INSERT INTO {app}_book (headline, author_id, pages) VALUES ('bad', 1, -1)")


# -- SeederMigration ---------------------------------------------------------------------------

SEED = """
from dorm.migrations import Migration
from dorm.migrations.operations import SeederMigration


class Migration(Migration):
    dependencies = [("{app}", "0002_change")]
    operations = [
        SeederMigration(
            [
                {"model": "{app}.Author", "fields": {"name": "ann"}},
                {"model": "{app}.Author", "fields": {"name": "bob"}},
            ]
        ),
    ]
"""


def test_seeder_inserts_once_and_reverses_only_its_rows(project: Project) -> None:
    app = _basic(project)
    project.write(app, "0003_seed", SEED)
    executor = project.executor()
    executor.migrate([(app, "0002_change")])
    _sql(f"INSERT INTO {app}_author (name) VALUES ('bob')")  # there before the seeder
    executor.migrate(executor.default_targets())
    names = sorted(r[0] for r in _rows(f"SELECT name FROM {app}_author"))
    assert names == ["ann", "bob"]
    # Running the operation again (a re-applied migration, say) adds nothing.
    executor.migrate([(app, "0003_seed")], fake=False)
    seeder = executor.loader.graph.nodes[(app, "0003_seed")]
    from dorm.migrations.schema import SchemaEditor

    with SchemaEditor(get_connection()) as editor:
        seeder.apply(executor.state_before(seeder), editor)
    assert sorted(r[0] for r in _rows(f"SELECT name FROM {app}_author")) == ["ann", "bob"]
    executor.migrate([(app, "0002_change")])
    assert [r[0] for r in _rows(f"SELECT name FROM {app}_author")] == ["bob"]


def test_seeder_rejects_malformed_rows() -> None:
    with pytest.raises(ValueError, match="app.Model"):
        SeederMigration([{"fields": {}}])
