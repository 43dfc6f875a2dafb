"""WHERE / HAVING trees: AND / OR / NOT over lookups and boolean expressions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dorm.exceptions import EmptyResultSet

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.sql.compiler import SQLCompiler

__all__ = ["AND", "OR", "FullResultSet", "WhereNode"]

AND = "AND"
OR = "OR"


class FullResultSet(Exception):
    """Raised while compiling a condition that matches every row."""


class WhereNode:
    """A node of conditions; ``negated`` wraps it in NOT (...)."""

    conditional = True

    def __init__(
        self, children: Iterable[Any] | None = None, connector: str = AND, negated: bool = False
    ) -> None:
        self.children: list[Any] = list(children or [])
        self.connector = connector
        self.negated = negated

    def add(self, child: Any) -> None:
        if child is not None:
            self.children.append(child)

    @property
    def contains_aggregate(self) -> bool:
        return any(getattr(c, "contains_aggregate", False) for c in self.children)

    def walk(self) -> Iterable[Any]:
        yield self
        for child in self.children:
            if hasattr(child, "walk"):
                yield from child.walk()
            else:
                yield child

    def split_having(self) -> tuple[WhereNode | None, WhereNode | None]:
        """Separate conditions on aggregates (HAVING) from the rest (WHERE)."""
        if not self.contains_aggregate:
            return self, None
        if self.connector == OR or self.negated:
            return None, self
        where = WhereNode(connector=AND)
        having = WhereNode(connector=AND)
        for child in self.children:
            if getattr(child, "contains_aggregate", False):
                having.children.append(child)
            else:
                where.children.append(child)
        return (where if where.children else None), (having if having.children else None)

    def get_group_by_cols(self) -> list[Any]:
        cols: list[Any] = []
        for child in self.children:
            cols.extend(child.get_group_by_cols())
        return cols

    def get_source_expressions(self) -> list[Any]:
        return list(self.children)

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.children = list(exprs)

    def clone(self) -> WhereNode:
        children = self.children
        if not children:  # an unfiltered query's WHERE: nothing to walk
            return WhereNode(None, self.connector, self.negated)
        return WhereNode(
            [c.clone() if isinstance(c, WhereNode) else c for c in children],
            self.connector,
            self.negated,
        )

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        """Render; raise EmptyResultSet when nothing can match, FullResultSet when all do."""
        parts: list[str] = []
        params: list[Any] = []
        full_needed, empty_needed = (
            (len(self.children), 1) if self.connector == AND else (1, len(self.children))
        )
        for child in self.children:
            try:
                sql, p = compiler.compile(child)
            except EmptyResultSet:
                empty_needed -= 1
            except FullResultSet:
                full_needed -= 1
            else:
                if sql:
                    parts.append(sql)
                    params.extend(p)
                else:
                    full_needed -= 1
            if empty_needed == 0:
                if self.negated:
                    raise FullResultSet
                raise EmptyResultSet
            if full_needed == 0:
                if self.negated:
                    raise EmptyResultSet
                raise FullResultSet
        if not parts:
            if self.negated:
                raise EmptyResultSet
            raise FullResultSet
        joined = f" {self.connector} ".join(parts)
        if self.negated:
            return f"NOT ({joined})", params
        if len(parts) > 1:
            return f"({joined})", params
        return joined, params

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(repr(c) for c in self.children)
        return f"<WhereNode {'NOT ' if self.negated else ''}({inner})>"
