"""Date, time and duration fields: stored in UTC, returned as aware UTC datetimes."""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any

from dorm.models.fields import Field

if TYPE_CHECKING:
    from dorm.models.base import Model

__all__ = ["DateField", "DateTimeField", "DurationField", "TimeField"]

UTC = datetime.UTC


class DateField(Field):
    internal_type = "DateField"

    def __init__(
        self, *args: Any, auto_now: bool = False, auto_now_add: bool = False, **kwargs: Any
    ):
        self.auto_now = auto_now
        self.auto_now_add = auto_now_add
        if auto_now or auto_now_add:
            kwargs.setdefault("editable", False)
            kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime.datetime):
            # dorm's time zone is UTC: an aware datetime falls on its UTC date.
            return (value.astimezone(UTC) if value.tzinfo is not None else value).date()
        if isinstance(value, datetime.date):
            return value
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value.strip()[:10])
            except ValueError:
                pass
        raise self._invalid(value, "a date (YYYY-MM-DD)")

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)

    def _now(self) -> Any:
        return datetime.datetime.now(UTC).date()

    def pre_save(self, instance: Model, add: bool) -> Any:
        if self.auto_now or (self.auto_now_add and add):
            value = self._now()
            instance.__dict__[self.attname] = value
            return value
        return super().pre_save(instance, add)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        for key in ("auto_now", "auto_now_add"):
            if getattr(self, key):
                kwargs[key] = True
                kwargs.pop("editable", None)
                kwargs.pop("blank", None)
        return name, path, args, kwargs


class DateTimeField(DateField):
    """Stored in UTC; always returns an aware UTC datetime. A naive value is taken as UTC."""

    internal_type = "DateTimeField"

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime.datetime):
            result = value
        elif isinstance(value, datetime.date):
            result = datetime.datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            try:
                result = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise self._invalid(value, "a datetime (ISO 8601)") from None
        else:
            raise self._invalid(value, "a datetime")
        if result.tzinfo is None:
            return result.replace(tzinfo=UTC)
        return result.astimezone(UTC)

    def _now(self) -> Any:
        return datetime.datetime.now(UTC)


class TimeField(Field):
    internal_type = "TimeField"

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime.datetime):
            return value.time()
        if isinstance(value, datetime.time):
            return value
        if isinstance(value, str):
            try:
                return datetime.time.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self._invalid(value, "a time (HH:MM[:SS[.ffffff]])")

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)


# Django's string forms: "05", "10:15", "00:00:05", "1 00:00:05", "2 days, 00:00:05" (str of a
# timedelta), PostgreSQL's "3 days 04:05:06", and ISO 8601 "P1DT2H30M" / "-PT5.5S".
_CLOCK = re.compile(
    r"(?:(?P<days>[-+]?\d+) (?:days?,? )?)?(?P<sign>[-+]?)"
    r"(?:(?P<hours>\d+):(?=\d+:\d+))?(?:(?P<minutes>\d+):)?(?P<seconds>\d+)"
    r"(?:[.,](?P<fraction>\d{1,6})\d*)?"
)
_NUMBER = r"\d+(?:[.,]\d+)?"
_ISO = re.compile(
    rf"(?P<sign>[-+]?)P(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)


def parse_duration(text: str) -> datetime.timedelta | None:
    """Read a duration in one of Django's string forms; None when ``text`` is none of them."""
    text = text.strip()
    clock = _CLOCK.fullmatch(text)
    if clock is not None:
        parts = clock.groupdict()
        sign = -1 if parts["sign"] == "-" else 1
        time = datetime.timedelta(
            hours=int(parts["hours"] or 0),
            minutes=int(parts["minutes"] or 0),
            seconds=int(parts["seconds"]),
            microseconds=int((parts["fraction"] or "0").ljust(6, "0")),
        )
        return datetime.timedelta(days=int(parts["days"] or 0)) + sign * time
    iso = _ISO.fullmatch(text)
    if iso is None or text.endswith(("P", "T")):
        return None
    amounts = {
        unit: float(number.replace(",", "."))
        for unit, number in iso.groupdict().items()
        if unit != "sign" and number is not None
    }
    if not amounts:
        return None
    result = datetime.timedelta(**amounts)
    return -result if iso.group("sign") == "-" else result


class DurationField(Field):
    internal_type = "DurationField"

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, datetime.timedelta):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.timedelta(seconds=value)
        if isinstance(value, str):
            parsed = parse_duration(value)
            if parsed is not None:
                return parsed
        raise self._invalid(
            value,
            "a timedelta, a number of seconds, '[D [days,] ][[HH:]MM:]SS[.ffffff]' or ISO 8601 "
            "'P[nD][T[nH][nM][nS]]'",
        )

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)
