"""``@temporal`` refuses models it cannot track, and installs triggers with the tables."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.contrib.temporal import is_tracked, temporal
from dorm.contrib.temporal.triggers import trigger_problems
from dorm.migrations.schema import SchemaEditor


def test_abstract_model_is_refused() -> None:
    with pytest.raises(TypeError, match="abstract"):

        @temporal
        class Base(dorm.Model):
            name = dorm.CharField(max_length=10)

            class Meta:
                abstract = True
                app_label = "temporal_refused"


def test_unmanaged_model_is_refused() -> None:
    with pytest.raises(TypeError, match="unmanaged"):

        @temporal
        class Legacy(dorm.Model):
            name = dorm.CharField(max_length=10)

            class Meta:
                managed = False
                app_label = "temporal_refused"


def test_proxy_model_is_refused() -> None:
    class Plain(dorm.Model):
        name = dorm.CharField(max_length=10)

        class Meta:
            app_label = "temporal_refused"

    with pytest.raises(TypeError, match="proxy"):

        @temporal
        class Shown(Plain):
            class Meta:
                proxy = True
                app_label = "temporal_refused"

    assert not is_tracked(Plain)


def test_multi_table_child_is_refused() -> None:
    class Place(dorm.Model):
        name = dorm.CharField(max_length=10)

        class Meta:
            app_label = "temporal_refused"

    with pytest.raises(TypeError, match=r"Restaurant: it is a multi-table child"):

        @temporal
        class Restaurant(Place):
            seats = dorm.IntegerField()

            class Meta:
                app_label = "temporal_refused"


def test_non_models_and_clashing_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="dorm.Model subclasses"):
        temporal(object)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="valid_from"):

        @temporal
        class Clash(dorm.Model):
            valid_from = dorm.DateTimeField()

            class Meta:
                app_label = "temporal_refused"


@temporal
class Item(dorm.Model):
    name = dorm.CharField(max_length=10)

    class Meta:
        app_label = "temporal_schema"


ItemTemporal = Item._temporal_model


def _configure(backend: Any) -> Any:
    from dorm.conf import settings
    from dorm.db.connection import get_connection, reset_connections

    reset_connections()
    settings._reset()
    dorm.configure(DATABASES={"default": backend.settings})
    return get_connection()


@pytest.mark.parametrize("order", ["tracked-first", "versions-first", "two-editors"])
def test_triggers_go_in_once_both_tables_exist(
    backend: Any, order: str, fresh_settings: None
) -> None:
    conn = _configure(backend)
    try:
        if order == "two-editors":
            with SchemaEditor() as editor:
                editor.create_model(Item)
            assert trigger_problems(conn, Item)  # not yet: no version table
            with SchemaEditor() as editor:
                editor.create_model(ItemTemporal)
        else:
            models = [Item, ItemTemporal]
            with SchemaEditor() as editor:
                for model in models if order == "tracked-first" else reversed(models):
                    editor.create_model(model)
        assert trigger_problems(conn, Item) == []
        Item.objects.create(name="x")
        assert [v.operation for v in Item.history.all()] == ["insert"]
        # Dropping the version table removes the triggers: the tracked table still works.
        with SchemaEditor() as editor:
            editor.delete_model(ItemTemporal)
        assert trigger_problems(conn, Item)
        Item.objects.create(name="y")
        with SchemaEditor() as editor:
            editor.delete_model(Item)
    finally:
        for table in (Item._meta.db_table, ItemTemporal._meta.db_table):
            if table in conn.table_names():
                conn.execute(f"DROP TABLE {conn.ops.quote_name(table)}")


def test_collect_sql_shows_the_triggers(backend: Any, fresh_settings: None) -> None:
    _configure(backend)
    with SchemaEditor(collect_sql=True) as editor:
        editor.create_model(Item)
        editor.create_model(ItemTemporal)
    triggers = [s for s in editor.collected if "TRIGGER" in s and s.startswith("CREATE")]
    assert len(triggers) == 3  # insert, update, delete
    assert all('"temporal_schema_item"' in s for s in triggers)
    if backend.vendor == "postgresql":  # statement-level, with transition tables
        assert all("FOR EACH STATEMENT" in s and "REFERENCING" in s for s in triggers)


def test_table_names_that_could_break_out_of_an_identifier_are_refused() -> None:
    with pytest.raises(ValueError, match="not allowed"):

        @temporal
        class Evil(dorm.Model):
            name = dorm.CharField(max_length=10)

            class Meta:
                app_label = "temporal_refused"
                db_table = 'evil"; DROP TABLE x; --'
