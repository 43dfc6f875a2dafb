"""Reading the past: ``as_of(Model, t)`` and ``Model.history``.

``as_of`` is an ordinary QuerySet of the tracked model whose FROM table is the version
table restricted to the versions valid at ``t`` (``valid_from <= t < valid_to``, open
versions included), under the tracked table's own alias: every filter, ordering,
``values()``, ``count()`` or iteration compiles as usual and builds model instances.
Relations followed from it (``author__name``) read today's related rows.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from dorm.models.manager import Manager, ManagerDescriptor
from dorm.models.query import QuerySet
from dorm.sql.datastructures import BaseTable
from dorm.sql.query import Query

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.sql.compiler import SQLCompiler

__all__ = ["AsOfQuerySet", "HistoryManager", "HistoryQuerySet", "as_of"]

UTC = datetime.UTC


def _instant(value: object) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        raise TypeError(
            f"as_of() needs a datetime.datetime, got {type(value).__name__} {value!r}; "
            f"pass an aware datetime (a naive one is taken as UTC)"
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _AsOfTable(BaseTable):
    """FROM (the versions valid at ``instant``) AS <the tracked table's alias>."""

    def __init__(self, history_table: str, alias: str, instant: datetime.datetime) -> None:
        super().__init__(history_table, alias)
        self.instant = instant

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        qn, ph = compiler.quote_name, connection.ops.placeholder
        value: object = self.instant
        if connection.vendor == "sqlite":
            # As dorm stores DateTimeField on SQLite: fixed-width UTC text.
            value = self.instant.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        valid_from, valid_to = qn("valid_from"), qn("valid_to")
        sql = (
            f"(SELECT * FROM {qn(self.table_name)} WHERE {valid_from} <= {ph} "
            f"AND ({valid_to} IS NULL OR {valid_to} > {ph})) {qn(self.table_alias)}"
        )
        return sql, [value, value]


def _read_only(name: str) -> Any:
    def refuse(self: AsOfQuerySet, *args: Any, **kwargs: Any) -> NoReturn:
        assert self.model is not None
        raise TypeError(
            f"as_of({self.model.__name__}, ...) is read-only: {name}() would write the past; "
            f"write through {self.model.__name__}.objects"
        )

    refuse.__name__ = name
    return refuse


class AsOfQuerySet(QuerySet):
    """A read-only QuerySet of a tracked model as its rows were at one instant."""

    def _plan_shape(self, kwargs: dict[str, Any], get_mode: bool) -> Any:
        return None  # the plan cache keys on the model, which here reads another table

    for _name in (
        "create",
        "bulk_create",
        "bulk_update",
        "update",
        "delete",
        "get_or_create",
        "update_or_create",
        "exists_or_create",
        "upsert",
        "select_for_update",
        "acreate",
        "abulk_create",
        "abulk_update",
        "aupdate",
        "adelete",
        "aget_or_create",
        "aupdate_or_create",
        "aupsert",
    ):
        locals()[_name] = _read_only(_name)
    del _name


def as_of(model: type, instant: datetime.datetime, using: str | None = None) -> AsOfQuerySet:
    """The rows of ``model`` as they were at ``instant``, as a chainable QuerySet.

    :raises TypeError: ``model`` is not ``@temporal``-tracked, or ``instant`` is not a
        datetime (a naive one is taken as UTC).
    """
    if "_temporal_model" not in getattr(model, "__dict__", {}):
        raise TypeError(
            f"{getattr(model, '__name__', model)!r} is not @temporal-tracked: decorate the "
            f"model with @temporal to read it as of a time"
        )
    moment = _instant(instant)
    query = Query(model)
    table = model._meta.db_table  # type: ignore[attr-defined]
    alias = query._new_alias(table, create=True)
    history_table = model._temporal_model._meta.db_table  # type: ignore[attr-defined]
    query.alias_map[alias] = _AsOfTable(history_table, alias, moment)
    return AsOfQuerySet(model, query, using)


class HistoryQuerySet(QuerySet):
    """The versions of a tracked model; ``pk`` in filters means the tracked row's key."""

    def _rewrite(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        assert self.model is not None
        source = self.model._temporal_source  # type: ignore[attr-defined]
        pk_name = source._meta.pk.attname
        result = {}
        for key, value in kwargs.items():
            if key == "pk" or key.startswith("pk__"):
                key = pk_name + key[2:]
            result[key] = value
        return result

    def filter(self, *args: Any, **kwargs: Any) -> HistoryQuerySet:
        return super().filter(*args, **self._rewrite(kwargs))  # type: ignore[return-value]

    def exclude(self, *args: Any, **kwargs: Any) -> HistoryQuerySet:
        return super().exclude(*args, **self._rewrite(kwargs))  # type: ignore[return-value]

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return super().get(*args, **self._rewrite(kwargs))


class HistoryManager(Manager):
    """``Model.history``: every version of every row, oldest first."""

    _queryset_class = HistoryQuerySet

    def __init__(self, source: type, sibling: type) -> None:
        super().__init__()
        self.model = sibling
        self.name = "history"
        self.source = source

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.get_queryset().get(*args, **kwargs)

    def install(self) -> None:
        """Make ``source.history`` this manager (class access only, as for ``objects``)."""
        self.source.history = ManagerDescriptor(self)  # type: ignore[attr-defined]
