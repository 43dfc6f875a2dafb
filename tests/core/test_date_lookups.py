"""Date and time lookups (hour ... iso_year, time) and QuerySet.dates() / datetimes(),
on SQLite and PostgreSQL, checked against values computed in Python."""

from __future__ import annotations

import asyncio
import datetime
import zoneinfo
from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldError

UTC = datetime.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


class Event(dorm.Model):
    title = dorm.CharField(max_length=20)
    at = dorm.DateTimeField(null=True)
    day = dorm.DateField(null=True)
    clock = dorm.TimeField(null=True)

    class Meta:
        app_label = "t_datelookups"


MODELS = [Event]
pytestmark = pytest.mark.usefixtures("clean_tables")

EVENTS = [
    ("a", datetime.datetime(2021, 1, 3, 13, 5, 7, tzinfo=UTC), datetime.date(2021, 1, 3)),
    ("b", datetime.datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC), datetime.date(2020, 12, 28)),
    ("c", datetime.datetime(2021, 4, 1, 0, 0, 0, tzinfo=UTC), datetime.date(2021, 4, 1)),
    ("d", datetime.datetime(2021, 1, 3, 13, 45, 0, tzinfo=UTC), datetime.date(2019, 12, 30)),
    ("e", datetime.datetime(2021, 7, 4, 6, 5, 30, tzinfo=UTC), datetime.date(2021, 7, 4)),
]


@pytest.fixture
def events(db: Any) -> None:
    for title, at, day in EVENTS:
        Event.objects.create(title=title, at=at, day=day, clock=at.time())
    Event.objects.create(title="none")


def titles(qs: Any) -> list[str]:
    return sorted(qs.values_list("title", flat=True))


def where(pred: Any) -> list[str]:
    return sorted(t for t, at, day in EVENTS if pred(at, day))


def py_parts(v: Any) -> dict[str, int]:
    iso = v.isocalendar()
    return {
        "week": iso[1],
        "iso_year": iso[0],
        "week_day": v.isoweekday() % 7 + 1,
        "iso_week_day": v.isoweekday(),
        "quarter": (v.month + 2) // 3,
    }


@pytest.mark.parametrize("unit", ["week", "iso_year", "week_day", "iso_week_day", "quarter"])
def test_date_part_lookups_on_dates_and_datetimes(events: Any, unit: str) -> None:
    for value in {py_parts(at)[unit] for _t, at, _d in EVENTS}:
        assert titles(Event.objects.filter(**{f"at__{unit}": value})) == where(
            lambda at, d, v=value: py_parts(at)[unit] == v
        )
    for value in {py_parts(day)[unit] for _t, _a, day in EVENTS}:
        assert titles(Event.objects.filter(**{f"day__{unit}": value})) == where(
            lambda at, d, v=value: py_parts(d)[unit] == v
        )
    pivot = py_parts(EVENTS[0][1])[unit]
    assert titles(Event.objects.filter(**{f"at__{unit}__gte": pivot})) == where(
        lambda at, d: py_parts(at)[unit] >= pivot
    )


@pytest.mark.parametrize("unit", ["hour", "minute", "second"])
def test_time_part_lookups_on_datetimes_and_times(events: Any, unit: str) -> None:
    for value in {getattr(at, unit) for _t, at, _d in EVENTS}:
        want = where(lambda at, d, v=value: getattr(at, unit) == v)
        assert titles(Event.objects.filter(**{f"at__{unit}": value})) == want
        assert titles(Event.objects.filter(**{f"clock__{unit}": value})) == want
    assert titles(Event.objects.filter(**{f"at__{unit}__lt": 10})) == where(
        lambda at, d: getattr(at, unit) < 10
    )


def test_time_lookup_and_existing_ones_together(events: Any) -> None:
    t = EVENTS[0][1].time()
    assert titles(Event.objects.filter(at__time=t)) == where(lambda at, d: at.time() == t)
    assert titles(Event.objects.filter(at__time__gte=datetime.time(13))) == where(
        lambda at, d: at.time() >= datetime.time(13)
    )
    assert titles(Event.objects.filter(at__year=2021, at__hour=13)) == where(
        lambda at, d: at.year == 2021 and at.hour == 13
    )
    assert titles(Event.objects.exclude(at__quarter=1)) == sorted(
        [*where(lambda at, d: (at.month + 2) // 3 != 1), "none"]
    )
    with pytest.raises(FieldError, match="unknown lookup 'hour' for DateField"):
        list(Event.objects.filter(day__hour=1))


def test_dates(events: Any) -> None:
    for kind in ("year", "month", "week", "day"):
        want = sorted({_start(kind, at.date()) for _t, at, _d in EVENTS})
        assert list(Event.objects.dates("at", kind)) == want
        assert list(Event.objects.dates("day", kind, order="DESC")) == sorted(
            {_start(kind, d) for _t, _a, d in EVENTS}, reverse=True
        )
    assert list(Event.objects.filter(title__in=["a", "d"]).dates("at", "day")) == [
        datetime.date(2021, 1, 3)
    ]


def _start(kind: str, d: datetime.date) -> datetime.date:
    if kind == "year":
        return d.replace(month=1, day=1)
    if kind == "month":
        return d.replace(day=1)
    if kind == "week":
        return d - datetime.timedelta(days=d.weekday())
    return d


def test_datetimes_in_utc_and_in_a_zone(events: Any) -> None:
    hours = sorted({at.replace(minute=0, second=0) for _t, at, _d in EVENTS})
    assert list(Event.objects.datetimes("at", "hour")) == hours
    days_paris = sorted(
        {
            at.astimezone(PARIS).replace(hour=0, minute=0, second=0).astimezone(UTC)
            for _t, at, _d in EVENTS
        },
        reverse=True,
    )
    got = [v.astimezone(UTC) for v in Event.objects.datetimes("at", "day", "DESC", tzinfo=PARIS)]
    assert got == days_paris
    assert list(Event.objects.datetimes("at", "second")) == sorted({at for _t, at, _d in EVENTS})


def test_dates_and_datetimes_validate(events: Any) -> None:
    with pytest.raises(ValueError, match="dates\\(\\): kind must be year, month, week or day"):
        Event.objects.dates("at", "hour")
    with pytest.raises(ValueError, match="order must be 'ASC' or 'DESC'"):
        Event.objects.dates("at", "day", order="up")
    with pytest.raises(FieldError, match="datetimes\\('day'\\): 'day' is not a DateTimeField"):
        Event.objects.datetimes("day", "day")
    with pytest.raises(FieldError, match="'title' is not a DateField or DateTimeField"):
        Event.objects.dates("title", "day")


def test_async_iteration_of_dates(events: Any) -> None:
    async def main() -> tuple[list[Any], int]:
        years = [d async for d in Event.objects.dates("at", "year")]
        return years, await Event.objects.filter(at__hour=13).acount()

    years, count = asyncio.run(main())
    assert years == sorted({datetime.date(at.year, 1, 1) for _t, at, _d in EVENTS})
    assert count == len(where(lambda at, d: at.hour == 13))
