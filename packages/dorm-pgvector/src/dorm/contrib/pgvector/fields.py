"""VectorField (pgvector's ``vector(N)``, a float32 blob on SQLite) and SearchVectorField.

A vector value is a list of floats rounded to float32, the precision pgvector and the
SQLite blob both keep, so a saved vector reads back equal to the assigned one. Bound
values are ``VectorParam`` objects: a ``str`` in pgvector's text form (``[1,2,3]``) for
PostgreSQL drivers, which SQLite's driver turns into the blob through ``__conform__``.
"""

from __future__ import annotations

import array
import functools
import math
import numbers
import re
import sqlite3
import struct
import sys
from collections.abc import Sequence
from operator import countOf
from typing import Any

from dorm.exceptions import ValidationError
from dorm.models.fields import Field, ValidatedAttribute

__all__ = [
    "MAX_DIMENSIONS",
    "SearchVectorField",
    "VectorField",
    "VectorParam",
    "decode_blob",
    "decode_wire",
]

#: pgvector's limit for a ``vector`` column.
MAX_DIMENSIONS = 16000
_PUBLIC = "dorm.contrib.pgvector"
_CONFIG = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@functools.lru_cache(maxsize=64)
def _text_format(n: int) -> str:
    # Nine significant digits round-trip every float32, and one %-format of the whole
    # vector is several times faster than repr() of each element.
    return "[" + ",".join(["%.9g"] * n) + "]"


class VectorParam:
    """A bound vector, validated, as float32 little-endian bytes (``blob``).

    Each driver gets the form it takes best: sqlite3 the blob (``__conform__``), psycopg
    pgvector's binary wire form (``binary()``, through a dumper dorm-pgvector registers
    on each connection), asyncpg and SQL literals the text form ``[1,2,3]``
    (``str()``), which is built only when asked for.
    """

    __slots__ = ("_text", "blob")

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self._text: str | None = None

    @property
    def values(self) -> list[float]:
        return list(struct.unpack(f"<{len(self.blob) // 4}f", self.blob))

    def binary(self) -> bytes:
        """pgvector's binary form: dimensions and a zero (int16 each), then big-endian
        float32 values."""
        swapped = array.array("f", self.blob)
        if sys.byteorder == "little":
            swapped.byteswap()
        return struct.pack(">HH", len(swapped), 0) + swapped.tobytes()

    def __str__(self) -> str:
        if self._text is None:
            values = self.values
            self._text = _text_format(len(values)) % tuple(values)
        return self._text

    def __repr__(self) -> str:
        return f"VectorParam({str(self)[:60]}{'...' if len(str(self)) > 60 else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VectorParam) and other.blob == self.blob

    def __hash__(self) -> int:
        return hash(self.blob)

    def __sql_literal__(self, vendor: str) -> str:
        """The value as an SQL literal for DDL (a column default, a CHECK)."""
        if vendor == "sqlite":
            return f"X'{self.blob.hex()}'"
        return f"'{self}'"

    def __conform__(self, protocol: Any) -> Any:
        # sqlite3 asks objects it cannot bind as they are.
        if protocol is sqlite3.PrepareProtocol:
            return self.blob
        return None


_dumpers: tuple[type, type] | None = None


def register_driver_adapters(connection: Any, is_async: bool) -> None:
    """Teach a new PostgreSQL connection of dorm's to send ``VectorParam`` values.

    psycopg gets a binary dumper: pgvector's wire form, about 3 µs for 384 dimensions
    where the text form costs the client 70 µs to print and the server time to parse. The
    dumper has no type OID (the statement gives the type: ``CAST(%s AS vector)`` or the
    column written), so it works before ``CREATE EXTENSION vector`` has run. asyncpg has
    no codec for ``vector``: it gets the text form.
    """
    global _dumpers
    if is_async:
        from dorm.db.backends.postgresql_async import register_text_param

        register_text_param(VectorParam)
        return
    adapters = getattr(connection, "adapters", None)
    if adapters is None:  # not a psycopg connection
        return
    if _dumpers is None:
        from psycopg import pq
        from psycopg.adapt import Dumper

        class VectorTextDumper(Dumper):
            # For arrays of vectors (bulk_create's unnest), which psycopg sends as text.
            format = pq.Format.TEXT

            def dump(self, obj: Any) -> bytes:
                return str(obj).encode("ascii")

        class VectorBinaryDumper(Dumper):
            format = pq.Format.BINARY

            def dump(self, obj: Any) -> bytes:
                return obj.binary()  # type: ignore[no-any-return]

        _dumpers = (VectorTextDumper, VectorBinaryDumper)
    for dumper in _dumpers:  # the last one registered serves %s
        adapters.register_dumper(VectorParam, dumper)


def decode_blob(blob: bytes) -> list[float]:
    """The floats of a float32 little-endian blob (SQLite storage, sqlite-vec's format)."""
    if len(blob) % 4:
        raise ValueError(f"a vector blob has a multiple of 4 bytes, got {len(blob)}")
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def decode_wire(data: bytes) -> list[float]:
    """The floats of pgvector's binary form (``vector_send``): dimensions and a zero
    (big-endian int16 each), then big-endian float32 values."""
    dimensions = int.from_bytes(data[:2], "big")
    return list(struct.unpack_from(f">{dimensions}f", data, 4))


def _parse_text(text: str) -> list[float]:
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError("not in the form [1,2,3]")
    inner = body[1:-1]
    return list(map(float, inner.split(","))) if inner.strip() else []


class _VectorAttribute(ValidatedAttribute):
    """Assignments and constructor arguments are validated at once (see ValidatedAttribute)."""

    converts_on_init = True


class VectorField(Field):
    """``VectorField(dimensions=384)``: a fixed-length vector of floats.

    Accepts a list or tuple of numbers, a one-dimensional numpy array, pgvector's text
    form, or the float32 blob; holds a list of floats rounded to float32. A value of the
    wrong length, with a non-finite element, or out of float32's range raises
    ValidationError naming the field.
    """

    internal_type = "VectorField"
    descriptor_class = _VectorAttribute

    def __init__(self, *args: Any, dimensions: int, **kwargs: Any) -> None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int):
            raise TypeError(f"VectorField: dimensions must be an int, got {dimensions!r}")
        if not 1 <= dimensions <= MAX_DIMENSIONS:
            raise ValueError(
                f"VectorField: dimensions must be between 1 and {MAX_DIMENSIONS}, got {dimensions}"
            )
        self.dimensions = dimensions
        super().__init__(*args, **kwargs)

    def _where(self) -> str:
        if self.model is not None:
            return f"{self.model.__name__}.{self.name}"
        return self.name or "VectorField"

    def _fail(self, detail: str) -> ValidationError:
        return ValidationError(f"{self._where()}: {detail}", code="invalid")

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        blob = self._blob(value)
        return list(struct.unpack(f"<{len(blob) // 4}f", blob))

    def get_prep_value(self, value: Any) -> Any:
        if value is None or type(value) is VectorParam:
            return value
        return VectorParam(self._blob(value))

    def _items(self, value: Any) -> list[Any]:
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                return decode_blob(bytes(value))
            except ValueError as exc:
                raise self._fail(str(exc)) from None
        if isinstance(value, str):
            try:
                return _parse_text(value)
            except ValueError:
                raise self._fail(
                    f"{value[:40]!r} is not a vector (expected a list of floats)"
                ) from None
        if hasattr(value, "tolist") and getattr(value, "ndim", 1) == 1:
            return value.tolist()  # type: ignore[no-any-return]  # a numpy array
        if isinstance(value, Sequence) or hasattr(value, "__iter__"):
            return list(value)
        raise self._fail(f"expected a list of floats, got {type(value).__name__}")

    def _blob(self, value: Any) -> bytes:
        """The float32 little-endian bytes of ``value``; ValidationError when it is not a
        vector of this field's dimensions with finite float32 values."""
        kind = type(value)
        # A list or tuple is read as it is: struct takes it without a copy.
        items = value if kind is list or kind is tuple else self._items(value)
        n = len(items)
        if n != self.dimensions:
            raise self._fail(f"expected {self.dimensions} dimensions, got {n}")
        # The common cases are checked per type, not per element: all floats in one
        # counting pass (a third cheaper than building the set of types), then floats
        # and ints.
        if countOf(map(type, items), float) != n and not set(map(type, items)) <= {float, int}:
            for i, item in enumerate(items):
                if isinstance(item, bool) or not isinstance(item, numbers.Real):
                    raise self._fail(f"element {i} is {item!r}, not a number")
        try:
            blob = struct.pack(f"<{n}f", *items)
        except OverflowError:
            raise self._fail("an element is out of float32 range (about ±3.4e38)") from None
        # A non-finite float32 has all eight exponent bits set: its last byte (little
        # endian) is 0x7F or 0xFF, which two byte searches find without reading the
        # values again (large finite values match too, and are looked at one by one).
        high = blob[3::4]
        if (0x7F in high or 0xFF in high) and not all(map(math.isfinite, items)):
            for i, item in enumerate(items):
                if not math.isfinite(item):
                    raise self._fail(f"element {i} is {item!r}; vectors hold finite values only")
        return blob

    def from_db_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray, memoryview)):
            return decode_blob(bytes(value))
        # PostgreSQL prints float4 in its shortest form ("0.1"): round back to float32.
        items = _parse_text(value) if isinstance(value, str) else list(map(float, value))
        n = len(items)
        return list(struct.unpack(f"<{n}f", struct.pack(f"<{n}f", *items)))

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        kwargs["dimensions"] = self.dimensions
        return name, f"{_PUBLIC}.VectorField", args, kwargs


class SearchVectorField(Field):
    """A full-text column kept up to date from ``source_fields`` by the database.

    PostgreSQL: a ``tsvector`` column that a trigger sets to
    ``to_tsvector(config, source_fields joined by spaces)`` on every insert and update.
    SQLite: the column stays NULL; an FTS5 table ``<table>_<column>_fts`` (porter
    stemming), kept by triggers, holds the text. Rank with ``TextRank``. The model needs
    an integer primary key on SQLite (the FTS5 rowid).
    """

    internal_type = "SearchVectorField"

    def __init__(
        self, *args: Any, source_fields: Sequence[str], config: str = "english", **kwargs: Any
    ) -> None:
        if isinstance(source_fields, str) or not source_fields:
            raise ValueError("SearchVectorField: source_fields must be a non-empty list of names")
        if not isinstance(config, str) or not _CONFIG.match(config):
            raise ValueError(
                f"SearchVectorField: config must be a text search configuration name "
                f"such as 'english' or 'simple', got {config!r}"
            )
        self.source_fields = list(source_fields)
        self.config = config
        kwargs["null"] = True
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value: Any) -> Any:
        return None  # the database computes the column; a written value is replaced

    def source_columns(self) -> list[str]:
        """The columns of ``source_fields``; raise FieldError for an unknown name."""
        return [self.model._meta.get_field(name).column for name in self.source_fields]

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        kwargs.pop("null", None)
        kwargs.pop("editable", None)
        kwargs["source_fields"] = list(self.source_fields)
        kwargs["config"] = self.config
        return name, f"{_PUBLIC}.SearchVectorField", args, kwargs
