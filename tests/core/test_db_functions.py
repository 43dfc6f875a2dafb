"""dorm.functions: math, text, Extract and Trunc, on SQLite and PostgreSQL.

Expected values are computed in Python from the rows the test stored.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import zoneinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

import dorm
from dorm.exceptions import NotSupportedError
from dorm.functions import (
    MD5,
    SHA256,
    Abs,
    Ceil,
    Exp,
    Extract,
    ExtractDay,
    ExtractHour,
    ExtractIsoWeekDay,
    ExtractIsoYear,
    ExtractMinute,
    ExtractMonth,
    ExtractQuarter,
    ExtractSecond,
    ExtractWeek,
    ExtractWeekDay,
    ExtractYear,
    Floor,
    Greatest,
    Least,
    Left,
    Ln,
    Log,
    LPad,
    LTrim,
    Mod,
    NullIf,
    Power,
    Random,
    Repeat,
    Replace,
    Reverse,
    Right,
    Round,
    RPad,
    RTrim,
    Sign,
    Sqrt,
    StrIndex,
    Substr,
    Trim,
    Trunc,
    TruncDate,
    TruncDay,
    TruncHour,
    TruncMonth,
    TruncQuarter,
    TruncTime,
    TruncWeek,
    TruncYear,
)

UTC = datetime.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


class Reading(dorm.Model):
    label = dorm.CharField(max_length=30)
    x = dorm.FloatField()
    n = dorm.IntegerField()
    d = dorm.DecimalField(max_digits=8, decimal_places=3)
    other = dorm.IntegerField(null=True)
    at = dorm.DateTimeField()
    day = dorm.DateField()
    clock = dorm.TimeField()

    class Meta:
        app_label = "t_dbfunc"


MODELS = [Reading]
pytestmark = pytest.mark.usefixtures("clean_tables")

ROWS = [
    # label, x, n, d, other, at (UTC), day, clock
    (
        "  Ada ",
        2.25,
        -7,
        Decimal("3.142"),
        5,
        datetime.datetime(2020, 3, 28, 23, 30, 15, tzinfo=UTC),
        datetime.date(2020, 12, 31),
        datetime.time(13, 45, 59, 500),
    ),
    (
        "grace",
        16.0,
        12,
        Decimal("-2.505"),
        None,
        datetime.datetime(2021, 1, 3, 0, 15, 0, tzinfo=UTC),
        datetime.date(2021, 1, 1),
        datetime.time(0, 0, 1),
    ),
    (
        "Alan Turing",
        0.5,
        3,
        Decimal("10.000"),
        3,
        datetime.datetime(2019, 10, 27, 1, 59, 59, tzinfo=UTC),
        datetime.date(2019, 6, 15),
        datetime.time(23, 59, 0),
    ),
]


@pytest.fixture
def rows(db: Any) -> list[Reading]:
    out = []
    for label, x, n, d, other, at, day, clock in ROWS:
        out.append(
            Reading.objects.create(
                label=label, x=x, n=n, d=d, other=other, at=at, day=day, clock=clock
            )
        )
    return out


def column(expr: Any) -> dict[str, Any]:
    """``{label: value of expr}`` for every row."""
    return dict(Reading.objects.annotate(v=expr).values_list("label", "v"))


def expect(func: Any) -> dict[str, Any]:
    return {r[0]: func(*r) for r in ROWS}


def close(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for k in want:
        assert want[k] is None and got[k] is None or math.isclose(float(got[k]), float(want[k])), (
            k,
            got[k],
            want[k],
        )


def test_math_functions(rows: Any) -> None:
    assert column(Abs("n")) == expect(lambda s, x, n, *r: abs(n))
    assert column(Abs("d")) == expect(lambda s, x, n, d, *r: abs(d))
    close(column(Ceil("x")), expect(lambda s, x, *r: math.ceil(x)))
    close(column(Floor("d")), expect(lambda s, x, n, d, *r: math.floor(d)))
    close(column(Power("x", 2)), expect(lambda s, x, *r: x**2))
    close(column(Sqrt("x")), expect(lambda s, x, *r: math.sqrt(x)))
    close(column(Mod("n", 5)), expect(lambda s, x, n, *r: math.fmod(n, 5)))
    assert column(Sign("n")) == expect(lambda s, x, n, *r: (n > 0) - (n < 0))
    close(column(Log(2, "x")), expect(lambda s, x, *r: math.log(x, 2)))
    close(column(Ln("x")), expect(lambda s, x, *r: math.log(x)))
    close(column(Exp("x")), expect(lambda s, x, *r: math.exp(x)))
    assert isinstance(column(Ceil("x"))["grace"], float)


def test_round_with_precision(rows: Any) -> None:
    half_up = lambda v, p: Decimal(v).quantize(Decimal(1).scaleb(-p), rounding=ROUND_HALF_UP)  # noqa: E731
    assert column(Round("d", 2)) == expect(lambda s, x, n, d, *r: half_up(d, 2))
    assert column(Round("d")) == expect(lambda s, x, n, d, *r: half_up(d, 0))
    close(column(Round("x", 1)), expect(lambda s, x, *r: half_up(str(x), 1)))
    got = column(Round("n"))
    assert got == expect(lambda s, x, n, *r: n) and all(type(v) is int for v in got.values())
    with pytest.raises(TypeError, match="Round\\(precision=...\\) takes an int"):
        Round("x", 1.5)


def test_round_negative_precision(rows: Any, backend: Any) -> None:
    if backend.vendor == "postgresql":
        assert column(Round("n", -1)) == expect(lambda s, x, n, *r: int(half(n, -1)))
    else:
        with pytest.raises(NotSupportedError, match="negative precision"):
            column(Round("n", -1))


def half(v: int, p: int) -> Decimal:
    return Decimal(v).quantize(Decimal(1).scaleb(-p), rounding=ROUND_HALF_UP)


def test_random_greatest_least_nullif(rows: Any, backend: Any) -> None:
    values = list(column(Random()).values())
    assert all(0.0 <= v < 1.0 for v in values) and len(set(values)) > 1
    assert column(Greatest("n", "other")) == expect(
        lambda s, x, n, d, o, *r: (
            None if o is None and backend.vendor == "sqlite" else max(n, o or n)
        )
    )
    assert column(Least("n", 0)) == expect(lambda s, x, n, *r: min(n, 0))
    assert column(NullIf("n", 12)) == expect(lambda s, x, n, *r: None if n == 12 else n)
    with pytest.raises(ValueError, match="Greatest needs at least two expressions"):
        Greatest("n")


def test_text_functions(rows: Any) -> None:
    assert column(Substr("label", 2, 3)) == expect(lambda s, *r: s[1:4])
    assert column(Substr("label", 3)) == expect(lambda s, *r: s[2:])
    assert column(Replace("label", "a", "4")) == expect(lambda s, *r: s.replace("a", "4"))
    assert column(Replace("label", "a")) == expect(lambda s, *r: s.replace("a", ""))
    assert column(StrIndex("label", dorm.Value("a"))) == expect(lambda s, *r: s.find("a") + 1)
    assert column(Trim("label")) == expect(lambda s, *r: s.strip(" "))
    assert column(LTrim("label")) == expect(lambda s, *r: s.lstrip(" "))
    assert column(RTrim("label")) == expect(lambda s, *r: s.rstrip(" "))
    assert column(Left("label", 4)) == expect(lambda s, *r: s[:4])
    assert column(Right("label", 4)) == expect(lambda s, *r: s[-4:])
    assert column(Right("label", 40)) == expect(lambda s, *r: s)
    assert column(Reverse("label")) == expect(lambda s, *r: s[::-1])
    assert column(Repeat("label", 3)) == expect(lambda s, *r: s * 3)
    assert column(LPad("label", 8, "*")) == expect(lambda s, *r: s.rjust(8, "*")[:8])
    assert column(RPad("label", 8)) == expect(lambda s, *r: s.ljust(8)[:8])
    assert column(LPad("label", 9, "xy")) == expect(
        lambda s, *r: s[:9] if len(s) >= 9 else ("xy" * 9)[: 9 - len(s)] + s
    )
    assert column(MD5("label")) == expect(lambda s, *r: hashlib.md5(s.encode()).hexdigest())
    assert column(SHA256("label")) == expect(lambda s, *r: hashlib.sha256(s.encode()).hexdigest())
    got = Reading.objects.filter(label__startswith="gr").annotate(v=Left(Reverse("label"), 2))
    assert got.get().v == "ec"


def test_text_function_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="Substr: 'pos' must be an int >= 1, got 0"):
        Substr("label", 0)
    with pytest.raises(ValueError, match="Left: 'length' must be an int >= 1"):
        Left("label", 0)
    with pytest.raises(ValueError, match="Repeat: 'number' must be an int >= 0"):
        Repeat("label", -1)
    with pytest.raises(ValueError, match="fill_text must not be empty"):
        LPad("label", 3, "")


def parts(dt: Any) -> dict[str, int]:
    iso = dt.isocalendar()
    return {
        "year": dt.year,
        "iso_year": iso[0],
        "quarter": (dt.month + 2) // 3,
        "month": dt.month,
        "week": iso[1],
        "week_day": dt.isoweekday() % 7 + 1,
        "iso_week_day": dt.isoweekday(),
        "day": dt.day,
        "hour": getattr(dt, "hour", -1),
        "minute": getattr(dt, "minute", -1),
        "second": getattr(dt, "second", -1),
    }


CLASSES = {
    "year": ExtractYear,
    "iso_year": ExtractIsoYear,
    "quarter": ExtractQuarter,
    "month": ExtractMonth,
    "week": ExtractWeek,
    "week_day": ExtractWeekDay,
    "iso_week_day": ExtractIsoWeekDay,
    "day": ExtractDay,
    "hour": ExtractHour,
    "minute": ExtractMinute,
    "second": ExtractSecond,
}


@pytest.mark.parametrize("unit", list(CLASSES))
def test_extract_every_unit_in_utc_and_in_a_zone(rows: Any, unit: str) -> None:
    assert column(CLASSES[unit]("at")) == expect(lambda *r: parts(r[5])[unit])
    assert column(Extract("at", unit, tzinfo=PARIS)) == expect(
        lambda *r: parts(r[5].astimezone(PARIS))[unit]
    )
    if unit not in ("hour", "minute", "second"):
        assert column(CLASSES[unit]("day")) == expect(lambda *r: parts(r[6])[unit])
    else:
        assert column(CLASSES[unit]("clock")) == expect(lambda *r: getattr(r[7], unit))


def test_extract_and_trunc_validate(rows: Any) -> None:
    with pytest.raises(
        ValueError, match="Extract: unknown unit 'fortnight'; valid units are: year"
    ):
        Extract("at", "fortnight")
    with pytest.raises(ValueError, match="Trunc: unknown kind 'decade'"):
        Trunc("at", "decade")
    with pytest.raises(ValueError, match="cannot take 'hour' of a DateField"):
        column(ExtractHour("day"))
    with pytest.raises(ValueError, match="a DateField, DateTimeField or TimeField is needed"):
        column(ExtractYear("label"))
    with pytest.raises(TypeError, match="tzinfo must be a zoneinfo.ZoneInfo"):
        ExtractYear("at", tzinfo=datetime.timezone(datetime.timedelta(hours=2)))


def start_of(unit: str, dt: datetime.datetime) -> datetime.datetime:
    naive = dt.replace(tzinfo=None)
    if unit == "year":
        naive = naive.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "quarter":
        naive = naive.replace(
            month=(naive.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
        )
    elif unit == "month":
        naive = naive.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "week":
        naive = (naive - datetime.timedelta(days=naive.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    elif unit == "day":
        naive = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "hour":
        naive = naive.replace(minute=0, second=0, microsecond=0)
    return naive.replace(tzinfo=dt.tzinfo)


@pytest.mark.parametrize(
    "cls", [TruncYear, TruncQuarter, TruncMonth, TruncWeek, TruncDay, TruncHour]
)
def test_trunc_datetimes_in_utc_and_in_a_zone(rows: Any, cls: Any) -> None:
    unit = cls.kind
    assert column(cls("at")) == expect(lambda *r: start_of(unit, r[5]))
    # Compared in UTC: Python never finds an ambiguous local time (fold=1) equal to
    # another zone's time, even the same instant.
    in_paris = {k: v.astimezone(UTC) for k, v in column(cls("at", tzinfo=PARIS)).items()}
    assert in_paris == expect(lambda *r: start_of(unit, r[5].astimezone(PARIS)).astimezone(UTC))
    if unit != "hour":
        assert column(cls("day")) == expect(
            lambda *r: start_of(unit, datetime.datetime.combine(r[6], datetime.time())).date()
        )


def test_trunc_date_time_and_times(rows: Any) -> None:
    assert column(TruncDate("at")) == expect(lambda *r: r[5].date())
    assert column(TruncDate("at", tzinfo=PARIS)) == expect(lambda *r: r[5].astimezone(PARIS).date())
    assert column(TruncTime("at", tzinfo=PARIS)) == expect(lambda *r: r[5].astimezone(PARIS).time())
    assert column(Trunc("clock", "hour")) == expect(
        lambda *r: r[7].replace(minute=0, second=0, microsecond=0)
    )
    assert column(Trunc("clock", "second")) == expect(lambda *r: r[7].replace(microsecond=0))
    by_month = Reading.objects.annotate(m=TruncMonth("at")).filter(m__year=2020)
    assert list(by_month.values_list("label", flat=True)) == ["  Ada "]


def test_functions_in_filters_and_async(rows: Any) -> None:
    import asyncio

    odd = Reading.objects.annotate(r=Mod("n", 2)).filter(r__gt=0)
    assert sorted(odd.values_list("label", flat=True)) == sorted(
        row[0] for row in ROWS if math.fmod(row[2], 2) > 0
    )

    async def main() -> list[Any]:
        qs = Reading.objects.annotate(h=ExtractHour("at", tzinfo=PARIS)).order_by("h")
        return [r.h async for r in qs]

    assert asyncio.run(main()) == sorted(r[5].astimezone(PARIS).hour for r in ROWS)
