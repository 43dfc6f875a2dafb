"""Table references of a query: the base table, joins, and the paths relations describe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.models.options import Options
    from dorm.sql.compiler import SQLCompiler

__all__ = ["INNER", "LOUTER", "BaseTable", "Join", "JoinInfo", "PathInfo"]

INNER = "INNER JOIN"
LOUTER = "LEFT OUTER JOIN"


class PathInfo(NamedTuple):
    """One hop across a relation: from one model's table to another's."""

    from_opts: Options
    to_opts: Options
    target_fields: tuple[Field, ...]
    join_field: Any
    join_cols: tuple[tuple[str, str], ...]
    m2m: bool  # multi-valued: the hop can multiply rows
    direct: bool  # a forward foreign key on the "from" model
    nullable: bool


class JoinInfo(NamedTuple):
    final_field: Any
    targets: tuple[Field, ...]
    opts: Options
    joins: list[str]
    path: list[PathInfo]

    @property
    def multi_valued(self) -> bool:
        return any(p.m2m for p in self.path)


class BaseTable:
    """The FROM table."""

    join_type: str | None = None
    parent_alias: str | None = None

    def __init__(self, table_name: str, alias: str) -> None:
        self.table_name = table_name
        self.table_alias = alias

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        qn = compiler.quote_name
        if self.table_alias == self.table_name:
            return qn(self.table_name), []
        return f"{qn(self.table_name)} {qn(self.table_alias)}", []

    def relabeled_clone(self, change_map: dict[str, str]) -> BaseTable:
        return BaseTable(self.table_name, change_map.get(self.table_alias, self.table_alias))

    def identity(self) -> tuple[Any, ...]:
        return (self.table_name, None, ())

    def __repr__(self) -> str:
        return f"BaseTable({self.table_name}, {self.table_alias})"


class Join:
    """``<join_type> table alias ON parent.lhs = alias.rhs [AND ...]``.

    A join made for a FilteredRelation carries the relation's alias (part of its identity,
    so plain joins to the same table stay separate) and its condition, added to ON.
    """

    filtered_relation: str | None = None
    condition: Any = None

    def __init__(
        self,
        table_name: str,
        parent_alias: str,
        table_alias: str,
        join_type: str,
        join_cols: tuple[tuple[str, str], ...],
        nullable: bool,
        join_field: Any = None,
    ) -> None:
        self.table_name = table_name
        self.parent_alias = parent_alias
        self.table_alias = table_alias
        self.join_type = join_type
        self.join_cols = join_cols
        self.nullable = nullable
        self.join_field = join_field

    def identity(self) -> tuple[Any, ...]:
        if self.filtered_relation is not None:
            return (self.table_name, self.parent_alias, self.join_cols, self.filtered_relation)
        return (self.table_name, self.parent_alias, self.join_cols)

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        qn = compiler.quote_name
        on = " AND ".join(
            f"{qn(self.parent_alias)}.{qn(lhs)} = {qn(self.table_alias)}.{qn(rhs)}"
            for lhs, rhs in self.join_cols
        )
        params: list[Any] = []
        if self.condition:
            from dorm.sql.where import FullResultSet

            try:
                condition, params = compiler.compile(self.condition)
            except FullResultSet:
                condition = ""
            if condition:
                on = f"{on} AND ({condition})"
        alias = "" if self.table_alias == self.table_name else f" {qn(self.table_alias)}"
        return f"{self.join_type} {qn(self.table_name)}{alias} ON ({on})", params

    def _copy(self, parent: str, alias: str, join_type: str) -> Join:
        clone = Join(
            self.table_name,
            parent,
            alias,
            join_type,
            self.join_cols,
            self.nullable,
            self.join_field,
        )
        if self.filtered_relation is not None:
            clone.filtered_relation = self.filtered_relation
            clone.condition = self.condition
        return clone

    def relabeled_clone(self, change_map: dict[str, str]) -> Join:
        clone = self._copy(
            change_map.get(self.parent_alias, self.parent_alias),
            change_map.get(self.table_alias, self.table_alias),
            self.join_type,
        )
        if self.condition:
            from dorm.sql.query import relabeled

            clone.condition = relabeled(self.condition, change_map)
        return clone

    def promote(self) -> Join:
        return self._copy(self.parent_alias, self.table_alias, LOUTER)

    def __repr__(self) -> str:
        return f"Join({self.join_type} {self.table_name} {self.table_alias} <- {self.parent_alias})"
