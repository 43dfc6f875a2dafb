"""SchemaEditor: every column, key, unique, index, check and M2M table a model declares.

Each test creates the tables itself, inspects the real catalog (pg_indexes and
information_schema on PostgreSQL, sqlite_master and PRAGMAs on SQLite) and then violates
each constraint to see the database enforce it.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.db.connection import get_connection
from dorm.exceptions import FieldError, IntegrityError
from dorm.migrations.schema import SchemaEditor

APP = "t_schema"


class Owner(dorm.Model):
    name = dorm.CharField(max_length=30, unique=True)

    class Meta:
        app_label = APP


class Part(dorm.Model):
    label = dorm.CharField(max_length=20)

    class Meta:
        app_label = APP


class Gadget(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.CASCADE, related_name="gadgets")
    code = dorm.CharField(max_length=10, unique=True)
    sku = dorm.CharField(max_length=12, db_index=True)
    label = dorm.CharField(max_length=20, null=True)
    notes = dorm.TextField(default="")
    qty = dorm.IntegerField(default=0)
    stock = dorm.PositiveIntegerField(default=0)
    price = dorm.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    active = dorm.BooleanField(default=True)
    created = dorm.DateTimeField(null=True)
    kind = dorm.CharField(max_length=10, default="std")
    serial = dorm.IntegerField(default=0)
    parts = dorm.ManyToManyField(Part, related_name="gadgets")

    class Meta:
        app_label = APP
        unique_together = [("kind", "serial")]
        indexes = [
            dorm.Index(fields=["-created", "sku"], name="gadget_created_idx"),
            dorm.Index(fields=["qty"], name="gadget_qty_active_idx", condition=dorm.Q(active=True)),
        ]
        constraints = [
            dorm.CheckConstraint(condition=dorm.Q(qty__gte=0), name="gadget_qty_gte_0"),
            dorm.CheckConstraint(
                condition=dorm.Q(kind__in=["std", "pro", "it's"]), name="gadget_kind_known"
            ),
            dorm.UniqueConstraint(
                fields=["label"], name="gadget_label_active_uniq", condition=dorm.Q(active=True)
            ),
            dorm.UniqueConstraint(fields=["owner", "sku"], name="gadget_owner_sku_uniq"),
        ]


class Base(dorm.Model):
    title = dorm.CharField(max_length=10)

    class Meta:
        app_label = APP
        abstract = True


TABLES = [Owner, Part, Gadget]
THROUGH = "t_schema_gadget_parts"
_serials = itertools.count()

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def tables(db: Any) -> Iterator[Any]:
    with SchemaEditor(get_connection()) as ed:
        for model in TABLES:
            ed.create_model(model)
    try:
        yield db
    finally:
        with SchemaEditor(get_connection()) as ed:
            for model in reversed(TABLES):
                ed.delete_model(model)


# -- catalog helpers ---------------------------------------------------------------------------


def _rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = get_connection()
    return conn.fetchall(sql.replace("?", conn.ops.placeholder), params)


def _tables() -> set[str]:
    if get_connection().vendor == "sqlite":
        rows = _rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows if not r[0].startswith("sqlite_")}
    return {
        r[0] for r in _rows("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    }


def _columns(table: str) -> dict[str, tuple[str, bool]]:
    """``{column: (type, nullable)}``."""
    if get_connection().vendor == "sqlite":
        return {
            r[1]: (r[2].lower(), not r[3] and not r[5])
            for r in _rows(f'PRAGMA table_info("{table}")')
        }
    return {
        r[0]: (r[1], r[2] == "YES")
        for r in _rows(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = ?",
            table,
        )
    }


def _indexes(table: str) -> dict[str, dict[str, Any]]:
    """``{index name: {"unique", "partial", "columns": [(column, desc)], "sql"}}``."""
    result: dict[str, dict[str, Any]] = {}
    if get_connection().vendor == "sqlite":
        sqls = dict(_rows("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
        for _seq, name, unique, _origin, partial in _rows(f'PRAGMA index_list("{table}")'):
            cols = [(r[2], bool(r[3])) for r in _rows(f'PRAGMA index_xinfo("{name}")') if r[5]]
            result[name] = {
                "unique": bool(unique),
                "partial": bool(partial),
                "columns": cols,
                "sql": sqls.get(name) or "",
            }
        return result
    for name, indexdef in _rows(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ?", table
    ):
        cols = [
            (column, bool(desc))
            for column, desc in _rows(
                "SELECT a.attname, (i.indoption[k.n - 1] & 1) = 1 FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE c.relname = ? ORDER BY k.n",
                name,
            )
        ]
        result[name] = {
            "unique": indexdef.startswith("CREATE UNIQUE"),
            "partial": " WHERE " in indexdef,
            "columns": cols,
            "sql": indexdef,
        }
    return result


def _constraints(table: str) -> dict[str, str]:
    """Named table constraints ``{name: type}`` (PostgreSQL) / names in the CREATE (SQLite)."""
    if get_connection().vendor == "sqlite":
        (sql,) = _rows("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table)[0]
        found = {}
        for kind in ("UNIQUE", "CHECK"):
            for chunk in sql.split("CONSTRAINT ")[1:]:
                name, rest = chunk.split(" ", 1)
                if rest.startswith(kind):
                    found[name.strip('"')] = kind
        return found
    return dict(
        _rows(
            "SELECT constraint_name, constraint_type FROM information_schema.table_constraints "
            "WHERE table_name = ? AND constraint_name NOT LIKE '%%_not_null'",
            table,
        )
    )


def _foreign_keys(table: str) -> set[tuple[str, str, str]]:
    """``{(column, referenced table, referenced column)}``."""
    if get_connection().vendor == "sqlite":
        return {(r[3], r[2], r[4]) for r in _rows(f'PRAGMA foreign_key_list("{table}")')}
    return set(
        _rows(
            "SELECT kcu.column_name, ccu.table_name, ccu.column_name "
            "FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu "
            "  ON kcu.constraint_name = tc.constraint_name "
            "JOIN information_schema.constraint_column_usage ccu "
            "  ON ccu.constraint_name = tc.constraint_name "
            "WHERE tc.table_name = ? AND tc.constraint_type = 'FOREIGN KEY'",
            table,
        )
    )


def _gadget(owner: Owner, **kwargs: Any) -> Gadget:
    values: dict[str, Any] = {"code": "c", "sku": "s", "owner": owner, "serial": next(_serials)}
    values.update(kwargs)
    return Gadget.objects.create(**values)


# -- tables and columns ------------------------------------------------------------------------


def test_create_model_makes_every_table_and_delete_model_drops_them(db: Any) -> None:
    before = _tables()
    assert not {"t_schema_owner", "t_schema_gadget", THROUGH} & before
    with SchemaEditor(get_connection()) as ed:
        for model in TABLES:
            ed.create_model(model)
    assert {"t_schema_owner", "t_schema_part", "t_schema_gadget", THROUGH} <= _tables()
    with SchemaEditor(get_connection()) as ed:
        for model in reversed(TABLES):
            ed.delete_model(model)
    assert _tables() == before


def test_columns_types_and_nullability(tables: Any) -> None:
    cols = _columns("t_schema_gadget")
    assert set(cols) == {
        "id",
        "owner_id",
        "code",
        "sku",
        "label",
        "notes",
        "qty",
        "stock",
        "price",
        "active",
        "created",
        "kind",
        "serial",
    }
    nullable = {name for name, (_t, null) in cols.items() if null}
    assert nullable == {"label", "created"}
    if tables.vendor == "postgresql":
        assert cols["id"][0] == "bigint"
        assert cols["owner_id"][0] == "bigint"
        assert cols["code"][0] == "character varying"
        assert cols["notes"][0] == "text"
        assert cols["price"][0] == "numeric"
        assert cols["active"][0] == "boolean"
        assert cols["created"][0] == "timestamp with time zone"
        (length,) = _rows(
            "SELECT character_maximum_length FROM information_schema.columns "
            "WHERE table_name = 't_schema_gadget' AND column_name = 'sku'"
        )[0]
        assert length == 12
        (precision, scale) = _rows(
            "SELECT numeric_precision, numeric_scale FROM information_schema.columns "
            "WHERE table_name = 't_schema_gadget' AND column_name = 'price'"
        )[0]
        assert (precision, scale) == (8, 2)
    else:
        assert cols["id"][0] == "integer"
        assert cols["sku"][0] == "varchar(12)"
        assert cols["notes"][0] == "text"
        assert cols["created"][0] == "datetime"


def test_primary_key_is_generated(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    other = Owner.objects.create(name="b")
    assert isinstance(owner.pk, int) and other.pk > owner.pk
    assert Owner.objects.get(pk=other.pk).name == "b"


def test_not_null_is_enforced(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    with pytest.raises(IntegrityError):
        _gadget(owner, sku=None)
    # A nullable column takes NULL.
    _gadget(owner, label=None)
    assert Gadget.objects.get(code="c").label is None


# -- unique ------------------------------------------------------------------------------------


def test_unique_column(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    _gadget(owner, code="dup", sku="1")
    with pytest.raises(IntegrityError):
        _gadget(owner, code="dup", sku="2")
    assert Gadget.objects.filter(code="dup").count() == 1
    uniques = [
        i["columns"]
        for i in _indexes("t_schema_gadget").values()
        if i["unique"] and not i["partial"]
    ]
    assert [("code", False)] in uniques


def test_unique_together(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    _gadget(owner, code="1", sku="1", kind="pro", serial=7)
    _gadget(owner, code="2", sku="2", kind="pro", serial=8)  # differs in one column: fine
    _gadget(owner, code="3", sku="3", kind="std", serial=7)
    with pytest.raises(IntegrityError):
        _gadget(owner, code="4", sku="4", kind="pro", serial=7)
    uniques = [i["columns"] for i in _indexes("t_schema_gadget").values() if i["unique"]]
    assert [("kind", False), ("serial", False)] in uniques
    if tables.vendor == "postgresql":
        named = _constraints("t_schema_gadget")
        assert sum(1 for t in named.values() if t == "UNIQUE") >= 3  # code, together, owner_sku


def test_unique_constraint(tables: Any) -> None:
    a, b = Owner.objects.create(name="a"), Owner.objects.create(name="b")
    _gadget(a, code="1", sku="x")
    _gadget(b, code="2", sku="x")
    with pytest.raises(IntegrityError):
        _gadget(a, code="3", sku="x")
    assert _constraints("t_schema_gadget")["gadget_owner_sku_uniq"] == "UNIQUE"


def test_conditional_unique_constraint(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    _gadget(owner, code="1", sku="1", label="same", active=False)
    _gadget(owner, code="2", sku="2", label="same", active=False)  # inactive rows may repeat
    _gadget(owner, code="3", sku="3", label="same", active=True)
    with pytest.raises(IntegrityError):
        _gadget(owner, code="4", sku="4", label="same", active=True)
    assert Gadget.objects.filter(label="same").count() == 3
    index = _indexes("t_schema_gadget")["gadget_label_active_uniq"]
    assert index["unique"] and index["partial"]
    assert index["columns"] == [("label", False)]
    assert "WHERE" in index["sql"] and "active" in index["sql"]


# -- indexes -----------------------------------------------------------------------------------


def test_db_index_and_foreign_key_index(tables: Any) -> None:
    indexes = _indexes("t_schema_gadget")
    plain = [i["columns"] for i in indexes.values() if not i["unique"] and not i["partial"]]
    assert [("sku", False)] in plain
    assert [("owner_id", False)] in plain
    # A unique column already has its unique index; no second plain one.
    assert [("code", False)] not in plain


def test_meta_index_with_descending_column(tables: Any) -> None:
    index = _indexes("t_schema_gadget")["gadget_created_idx"]
    assert index["columns"] == [("created", True), ("sku", False)]
    assert not index["unique"] and not index["partial"]


def test_meta_partial_index(tables: Any) -> None:
    index = _indexes("t_schema_gadget")["gadget_qty_active_idx"]
    assert index["partial"] and not index["unique"]
    assert index["columns"] == [("qty", False)]
    condition = index["sql"].split("WHERE", 1)[1]
    assert "active" in condition
    owner = Owner.objects.create(name="a")
    _gadget(owner, qty=3, active=True)
    assert list(Gadget.objects.filter(active=True, qty=3).values_list("code", flat=True)) == ["c"]


# -- check constraints -------------------------------------------------------------------------


def test_check_constraint(tables: Any) -> None:
    assert _constraints("t_schema_gadget")["gadget_qty_gte_0"] == "CHECK"
    owner = Owner.objects.create(name="a")
    _gadget(owner, code="ok", qty=0)
    with pytest.raises(IntegrityError, match="gadget_qty_gte_0"):
        _gadget(owner, code="bad", qty=-1)
    g = Gadget.objects.get(code="ok")
    with pytest.raises(IntegrityError):
        Gadget.objects.filter(pk=g.pk).update(qty=-5)
    assert Gadget.objects.get(pk=g.pk).qty == 0


def test_check_constraint_with_quoted_string_values(tables: Any) -> None:
    assert _constraints("t_schema_gadget")["gadget_kind_known"] == "CHECK"
    owner = Owner.objects.create(name="a")
    _gadget(owner, code="1", sku="1", kind="it's")
    _gadget(owner, code="2", sku="2", kind="pro")
    with pytest.raises(IntegrityError, match="gadget_kind_known"):
        _gadget(owner, code="3", sku="3", kind="its")
    assert sorted(Gadget.objects.values_list("kind", flat=True)) == ["it's", "pro"]


def test_positive_integer_field_check(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    _gadget(owner, code="1", stock=5)
    conn = get_connection()
    table, stock = conn.ops.quote_name("t_schema_gadget"), conn.ops.quote_name("stock")
    with pytest.raises(IntegrityError):  # the column's CHECK (the ORM refuses -1 before)
        conn.execute(f"UPDATE {table} SET {stock} = -1", ())
    assert list(Gadget.objects.values_list("stock", flat=True)) == [5]


# -- foreign keys ------------------------------------------------------------------------------


def test_foreign_key_in_catalog(tables: Any) -> None:
    assert _foreign_keys("t_schema_gadget") == {("owner_id", "t_schema_owner", "id")}
    assert _foreign_keys(THROUGH) == {
        ("gadget_id", "t_schema_gadget", "id"),
        ("part_id", "t_schema_part", "id"),
    }


def test_foreign_key_violation_fails_at_commit(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    missing = owner.pk + 1000
    with pytest.raises(IntegrityError), transaction.atomic():
        Gadget.objects.create(code="x", sku="x", owner_id=missing)
        # Deferred: the row is there until the transaction commits.
        assert Gadget.objects.filter(owner_id=missing).count() == 1
    assert Gadget.objects.count() == 0


def test_foreign_key_violation_outside_a_transaction(tables: Any) -> None:
    with pytest.raises(IntegrityError):
        Gadget.objects.create(code="x", sku="x", owner_id=424242)
    assert Gadget.objects.count() == 0


def test_deferred_foreign_key_allows_any_order_within_a_transaction(tables: Any) -> None:
    with transaction.atomic():
        Gadget.objects.create(code="x", sku="x", owner_id=77)
        Owner.objects.create(pk=77, name="late")
    assert Gadget.objects.get(code="x").owner.name == "late"


def test_deleting_a_referenced_row_directly_is_refused(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    _gadget(owner)
    conn = get_connection()
    with pytest.raises(IntegrityError):
        conn.execute('DELETE FROM "t_schema_owner"', ())
    assert Owner.objects.count() == 1


# -- many-to-many ------------------------------------------------------------------------------


def test_many_to_many_table(tables: Any) -> None:
    cols = _columns(THROUGH)
    assert set(cols) == {"id", "gadget_id", "part_id"}
    assert not any(null for _t, null in cols.values())
    uniques = [i["columns"] for i in _indexes(THROUGH).values() if i["unique"]]
    assert [("gadget_id", False), ("part_id", False)] in uniques
    owner = Owner.objects.create(name="a")
    g = _gadget(owner)
    p1, p2 = Part.objects.create(label="p1"), Part.objects.create(label="p2")
    g.parts.add(p1, p2)
    assert sorted(Part.objects.filter(gadgets=g).values_list("label", flat=True)) == ["p1", "p2"]
    with pytest.raises(IntegrityError):
        get_connection().execute(
            f'INSERT INTO "{THROUGH}" ("gadget_id", "part_id") VALUES ({g.pk}, {p1.pk})', ()
        )


def test_delete_model_drops_the_many_to_many_table(db: Any) -> None:
    with SchemaEditor(get_connection()) as ed:
        for model in TABLES:
            ed.create_model(model)
    assert THROUGH in _tables()
    with SchemaEditor(get_connection()) as ed:
        ed.delete_model(Gadget)
    remaining = _tables()
    assert THROUGH not in remaining and "t_schema_gadget" not in remaining
    assert {"t_schema_owner", "t_schema_part"} <= remaining
    with SchemaEditor(get_connection()) as ed:
        ed.delete_model(Part)
        ed.delete_model(Owner)
    assert not {"t_schema_owner", "t_schema_part"} & _tables()


# -- editor behaviour --------------------------------------------------------------------------


def test_abstract_model_has_no_table(db: Any) -> None:
    with pytest.raises(FieldError, match="Base is abstract"), SchemaEditor(get_connection()) as ed:
        ed.create_model(Base)


def test_failed_block_rolls_back_ddl(db: Any) -> None:
    before = _tables()
    with pytest.raises(RuntimeError, match="boom"), SchemaEditor(get_connection()) as ed:
        ed.create_model(Owner)
        raise RuntimeError("boom")
    assert _tables() == before


def test_collect_sql_runs_nothing(db: Any) -> None:
    before = _tables()
    with SchemaEditor(get_connection(), collect_sql=True) as ed:
        ed.create_model(Gadget)
    assert _tables() == before
    joined = "\n".join(ed.collected)
    assert 'CREATE TABLE "t_schema_gadget"' in joined
    assert 'CREATE TABLE "t_schema_gadget_parts"' in joined
    assert '"gadget_created_idx"' in joined and '"created" DESC' in joined
    assert 'CONSTRAINT "gadget_qty_gte_0" CHECK' in joined


def test_datetime_column_round_trips(tables: Any) -> None:
    owner = Owner.objects.create(name="a")
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    _gadget(owner, created=when, price=Decimal("12.50"))
    g = Gadget.objects.get(code="c")
    assert g.created == when and g.price == Decimal("12.50")


# -- awkward column names in DDL ---------------------------------------------------------------


class Awkward(dorm.Model):
    first_name = dorm.CharField(max_length=20, db_column="first name")
    first_place = dorm.IntegerField(default=0, db_column="first place")
    ask = dorm.IntegerField(default=0, db_column="ask? %s")
    pct = dorm.CharField(max_length=20, default="")

    class Meta:
        app_label = APP
        indexes = [
            dorm.Index(fields=["first_name"]),
            dorm.Index(fields=["-first_place"]),
            dorm.Index(fields=["ask"], condition=dorm.Q(ask__gt=0)),
        ]
        constraints = [
            dorm.CheckConstraint(condition=dorm.Q(ask__lt=100), name="awkward_ask_lt_100"),
            dorm.CheckConstraint(condition=~dorm.Q(pct__contains="%"), name="awkward_no_pct"),
            dorm.CheckConstraint(
                condition=dorm.Q(first_place__lte=dorm.F("ask")), name="awkward_place_le_ask"
            ),
        ]


@pytest.fixture
def awkward(db: Any) -> Iterator[Any]:
    with SchemaEditor(get_connection()) as ed:
        ed.create_model(Awkward)
    try:
        yield db
    finally:
        with SchemaEditor(get_connection()) as ed:
            ed.delete_model(Awkward)


def test_unnamed_indexes_on_columns_with_spaces_get_distinct_names(awkward: Any) -> None:
    indexes = _indexes("t_schema_awkward")
    by_columns = {
        tuple(i["columns"]): name for name, i in indexes.items() if i["columns"] != [("id", False)]
    }
    assert (("first name", False),) in by_columns
    assert (("first place", True),) in by_columns
    assert (("ask? %s", False),) in by_columns
    assert len(set(by_columns.values())) == 3
    assert indexes[by_columns[(("ask? %s", False),)]]["partial"]


def test_check_constraints_on_awkward_columns(awkward: Any) -> None:
    assert {"awkward_ask_lt_100", "awkward_no_pct", "awkward_place_le_ask"} <= set(
        _constraints("t_schema_awkward")
    )
    Awkward.objects.create(first_name="a", first_place=1, ask=5, pct="fine_")
    with pytest.raises(IntegrityError, match="awkward_ask_lt_100"):
        Awkward.objects.create(first_name="b", ask=100)
    with pytest.raises(IntegrityError, match="awkward_no_pct"):
        Awkward.objects.create(first_name="c", ask=1, pct="50%")
    with pytest.raises(IntegrityError, match="awkward_place_le_ask"):
        Awkward.objects.create(first_name="d", first_place=9, ask=1)
    assert list(Awkward.objects.values_list("first_name", "ask", "pct")) == [("a", 5, "fine_")]
    assert Awkward.objects.filter(ask__gt=0, first_place__lte=1).count() == 1


class Profile(dorm.Model):
    owner = dorm.OneToOneField(Owner, on_delete=dorm.CASCADE)
    loose = dorm.ForeignKey(
        Part, on_delete=dorm.DO_NOTHING, db_constraint=False, db_index=False, null=True
    )

    class Meta:
        app_label = APP


def test_one_to_one_is_unique_and_db_constraint_false_has_no_key(db: Any) -> None:
    with SchemaEditor(get_connection()) as ed:
        ed.create_model(Owner)
        ed.create_model(Part)
        ed.create_model(Profile)
    try:
        assert _foreign_keys("t_schema_profile") == {("owner_id", "t_schema_owner", "id")}
        indexes = _indexes("t_schema_profile")
        assert [("owner_id", False)] in [i["columns"] for i in indexes.values() if i["unique"]]
        assert not any(i["columns"] == [("loose_id", False)] for i in indexes.values())
        owner = Owner.objects.create(name="a")
        Profile.objects.create(owner=owner, loose_id=999)  # no key: a dangling id is accepted
        with pytest.raises(IntegrityError):
            Profile.objects.create(owner=owner)
        assert Profile.objects.get().loose_id == 999
    finally:
        with SchemaEditor(get_connection()) as ed:
            ed.delete_model(Profile)
            ed.delete_model(Part)
            ed.delete_model(Owner)
