"""SchemaEditor alterations on both backends: add / remove / alter / rename fields, indexes,
constraints, unique_together and table renames.

Each test gets fresh tables with rows, runs one operation, reads the rows back with raw SQL
(the model classes describe the schema *before* the operation), inspects the catalog and
violates what the operation added. SQLite's table rebuild is exercised with foreign keys
pointing both ways, and a failing operation inside an editor block must roll back all of it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.db.connection import get_connection
from dorm.exceptions import FieldError, IntegrityError
from dorm.migrations.schema import SchemaEditor, bind_field

APP = "t_schema_alter"
WRITER, ITEM = "t_schema_alter_writer", "t_schema_alter_item"


class Writer(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = APP


class Item(dorm.Model):
    writer = dorm.ForeignKey(Writer, on_delete=dorm.CASCADE, related_name="items")
    title = dorm.CharField(max_length=20)
    qty = dorm.IntegerField(default=0)
    note = dorm.CharField(max_length=20, null=True)
    code = dorm.CharField(max_length=10, db_index=True)

    class Meta:
        app_label = APP
        indexes = [dorm.Index(fields=["title"], name="item_title_idx")]
        constraints = [dorm.CheckConstraint(condition=dorm.Q(qty__gte=0), name="item_qty_gte_0")]


pytestmark = pytest.mark.usefixtures("db")
ROWS = [(1, "a", 1, None, "c1"), (1, "b", 2, "n", "c2"), (2, "c", 3, None, "c3")]


@pytest.fixture
def tables(db: Any) -> Iterator[Any]:
    with SchemaEditor() as ed:
        ed.create_model(Writer)
        ed.create_model(Item)
    _sql(f"INSERT INTO {WRITER} (name) VALUES ('ann'), ('bob')")  # ids 1, 2
    for row in ROWS:
        _sql(f"INSERT INTO {ITEM} (writer_id, title, qty, note, code) VALUES (?, ?, ?, ?, ?)", *row)
    try:
        yield db
    finally:
        cascade = " CASCADE" if db.vendor == "postgresql" else ""
        for table in (ITEM, "renamed_item", WRITER, "renamed_writer"):
            _sql(f"DROP TABLE IF EXISTS {table}{cascade}")


# -- helpers -----------------------------------------------------------------------------------


def _sql(sql: str, *params: Any) -> None:
    conn = get_connection()
    conn.execute(sql.replace("?", conn.ops.placeholder), params)


def _rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = get_connection()
    return conn.fetchall(sql.replace("?", conn.ops.placeholder), params)


def _columns(table: str) -> dict[str, tuple[str, bool]]:
    """``{column: (type, nullable)}``."""
    if get_connection().vendor == "sqlite":
        return {
            r[1]: (r[2].lower(), not r[3] and not r[5])
            for r in _rows(f'PRAGMA table_info("{table}")')
        }
    return {
        r[0]: (r[1] + (f"({r[3]})" if r[3] else ""), r[2] == "YES")
        for r in _rows(
            "SELECT column_name, data_type, is_nullable, character_maximum_length "
            "FROM information_schema.columns WHERE table_name = ?",
            table,
        )
    }


def _indexes(table: str) -> dict[str, tuple[bool, list[str]]]:
    """``{index name: (unique, [columns])}``, automatic ones included."""
    result = {}
    if get_connection().vendor == "sqlite":
        for _seq, name, unique, _origin, _partial in _rows(f'PRAGMA index_list("{table}")'):
            cols = [r[2] for r in _rows(f'PRAGMA index_info("{name}")')]
            result[name] = (bool(unique), cols)
        return result
    for name, indexdef in _rows(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ?", table
    ):
        cols = [
            r[0]
            for r in _rows(
                "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE c.relname = ? ORDER BY k.n",
                name,
            )
        ]
        result[name] = (indexdef.startswith("CREATE UNIQUE"), cols)
    return result


def _unique_sets(table: str) -> list[list[str]]:
    return [cols for unique, cols in _indexes(table).values() if unique]


def _constraints(table: str) -> set[str]:
    """Names of the CHECK and UNIQUE table constraints."""
    if get_connection().vendor == "sqlite":
        (sql,) = _rows("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table)[0]
        return {chunk.split(" ", 1)[0].strip('"') for chunk in sql.split("CONSTRAINT ")[1:]}
    return {
        r[0]
        for r in _rows(
            "SELECT constraint_name FROM information_schema.table_constraints "
            "WHERE table_name = ? AND constraint_type IN ('CHECK', 'UNIQUE') "
            "AND constraint_name NOT LIKE '%%_not_null'",
            table,
        )
    }


def _items(*columns: str, table: str = ITEM) -> list[tuple[Any, ...]]:
    return _rows(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id")


def _violates(sql: str, *params: Any) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        _sql(sql, *params)


def _insert_item(**values: Any) -> None:
    row = {"writer_id": 1, "title": "t", "qty": 0, "code": "x", **values}
    cols = ", ".join(row)
    _sql(f"INSERT INTO {ITEM} ({cols}) VALUES ({', '.join('?' * len(row))})", *row.values())


def _field(name: str, field: Any, model: Any = Item) -> Any:
    return bind_field(model, name, field)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _snapshot(table: str = ITEM) -> tuple[Any, ...]:
    return (_columns(table), _indexes(table), _constraints(table), _items("*", table=table))


# -- add_field ---------------------------------------------------------------------------------


def test_add_nullable_field(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.add_field(Item, _field("extra", dorm.CharField(max_length=5, null=True)))
    assert _columns(ITEM)["extra"][1] is True
    assert _items("title", "extra") == [("a", None), ("b", None), ("c", None)]
    assert {"item_title_idx", "item_qty_gte_0"} <= set(_indexes(ITEM)) | _constraints(ITEM)


def test_add_nullable_field_with_default_fills_rows(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.add_field(Item, _field("extra", dorm.IntegerField(null=True, default=7)))
    assert _items("extra") == [(7,), (7,), (7,)]


def test_add_not_null_field_fills_existing_rows_from_default(tables: Any) -> None:
    calls = itertools.count()

    def default() -> str:
        return f"d{next(calls)}"

    with SchemaEditor() as ed:
        ed.add_field(Item, _field("slug", dorm.CharField(max_length=10, default=default)))
    assert _items("title", "slug") == [("a", "d0"), ("b", "d0"), ("c", "d0")]
    assert next(calls) == 1  # the callable ran once
    assert _columns(ITEM)["slug"][1] is False
    # NOT NULL, and the fill value is not left behind as a database default.
    _violates(f"INSERT INTO {ITEM} (writer_id, title, code) VALUES (1, 't', 'x')")


def test_add_not_null_literal_default(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.add_field(
            Item, _field("rank", dorm.DecimalField(max_digits=5, decimal_places=2, default="1.50"))
        )
    assert [str(r[0]) for r in _items("rank")] == ["1.50"] * 3 or _items("rank") == [(1.5,)] * 3


def test_rebuild_refuses_a_model_that_does_not_describe_the_table(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.add_field(Item, _field("extra", dorm.IntegerField(null=True)))
    before = _snapshot()
    new = _field("qty", dorm.BigIntegerField(default=0))
    with (
        pytest.raises(FieldError) if tables.vendor == "sqlite" else _nothing(),
        SchemaEditor() as ed,
    ):
        ed.alter_field(Item, Item._meta.get_field("qty"), new)  # Item lacks "extra"
    if tables.vendor == "sqlite":
        assert _snapshot() == before


def test_add_not_null_field_without_default_raises_before_any_sql(tables: Any) -> None:
    before = _snapshot()
    with pytest.raises(FieldError, match=r"t_schema_alter\.Item\.extra"), SchemaEditor() as ed:
        ed.add_field(Item, _field("extra", dorm.IntegerField()))
    assert _snapshot() == before


def test_add_not_null_field_without_default_to_empty_table(tables: Any) -> None:
    _sql(f"DELETE FROM {ITEM}")
    with SchemaEditor() as ed:
        ed.add_field(Item, _field("extra", dorm.IntegerField()))
    assert _columns(ITEM)["extra"][1] is False


def test_add_unique_indexed_field(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.add_field(Item, _field("serial", dorm.IntegerField(null=True, unique=True)))
        ed.add_field(Item, _field("tag", dorm.CharField(max_length=5, null=True, db_index=True)))
    assert ["serial"] in _unique_sets(ITEM)
    assert any(cols == ["tag"] and not u for u, cols in _indexes(ITEM).values())
    _sql(f"UPDATE {ITEM} SET serial = id")
    _violates(f"UPDATE {ITEM} SET serial = 1 WHERE id = 2")
    assert len(_items("*")) == 3


# -- remove_field ------------------------------------------------------------------------------


def test_remove_plain_field(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.remove_field(Item, Item._meta.get_field("note"))
    assert "note" not in _columns(ITEM)
    assert _items("title", "qty") == [("a", 1), ("b", 2), ("c", 3)]
    _violates(f"UPDATE {ITEM} SET qty = -1")  # the check constraint is still there


@pytest.mark.parametrize("name", ["code", "title"])  # db_index / in Meta.indexes
def test_remove_indexed_field_drops_its_indexes(tables: Any, name: str) -> None:
    with SchemaEditor() as ed:
        ed.remove_field(Item, Item._meta.get_field(name))
    assert name not in _columns(ITEM)
    assert not any(name in cols for _u, cols in _indexes(ITEM).values())
    assert _items("qty", "note") == [(1, None), (2, "n"), (3, None)]
    _violates(f"UPDATE {ITEM} SET qty = -1")
    _violates(f"INSERT INTO {ITEM} (writer_id, qty) VALUES (99, 1)")  # FK kept


# -- alter_field -------------------------------------------------------------------------------


def test_alter_field_type(tables: Any) -> None:
    old = Item._meta.get_field("title")
    with SchemaEditor() as ed:
        ed.alter_field(Item, old, _field("title", dorm.CharField(max_length=50)))
    cols = _columns(ITEM)
    expected = "character varying(50)" if tables.vendor == "postgresql" else "varchar(50)"
    assert cols["title"][0] == expected
    assert _items("title") == [("a",), ("b",), ("c",)]
    assert "item_title_idx" in _indexes(ITEM)


def test_alter_field_integer_to_bigint(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.alter_field(Item, Item._meta.get_field("qty"), _field("qty", dorm.BigIntegerField()))
    assert _columns(ITEM)["qty"][0] == "bigint"
    assert _items("qty") == [(1,), (2,), (3,)]
    _sql(f"UPDATE {ITEM} SET qty = 5000000000 WHERE id = 1")
    assert _items("qty")[0] == (5000000000,)


def test_alter_field_to_not_null_fills_nulls_from_default(tables: Any) -> None:
    old = Item._meta.get_field("note")
    with SchemaEditor() as ed:
        ed.alter_field(Item, old, _field("note", dorm.CharField(max_length=20, default="it's")))
    assert _items("note") == [("it's",), ("n",), ("it's",)]
    assert _columns(ITEM)["note"][1] is False
    _violates(f"UPDATE {ITEM} SET note = NULL")


def test_alter_field_to_not_null_without_default_raises(tables: Any) -> None:
    before = _snapshot()
    old = Item._meta.get_field("note")
    with pytest.raises(FieldError, match="note"), SchemaEditor() as ed:
        ed.alter_field(Item, old, _field("note", dorm.CharField(max_length=20)))
    assert _snapshot() == before


def test_alter_field_to_nullable(tables: Any) -> None:
    old = Item._meta.get_field("title")
    with SchemaEditor() as ed:
        ed.alter_field(Item, old, _field("title", dorm.CharField(max_length=20, null=True)))
    assert _columns(ITEM)["title"][1] is True
    _sql(f"UPDATE {ITEM} SET title = NULL WHERE id = 1")
    assert _items("title") == [(None,), ("b",), ("c",)]


def test_alter_field_unique_on_and_off(tables: Any) -> None:
    old = Item._meta.get_field("code")
    unique = _field("code", dorm.CharField(max_length=10, unique=True))
    with SchemaEditor() as ed:
        ed.alter_field(Item, old, unique)
    assert ["code"] in _unique_sets(ITEM)
    _violates(f"UPDATE {ITEM} SET code = 'c1' WHERE id = 2")
    with SchemaEditor() as ed:
        ed.alter_field(Item, unique, _field("code", dorm.CharField(max_length=10)))
    assert ["code"] not in _unique_sets(ITEM)
    _sql(f"UPDATE {ITEM} SET code = 'c1'")
    assert _items("code") == [("c1",)] * 3


def test_alter_field_unique_fails_on_duplicates(tables: Any) -> None:
    _sql(f"UPDATE {ITEM} SET code = 'same'")
    before = _snapshot()
    old = Item._meta.get_field("code")
    with pytest.raises(IntegrityError), SchemaEditor() as ed:
        ed.alter_field(Item, old, _field("code", dorm.CharField(max_length=10, unique=True)))
    assert _snapshot() == before


def test_alter_field_db_index_on_and_off(tables: Any) -> None:
    old = Item._meta.get_field("code")
    plain = _field("code", dorm.CharField(max_length=10))
    with SchemaEditor() as ed:
        ed.alter_field(Item, old, plain)
    assert not any(cols == ["code"] for _u, cols in _indexes(ITEM).values())
    with SchemaEditor() as ed:
        ed.alter_field(Item, plain, _field("code", dorm.CharField(max_length=10, db_index=True)))
    assert any(cols == ["code"] and not u for u, cols in _indexes(ITEM).values())
    assert _items("code") == [("c1",), ("c2",), ("c3",)]


def test_alter_field_db_column_renames_the_column(tables: Any) -> None:
    old = Item._meta.get_field("code")
    new = _field("code", dorm.CharField(max_length=10, db_index=True, db_column="ref"))
    with SchemaEditor() as ed:
        ed.alter_field(Item, old, new)
    assert "ref" in _columns(ITEM) and "code" not in _columns(ITEM)
    assert any(cols == ["ref"] for _u, cols in _indexes(ITEM).values())
    assert _items("ref") == [("c1",), ("c2",), ("c3",)]


def test_alter_field_rename_and_type_together(tables: Any) -> None:
    old = Item._meta.get_field("qty")
    new = _field("qty", dorm.PositiveIntegerField(default=0, db_column="amount"))
    with SchemaEditor() as ed:
        ed.alter_field(Item, old, new)
    assert _items("amount") == [(1,), (2,), (3,)]
    _violates(f"UPDATE {ITEM} SET amount = -5")


# -- rename_field ------------------------------------------------------------------------------


def test_rename_field(tables: Any) -> None:
    with SchemaEditor() as ed:
        old = Item._meta.get_field("title")
        ed.rename_field(Item, old, _field("label", dorm.CharField(max_length=20)))
        old = Item._meta.get_field("code")
        ed.rename_field(Item, old, _field("sku", dorm.CharField(max_length=10, db_index=True)))
    cols = _columns(ITEM)
    assert {"label", "sku"} <= set(cols) and not {"title", "code"} & set(cols)
    assert _items("label", "sku") == [("a", "c1"), ("b", "c2"), ("c", "c3")]
    assert _indexes(ITEM)["item_title_idx"][1] == ["label"]
    assert any(cols == ["sku"] for _u, cols in _indexes(ITEM).values())


# -- indexes and constraints -------------------------------------------------------------------


def test_add_and_remove_index(tables: Any) -> None:
    index = dorm.Index(fields=["-qty", "note"], name="item_qty_note_idx")
    unnamed = dorm.Index(fields=["note"], condition=dorm.Q(qty__gt=1))
    with SchemaEditor() as ed:
        ed.add_index(Item, index)
        ed.add_index(Item, unnamed)
    found = _indexes(ITEM)
    assert found["item_qty_note_idx"][1] == ["qty", "note"]
    assert sum(1 for _u, cols in found.values() if cols == ["note"]) == 1
    with SchemaEditor() as ed:
        ed.remove_index(Item, index)
        ed.remove_index(Item, unnamed)
    assert not any("note" in cols for _u, cols in _indexes(ITEM).values())
    assert len(_items("*")) == 3


def test_add_and_remove_check_constraint(tables: Any) -> None:
    check = dorm.CheckConstraint(condition=dorm.Q(qty__lte=10), name="item_qty_lte_10")
    with SchemaEditor() as ed:
        ed.add_constraint(Item, check)
    assert "item_qty_lte_10" in _constraints(ITEM)
    _violates(f"UPDATE {ITEM} SET qty = 11")
    _violates(f"UPDATE {ITEM} SET qty = -1")  # the model's own check survives a rebuild
    with SchemaEditor() as ed:
        ed.remove_constraint(Item, check)
    assert "item_qty_lte_10" not in _constraints(ITEM)
    _sql(f"UPDATE {ITEM} SET qty = 11")
    assert _items("qty") == [(11,)] * 3


def test_remove_model_check_constraint(tables: Any) -> None:
    (check,) = Item._meta.constraints
    with SchemaEditor() as ed:
        ed.remove_constraint(Item, check)
    assert "item_qty_gte_0" not in _constraints(ITEM)
    _sql(f"UPDATE {ITEM} SET qty = -1")


def test_add_and_remove_unique_constraints(tables: Any) -> None:
    unique = dorm.UniqueConstraint(fields=["writer", "title"], name="item_writer_title_uniq")
    partial = dorm.UniqueConstraint(
        fields=["note"], name="item_note_uniq", condition=dorm.Q(qty__gt=0)
    )
    with SchemaEditor() as ed:
        ed.add_constraint(Item, unique)
        ed.add_constraint(Item, partial)
    assert ["writer_id", "title"] in _unique_sets(ITEM) and "item_note_uniq" in _indexes(ITEM)
    _violates(f"UPDATE {ITEM} SET title = 'a' WHERE id = 2")
    _violates(f"UPDATE {ITEM} SET note = 'n' WHERE id = 1")
    _sql(f"UPDATE {ITEM} SET title = 'a' WHERE id = 3")  # another writer: fine
    with SchemaEditor() as ed:
        ed.remove_constraint(Item, unique)
        ed.remove_constraint(Item, partial)
    assert _unique_sets(ITEM) == ([] if tables.vendor == "sqlite" else [["id"]])
    _sql(f"UPDATE {ITEM} SET title = 'a', note = 'n'")


def test_add_constraint_violated_by_existing_rows_changes_nothing(tables: Any) -> None:
    before = _snapshot()
    check = dorm.CheckConstraint(condition=dorm.Q(qty__gt=1), name="item_qty_gt_1")
    with pytest.raises(IntegrityError), SchemaEditor() as ed:
        ed.add_constraint(Item, check)
    assert _snapshot() == before


def test_alter_unique_together(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.alter_unique_together(Item, [], [("writer", "code")])
    assert ["writer_id", "code"] in _unique_sets(ITEM)
    _violates(f"UPDATE {ITEM} SET code = 'c1' WHERE id = 2")
    with SchemaEditor() as ed:
        ed.alter_unique_together(Item, [("writer", "code")], [("title", "code")])
    assert ["writer_id", "code"] not in _unique_sets(ITEM)
    assert ["title", "code"] in _unique_sets(ITEM)
    _sql(f"UPDATE {ITEM} SET code = 'c1' WHERE id = 2")
    with SchemaEditor() as ed:
        ed.alter_unique_together(Item, [("title", "code")], [])
    assert ["title", "code"] not in _unique_sets(ITEM)
    assert len(_items("*")) == 3


# -- tables ------------------------------------------------------------------------------------


def test_alter_db_table_keeps_rows_and_foreign_keys(tables: Any) -> None:
    with SchemaEditor() as ed:
        ed.alter_db_table(Writer, WRITER, "renamed_writer")
        ed.alter_db_table(Item, ITEM, "renamed_item")
    assert _items("title", table="renamed_item") == [("a",), ("b",), ("c",)]
    assert _rows("SELECT name FROM renamed_writer ORDER BY id") == [("ann",), ("bob",)]
    _violates("INSERT INTO renamed_item (writer_id, title, qty, code) VALUES (99, 't', 0, 'x')")
    _sql("INSERT INTO renamed_item (writer_id, title, qty, code) VALUES (2, 't', 0, 'x')")


def test_rebuilding_a_referenced_table_keeps_foreign_keys(tables: Any) -> None:
    """On SQLite making a column unique rebuilds the table, here the parent of Item."""
    with SchemaEditor() as ed:
        ed.alter_field(
            Writer,
            Writer._meta.get_field("name"),
            _field("name", dorm.CharField(max_length=30, unique=True), Writer),
        )
    assert _rows(f"SELECT id, name FROM {WRITER} ORDER BY id") == [(1, "ann"), (2, "bob")]
    _violates(f"INSERT INTO {WRITER} (name) VALUES ('ann')")
    _violates(f"DELETE FROM {WRITER} WHERE id = 1")  # items still point at it
    _violates(f"INSERT INTO {ITEM} (writer_id, title, qty, code) VALUES (99, 't', 0, 'x')")
    _insert_item(writer_id=2)
    assert len(_items("*")) == 4


def test_failing_operation_rolls_back_the_whole_block(tables: Any) -> None:
    before = _snapshot()
    writers = _snapshot(WRITER)
    with pytest.raises(IntegrityError), SchemaEditor() as ed:
        ed.alter_field(
            Writer,
            Writer._meta.get_field("name"),
            _field("name", dorm.CharField(max_length=30, unique=True), Writer),
        )
        ed.add_index(Item, dorm.Index(fields=["note"], name="item_note_idx"))
        ed.alter_field(Item, Item._meta.get_field("code"), _field("code", dorm.TextField()))
        # Rows with qty 1 break the new check: everything above is undone too.
        ed.add_constraint(Item, dorm.CheckConstraint(condition=dorm.Q(qty__gt=1), name="gt_1"))
    assert _snapshot() == before
    assert _snapshot(WRITER) == writers
