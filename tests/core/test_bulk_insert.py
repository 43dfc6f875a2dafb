"""bulk_create on both backends: column types, NULLs, key order, conflicts, masking, and
on PostgreSQL the single ``INSERT ... SELECT * FROM unnest(...)`` statement per batch."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest

import dorm
from dorm.exceptions import IntegrityError, ValidationError
from dorm.test import CaptureQueriesContext


class Item(dorm.Model):
    sku = dorm.CharField(max_length=20, unique=True)
    qty = dorm.IntegerField(null=True)
    price = dorm.DecimalField(max_digits=8, decimal_places=2, null=True)
    ref = dorm.UUIDField(null=True)
    seen = dorm.DateTimeField(null=True)
    data = dorm.JSONField(null=True)
    token = dorm.CharField(max_length=40, default="")  # masked: "token" is a sensitive name

    class Meta:
        app_label = "t_bulk_insert"


class Shout(dorm.CharField):
    """Stored upper-cased: a subclass's own conversion, which compiled paths must call."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value.upper() if isinstance(value, str) else value


class Note(dorm.Model):
    text = Shout(max_length=20)
    item = dorm.ForeignKey(Item, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "t_bulk_insert"


class Label(dorm.Model):
    text = dorm.CharField(max_length=60, null=True)
    code = dorm.CharField(max_length=3, default="")
    n = dorm.BigIntegerField(null=True)

    class Meta:
        app_label = "t_bulk_insert"


class Stock(dorm.Model):
    """Only fields with the base pre_save: their values are read in one block per row."""

    code = dorm.CharField(max_length=10, unique=True)
    qty = dorm.IntegerField(null=True)
    note = dorm.CharField(max_length=20, default="")

    class Meta:
        app_label = "t_bulk_insert"


MODELS = [Item, Note, Label, Stock]
pytestmark = pytest.mark.usefixtures("clean_tables")

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
REF = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _items(n: int) -> list[Item]:
    items = [Item(sku="first-null")]  # every nullable column NULL in the first row
    items += [
        Item(
            sku=f"s{i}",
            qty=i,
            price=decimal.Decimal(f"{i}.25"),
            ref=REF,
            seen=WHEN,
            data={"i": i, "tags": ["a", "b"]},
            token=f"secret-{i}",
        )
        for i in range(1, n)
    ]
    return items


def test_values_nulls_and_keys_round_trip(db) -> None:
    items = Item.objects.bulk_create(_items(50))
    by_sku = {i.sku: i.pk for i in Item.objects.all()}
    assert [i.pk for i in items] == [by_sku[i.sku] for i in items]  # keys in input order
    first = Item.objects.get(sku="first-null")
    assert (first.qty, first.price, first.ref, first.seen, first.data) == (None,) * 5
    last = Item.objects.get(sku="s49")
    assert (last.qty, last.price, last.ref, last.seen) == (49, decimal.Decimal("49.25"), REF, WHEN)
    assert last.data == {"i": 49, "tags": ["a", "b"]}
    assert type(last.ref) is uuid.UUID


def test_one_statement_per_batch_and_sensitive_values_masked(db) -> None:
    with CaptureQueriesContext() as ctx:
        Item.objects.bulk_create(_items(30), batch_size=10)
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3
    shown = repr([q["params"] for q in inserts])
    assert "secret-" not in shown
    if db.vendor == "postgresql":
        assert all("unnest(" in q["sql"] for q in inserts)
    assert Item.objects.count() == 30


def test_conflicts_ignored_or_updated(db) -> None:
    Item.objects.bulk_create([Item(sku="a", qty=1), Item(sku="b", qty=2)])
    Item.objects.bulk_create([Item(sku="a", qty=10), Item(sku="c", qty=3)], ignore_conflicts=True)
    assert dict(Item.objects.values_list("sku", "qty")) == {"a": 1, "b": 2, "c": 3}
    Item.objects.bulk_create(
        [Item(sku="a", qty=100), Item(sku="d", qty=4)],
        update_conflicts=True,
        unique_fields=["sku"],
        update_fields=["qty"],
    )
    assert dict(Item.objects.values_list("sku", "qty")) == {"a": 100, "b": 2, "c": 3, "d": 4}


def test_a_deferred_column_is_loaded_before_it_is_written(db) -> None:
    """Objects loaded with defer(): bulk_create reads each missing column from the
    database (pre_save) instead of writing NULL, in a batch where other rows have it."""
    Stock.objects.bulk_create([Stock(code="a", qty=1, note="n-a"), Stock(code="b", qty=2)])
    loaded = list(Stock.objects.defer("qty", "note").order_by("code"))
    assert all("qty" not in obj.__dict__ for obj in loaded)
    Stock.objects.filter(code="a").update(qty=7, note="changed")  # after the load
    fresh = Stock(code="c", qty=3)
    Stock.objects.bulk_create(
        [fresh, *loaded],
        update_conflicts=True,
        unique_fields=["code"],
        update_fields=["qty", "note"],
    )
    rows = Stock.objects.order_by("code").values_list("code", "qty", "note")
    assert list(rows) == [("a", 7, "changed"), ("b", 2, ""), ("c", 3, "")]
    assert fresh.pk is not None and fresh.qty == 3


def test_a_value_to_convert_or_out_of_range_in_a_plain_batch(db) -> None:
    """A batch of plain rows where one value needs its field's conversion (a numeric
    string) and, in another batch, one is outside the column's range: converted, or the
    field's ValidationError naming the value, with nothing written."""
    Stock.objects.bulk_create([Stock(code="a", qty=1), Stock(code="b", qty="22")])
    assert list(Stock.objects.order_by("code").values_list("qty", flat=True)) == [1, 22]
    with pytest.raises(ValidationError, match="2147483648"):
        Stock.objects.bulk_create([Stock(code="c", qty=3), Stock(code="d", qty=2**31)])
    assert Stock.objects.count() == 2


def test_a_failing_row_writes_nothing(db) -> None:
    Item.objects.create(sku="taken")
    with pytest.raises(IntegrityError) as info:
        Item.objects.bulk_create([Item(sku="new"), Item(sku="taken")])
    assert "sku" in str(info.value) or "unique" in str(info.value).lower()
    assert list(Item.objects.values_list("sku", flat=True)) == ["taken"]


class IntArrayField(dorm.Field):
    """A PostgreSQL integer[] column: its values are lists, which unnest would flatten."""

    def db_type(self, connection: Any) -> str:
        return "integer[]"

    def get_internal_type(self) -> str:
        return "IntArrayField"


class Series(dorm.Model):
    points = IntArrayField()

    class Meta:
        app_label = "t_bulk_insert"


def test_array_values_keep_multi_row_values_on_postgresql(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("integer[] is a PostgreSQL column type")
    from dorm.migrations.schema import SchemaEditor

    with SchemaEditor() as editor:
        editor.create_model(Series)
    try:
        with CaptureQueriesContext() as ctx:
            made = Series.objects.bulk_create([Series(points=[1, 2]), Series(points=[3])])
        assert [s.pk is not None for s in made] == [True, True]
        assert sorted(Series.objects.values_list("points", flat=True)) == [[1, 2], [3]]
        inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
        assert len(inserts) == 1 and "unnest(" not in inserts[0]
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(Series)


def test_a_subclass_conversion_runs_in_every_compiled_path(db) -> None:
    item = Item.objects.create(sku="x", qty=True)  # a bool is converted, not passed as is
    assert Item.objects.values_list("qty", flat=True).get(pk=item.pk) == 1
    Note.objects.create(text="one", item=item)
    Note.objects.bulk_create([Note(text="two", item_id=item.pk), Note(text="three")])
    assert sorted(Note.objects.values_list("text", flat=True)) == ["ONE", "THREE", "TWO"]
    # get() and __in bind through the same conversion: lower-case values find the rows.
    assert Note.objects.get(text="two").item_id == item.pk
    assert Note.objects.get(text="two").text == "TWO"
    assert Note.objects.filter(text__in=["one", "three", "one"]).count() == 2
    assert Note.objects.filter(item__in=[item, item.pk]).count() == 2
    with pytest.raises(ValidationError, match="qty"):
        Item.objects.create(sku="y", qty="many")
    assert not Item.objects.filter(sku="y").exists()


# -- SQLite: new keys from the last rowid instead of RETURNING --------------------------------


def _keys_match(items: list[Item]) -> None:
    by_sku = dict(Item.objects.values_list("sku", "pk"))
    assert [i.pk for i in items] == [by_sku[i.sku] for i in items]
    assert len(set(by_sku.values())) == len(by_sku)


def _sqlite_only(db: Any) -> None:
    if db.vendor != "sqlite":
        pytest.skip("PostgreSQL reads keys back with RETURNING from unnest")


def test_sqlite_keys_come_from_the_rowid_across_batches_and_gaps(db) -> None:
    """No RETURNING on a plain table; keys right over several statements (more rows than
    SQLite's variable limit allows in one), after deleted top rows (AUTOINCREMENT keeps
    counting), and with explicit keys mixed in."""
    _sqlite_only(db)
    first = Item.objects.bulk_create([Item(sku=f"a{i}", qty=i) for i in range(5)])
    Item.objects.filter(pk__in=[first[-1].pk, first[-2].pk]).delete()
    with CaptureQueriesContext() as ctx:
        many = Item.objects.bulk_create([Item(sku=f"m{i}", qty=i) for i in range(6000)])
    inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) >= 2 and not any("RETURNING" in sql for sql in inserts)
    assert many[0].pk == first[-1].pk + 1  # the deleted keys are not reused
    mixed = [Item(sku="x1"), Item(pk=10**6, sku="x2"), Item(sku="x3")]
    Item.objects.bulk_create(mixed)
    _keys_match(first[:3] + many + mixed)
    assert mixed[1].pk == 10**6


def test_sqlite_keys_with_a_trigger_inserting_into_the_table(db) -> None:
    """A trigger that inserts into the same table would interleave rowids: RETURNING
    then, and every key still names its own row."""
    _sqlite_only(db)
    from dorm.db.connection import connections

    table = Item._meta.db_table
    conn = connections["default"]
    conn.execute(
        f'CREATE TRIGGER t_bulk_echo AFTER INSERT ON "{table}" WHEN NEW.sku LIKE ? '
        f"BEGIN INSERT INTO \"{table}\" (sku, token) VALUES ('echo-' || NEW.sku, ''); END".replace(
            "?", "'e%'"
        )
    )
    try:
        with CaptureQueriesContext() as ctx:
            items = Item.objects.bulk_create([Item(sku=f"e{i}") for i in range(20)])
        assert any("RETURNING" in q["sql"] for q in ctx.captured_queries)
        _keys_match(items)
        assert Item.objects.filter(sku__startswith="echo-").count() == 20
    finally:
        conn.execute("DROP TRIGGER t_bulk_echo")


def test_sqlite_keys_with_a_temp_trigger_on_the_table(db) -> None:
    """A TEMP trigger (kept in the temp schema) counts as much as one of the table's."""
    _sqlite_only(db)
    from dorm.db.connection import connections

    table = Item._meta.db_table
    conn = connections["default"]
    with dorm.transaction.atomic():  # one connection for the trigger and the insert
        conn.execute(
            f'CREATE TEMP TRIGGER t_bulk_temp AFTER INSERT ON main."{table}" '
            f"WHEN NEW.sku LIKE 'w%' BEGIN INSERT INTO \"{table}\" (sku, token) "
            "VALUES ('temp-' || NEW.sku, ''); END"
        )
        try:
            items = Item.objects.bulk_create([Item(sku=f"w{i}") for i in range(10)])
            _keys_match(items)
            assert Item.objects.filter(sku__startswith="temp-").count() == 10
        finally:
            conn.execute("DROP TRIGGER temp.t_bulk_temp")


def test_sqlite_keys_at_the_rowid_limit_are_never_guessed(db) -> None:
    """With the largest key near 2**63 - 1 there is no room for consecutive rowids:
    RETURNING is used, and SQLite refuses (AUTOINCREMENT) without writing anything."""
    _sqlite_only(db)
    from dorm.db.connection import connections
    from dorm.exceptions import DatabaseError

    Item.objects.create(pk=2**63 - 5, sku="top")
    try:
        with pytest.raises(DatabaseError) as info:
            Item.objects.bulk_create([Item(sku=f"t{i}") for i in range(10)])
        assert "full" in str(info.value).lower()
        assert list(Item.objects.values_list("sku", flat=True)) == ["top"]
    finally:  # AUTOINCREMENT's counter outlives the rows: reset it for the next tests
        Item.objects.all().delete()
        connections["default"].execute(
            "DELETE FROM sqlite_sequence WHERE name = ?", [Item._meta.db_table]
        )


def test_sqlite_async_bulk_create_keys(db) -> None:
    """abulk_create takes the same path through the thread cursor, which reports the
    statement's last rowid too."""
    import asyncio

    _sqlite_only(db)

    async def main() -> list[Item]:
        return await Item.objects.abulk_create([Item(sku=f"as{i}") for i in range(50)])

    items = asyncio.run(main())
    _keys_match(items)


class Plain(dorm.Model):
    """A table made by another tool: INTEGER PRIMARY KEY without AUTOINCREMENT."""

    name = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_bulk_insert"
        db_table = "t_bulk_plain"
        managed = False


def test_sqlite_keys_near_the_limit_without_autoincrement(db) -> None:
    """Past the largest rowid SQLite picks free rowids at random: dorm must not compute
    keys then. Every key returned names its own row."""
    _sqlite_only(db)
    from dorm.db.connection import connections

    conn = connections["default"]
    conn.execute('CREATE TABLE "t_bulk_plain" (id INTEGER PRIMARY KEY, name varchar(20))')
    try:
        Plain.objects.create(pk=2**63 - 1, name="top")
        plains = Plain.objects.bulk_create([Plain(name=f"p{i}") for i in range(30)])
        by_name = dict(Plain.objects.values_list("name", "pk"))
        assert [p.pk for p in plains] == [by_name[p.name] for p in plains]
        assert len(set(by_name.values())) == 31
    finally:
        conn.execute('DROP TABLE "t_bulk_plain"')


def test_the_state_of_new_and_bulk_created_objects(db) -> None:
    """Model(...) makes its ModelState on first use; bulk_create marks its objects saved
    to the alias whether or not a state exists yet, and a state made earlier is updated."""
    fresh = Item(sku="fresh")
    assert "_state" not in fresh.__dict__
    assert fresh._state.adding is True and fresh._state.db is None
    touched = Item(sku="touched")
    assert touched._state.adding  # made before the insert
    untouched = Item(sku="untouched")
    Item.objects.bulk_create([touched, untouched])
    for obj in (touched, untouched):
        assert obj._state.adding is False and obj._state.db == "default"
    untouched.qty = 5
    untouched.save()  # an UPDATE of the saved row, not a second INSERT
    assert dict(Item.objects.values_list("sku", "qty")) == {"touched": None, "untouched": 5}


# -- PostgreSQL: unnest arrays sent as their text form ---------------------------------------

HOSTILE = [
    "",
    " lead and trail ",
    '"',
    '""',
    "\\",
    '\\"',
    "a,b",
    "{x}",
    "{",
    "}",
    "NULL",
    "null",
    '","',
    "'; DROP TABLE t_bulk_insert_label; --",
    "tab\there\nnew line",
    "ünï©ødé ✓ 🐍",
    "\\N",
    "(1,2)",
]


def _unnest_params(ctx: CaptureQueriesContext) -> list[Any]:
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    params: list[Any] = inserts[0]["params"]
    return params


def test_hostile_strings_and_integers_round_trip(db) -> None:
    """Every character PostgreSQL's array syntax gives a meaning to comes back as sent;
    on PostgreSQL the columns went as array text, not as lists."""
    labels = [Label(text=t, n=i * 10**15 if i % 3 else None) for i, t in enumerate(HOSTILE)]
    with CaptureQueriesContext() as ctx:
        made = Label.objects.bulk_create(labels)
    got = {pk: (text, n) for pk, text, n in Label.objects.values_list("pk", "text", "n")}
    assert [got[label.pk] for label in made] == [(label.text, label.n) for label in labels]
    assert len(got) == len(HOSTILE)
    if db.vendor == "postgresql":
        text, code, n = _unnest_params(ctx)
        assert type(text) is str and text.startswith('{"')
        assert code == '{"' + '","'.join([""] * len(HOSTILE)) + '"}'
        assert type(n) is str and "NULL" in n


def test_null_strings_and_other_types_go_as_lists(db) -> None:
    labels = [Label(text=None, n=1), Label(text='x"y', n=2), Label(text="", n=3)]
    with CaptureQueriesContext() as ctx:
        Label.objects.bulk_create(labels)
    assert sorted(Label.objects.values_list("n", "text")) == [(1, None), (2, 'x"y'), (3, "")]
    if db.vendor == "postgresql":
        text, _code, n = _unnest_params(ctx)
        assert text == [None, 'x"y', ""]  # a NULL among strings: the driver's list
        assert n == "{1, 2, 3}"


def test_a_value_longer_than_its_column_is_refused_not_cut(db) -> None:
    """The arrays are cast to the unbounded type; the column's own length check then
    refuses the row, as a single-row INSERT does (an explicit cast would cut it)."""
    if db.vendor != "postgresql":
        pytest.skip("SQLite does not enforce a varchar length")
    from dorm.exceptions import DataError

    with pytest.raises(DataError, match=r"character varying\(3\)"):
        Label.objects.bulk_create([Label(code="abc"), Label(code="abcdef")])
    with pytest.raises(DataError, match=r"character varying\(3\)"):
        Label.objects.create(code="abcdef")
    assert Label.objects.count() == 0


def test_a_string_holding_nul_splits_nothing(db) -> None:
    """NUL joins the strings of the array text, so a value holding one must not become
    two elements: PostgreSQL refuses it (its text cannot hold NUL) and nothing is
    written; SQLite stores it."""
    from dorm.exceptions import DataError

    labels = [Label(text="a\x00b"), Label(text="c")]
    if db.vendor == "postgresql":
        with pytest.raises(DataError, match="NUL"):
            Label.objects.bulk_create(labels)
        assert Label.objects.count() == 0
    else:
        Label.objects.bulk_create(labels)
        assert sorted(Label.objects.values_list("text", flat=True)) == ["a\x00b", "c"]


def test_async_bulk_create_sends_lists_to_asyncpg(db) -> None:
    """asyncpg types array parameters from the statement and takes lists: the async API
    gets the same rows back."""
    import asyncio

    labels = [Label(text=t, n=i) for i, t in enumerate(HOSTILE)]

    async def main() -> list[Label]:
        return await Label.objects.abulk_create(labels)

    made = asyncio.run(main())
    got = dict(Label.objects.values_list("pk", "text"))
    assert [got[label.pk] for label in made] == HOSTILE


# --- create() / save() of one new row ---------------------------------------------------------


def test_create_reads_its_key_without_returning_on_sqlite_and_with_it_on_postgresql(db) -> None:
    with CaptureQueriesContext() as ctx:
        made = [Item.objects.create(sku=f"one-{i}", qty=i) for i in range(3)]
    inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3
    if db.vendor == "sqlite":
        assert not any("RETURNING" in sql for sql in inserts)
    else:
        assert all(sql.endswith('RETURNING "id"') for sql in inserts)
    _keys_match(made)
    assert [Item.objects.get(pk=m.pk).qty for m in made] == [0, 1, 2]


def test_create_key_is_its_own_row_when_a_trigger_inserts_into_the_table(db) -> None:
    """SQLite reports the outer INSERT's rowid once a trigger's own inserts are done."""
    _sqlite_only(db)
    from dorm.db.connection import connections

    table = Item._meta.db_table
    conn = connections["default"]
    conn.execute(
        f"CREATE TRIGGER t_one_echo AFTER INSERT ON \"{table}\" WHEN NEW.sku LIKE 'o%' "
        f"BEGIN INSERT INTO \"{table}\" (sku, token) VALUES ('echo-' || NEW.sku, ''); END"
    )
    try:
        made = [Item.objects.create(sku=f"o{i}") for i in range(4)]
        _keys_match(made)
        assert Item.objects.filter(sku__startswith="echo-").count() == 4
    finally:
        conn.execute("DROP TRIGGER t_one_echo")


class Legacy(dorm.Model):
    name = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_bulk_insert"
        db_table = "t_bulk_legacy"
        managed = False


def test_create_on_a_table_whose_key_is_not_the_rowid_reads_it_back(db) -> None:
    """A table made elsewhere with a key that is not SQLite's rowid (a BIGINT key filled
    by a trigger): create() asks for the key with RETURNING, and after the schema editor
    changes the table, the next create() checks again."""
    _sqlite_only(db)
    from dorm.db.connection import connections
    from dorm.migrations.schema import SchemaEditor

    conn = connections["default"]
    conn.execute('CREATE TABLE "t_bulk_legacy" ("id" bigint PRIMARY KEY, "name" text)')
    conn.execute(
        'CREATE TRIGGER t_bulk_legacy_key AFTER INSERT ON "t_bulk_legacy" WHEN NEW.id IS NULL '
        'BEGIN UPDATE "t_bulk_legacy" SET "id" = NEW.rowid * 1000 WHERE rowid = NEW.rowid; END'
    )
    try:
        with CaptureQueriesContext() as ctx:
            first = Legacy.objects.create(name="a")
        assert any("RETURNING" in q["sql"] for q in ctx.captured_queries)
        assert first.pk is None or first.pk != 1  # never the rowid taken for the key
        assert conn.fetchall('SELECT "id" FROM "t_bulk_legacy"') == [(1000,)]
        with SchemaEditor() as editor:
            editor.delete_model(Legacy)
            editor.create_model(Legacy)
        with CaptureQueriesContext() as ctx:
            second = Legacy.objects.create(name="b")
        assert not any("RETURNING" in q["sql"] for q in ctx.captured_queries)
        assert Legacy.objects.get(pk=second.pk).name == "b"
    finally:
        conn.execute('DROP TABLE IF EXISTS "t_bulk_legacy"')
