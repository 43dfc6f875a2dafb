"""AlterModelTable, AlterModelOptions and SchemaEditor.alter_db_table on both backends:
state, database, the schema hook, and the errors for bad arguments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm import plugins
from dorm.db.connection import get_connection
from dorm.migrations import operations
from dorm.migrations.schema import SchemaEditor
from dorm.migrations.state import ModelState, ProjectState
from dorm.plugins import hookimpl


class Shelf(dorm.Model):
    code = dorm.CharField(max_length=10, db_index=True)

    class Meta:
        app_label = "t_alter_table"


MODELS: list[Any] = []


class _Altered:
    def __init__(self) -> None:
        self.tables: list[str] = []

    @hookimpl
    def dorm_schema_model_altered(self, schema_editor: Any, model: type) -> None:
        self.tables.append(model._meta.db_table)  # type: ignore[attr-defined]


@pytest.fixture
def altered(db: Any) -> Iterator[_Altered]:
    recorder = _Altered()
    plugins.register(recorder, name="t-alter-table-recorder")
    yield recorder
    plugins.unregister(recorder)


def test_alter_db_table_renames_and_reports_the_model_after_the_rename(db, altered) -> None:
    conn = get_connection()
    with SchemaEditor() as editor:
        editor.create_model(Shelf)
    Shelf.objects.create(code="A1")
    renamed = type(
        "Shelf",
        (dorm.Model,),
        {
            "__module__": __name__,
            "code": dorm.CharField(max_length=10, db_index=True),
            "Meta": type(
                "Meta",
                (),
                {"app_label": "t_alter_table", "db_table": "t_shelves", "apps": dorm.apps.Apps()},
            ),
        },
    )
    try:
        with SchemaEditor() as editor:
            editor.alter_db_table(renamed, "t_alter_table_shelf", "t_shelves")
        assert altered.tables == ["t_shelves"]
        tables = conn.table_names()
        assert "t_shelves" in tables and "t_alter_table_shelf" not in tables
        assert [r[0] for r in conn.fetchall('SELECT code FROM "t_shelves"', ())] == ["A1"]
        # Same table name: nothing to do and nothing reported.
        with SchemaEditor() as editor:
            editor.alter_db_table(renamed, "t_shelves", "t_shelves")
        assert altered.tables == ["t_shelves"]
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(renamed)


def test_alter_model_table_and_options_change_the_state(db) -> None:
    state = ProjectState()
    state.add_model(ModelState.from_model(Shelf))
    operations.AlterModelTable(name="Shelf", table="t_racks").state_forwards("t_alter_table", state)
    operations.AlterModelOptions(
        name="Shelf", options={"ordering": ["-code"], "permissions": [("stock", "Can stock")]}
    ).state_forwards("t_alter_table", state)
    model = state.apps.get_model("t_alter_table", "Shelf")
    assert model._meta.db_table == "t_racks"
    assert model._meta.ordering == ["-code"]
    assert model._meta.permissions == [("stock", "Can stock")]
    operations.AlterModelTable(name="Shelf", table=None).state_forwards("t_alter_table", state)
    operations.AlterModelOptions(name="Shelf", options={}).state_forwards("t_alter_table", state)
    model = state.apps.get_model("t_alter_table", "Shelf")
    assert model._meta.db_table == "t_alter_table_shelf"
    assert model._meta.ordering == [] and model._meta.permissions == []


def test_bad_arguments_name_the_operation_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"AlterModelOptions 'Shelf': 'db_table' cannot be"):
        operations.AlterModelOptions(name="Shelf", options={"db_table": "x"})
    with pytest.raises(ValueError, match=r"AlterModelTable 'Shelf': table must be a name or None"):
        operations.AlterModelTable(name="Shelf", table="")
