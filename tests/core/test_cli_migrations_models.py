"""Multi-table inheritance and managers through ``dorm makemigrations`` / ``dorm migrate``
on both backends: what the migration files hold, the tables forwards and back, and the
managers RunPython code finds on historical models."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.cli import main
from dorm.conf import settings
from dorm.db.connection import get_connection, reset_connections

PLACE = """
import dorm


class Place(dorm.Model):
    name = dorm.CharField(max_length=30)
    rating = dorm.IntegerField(default=0)
"""

CHILDREN = """

class Restaurant(Place):
    serves_pizza = dorm.BooleanField(default=False)


class Pizzeria(Restaurant):
    ovens = dorm.IntegerField(default=1)
"""

PEOPLE = """
import dorm


class AdultManager(dorm.Manager):
    use_in_migrations = True

    def adults(self):
        return self.filter(age__gte=18)


class Person(dorm.Model):
    name = dorm.CharField(max_length=30)
    age = dorm.IntegerField()
    people = AdultManager()
"""

TEENS = """

class TeenManager(dorm.Manager):
    use_in_migrations = True

    def get_queryset(self):
        return super().get_queryset().filter(age__lt=18)
"""

SHOUT = '''
"""shop.0002_shout: upper-case the adults' names through the historical manager."""

from dorm.migrations import Migration as BaseMigration
from dorm.migrations import operations


def shout(apps, schema_editor):
    person = apps.get_model("shop", "Person")
    assert not hasattr(person, "objects")
    for p in person.people.adults():
        p.name = p.name.upper()
        p.save()


class Migration(BaseMigration):
    dependencies = [("shop", "0001_initial")]

    operations = [operations.RunPython(shout, operations.RunPython.noop)]
'''


def _forget() -> None:
    settings._reset()
    reset_connections()
    apps.clear("shop")
    for name in list(sys.modules):
        if name.split(".")[0] in ("shop", "settings"):
            del sys.modules[name]
    importlib.invalidate_caches()


class Project:
    """A ``shop`` app in a throwaway directory, driven through ``dorm.cli.main``."""

    def __init__(self, root: Path, database: dict[str, Any], capsys: Any) -> None:
        self.root = root
        self.capsys = capsys
        (root / "shop").mkdir()
        (root / "shop" / "__init__.py").write_text("")
        (root / "settings.py").write_text(
            f'DATABASES = {{"default": {database!r}}}\nINSTALLED_APPS = ["shop"]\n'
        )

    def write_models(self, source: str) -> None:
        (self.root / "shop" / "models.py").write_text(textwrap.dedent(source))

    def write_migration(self, name: str, source: str) -> None:
        (self.root / "shop" / "migrations" / name).write_text(source)

    def run(self, *argv: str) -> tuple[int, str, str]:
        _forget()
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def migration(self, prefix: str) -> str:
        (path,) = (self.root / "shop" / "migrations").glob(f"{prefix}*.py")
        return path.read_text()

    def tables(self) -> set[str]:
        return {t for t in get_connection().table_names() if t.startswith("shop_")}

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in get_connection().fetchall(sql, ())]


def _drop(database: dict[str, Any]) -> None:
    _forget()
    dorm.configure(DATABASES={"default": database})
    conn = get_connection()
    qn = conn.ops.quote_name
    # Children before parents: PostgreSQL refuses to drop a table others reference.
    for table in sorted(conn.table_names(), key=len, reverse=True):
        if table.startswith("shop_") or table == "dorm_migrations":
            cascade = " CASCADE" if conn.vendor == "postgresql" else ""
            conn.execute(f"DROP TABLE IF EXISTS {qn(table)}{cascade}", ())


@pytest.fixture
def project(
    db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Project]:
    for name in ("DORM_SETTINGS", "DORM_PROFILE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    _drop(db.settings)
    yield Project(tmp_path, db.settings, capsys)
    _drop(db.settings)
    _forget()
    dorm.configure(DATABASES={"default": db.settings})  # for the db fixture's teardown


def test_a_multi_table_child_is_created_and_dropped_by_migrations(project: Project) -> None:
    project.write_models(PLACE)
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    apps.get_model("shop", "Place").objects.create(name="Park", rating=2)

    project.write_models(PLACE + CHILDREN)
    code, out, err = project.run("makemigrations")
    assert code == 0, out + err
    assert "- Create model Restaurant" in out and "- Create model Pizzeria" in out
    source = project.migration("0002_")
    assert source.index("name='Restaurant'") < source.index("name='Pizzeria'")
    assert "bases=('shop.place',)" in source and "bases=('shop.restaurant',)" in source
    flat = " ".join(source.split())
    assert (
        "( 'place_ptr', dorm.OneToOneField( auto_created=True, on_delete=dorm.CASCADE, "
        "parent_link=True, primary_key=True, to='shop.Place', ), )" in flat
    )
    assert "( 'restaurant_ptr', dorm.OneToOneField(" in flat and "to='shop.Restaurant'" in flat
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    code, out, _ = project.run("sqlmigrate", "shop", "0002")
    assert 'REFERENCES "shop_place"' in out and 'REFERENCES "shop_restaurant"' in out

    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert project.tables() == {"shop_place", "shop_restaurant", "shop_pizzeria"}
    pizzeria = apps.get_model("shop", "Pizzeria")
    made = pizzeria.objects.create(name="Mario", rating=5, serves_pizza=True, ovens=3)
    got = pizzeria.objects.get(name="Mario")
    assert (got.pk, got.rating, got.serves_pizza, got.ovens) == (made.pk, 5, True, 3)
    assert project.rows("SELECT name FROM shop_place ORDER BY name") == [("Mario",), ("Park",)]
    assert project.rows("SELECT place_ptr_id, serves_pizza FROM shop_restaurant") == [
        (made.pk, True)
    ]

    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0 and "Unapplied 1 migration" in out, out + err
    assert project.tables() == {"shop_place"}
    assert project.rows("SELECT COUNT(*) FROM shop_place") == [(2,)]
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert project.tables() == {"shop_place", "shop_restaurant", "shop_pizzeria"}


def test_managers_for_migrations_reach_runpython_and_are_altered(project: Project) -> None:
    project.write_models(PEOPLE)
    code, out, err = project.run("makemigrations")
    assert code == 0, out + err
    source = project.migration("0001_")
    assert "managers=[('people', shop.models.AdultManager())]" in source
    assert "import shop.models" in source
    assert project.run("migrate")[0] == 0
    person = apps.get_model("shop", "Person")
    person.people.create(name="ann", age=30)
    person.people.create(name="bob", age=12)

    project.write_migration("0002_shout.py", SHOUT)
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert project.rows("SELECT name FROM shop_person ORDER BY age") == [("bob",), ("ANN",)]
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")

    project.write_models(
        PEOPLE.replace("\n\nclass Person", TEENS + "\n\nclass Person")
        + "    teens = TeenManager()\n"
    )
    code, out, err = project.run("makemigrations")
    assert code == 0 and "- Change managers on Person" in out, out + err
    source = project.migration("0003_")
    assert "operations.AlterModelManagers(" in source
    assert "('teens', shop.models.TeenManager())" in source
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")
    assert project.run("migrate")[0] == 0
    assert project.run("migrate", "shop", "0002_shout")[0] == 0
    assert project.run("migrate")[0] == 0


def test_managers_not_for_migrations_stay_out() -> None:
    from dorm.migrations.state import ModelState

    class Plain(dorm.Model):
        objects = dorm.Manager()

        class Meta:
            app_label = "t_cli_mgr"

    class Hidden(dorm.Manager):
        pass

    class Custom(dorm.Model):
        entries = Hidden()

        class Meta:
            app_label = "t_cli_mgr"

    assert ModelState.from_model(Plain).managers == []
    # A custom default manager is kept as a plain Manager under its name (as in Django).
    ((name, manager),) = ModelState.from_model(Custom).managers
    assert (name, type(manager)) == ("entries", dorm.Manager)


def test_a_manager_class_migrations_cannot_import_is_refused() -> None:
    from dorm.migrations.writer import serialize

    class Local(dorm.Manager):
        use_in_migrations = True

    class Holder(dorm.Model):
        things = Local()

        class Meta:
            app_label = "t_cli_mgr"

    with pytest.raises(ValueError, match="manager t_cli_mgr.Holder.things .* cannot be imported"):
        serialize(Holder._meta.managers[0])


def test_the_state_renders_a_child_on_its_historical_parent_and_follows_a_rename() -> None:
    from dorm.migrations import operations
    from dorm.migrations.state import ModelState, ProjectState

    class Venue(dorm.Model):
        name = dorm.CharField(max_length=30)

        class Meta:
            app_label = "t_cli_mti"

    class Club(Venue):
        members = dorm.IntegerField(default=0)

        class Meta:
            app_label = "t_cli_mti"

    state = ProjectState()
    state.add_model(ModelState.from_model(Venue))
    child = ModelState.from_model(Club)
    assert child.bases == ("t_cli_mti.venue",) and list(child.fields) == ["venue_ptr", "members"]
    state.add_model(child)
    club = state.apps.get_model("t_cli_mti", "Club")
    assert club is not Club and club._meta.parents == {
        state.apps.get_model("t_cli_mti", "Venue"): club._meta.pk
    }
    assert [f.name for f in club._meta.concrete_fields] == ["id", "name", "venue_ptr", "members"]
    operations.RenameModel("Venue", "Hall").state_forwards("t_cli_mti", state)
    club = state.apps.get_model("t_cli_mti", "Club")
    assert [p.__name__ for p in club._meta.parents] == ["Hall"]
    assert state.models["t_cli_mti", "club"].bases == ("t_cli_mti.hall",)


BOOK = """
import dorm


class Book(dorm.Model):
    title = dorm.CharField(max_length=30)
    pages = dorm.IntegerField()
"""
BOOK_INDEXED = (
    BOOK
    + """
    class Meta:
        indexes = [dorm.Index(fields=["pages", "-title"])]
"""
)


def _indexes(table: str) -> set[str]:
    conn = get_connection()
    if conn.vendor == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
        rows = conn.fetchall(sql.replace("?", conn.ops.placeholder), (table,))
    else:
        sql = f"SELECT indexname FROM pg_indexes WHERE tablename = {conn.ops.placeholder}"
        rows = conn.fetchall(sql, (table,))
    return {r[0] for r in rows if not r[0].startswith(("sqlite_", table + "_pkey"))}


def test_an_unnamed_index_is_removed_and_added_by_migrations(project: Project) -> None:
    project.write_models(BOOK_INDEXED)
    assert project.run("makemigrations")[0] == 0
    assert project.run("migrate")[0] == 0
    (name,) = _indexes("shop_book")
    assert name.startswith("shop_book_")

    project.write_models(BOOK)
    code, out, err = project.run("makemigrations")
    assert code == 0 and f"- Remove index {name} from Book" in out, out + err
    assert f"operations.RemoveIndex(model_name='Book', name='{name}')" in project.migration("0002")
    code, out, err = project.run("migrate")
    assert code == 0, out + err
    assert _indexes("shop_book") == set()
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")

    project.write_models(BOOK_INDEXED)
    code, out, err = project.run("makemigrations")
    assert code == 0 and "- Create index on (pages, -title) on Book" in out, out + err
    assert project.run("migrate")[0] == 0
    assert _indexes("shop_book") == {name}
    assert project.run("makemigrations", "--check") == (0, "No changes detected\n", "")

    code, out, err = project.run("migrate", "shop", "0002")
    assert code == 0 and "Unapplied 1 migration" in out, out + err
    assert _indexes("shop_book") == set()
    code, out, err = project.run("migrate", "shop", "0001_initial")
    assert code == 0, out + err
    assert _indexes("shop_book") == {name}


def test_manager_operations_refuse_bad_arguments() -> None:
    from dorm.migrations import operations

    with pytest.raises(ValueError, match=r"AlterModelManagers 'Person': managers must be a list"):
        operations.AlterModelManagers(name="Person", managers=[dorm.Manager()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"CreateModel 'Person': a manager name appears twice"):
        operations.CreateModel(
            name="Person", fields=[], managers=[("a", dorm.Manager()), ("a", dorm.Manager())]
        )
    assert operations.AlterModelManagers("Person", []).describe() == "Change managers on Person"
