"""Core's lookups, transforms and functions, registered through the plugin hooks."""

from __future__ import annotations

from dorm.plugins import hookimpl


@hookimpl(trylast=True)
def dorm_register_lookups() -> list[tuple[type, type]]:
    from dorm.lookups import BUILTIN_LOOKUPS
    from dorm.models.data_fields import JSONField
    from dorm.models.fields import Field
    from dorm.models.json import JSON_LOOKUPS, KEY_LOOKUPS, JSONKeyField

    return [
        *((Field, lookup) for lookup in BUILTIN_LOOKUPS),
        *((JSONField, lookup) for lookup in JSON_LOOKUPS),
        *((JSONKeyField, lookup) for lookup in KEY_LOOKUPS),
    ]


@hookimpl(trylast=True)
def dorm_register_transforms() -> list[tuple[type, type]]:
    from dorm import date_functions as d
    from dorm.lookups import Date, Day, Month, Year
    from dorm.models.fields import DateField, DateTimeField, TimeField

    date_parts = (d.ExtractWeek, d.ExtractWeekDay, d.ExtractIsoWeekDay, d.ExtractQuarter)
    time_parts = (d.ExtractHour, d.ExtractMinute, d.ExtractSecond)
    return [
        (DateField, Year),
        (DateField, Month),
        (DateField, Day),
        (DateTimeField, Date),
        *((DateField, t) for t in (*date_parts, d.ExtractIsoYear)),
        *((DateTimeField, t) for t in time_parts),
        *((TimeField, t) for t in time_parts),
        (DateTimeField, d.TruncTime),
    ]


@hookimpl(trylast=True)
def dorm_register_functions() -> list[type]:
    # The 4.3 additions (dorm.math_functions, text_functions, date_functions) stay out of
    # this name registry: plugins written before them register functions of the same
    # names (Greatest, ...), and a shared name is a PluginConflictError.
    from dorm import functions
    from dorm.expressions import Avg, Count, Max, Min, Sum

    return [
        functions.Coalesce,
        functions.Lower,
        functions.Upper,
        functions.Length,
        functions.Concat,
        functions.Now,
        functions.Cast,
        Count,
        Sum,
        Avg,
        Min,
        Max,
    ]
