"""SQL functions dorm registers on every SQLite connection (SQLite lacks them).

Date parts and truncation in a time zone (``dorm_extract``, ``dorm_trunc``), text
helpers (``dorm_reverse``, ``dorm_lpad``, ``dorm_rpad``, ``dorm_md5``, ``dorm_sha256``)
and, when this SQLite was built without its math functions, Python ones under the same
names. Every function returns NULL for a NULL argument, as SQL functions do.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import math
import sqlite3
import zoneinfo
from collections.abc import Callable
from typing import Any

__all__ = ["install"]

UTC = datetime.UTC


def _nulls(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        return func(*args)

    return wrapper


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> datetime.tzinfo:
    return UTC if name == "UTC" else zoneinfo.ZoneInfo(name)


def _parse(kind: str, value: Any, tzname: str) -> Any:
    text = str(value)
    if kind == "datetime":
        parsed = datetime.datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(_zone(tzname))
    if kind == "date":
        return datetime.date.fromisoformat(text[:10])
    return datetime.time.fromisoformat(text)


@_nulls
def _extract(unit: str, kind: str, value: Any, tzname: str) -> int:
    v = _parse(kind, value, tzname)
    if unit == "year":
        return int(v.year)
    if unit == "iso_year":
        return int(v.isocalendar()[0])
    if unit == "quarter":
        return (int(v.month) + 2) // 3
    if unit == "week":
        return int(v.isocalendar()[1])
    if unit == "week_day":
        return int(v.isoweekday()) % 7 + 1
    if unit == "iso_week_day":
        return int(v.isoweekday())
    return int(getattr(v, unit))


def _dt_to_db(value: datetime.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@_nulls
def _trunc(unit: str, kind: str, value: Any, tzname: str) -> str:
    v = _parse(kind, value, tzname)
    if unit == "date":
        return str(v.date().isoformat())
    if unit == "time":
        return str(v.timetz().replace(tzinfo=None).isoformat())
    if kind == "time":
        fields = {"hour": {"minute": 0, "second": 0}, "minute": {"second": 0}, "second": {}}
        return str(v.replace(microsecond=0, **fields[unit]).isoformat())
    start = datetime.datetime(v.year, v.month, v.day)
    if unit == "year":
        start = start.replace(month=1, day=1)
    elif unit == "quarter":
        start = start.replace(month=(v.month - 1) // 3 * 3 + 1, day=1)
    elif unit == "month":
        start = start.replace(day=1)
    elif unit == "week":
        start -= datetime.timedelta(days=v.weekday())
    elif kind == "datetime" and unit in ("hour", "minute", "second"):
        start = v.replace(tzinfo=None, microsecond=0)
        if unit in ("hour", "minute"):
            start = start.replace(second=0)
        if unit == "hour":
            start = start.replace(minute=0)
    if kind == "date":
        return start.date().isoformat()
    # The instant the local period starts. Inside a repeated hour (clocks going back)
    # the value's own fold is kept, so the hour truncates to the right occurrence.
    return _dt_to_db(start.replace(tzinfo=_zone(tzname)))


@_nulls
def _lpad(value: Any, length: int, fill: str) -> str:
    text = str(value)
    if len(text) >= length:
        return text[:length]
    pad: str = (str(fill) * length)[: length - len(text)]
    return pad + text


@_nulls
def _rpad(value: Any, length: int, fill: str) -> str:
    text = str(value)
    if len(text) >= length:
        return text[:length]
    pad: str = (str(fill) * length)[: length - len(text)]
    return text + pad


def _math_fallbacks() -> dict[str, tuple[int, Callable[..., Any]]]:
    return {
        "CEIL": (1, _nulls(lambda x: float(math.ceil(x)))),
        "FLOOR": (1, _nulls(lambda x: float(math.floor(x)))),
        "POWER": (2, _nulls(lambda x, y: float(x) ** float(y))),
        "SQRT": (1, _nulls(lambda x: math.sqrt(x) if x >= 0 else None)),
        "MOD": (2, _nulls(lambda x, y: math.fmod(x, y) if y else None)),
        "LN": (1, _nulls(lambda x: math.log(x) if x > 0 else None)),
        "LOG": (2, _nulls(lambda b, x: math.log(x, b) if x > 0 and b > 0 else None)),
        "EXP": (1, _nulls(lambda x: math.exp(x))),
        "SIGN": (1, _nulls(lambda x: (x > 0) - (x < 0))),
    }


@functools.cache
def _has_math() -> bool:
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("SELECT CEIL(1.5), LN(2), POWER(2, 3), SIGN(-1)")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def install(conn: sqlite3.Connection) -> None:
    """Register dorm's functions on ``conn``."""
    conn.create_function("dorm_extract", 4, _extract, deterministic=True)
    conn.create_function("dorm_trunc", 4, _trunc, deterministic=True)
    conn.create_function("dorm_reverse", 1, _nulls(lambda s: str(s)[::-1]), deterministic=True)
    conn.create_function("dorm_lpad", 3, _lpad, deterministic=True)
    conn.create_function("dorm_rpad", 3, _rpad, deterministic=True)
    conn.create_function(
        "dorm_md5",
        1,
        _nulls(lambda s: hashlib.md5(str(s).encode()).hexdigest()),
        deterministic=True,
    )
    conn.create_function(
        "dorm_sha256",
        1,
        _nulls(lambda s: hashlib.sha256(str(s).encode()).hexdigest()),
        deterministic=True,
    )
    if not _has_math():
        for name, (arity, func) in _math_fallbacks().items():
            conn.create_function(name, arity, func, deterministic=True)
