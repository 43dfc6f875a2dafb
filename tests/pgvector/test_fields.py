"""VectorField: validation naming the field, storage per vendor, round trips."""

from __future__ import annotations

import math
import sqlite3
import struct
from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import VectorField
from dorm.exceptions import ValidationError


class Embedded(dorm.Model):
    name = dorm.CharField(max_length=20)
    embedding = VectorField(dimensions=3)
    optional = VectorField(dimensions=2, null=True)

    class Meta:
        app_label = "pgv_fields"


MODELS = [Embedded]


@pytest.fixture
def rows(vdb: Any) -> Any:
    yield vdb
    Embedded.objects.all().delete()


def _stored(backend: Any, pk: int) -> tuple[Any, ...]:
    """The stored column, its type and size, read without dorm."""
    if backend.vendor == "sqlite":
        conn = sqlite3.connect(backend.settings["NAME"])
        try:
            row = conn.execute(
                'SELECT embedding, typeof(embedding) FROM "pgv_fields_embedded" WHERE id = ?',
                (pk,),
            ).fetchone()
        finally:
            conn.close()
        return row[1], struct.unpack("<3f", row[0])
    import psycopg

    with psycopg.connect(backend.dsn) as conn:
        row = conn.execute(
            "SELECT embedding::text, format_type(a.atttypid, a.atttypmod) "
            'FROM "pgv_fields_embedded" e, pg_attribute a '
            "WHERE a.attrelid = 'pgv_fields_embedded'::regclass AND a.attname = 'embedding' "
            "AND e.id = %s",
            [pk],
        ).fetchone()
    assert row is not None
    return row[1], tuple(float(x) for x in row[0].strip("[]").split(","))


def test_round_trip_and_storage(rows: Any) -> None:
    obj = Embedded.objects.create(name="a", embedding=[0.1, -2.5, 3])
    kind, stored = _stored(rows, obj.pk)
    assert kind == ("blob" if rows.vendor == "sqlite" else "vector(3)")
    assert stored == pytest.approx((0.1, -2.5, 3.0), rel=1e-6)
    loaded = Embedded.objects.get(pk=obj.pk)
    # float32 on both sides: what was assigned is what reads back, exactly.
    assert (
        loaded.embedding
        == obj.embedding
        == [struct.unpack("<f", struct.pack("<f", 0.1))[0], -2.5, 3.0]
    )
    assert loaded.optional is None


def test_filter_by_exact_vector_and_update(rows: Any) -> None:
    a = Embedded.objects.create(name="a", embedding=[1, 2, 3])
    Embedded.objects.create(name="b", embedding=[3, 2, 1])
    assert [o.name for o in Embedded.objects.filter(embedding=[1.0, 2.0, 3.0])] == ["a"]
    Embedded.objects.filter(pk=a.pk).update(embedding=(4, 5, 6), optional=[0.5, 0.25])
    a.refresh_from_db()
    assert (a.embedding, a.optional) == ([4.0, 5.0, 6.0], [0.5, 0.25])


def test_numpy_arrays_are_accepted(rows: Any) -> None:
    np = pytest.importorskip("numpy")
    obj = Embedded.objects.create(name="np", embedding=np.array([1.5, 2.5, 3.5], dtype=np.float32))
    assert Embedded.objects.get(pk=obj.pk).embedding == [1.5, 2.5, 3.5]
    with pytest.raises(ValidationError, match=r"Embedded.embedding: expected 3 dimensions, got 4"):
        Embedded(name="x", embedding=np.zeros(4))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1.0, 2.0], r"Embedded\.embedding: expected 3 dimensions, got 2"),
        ([1.0, 2.0, 3.0, 4.0], r"Embedded\.embedding: expected 3 dimensions, got 4"),
        ([1.0, math.nan, 3.0], r"Embedded\.embedding: element 1 is nan; vectors hold finite"),
        ([1.0, 2.0, math.inf], r"Embedded\.embedding: element 2 is inf"),
        ([1.0, "2", 3.0], r"Embedded\.embedding: element 1 is '2', not a number"),
        ([True, 2.0, 3.0], r"Embedded\.embedding: element 0 is True, not a number"),
        ((1.0, 2.0, False), r"Embedded\.embedding: element 2 is False, not a number"),
        ((1.0, -math.inf, 3.0), r"Embedded\.embedding: element 1 is -inf; vectors hold finite"),
        ([3e38, 2.0, math.nan], r"Embedded\.embedding: element 2 is nan; vectors hold finite"),
        ([1e39, 2.0, 3.0], r"Embedded\.embedding: an element is out of float32 range"),
        ("[1,2", r"Embedded\.embedding: '\[1,2' is not a vector"),
        (42, r"Embedded\.embedding: expected a list of floats, got int"),
    ],
)
def test_bad_values_raise_validation_error_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Embedded(name="x", embedding=value)
    obj = Embedded(name="x", embedding=[0, 0, 0])
    with pytest.raises(ValidationError, match=message):
        obj.embedding = value


def test_large_finite_values_and_ints_are_kept(rows: Any) -> None:
    """Values whose float32 exponent is 0xFE (the high byte a non-finite value has too)
    pass validation; ints and tuples are taken as floats."""
    big = [3.0e38, -3.0e38, 1.7e38]
    obj = Embedded.objects.create(name="big", embedding=big, optional=(1, -2))
    kind, stored = _stored(rows, obj.pk)
    assert stored == pytest.approx(big, rel=1e-6)
    loaded = Embedded.objects.get(pk=obj.pk)
    assert loaded.embedding == list(struct.unpack("<3f", struct.pack("<3f", *big)))
    assert loaded.optional == [1.0, -2.0]


def test_bad_value_is_refused_before_any_sql(rows: Any) -> None:
    with pytest.raises(ValidationError, match=r"Embedded\.embedding: expected 3 dimensions"):
        Embedded.objects.filter(name="a").update(embedding=[1.0])
    with pytest.raises(ValidationError, match=r"Embedded\.optional: expected 2 dimensions"):
        Embedded.objects.create(name="b", embedding=[1, 2, 3], optional=[1, 2, 3])
    assert Embedded.objects.count() == 0


def test_declaration_errors() -> None:
    with pytest.raises(ValueError, match="dimensions must be between 1 and 16000, got 0"):
        VectorField(dimensions=0)
    with pytest.raises(TypeError, match="dimensions must be an int, got '3'"):
        VectorField(dimensions="3")  # type: ignore[arg-type]


def test_deconstruct_rebuilds_the_field() -> None:
    field = Embedded._meta.get_field("optional")
    name, path, args, kwargs = field.deconstruct()
    assert (name, path, kwargs) == (
        "optional",
        "dorm.contrib.pgvector.VectorField",
        {"null": True, "dimensions": 2},
    )
    clone = VectorField(*args, **kwargs)
    assert clone.dimensions == 2 and clone.null


def test_each_driver_gets_the_vector_in_its_own_form(rows: Any, monkeypatch: Any) -> None:
    """psycopg gets pgvector's binary form (no text printed, none parsed by the server),
    sqlite3 the float32 blob; what the server sees is the same vector either way."""
    from dorm.contrib.pgvector import L2Distance
    from dorm.contrib.pgvector.fields import VectorParam

    sent: list[bytes] = []
    binary = VectorParam.binary

    def spy(self: VectorParam) -> bytes:
        sent.append(binary(self))
        return sent[-1]

    monkeypatch.setattr(VectorParam, "binary", spy)
    Embedded.objects.create(name="a", embedding=[1, 2, 3])
    Embedded.objects.create(name="b", embedding=[3, 2, 1.5])
    near = Embedded.objects.order_by(L2Distance("embedding", [3, 2, 1])).first()
    assert near is not None and near.name == "b"
    _kind, stored = _stored(rows, near.pk)
    assert stored == (3.0, 2.0, 1.5)
    if rows.vendor == "postgresql":
        # The create's INSERT and the query's parameter, each dims, 0, big-endian floats.
        assert struct.pack(">HH3f", 3, 0, 3, 2, 1) in sent
        assert struct.pack(">HH3f", 3, 0, 3, 2, 1.5) in sent
    else:
        assert sent == []


def test_a_vector_default_fills_existing_rows_when_the_column_is_added(rows: Any) -> None:
    """A default in DDL is written as a literal: pgvector's text on PostgreSQL, the blob
    on SQLite (X'...'), and reads back as the vector."""
    from dorm.db.connection import connections
    from dorm.migrations.schema import SchemaEditor, bind_field

    Embedded.objects.create(name="old", embedding=[1, 2, 3])
    field = bind_field(Embedded, "extra", VectorField(dimensions=2, default=[0.5, -1]))
    with SchemaEditor() as editor:
        editor.add_field(Embedded, field)
    try:
        (stored,) = connections["default"].fetchone(
            'SELECT "extra" FROM "pgv_fields_embedded" WHERE name = %s'.replace(
                "%s", connections["default"].ops.placeholder
            ),
            ["old"],
        )
        assert field.from_db_value(stored) == [0.5, -1.0]
        assert isinstance(stored, bytes if rows.vendor == "sqlite" else str)
    finally:
        with SchemaEditor() as editor:
            editor.remove_field(Embedded, field)
