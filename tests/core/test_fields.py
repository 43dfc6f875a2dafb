"""Scalar fields on both backends: round trips with exact types, column types, defaults, errors."""

from __future__ import annotations

import datetime
import decimal
import itertools
import json
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest

import dorm
from dorm.db.connection import get_connection
from dorm.exceptions import IntegrityError, ValidationError
from dorm.test import assertNumQueries

APP = "t_fields"
UTC = datetime.UTC
PARIS = datetime.timezone(datetime.timedelta(hours=2))


class Every(dorm.Model):
    """One nullable column of every scalar field type."""

    big = dorm.BigIntegerField(null=True, blank=True)
    small = dorm.SmallIntegerField(null=True, blank=True)
    pos = dorm.PositiveIntegerField(null=True, blank=True)
    integer = dorm.IntegerField(null=True, blank=True)
    flt = dorm.FloatField(null=True, blank=True)
    dec = dorm.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    wide = dorm.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    flag = dorm.BooleanField(null=True, blank=True)
    day = dorm.DateField(null=True, blank=True)
    moment = dorm.DateTimeField(null=True, blank=True)
    clock = dorm.TimeField(null=True, blank=True)
    span = dorm.DurationField(null=True, blank=True)
    char = dorm.CharField(max_length=20, null=True, blank=True)
    text = dorm.TextField(null=True, blank=True)
    email = dorm.EmailField(null=True, blank=True)
    url = dorm.URLField(null=True, blank=True)
    slug = dorm.SlugField(null=True, blank=True)
    uid = dorm.UUIDField(null=True, blank=True)
    data = dorm.JSONField(null=True, blank=True)
    blob = dorm.BinaryField(null=True, blank=True)
    ip = dorm.GenericIPAddressField(null=True, blank=True)

    class Meta:
        app_label = APP


class SmallPk(dorm.Model):
    id = dorm.AutoField(primary_key=True)
    name = dorm.CharField(max_length=10)

    class Meta:
        app_label = APP


class Token(dorm.Model):
    id = dorm.UUIDField(primary_key=True)
    name = dorm.CharField(max_length=10, default="t")

    class Meta:
        app_label = APP


class Event(dorm.Model):
    id = dorm.UUIDField(primary_key=True, version=7)
    seq = dorm.IntegerField()

    class Meta:
        app_label = APP


_counter = itertools.count(1)


def next_number() -> int:
    return next(_counter)


class Defaults(dorm.Model):
    tags = dorm.JSONField(default=list)
    ref = dorm.UUIDField(default=uuid.uuid4)
    number = dorm.IntegerField(default=next_number)
    title = dorm.CharField(max_length=20, default="untitled")
    body = dorm.TextField(blank=True)
    blob = dorm.BinaryField(blank=True)
    created = dorm.DateTimeField(auto_now_add=True)
    updated = dorm.DateTimeField(auto_now=True)
    kind = dorm.CharField(
        max_length=2,
        choices=[("bk", "Book"), ("Media", [("cd", "Compact disc"), ("dv", "DVD")])],
        default="bk",
    )
    code = dorm.SlugField(unique=True, null=True, blank=True, db_column="code_col")
    size = dorm.PositiveIntegerField(default=1)

    class Meta:
        app_label = APP


MODELS = [Every, SmallPk, Token, Event, Defaults]
pytestmark = pytest.mark.usefixtures("clean_tables")


def raw_row(sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    conn = get_connection()
    return conn.fetchone(sql.replace("%s", conn.ops.placeholder), params)


# -- round trips ---------------------------------------------------------------------------------

ROUND_TRIPS: list[tuple[str, Any, Any, type]] = [
    ("big", 2**62 + 7, 2**62 + 7, int),
    ("big", -(2**63), -(2**63), int),
    ("small", -32768, -32768, int),
    ("pos", 2**31 - 1, 2**31 - 1, int),
    ("integer", "42", 42, int),
    ("flt", 1.25, 1.25, float),
    ("flt", "2.5", 2.5, float),
    ("dec", Decimal("3.5"), Decimal("3.500"), Decimal),
    ("dec", "1234567.891", Decimal("1234567.891"), Decimal),
    ("dec", 0.1, Decimal("0.100"), Decimal),
    ("dec", -2, Decimal("-2.000"), Decimal),
    ("wide", "12345.0123456789", Decimal("12345.0123456789"), Decimal),
    ("flag", True, True, bool),
    ("flag", False, False, bool),
    ("flag", "no", False, bool),
    ("day", datetime.date(2024, 2, 29), datetime.date(2024, 2, 29), datetime.date),
    ("day", "1999-12-31", datetime.date(1999, 12, 31), datetime.date),
    (
        "moment",
        datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        datetime.datetime,
    ),
    (
        "moment",
        datetime.datetime(2024, 5, 6, 7, 8, 9),
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        datetime.datetime,
    ),
    (
        "moment",
        datetime.datetime(2024, 1, 1, 1, 30, tzinfo=PARIS),
        datetime.datetime(2023, 12, 31, 23, 30, tzinfo=UTC),
        datetime.datetime,
    ),
    (
        "moment",
        "2024-03-04T05:06:07+01:00",
        datetime.datetime(2024, 3, 4, 4, 6, 7, tzinfo=UTC),
        datetime.datetime,
    ),
    ("clock", datetime.time(13, 45, 1, 123456), datetime.time(13, 45, 1, 123456), datetime.time),
    ("clock", "08:30", datetime.time(8, 30), datetime.time),
    (
        "span",
        datetime.timedelta(days=3, seconds=7, microseconds=5),
        datetime.timedelta(days=3, seconds=7, microseconds=5),
        datetime.timedelta,
    ),
    (
        "span",
        datetime.timedelta(days=-1, seconds=5),
        datetime.timedelta(days=-1, seconds=5),
        datetime.timedelta,
    ),
    ("char", "héllo wörld ✓", "héllo wörld ✓", str),
    ("char", 12, "12", str),
    ("text", "line\nbreak " * 1000, "line\nbreak " * 1000, str),
    ("email", "ada@example.com", "ada@example.com", str),
    ("url", "https://example.com/a?b=c", "https://example.com/a?b=c", str),
    ("slug", "a-slug_1", "a-slug_1", str),
    (
        "uid",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        uuid.UUID,
    ),
    (
        "uid",
        "12345678123456781234567812345678",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        uuid.UUID,
    ),
    (
        "data",
        {"a": [1, 2.5, None, True], "b": {"c": "ü"}},
        {"a": [1, 2.5, None, True], "b": {"c": "ü"}},
        dict,
    ),
    ("data", [1, "two", {"three": 3}], [1, "two", {"three": 3}], list),
    ("data", "just a string", "just a string", str),
    ("data", 7, 7, int),
    ("blob", b"\x00\x01\xffbinary", b"\x00\x01\xffbinary", bytes),
    ("blob", bytearray(b"ab"), b"ab", bytes),
    ("ip", "192.168.0.1", "192.168.0.1", str),
    ("ip", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", str),
]


@pytest.mark.parametrize(
    ("name", "value", "expected", "kind"),
    ROUND_TRIPS,
    ids=[f"{r[0]}-{i}" for i, r in enumerate(ROUND_TRIPS)],
)
def test_round_trip_exact_type(db, name: str, value: Any, expected: Any, kind: type) -> None:
    obj = Every.objects.create(**{name: value})
    fetched = getattr(Every.objects.get(pk=obj.pk), name)
    assert type(fetched) is kind
    assert fetched == expected
    (via_values,) = Every.objects.filter(pk=obj.pk).values_list(name, flat=True)
    assert type(via_values) is kind and via_values == expected
    obj.refresh_from_db()
    assert type(getattr(obj, name)) is kind and getattr(obj, name) == expected
    if kind is Decimal:
        places = Every._meta.get_field(name).decimal_places
        assert fetched.as_tuple().exponent == -places
    if kind is datetime.datetime:
        assert fetched.tzinfo == UTC
    # Every other column stays NULL.
    others = [f.name for f in Every._meta.concrete_fields if f.name not in ("id", name)]
    assert set(Every.objects.filter(pk=obj.pk).values_list(*others).get()) == {None}


def test_all_null_round_trip(db) -> None:
    obj = Every.objects.create()
    fetched = Every.objects.get(pk=obj.pk)
    for field in Every._meta.concrete_fields:
        if not field.primary_key:
            assert getattr(fetched, field.name) is None, field.name


def test_filter_by_converted_values(db) -> None:
    when = datetime.datetime(2024, 1, 1, 12, tzinfo=UTC)
    obj = Every.objects.create(
        dec=Decimal("1.5"), moment=when, uid=uuid.UUID(int=5), day=datetime.date(2024, 1, 1)
    )
    assert Every.objects.get(dec="1.500").pk == obj.pk
    assert Every.objects.get(moment=datetime.datetime(2024, 1, 1, 14, tzinfo=PARIS)).pk == obj.pk
    assert Every.objects.get(moment=datetime.datetime(2024, 1, 1, 12)).pk == obj.pk
    assert Every.objects.filter(moment__gt=datetime.datetime(2024, 1, 1, 13, tzinfo=PARIS)).count()
    assert Every.objects.get(uid=str(uuid.UUID(int=5))).pk == obj.pk
    assert Every.objects.filter(moment__year=2024, day__month=1).count() == 1


def test_json_field_key_order_and_nesting_survive(db) -> None:
    doc = {"z": 1, "nested": {"list": [[], {}], "empty": ""}, "unicode": "日本"}
    obj = Every.objects.create(data=doc)
    assert Every.objects.get(pk=obj.pk).data == doc
    with pytest.raises(ValidationError, match="data"):
        Every.objects.create(data={"bad": {1, 2}})


def test_decimal_quantized_to_declared_places(db) -> None:
    obj = Every.objects.create(dec=Decimal("7"))
    assert str(Every.objects.get(pk=obj.pk).dec) == "7.000"
    with pytest.raises(ValidationError) as info:
        Every(dec=Decimal("1.2345")).full_clean()
    assert "more than 3 decimal places" in info.value.message_dict["dec"][0]
    with pytest.raises(ValidationError) as info:
        Every(dec=Decimal("12345678.9")).full_clean()
    assert "more than 10 digits" in info.value.message_dict["dec"][0]
    Every(dec=Decimal("1234567.891")).full_clean()
    with pytest.raises(ValidationError) as info:
        Every(dec=Decimal("1e40")).full_clean()
    assert "more than 10 digits" in info.value.message_dict["dec"][0]
    with pytest.raises(ValidationError) as info:
        Every(wide=Decimal("1e20")).full_clean()
    assert "more than 30 digits" in info.value.message_dict["wide"][0]
    Every(wide=Decimal("12345678901234567890.0123456789")).full_clean()


def test_decimal_wider_than_default_context(db) -> None:
    # 30 significant digits: more than decimal's default 28-digit context.
    value = Decimal("12345678901234567890.0123456789")
    obj = Every.objects.create(wide=value)
    fetched = Every.objects.get(pk=obj.pk).wide
    assert type(fetched) is Decimal and fetched.as_tuple().exponent == -10
    if db.vendor == "postgresql":
        assert fetched == value
    else:  # SQLite keeps 15 significant digits of a NUMERIC value (as with Django)
        assert abs(fetched - value) < Decimal("1e6")


# -- column types ----------------------------------------------------------------------------------


def test_postgresql_native_column_types(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("information_schema types are PostgreSQL's")
    rows = get_connection().fetchall(
        "SELECT column_name, data_type, numeric_precision, numeric_scale, "
        "character_maximum_length FROM information_schema.columns WHERE table_name = %s",
        ("t_fields_every",),
    )
    types = {r[0]: r[1] for r in rows}
    assert types == {
        "id": "bigint",
        "big": "bigint",
        "small": "smallint",
        "pos": "integer",
        "integer": "integer",
        "flt": "double precision",
        "dec": "numeric",
        "wide": "numeric",
        "flag": "boolean",
        "day": "date",
        "moment": "timestamp with time zone",
        "clock": "time without time zone",
        "span": "interval",
        "char": "character varying",
        "text": "text",
        "email": "character varying",
        "url": "character varying",
        "slug": "character varying",
        "uid": "uuid",
        "data": "jsonb",
        "blob": "bytea",
        "ip": "inet",
    }
    detail = {r[0]: r[2:] for r in rows}
    assert detail["dec"][:2] == (10, 3) and detail["wide"][:2] == (30, 10)
    assert detail["char"][2] == 20 and detail["email"][2] == 254 and detail["url"][2] == 200
    assert detail["slug"][2] == 50
    small = get_connection().fetchall(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = %s AND column_name = 'id'",
        ("t_fields_smallpk",),
    )
    assert small == [("integer",)]


def test_sqlite_stored_representations(db) -> None:
    if db.vendor != "sqlite":
        pytest.skip("raw storage format of SQLite")
    obj = Every.objects.create(
        moment=datetime.datetime(2024, 1, 2, 5, 4, 5, 6, tzinfo=PARIS),
        day=datetime.date(2024, 1, 2),
        dec=Decimal("1.5"),
        uid=uuid.UUID(int=255),
        data={"a": 1},
        flag=True,
        span=datetime.timedelta(seconds=1, microseconds=2),
        blob=b"\x00",
        ip="::1",
    )
    row = raw_row(
        'SELECT "moment", "day", "uid", "data", "flag", "span", "blob", "ip", '
        'typeof("moment"), typeof("blob") FROM "t_fields_every" WHERE "id" = %s',
        (obj.pk,),
    )
    assert row == (
        "2024-01-02 03:04:05.000006",
        "2024-01-02",
        "000000000000000000000000000000ff",
        '{"a": 1}',
        1,
        1_000_002,
        b"\x00",
        "::1",
        "text",
        "blob",
    )
    # Naive datetimes are stored as given (UTC) in the same fixed-width format.
    naive = Every.objects.create(moment=datetime.datetime(2024, 1, 2, 3, 4, 5))
    assert raw_row('SELECT "moment" FROM "t_fields_every" WHERE "id" = %s', (naive.pk,)) == (
        "2024-01-02 03:04:05.000000",
    )
    # Text order is time order.
    assert list(Every.objects.order_by("moment").values_list("pk", flat=True)) == [
        naive.pk,
        obj.pk,
    ]


# -- auto and uuid primary keys --------------------------------------------------------------


def test_auto_fields(db) -> None:
    a, b = SmallPk.objects.create(name="a"), SmallPk.objects.create(name="b")
    assert type(a.pk) is int and b.pk > a.pk
    assert isinstance(SmallPk._meta.pk, dorm.AutoField)
    assert not isinstance(SmallPk._meta.pk, dorm.BigAutoField)
    assert isinstance(Every._meta.pk, dorm.BigAutoField)
    assert SmallPk.objects.get(pk=b.pk).name == "b"
    # Explicit values are accepted and the sequence is not confused by them on insert order.
    SmallPk.objects.create(id=1000, name="c")
    assert SmallPk.objects.get(pk=1000).name == "c"


def test_uuid_primary_key_defaults_to_version_4(db) -> None:
    t = Token.objects.create()
    assert isinstance(t.pk, uuid.UUID) and t.pk.version == 4
    fetched = Token.objects.get(pk=t.pk)
    assert type(fetched.pk) is uuid.UUID and fetched.pk == t.pk
    assert Token.objects.get(pk=str(t.pk)).pk == t.pk
    other = Token(name="u")
    assert other.pk is not None and other.pk != t.pk  # generated at construction
    other.save()
    assert Token.objects.count() == 2
    explicit = uuid.UUID(int=1)
    Token.objects.create(id=explicit, name="e")
    assert Token.objects.get(name="e").pk == explicit


def test_uuid7_primary_keys_are_time_ordered_and_strictly_increasing(db) -> None:
    before_ms = datetime.datetime.now(UTC).timestamp() * 1000
    generated = [Event._meta.pk.get_default() for _ in range(3000)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in generated)
    assert all(a < b for a, b in itertools.pairwise(generated))
    assert all(a.bytes < b.bytes for a, b in itertools.pairwise(generated))
    stamp_ms = generated[0].int >> 80
    assert before_ms - 1 <= stamp_ms <= before_ms + 5000
    events = [Event.objects.create(seq=i) for i in range(20)]
    assert all(e.pk.version == 7 for e in events)
    assert list(Event.objects.order_by("id").values_list("seq", flat=True)) == list(range(20))
    assert type(Event.objects.get(seq=3).pk) is uuid.UUID


# -- defaults, choices, null and blank -------------------------------------------------------


def test_callable_defaults_called_per_instance(db) -> None:
    a, b = Defaults.objects.create(code="a"), Defaults.objects.create(code="b")
    assert a.tags == [] and a.tags is not b.tags
    assert a.ref != b.ref and isinstance(a.ref, uuid.UUID)
    assert b.number == a.number + 1
    a.tags.append("x")
    a.save()
    fresh = Defaults.objects.get(pk=a.pk)
    assert fresh.tags == ["x"] and Defaults.objects.get(pk=b.pk).tags == []
    assert fresh.title == "untitled" and fresh.body == "" and fresh.blob == b""
    assert fresh.ref == a.ref and fresh.number == a.number


def test_auto_now_and_auto_now_add(db) -> None:
    start = datetime.datetime.now(UTC)
    obj = Defaults.objects.create(code="c")
    assert obj.created.tzinfo == UTC and start <= obj.created <= datetime.datetime.now(UTC)
    created, updated = obj.created, obj.updated
    obj.title = "changed"
    obj.save()
    fresh = Defaults.objects.get(pk=obj.pk)
    assert fresh.created == created
    assert fresh.updated > updated
    assert not Defaults._meta.get_field("created").editable


def test_choices_display_and_validation(db) -> None:
    obj = Defaults.objects.create(kind="cd", code="d")
    fresh = Defaults.objects.get(pk=obj.pk)
    assert fresh.get_kind_display() == "Compact disc"
    fresh.kind = "bk"
    assert fresh.get_kind_display() == "Book"
    fresh.kind = "xx"
    with pytest.raises(ValidationError) as info:
        fresh.full_clean()
    assert list(info.value.message_dict) == ["kind"]
    assert "'xx' is not a valid choice" in info.value.message_dict["kind"][0]


def test_null_false_rejected_by_database(db) -> None:
    with pytest.raises(IntegrityError):
        Defaults.objects.create(code="n", title=None)
    with pytest.raises(IntegrityError):
        SmallPk.objects.create(name=None)
    assert Defaults.objects.count() == 0 and SmallPk.objects.count() == 0


def test_null_and_blank_validation(db) -> None:
    obj = Defaults(code=None, title="", body="x")
    with pytest.raises(ValidationError) as info:
        obj.full_clean()
    assert set(info.value.message_dict) == {"title"}
    assert "cannot be blank" in info.value.message_dict["title"][0]
    obj.title = None
    with pytest.raises(ValidationError) as info:
        obj.full_clean()
    assert "cannot be null" in info.value.message_dict["title"][0]
    obj.title = "t"
    obj.full_clean()  # code is null=True, blank=True
    assert obj.code is None


def test_unique_field_and_db_column(db) -> None:
    Defaults.objects.create(code="same")
    with pytest.raises(IntegrityError):
        Defaults.objects.create(code="same")
    # Several NULLs do not collide.
    Defaults.objects.create(code=None)
    Defaults.objects.create(code=None)
    assert raw_row('SELECT COUNT(*) FROM "t_fields_defaults" WHERE "code_col" IS NULL') == (2,)
    assert Defaults.objects.filter(code="same").count() == 1
    field = Defaults._meta.get_field("code")
    assert (field.attname, field.column) == ("code", "code_col")


# -- validators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("email", "not-an-email", "is not an email address"),
        ("url", "example.com", "is not a URL"),
        ("slug", "has space", "is not a slug"),
        ("char", "x" * 21, "longer than max_length 20"),
        ("pos", -1, "out of range"),
        ("small", 40000, "out of range"),
        ("integer", 2**31, "out of range"),
        ("big", 2**63, "out of range"),
    ],
)
def test_builtin_validators(db, name: str, value: Any, message: str) -> None:
    obj = Every(**{name: value})
    with pytest.raises(ValidationError) as info:
        obj.full_clean()
    assert list(info.value.message_dict) == [name]
    assert message in info.value.message_dict[name][0]
    assert name in info.value.message_dict[name][0]


def test_positive_integer_check_in_database(db) -> None:
    with pytest.raises(ValidationError, match=r"Every\.pos: -1 is out of range"):
        Every.objects.create(pos=-1)  # refused before the database is asked
    assert Every.objects.count() == 0
    row = Every.objects.create(pos=1)
    conn = get_connection()
    table, column = conn.ops.quote_name(Every._meta.db_table), conn.ops.quote_name("pos")
    with pytest.raises(IntegrityError):  # and the column's CHECK holds for raw SQL too
        conn.execute(f"UPDATE {table} SET {column} = -1", ())
    assert Every.objects.get(pk=row.pk).pos == 1


def test_custom_validators_run_after_builtin(db) -> None:
    def no_root(value: str) -> None:
        if value.startswith("root@"):
            raise ValidationError("root is reserved")

    field = dorm.EmailField(validators=[no_root])
    field.name = "mail"
    with pytest.raises(ValidationError, match="root is reserved"):
        field.clean("root@example.com", None)
    with pytest.raises(ValidationError, match="not an email address"):
        field.clean("root", None)
    assert field.clean("ada@example.com", None) == "ada@example.com"


# -- to_python errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("integer", "abc"),
        ("integer", 1.5),
        ("big", object()),
        ("flt", "one"),
        ("dec", "x1"),
        ("dec", "NaN"),
        ("flag", "maybe"),
        ("day", "2024-13-01"),
        ("moment", "yesterday"),
        ("clock", "25:00"),
        ("span", "long"),
        ("uid", "zzz"),
        ("blob", "text"),
        ("ip", "300.1.1.1"),
    ],
)
def test_to_python_errors_name_the_field(db, name: str, value: Any) -> None:
    field = Every._meta.get_field(name)
    with pytest.raises(ValidationError, match=rf"Every\.{name}: "):
        field.to_python(value)
    with pytest.raises(ValidationError) as info:
        Every(**{name: value}).full_clean()
    assert list(info.value.message_dict) == [name]
    with pytest.raises(ValidationError, match=rf"Every\.{name}"):
        Every.objects.create(**{name: value})
    assert Every.objects.count() == 0


def test_ip_protocol_restriction() -> None:
    v4 = dorm.GenericIPAddressField(protocol="IPv4")
    v4.name = "addr"
    assert v4.to_python(" 10.0.0.1 ") == "10.0.0.1"
    with pytest.raises(ValidationError, match="IPv4"):
        v4.to_python("::1")
    v6 = dorm.GenericIPAddressField(protocol="ipv6")
    v6.name = "addr"
    with pytest.raises(ValidationError, match="IPv6"):
        v6.to_python("10.0.0.1")


# -- bad definitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: dorm.CharField(), "requires max_length"),
        (lambda: dorm.CharField(max_length=0), "max_length must be a positive integer"),
        (lambda: dorm.CharField(max_length="10"), "max_length must be a positive integer"),
        (lambda: dorm.DecimalField(decimal_places=2), "max_digits"),
        (lambda: dorm.DecimalField(max_digits=5), "decimal_places"),
        (lambda: dorm.DecimalField(max_digits=2, decimal_places=3), "exceeds max_digits"),
        (lambda: dorm.DecimalField(max_digits=-1, decimal_places=0), "max_digits"),
        (lambda: dorm.UUIDField(version=5), "version must be 4 or 7"),
        (lambda: dorm.GenericIPAddressField(protocol="ipv5"), "protocol"),
    ],
)
def test_bad_field_definition_is_value_error(factory: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


# -- field API ------------------------------------------------------------------------------------


def test_deconstruct_rebuilds_equivalent_fields() -> None:
    fields = [
        dorm.CharField(max_length=12, null=True, db_index=True, help_text="h"),
        dorm.DecimalField(max_digits=7, decimal_places=2, default=Decimal("1.00")),
        dorm.UUIDField(primary_key=True, version=7),
        dorm.GenericIPAddressField(protocol="ipv4", unique=True),
        dorm.DateTimeField(auto_now_add=True),
        dorm.EmailField(pii=True),
    ]
    for field in fields:
        _name, path, args, kwargs = field.deconstruct()
        assert path == f"dorm.{type(field).__name__}"
        clone = type(field)(*args, **kwargs)
        assert clone.deconstruct()[1:] == (path, args, kwargs)
    assert fields[2].clone().get_default().version == 7
    assert fields[5].deconstruct()[3] == {"max_length": 254, "pii": True}
    assert fields[5].sensitive


def test_field_attributes_kept() -> None:
    field = dorm.IntegerField(
        "Shown name", help_text="help", editable=False, db_index=True, default=3
    )
    assert (field.verbose_name, field.help_text, field.editable, field.db_index) == (
        "Shown name",
        "help",
        False,
        True,
    )
    assert field.has_default() and field.get_default() == 3
    assert dorm.SlugField().db_index and dorm.SlugField().max_length == 50
    assert not dorm.IntegerField().has_default()


def test_save_converts_once_per_value(db) -> None:
    with assertNumQueries(1):
        obj = Every.objects.create(dec="2.5", day="2024-05-05", uid=str(uuid.UUID(int=9)))
    fresh = Every.objects.get(pk=obj.pk)
    assert (fresh.dec, fresh.day, fresh.uid) == (
        Decimal("2.500"),
        datetime.date(2024, 5, 5),
        uuid.UUID(int=9),
    )
    assert decimal.Decimal("2.500") == fresh.dec


class DecimalEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return {"__decimal__": str(o)}
        return super().default(o)


class DecimalDecoder(json.JSONDecoder):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(object_hook=self.hook, **kwargs)

    @staticmethod
    def hook(obj: dict[str, Any]) -> Any:
        return Decimal(obj["__decimal__"]) if set(obj) == {"__decimal__"} else obj


def test_json_string_that_looks_like_json_stays_a_string(db) -> None:
    for text in ("[1, 2]", '{"a": 1}', "null", "42", ""):
        obj = Every.objects.create(data=text)
        assert Every.objects.get(pk=obj.pk).data == text


def test_json_custom_encoder_and_decoder(db) -> None:
    class Doc(dorm.Model):
        doc = dorm.JSONField(encoder=DecimalEncoder, decoder=DecimalDecoder)

        class Meta:
            app_label = "t_fields_doc"

    from dorm.migrations.schema import SchemaEditor

    with SchemaEditor() as editor:
        editor.create_model(Doc)
    try:
        obj = Doc.objects.create(doc={"price": Decimal("1.10"), "n": [Decimal("2")]})
        assert Doc.objects.get(pk=obj.pk).doc == {"price": Decimal("1.10"), "n": [Decimal("2")]}
        assert type(Doc.objects.get(pk=obj.pk).doc["price"]) is Decimal
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(Doc)


def test_db_index_creates_an_index(db) -> None:
    if db.vendor == "sqlite":
        rows = get_connection().fetchall(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
            ("t_fields_every",),
        )
    else:
        rows = get_connection().fetchall(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", ("t_fields_every",)
        )
    definitions = [r[0] or "" for r in rows]
    assert any(re.search(r'\("?slug"?\)', d) for d in definitions)  # SlugField: db_index=True
    assert not any(re.search(r'\("?char"?\)', d) for d in definitions)


def test_datetime_and_date_conversions() -> None:
    field = Every._meta.get_field("moment")
    assert field.to_python(datetime.date(2024, 1, 2)) == datetime.datetime(2024, 1, 2, tzinfo=UTC)
    assert field.to_python("2024-01-02T03:04:05Z") == datetime.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert field.to_python(datetime.datetime(2024, 1, 2, 3, tzinfo=PARIS)).tzinfo == UTC
    day = Every._meta.get_field("day")
    assert day.to_python(datetime.datetime(2024, 1, 2, 23, 0)) == datetime.date(2024, 1, 2)
    # An aware datetime falls on its UTC date (dorm's time zone is UTC).
    assert day.to_python(datetime.datetime(2024, 1, 2, 1, 0, tzinfo=PARIS)) == datetime.date(
        2024, 1, 1
    )
    assert Every._meta.get_field("span").to_python(90) == datetime.timedelta(seconds=90)
    assert Every._meta.get_field("blob").to_python(memoryview(b"xy")) == b"xy"
    assert Every._meta.get_field("flag").to_python(0) is False


def test_postgresql_returns_utc_whatever_the_server_time_zone(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("server time zone is a PostgreSQL setting")
    from dorm.db.connection import reset_connections

    when = datetime.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    obj = Every.objects.create(moment=when)
    db.pg.cluster.admin(f"ALTER DATABASE \"{db.pg.name}\" SET timezone TO 'Asia/Tokyo'")
    reset_connections()
    try:
        fetched = Every.objects.get(pk=obj.pk).moment
        assert fetched == when and fetched.tzinfo == UTC and fetched.hour == 12
        assert Every.objects.filter(moment__day=1, moment__month=6).count() == 1
        assert Every.objects.filter(moment__date=datetime.date(2024, 6, 1)).count() == 1
    finally:
        db.pg.cluster.admin(f'ALTER DATABASE "{db.pg.name}" RESET timezone')
        reset_connections()
