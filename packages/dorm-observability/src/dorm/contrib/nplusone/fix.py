"""``suggest_fix``: the ``select_related`` / ``prefetch_related`` that removes an N+1 query.

It reads the repeated statement's table and its WHERE column, then finds the relation of
the iterated model (``model_hint``) that the ORM followed to produce it: a forward foreign
key or one-to-one (``select_related``), a reverse foreign key or a many-to-many, either
side (``prefetch_related``). Without a hint every installed model is searched, and an
ambiguous answer raises ValueError naming the candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dorm.contrib.nplusone.location import CodeLocation

__all__ = ["Fix", "suggest_fix"]

_FROM = re.compile(r'\bFROM\s+"?(\w+)"?', re.I)
_WHERE = re.compile(r'\bWHERE\s+\(?\s*"?(\w+)"?\."?(\w+)"?\s*(?:=|IN\b)', re.I)


@dataclass(frozen=True)
class Fix:
    """Add ``.{method}("{lookup}")`` to the ``model`` query iterated at ``location``."""

    method: str
    lookup: str
    model: type
    location: CodeLocation | None = None

    @property
    def code(self) -> str:
        return f'{self.method}("{self.lookup}")'

    def apply(self, queryset: Any) -> Any:
        """``queryset.<method>(lookup)``."""
        return getattr(queryset, self.method)(self.lookup)

    def __str__(self) -> str:
        where = (
            f" iterated at {self.location.filename}:{self.location.lineno}" if self.location else ""
        )
        return f"add .{self.code} to the {self.model.__name__} query{where}"


def _models() -> list[Any]:
    from dorm.apps import apps

    return list(apps.get_models())


def _table(model: Any) -> str:
    return str(model._meta.db_table)


def _candidates(model: Any, table: str, where_table: str, column: str) -> list[tuple[str, str]]:
    """``(method, lookup)`` pairs of ``model``'s relations that read ``table`` by ``column``."""
    found: list[tuple[str, str]] = []
    meta = model._meta
    if where_table != table:
        # A many-to-many read: the target joined to the through table, filtered by owner.
        for field in meta.local_many_to_many:
            through = getattr(field.remote_field, "through", None) or getattr(
                field, "through", None
            )
            target = field.remote_field.model
            if (
                isinstance(through, type)
                and _table(through) == where_table
                and _table(target) == table
            ):
                found.append(("prefetch_related", field.name))
        for rel in meta.related_objects:
            field = rel.field
            if not field.many_to_many:
                continue
            through = getattr(field.remote_field, "through", None) or getattr(
                field, "through", None
            )
            if (
                isinstance(through, type)
                and _table(through) == where_table
                and _table(field.model) == table
            ):
                found.append(("prefetch_related", rel.get_accessor_name()))
        return found
    for field in meta.local_fields:
        remote = getattr(field, "remote_field", None)
        if remote is None or getattr(field, "many_to_many", False):
            continue
        target = remote.model
        if isinstance(target, type) and _table(target) == table:
            target_pk = getattr(target, "_meta").pk  # noqa: B009 - a model class
            if target_pk is not None and target_pk.column == column:
                found.append(("select_related", field.name))
    for rel in meta.related_objects:
        field = rel.field
        if field.many_to_many or _table(field.model) != table or field.column != column:
            continue
        method = "select_related" if rel.one_to_one else "prefetch_related"
        found.append((method, rel.get_accessor_name()))
    return found


def suggest_fix(
    template: Any, model_hint: type | None = None, location: CodeLocation | None = None
) -> Fix:
    """Return the eager load that turns the repeated ``template`` query into one query.

    ``template`` is the repeated SQL or a ``Finding`` (whose location and iterated model
    are used); ``model_hint`` is the model whose rows the loop iterates.

    :raises ValueError: the statement is not a relation read, or no (or more than one)
        relation matches; the message names the candidates and asks for ``model_hint``.
    """
    sql = template
    if hasattr(template, "sql") and hasattr(template, "location"):
        sql = template.sql
        location = location or template.location
        model_hint = model_hint or template.model_hint
    if not isinstance(sql, str):
        raise TypeError(
            f"suggest_fix: expected a SQL string or a Finding, got {type(template).__name__}"
        )
    if model_hint is not None and getattr(model_hint, "_meta", None) is None:
        raise TypeError(
            f"suggest_fix(model_hint=...): expected a dorm model class, got {model_hint!r}"
        )
    table_match, where_match = _FROM.search(sql), _WHERE.search(sql)
    if table_match is None or where_match is None:
        raise ValueError(
            f"suggest_fix: {sql[:120]!r} is not a read of related rows (no FROM table "
            f"filtered by a column); nothing to eager-load"
        )
    table = table_match.group(1)
    where_table, column = where_match.group(1), where_match.group(2)
    models = [model_hint] if model_hint is not None else _models()
    options = [
        (m, method, lookup)
        for m in models
        for method, lookup in _candidates(m, table, where_table, column)
    ]
    if len(options) == 1:
        model, method, lookup = options[0]
        return Fix(method, lookup, model, location)
    if not options:
        hint = f" from {model_hint.__name__}" if model_hint is not None else ""
        raise ValueError(
            f"suggest_fix: no relation{hint} reads {table!r} by {where_table}.{column}; pass "
            f"the model the loop iterates as model_hint="
        )
    names = ", ".join(f"{m.__name__}.{method}({lookup!r})" for m, method, lookup in options)
    raise ValueError(
        f"suggest_fix: several relations read {table!r} by {where_table}.{column}: {names}; "
        f"pass the model the loop iterates as model_hint="
    )
