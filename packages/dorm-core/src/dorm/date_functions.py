"""Extract and Trunc with their per-unit classes (re-exported by ``dorm.functions``).

Time zones as Django handles aware datetimes: a ``DateTimeField`` is read in UTC (dorm's
only current time zone) unless ``tzinfo=`` names another (a ``zoneinfo.ZoneInfo`` or
``datetime.UTC``); the wall-clock parts come from that zone. Trunc of a datetime gives
the aware instant at which the truncated local period starts. Dates and times carry no
zone and are used as stored. On SQLite the work is done by functions dorm registers on
each connection (``dorm.db.backends.sqlite_functions``); PostgreSQL uses ``EXTRACT``,
``DATE_TRUNC`` and ``AT TIME ZONE`` with the zone name bound as a parameter.
"""

from __future__ import annotations

import datetime
import zoneinfo
from typing import TYPE_CHECKING, Any

from dorm.expressions import SQL
from dorm.lookups import Transform

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler

__all__ = [
    "Extract",
    "ExtractDay",
    "ExtractHour",
    "ExtractIsoWeekDay",
    "ExtractIsoYear",
    "ExtractMinute",
    "ExtractMonth",
    "ExtractQuarter",
    "ExtractSecond",
    "ExtractWeek",
    "ExtractWeekDay",
    "ExtractYear",
    "Trunc",
    "TruncDate",
    "TruncDay",
    "TruncHour",
    "TruncMinute",
    "TruncMonth",
    "TruncQuarter",
    "TruncSecond",
    "TruncTime",
    "TruncWeek",
    "TruncYear",
]

#: Extract units and the PostgreSQL EXTRACT field of each.
EXTRACT_UNITS = {
    "year": "YEAR",
    "iso_year": "ISOYEAR",
    "quarter": "QUARTER",
    "month": "MONTH",
    "week": "WEEK",
    "week_day": "DOW",
    "iso_week_day": "ISODOW",
    "day": "DAY",
    "hour": "HOUR",
    "minute": "MINUTE",
    "second": "SECOND",
}
TRUNC_UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")
_TIME_UNITS = frozenset({"hour", "minute", "second"})


def _kind_of(field: Any) -> str:
    """``datetime``, ``date`` or ``time``: what the expression's field holds."""
    internal = field.get_internal_type() if field is not None else ""
    if internal == "DateTimeField":
        return "datetime"
    if internal == "DateField":
        return "date"
    if internal == "TimeField":
        return "time"
    return ""


def _zone_name(tzinfo: Any) -> str | None:
    if tzinfo is None:
        return None
    if tzinfo is datetime.UTC:
        return "UTC"
    if isinstance(tzinfo, zoneinfo.ZoneInfo):
        return tzinfo.key
    raise TypeError(
        f"tzinfo must be a zoneinfo.ZoneInfo or datetime.UTC, got {tzinfo!r}; fixed offsets "
        f"have no name both databases read the same way"
    )


class _DateFunction(Transform):
    """Shared argument checks of Extract and Trunc."""

    def __init__(self, expression: Any, tzinfo: Any = None) -> None:
        from dorm.expressions import F

        super().__init__(F(expression) if isinstance(expression, str) else expression)
        self.tzname = _zone_name(tzinfo)
        self.tzinfo = tzinfo

    def source_kind(self, unit: str) -> str:
        kind = _kind_of(getattr(self.lhs, "output_field", None))
        if not kind:
            field = getattr(self.lhs, "output_field", None)
            raise ValueError(
                f"{type(self).__name__}: {self.lhs!r} is a {type(field).__name__}; a "
                f"DateField, DateTimeField or TimeField is needed"
            )
        if kind == "date" and unit in _TIME_UNITS:
            raise ValueError(f"{type(self).__name__}: cannot take {unit!r} of a DateField")
        if kind == "time" and unit not in _TIME_UNITS and unit not in ("date", "time"):
            raise ValueError(f"{type(self).__name__}: cannot take {unit!r} of a TimeField")
        return kind

    def _local(self, sql: str, kind: str, connection: BaseDatabaseWrapper) -> SQL:
        """PostgreSQL: the expression as local wall-clock time of the zone (datetimes)."""
        if kind != "datetime":
            return sql, []
        return f"({sql} AT TIME ZONE {connection.ops.placeholder})", [self.tzname or "UTC"]


class Extract(_DateFunction):
    """``Extract(expression, "hour", tzinfo=None)``: one part of a date, time or datetime."""

    lookup_name = ""

    def __init__(self, expression: Any, lookup_name: str | None = None, tzinfo: Any = None) -> None:
        unit = lookup_name or self.lookup_name
        if unit not in EXTRACT_UNITS:
            raise ValueError(
                f"Extract: unknown unit {unit!r}; valid units are: {', '.join(EXTRACT_UNITS)}"
            )
        super().__init__(expression, tzinfo)
        self.unit = unit

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import IntegerField

        return IntegerField()

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        kind = self.source_kind(self.unit)
        sql, params = compiler.compile(self.lhs)
        local, tz_params = self._local(sql, kind, connection)
        part = f"EXTRACT({EXTRACT_UNITS[self.unit]} FROM {local})"
        if self.unit == "week_day":  # Django's week_day: 1 = Sunday .. 7 = Saturday
            part = f"({part} + 1)"
        elif self.unit == "second":
            part = f"FLOOR({part})"
        return f"({part})::integer", [*params, *tz_params]

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        kind = self.source_kind(self.unit)
        sql, params = compiler.compile(self.lhs)
        ph = connection.ops.placeholder
        return (
            f"dorm_extract({ph}, {ph}, {sql}, {ph})",
            [self.unit, kind, *params, self.tzname or "UTC"],
        )


class ExtractYear(Extract):
    lookup_name = "year"


class ExtractIsoYear(Extract):
    lookup_name = "iso_year"


class ExtractQuarter(Extract):
    lookup_name = "quarter"


class ExtractMonth(Extract):
    lookup_name = "month"


class ExtractWeek(Extract):
    """The ISO 8601 week number (1-53)."""

    lookup_name = "week"


class ExtractWeekDay(Extract):
    """1 = Sunday .. 7 = Saturday, as Django's ``week_day``."""

    lookup_name = "week_day"


class ExtractIsoWeekDay(Extract):
    """1 = Monday .. 7 = Sunday."""

    lookup_name = "iso_week_day"


class ExtractDay(Extract):
    lookup_name = "day"


class ExtractHour(Extract):
    lookup_name = "hour"


class ExtractMinute(Extract):
    lookup_name = "minute"


class ExtractSecond(Extract):
    lookup_name = "second"


class Trunc(_DateFunction):
    """``Trunc(expression, "month", tzinfo=None)``: the start of the period holding the value."""

    kind = ""

    def __init__(
        self,
        expression: Any,
        kind: str | None = None,
        output_field: Field | None = None,
        tzinfo: Any = None,
    ) -> None:
        unit = kind or self.kind
        if unit not in (*TRUNC_UNITS, "date", "time"):
            raise ValueError(
                f"Trunc: unknown kind {unit!r}; valid kinds are: {', '.join(TRUNC_UNITS)}"
            )
        super().__init__(expression, tzinfo)
        self.unit = unit
        if output_field is not None:
            self._output_field = output_field

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import DateField, TimeField

        if self.unit == "date":
            return DateField()
        if self.unit == "time":
            return TimeField()
        return getattr(self.lhs, "output_field", None)

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        kind = self.source_kind(self.unit)
        sql, params = compiler.compile(self.lhs)
        local, tz_params = self._local(sql, kind, connection)
        ph = connection.ops.placeholder
        if self.unit == "date":
            return f"({local})::date", [*params, *tz_params]
        if self.unit == "time":
            return f"({local})::time", [*params, *tz_params]
        if kind == "time":  # DATE_TRUNC takes no time: put it on some date first
            return f"(DATE_TRUNC({ph}, DATE '2000-01-01' + {sql}))::time", [self.unit, *params]
        truncated = f"DATE_TRUNC({ph}, {local})"
        if kind == "date":
            return f"({truncated})::date", [self.unit, *params, *tz_params]
        # Back from local wall-clock time to the instant, in the same zone.
        return (
            f"({truncated} AT TIME ZONE {ph})",
            [self.unit, *params, *tz_params, self.tzname or "UTC"],
        )

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        kind = self.source_kind(self.unit)
        sql, params = compiler.compile(self.lhs)
        ph = connection.ops.placeholder
        return (
            f"dorm_trunc({ph}, {ph}, {sql}, {ph})",
            [self.unit, kind, *params, self.tzname or "UTC"],
        )


class TruncYear(Trunc):
    kind = "year"


class TruncQuarter(Trunc):
    kind = "quarter"


class TruncMonth(Trunc):
    kind = "month"


class TruncWeek(Trunc):
    """The Monday starting the ISO week."""

    kind = "week"


class TruncDay(Trunc):
    kind = "day"


class TruncHour(Trunc):
    kind = "hour"


class TruncMinute(Trunc):
    kind = "minute"


class TruncSecond(Trunc):
    kind = "second"


class TruncDate(Trunc):
    """The date (in the zone) of a datetime; a ``__date`` that honours ``tzinfo``."""

    kind = "date"


class TruncTime(Trunc):
    """The wall-clock time (in the zone) of a datetime; the ``__time`` transform."""

    kind = "time"
    lookup_name = "time"
