"""Value conversions: Python values to and from MessagePack and JSON, per value kind.

MessagePack carries datetimes as its Timestamp extension (type -1; aware, UTC on the way
back; a naive value is taken as UTC, as ``DateTimeField`` does) and these application
extension types, which are part of the stream format:

====  ==========  ==============================================
code  Python      payload
====  ==========  ==============================================
1     Decimal     the number as ASCII text, never in exponent form
2     UUID        the 16 bytes of the UUID
3     date        ISO 8601 text ``YYYY-MM-DD``
4     time        ISO 8601 text ``HH:MM:SS[.ffffff]``
5     timedelta   signed 64-bit big-endian count of microseconds
====  ==========  ==============================================

JSON documents and byte strings travel natively (maps / arrays, bin).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
import re
import struct
import uuid
from collections.abc import Callable
from typing import Any

import msgpack

from dorm.contrib.serializers.registry import Column

__all__ = [
    "EXT_DATE",
    "EXT_DECIMAL",
    "EXT_DURATION",
    "EXT_TIME",
    "EXT_UUID",
    "carrier_converter",
    "decimal_ext",
    "duration_iso",
    "ext_hook",
    "from_json",
    "msgpack_default",
    "naive_converter",
    "parse_duration",
    "to_json",
]

EXT_DECIMAL = 1
EXT_UUID = 2
EXT_DATE = 3
EXT_TIME = 4
EXT_DURATION = 5

_UTC = datetime.UTC
_MICRO = datetime.timedelta(microseconds=1)
_PACK_Q = struct.Struct(">q")


# ExtType's own constructor re-checks its arguments in Python on every call; ours are
# known good (a constant code, bytes), so the namedtuple is built directly: ~5x faster.
_new_ext = tuple.__new__


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    return _new_ext(msgpack.ExtType, (code, data))


def decimal_ext(value: Any) -> Any:
    """Return the extension of a Decimal (anything else unchanged: a decimal column may
    hold what ``from_db_value`` kept as stored)."""
    if not isinstance(value, decimal.Decimal):
        return value
    text = str(value)
    if "E" in text:  # str() uses exponent form for some values; the format never does
        text = format(value, "f")
    return _ext(EXT_DECIMAL, text.encode("ascii"))


def msgpack_default(obj: Any) -> Any:
    """The ``default`` of dorm's Packer: the types MessagePack has no native form for."""
    if isinstance(obj, decimal.Decimal):
        return decimal_ext(obj)
    if isinstance(obj, datetime.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=_UTC)
        return msgpack.Timestamp.from_datetime(obj)
    if isinstance(obj, uuid.UUID):
        return _ext(EXT_UUID, obj.bytes)
    if isinstance(obj, datetime.date):
        return _ext(EXT_DATE, obj.isoformat().encode("ascii"))
    if isinstance(obj, datetime.time):
        return _ext(EXT_TIME, obj.isoformat().encode("ascii"))
    if isinstance(obj, datetime.timedelta):
        return _ext(EXT_DURATION, _PACK_Q.pack(obj // _MICRO))
    raise TypeError(
        f"cannot write a {type(obj).__qualname__} value ({obj!r}) to MessagePack; "
        f"its field needs an entry in the dorm_register_value_schemas hook"
    )


def ext_hook(code: int, data: bytes) -> Any:
    """The ``ext_hook`` of dorm's Unpacker: the inverse of ``msgpack_default``."""
    if code == EXT_DECIMAL:
        return decimal.Decimal(data.decode("ascii"))
    if code == EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == EXT_DATE:
        return datetime.date.fromisoformat(data.decode("ascii"))
    if code == EXT_TIME:
        return datetime.time.fromisoformat(data.decode("ascii"))
    if code == EXT_DURATION:
        return datetime.timedelta(microseconds=_PACK_Q.unpack(data)[0])
    return msgpack.ExtType(code, data)


def _coerce(kind: str, value: Any) -> Any:
    if kind == "decimal":
        return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    if kind == "string":
        return str(value)
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return bool(value)
    if isinstance(value, (str, bytes)):  # "json": a document some fields bind as text
        return json.loads(value)
    return value


def carrier_converter(column: Column) -> Callable[[Any], Any] | None:
    """Return a function turning a plugin field's value into its carrier, or None for
    fields whose values travel as they are."""
    if not column.vtype.plugin:
        return None
    prep, kind = column.field.get_db_prep_value, column.vtype.kind
    return lambda value: _coerce(kind, prep(value))


def _aware(value: Any) -> Any:
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=_UTC)
    return value


def naive_converter(column: Column) -> Callable[[Any], Any] | None:
    """Return a function making naive datetimes of ``column`` aware UTC, or None when the
    column holds no datetimes."""
    return _aware if column.vtype.kind == "datetime" else None


def duration_iso(value: datetime.timedelta) -> str:
    """``timedelta(days=1, seconds=5.5)`` -> ``"P1DT5.500000S"`` (ISO 8601; ``-`` first
    for a negative duration)."""
    micro = value // _MICRO
    sign = "-" if micro < 0 else ""
    days, rest = divmod(abs(micro), 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    tail = f".{fraction:06d}" if fraction else ""
    return f"{sign}P{days}DT{seconds}{tail}S"


_DURATION = re.compile(r"(-)?P([0-9]+)DT([0-9]+)(?:\.([0-9]{1,6}))?S")


def parse_duration(text: str) -> datetime.timedelta:
    """The inverse of ``duration_iso``.

    :raises ValueError: the text is not in that form.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 'P1DT5.5S'")
    sign, days, seconds, fraction = match.groups()
    micro = int((fraction or "0").ljust(6, "0"))
    result = datetime.timedelta(days=int(days), seconds=int(seconds), microseconds=micro)
    return -result if sign else result


def to_json(column: Column, value: Any) -> Any:
    """Return the JSON form of ``value`` (a value of ``column``'s field)."""
    if value is None:
        return None
    if column.vtype.plugin:
        value = _coerce(column.vtype.kind, column.field.get_db_prep_value(value))
    kind = column.vtype.kind
    if kind == "decimal":
        return format(value, "f")
    if kind == "datetime":
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        return value.isoformat()
    if kind in ("date", "time"):
        return value.isoformat()
    if kind == "duration":
        return duration_iso(value)
    if kind == "uuid":
        return str(value)
    if kind == "binary":
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


_FROM_TEXT: dict[str, Callable[[str], Any]] = {
    "decimal": decimal.Decimal,
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "duration": parse_duration,
    "uuid": uuid.UUID,
    "binary": lambda text: base64.b64decode(text, validate=True),
}


def from_json(column: Column, value: Any) -> Any:
    """Return the Python value of ``column`` for its JSON form.

    :raises ValueError: the JSON value is not of the column's form.
    """
    if value is None:
        return None
    parse = _FROM_TEXT.get(column.vtype.kind)
    if parse is not None:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        try:
            value = parse(value)
        except (ValueError, decimal.InvalidOperation, binascii.Error):
            raise ValueError(f"{value!r} is not a {column.vtype.kind} value") from None
    return column.field.to_python(value)
