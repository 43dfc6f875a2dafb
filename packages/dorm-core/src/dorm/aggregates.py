"""Aggregate functions: Count, Sum, Avg, Min, Max (``distinct=``, ``filter=Q(...)``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import FieldError
from dorm.expressions import SQL, Func, Star

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler
    from dorm.sql.query import Query

__all__ = ["Aggregate", "Avg", "Count", "Max", "Min", "Sum"]


class Aggregate(Func):
    """Base of Count, Sum, Avg, Min, Max; supports ``distinct=`` and ``filter=Q(...)``."""

    contains_aggregate = True
    allow_distinct = False

    def __init__(
        self, *expressions: Any, distinct: bool = False, filter: Any = None, **extra: Any
    ) -> None:
        if distinct and not self.allow_distinct:
            raise TypeError(f"{type(self).__name__} does not allow distinct")
        super().__init__(*expressions, **extra)
        self.distinct = distinct
        self.filter = filter

    def get_source_expressions(self) -> list[Any]:
        sources = list(self.source_expressions)
        return [*sources, self.filter] if self.filter is not None else sources

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        if self.filter is not None:
            *self.source_expressions, self.filter = exprs
        else:
            self.source_expressions = list(exprs)

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        clone = self.copy()
        clone.source_expressions = [
            e.resolve_expression(query, allow_joins, reuse, summarize)
            for e in self.source_expressions
        ]
        for expr in clone.source_expressions:
            if getattr(expr, "contains_aggregate", False):
                raise FieldError(
                    f"cannot compute {type(self).__name__}() of an aggregate ({expr!r})"
                )
        if self.filter is not None:
            assert query is not None
            # Reuse the joins of the aggregated expression: Count("books", filter=Q(books__x=1))
            # must count over the same join, not a second one that multiplies the rows.
            clone.filter = query.build_where(
                self.filter, outer_join=True, can_reuse=set(query.alias_map)
            )
        clone.contains_aggregate = True
        return clone

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        parts, params = self.compile_args(compiler)
        distinct = "DISTINCT " if self.distinct else ""
        sql = f"{self.function}({distinct}{', '.join(parts)})"
        if self.filter is not None:
            filter_sql, filter_params = compiler.compile(self.filter)
            if filter_sql:
                sql = f"{sql} FILTER (WHERE {filter_sql})"
                params.extend(filter_params)
        return sql, params

    def get_group_by_cols(self) -> list[Any]:
        return []


class Count(Aggregate):
    function = "COUNT"
    allow_distinct = True

    def __init__(self, expression: Any = "*", **extra: Any) -> None:
        if expression == "*":
            expression = Star()
        super().__init__(expression, **extra)

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import BigIntegerField

        return BigIntegerField()


class Sum(Aggregate):
    function = "SUM"
    allow_distinct = True


class Avg(Aggregate):
    function = "AVG"
    allow_distinct = True

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import DecimalField, FloatField

        source = super()._resolve_output_field()
        if isinstance(source, DecimalField):
            return source
        return FloatField()


class Min(Aggregate):
    function = "MIN"


class Max(Aggregate):
    function = "MAX"
