"""``TimezoneField``: IANA time zone names, returned as ``zoneinfo.ZoneInfo``."""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from dorm.contrib.extra_fields.base import ExtraField

__all__ = ["TimezoneField"]

# IANA names are ASCII words joined by '/': this also keeps file paths away from zoneinfo.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9][A-Za-z0-9_+\-]*)*")


class TimezoneField(ExtraField):
    """An IANA time zone (``"Europe/Madrid"``), stored as its name.

    Values are ``zoneinfo.ZoneInfo`` objects; a name is valid when ``zoneinfo`` finds it
    (the system tz database, or the ``tzdata`` package where there is none).
    """

    internal_type = "TimezoneField"
    empty_default = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        default = kwargs.get("default")
        if isinstance(default, zoneinfo.ZoneInfo):
            kwargs["default"] = default.key  # a name serialises into migrations
        super().__init__(*args, **kwargs)
        if self.has_default() and not callable(self.default):
            # A bad default is a bad argument: ValidationError is a ValueError.
            self.to_python(self.default)

    def convert(self, value: Any) -> zoneinfo.ZoneInfo:
        if isinstance(value, zoneinfo.ZoneInfo):
            return value
        if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
            raise self.error(value, "an IANA time zone name such as 'Europe/Madrid'")
        try:
            return zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise self.error(value, "an IANA time zone name such as 'Europe/Madrid'") from None

    def to_db(self, value: zoneinfo.ZoneInfo) -> str:
        return value.key

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 64:
            del kwargs["max_length"]
        return name, path, args, kwargs
