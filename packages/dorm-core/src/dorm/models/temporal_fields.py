"""Date, time and duration fields: stored in UTC, returned as aware UTC datetimes."""

from __future__ import annotations

import datetime
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


class DurationField(Field):
    internal_type = "DurationField"

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, datetime.timedelta):
            return value
        if isinstance(value, (int, float)):
            return datetime.timedelta(seconds=value)
        raise self._invalid(value, "a timedelta")

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)
