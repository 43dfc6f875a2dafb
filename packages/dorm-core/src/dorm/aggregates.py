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

    allow_default = True

    def __init__(
        self,
        *expressions: Any,
        distinct: bool = False,
        filter: Any = None,
        default: Any = None,
        **extra: Any,
    ) -> None:
        if distinct and not self.allow_distinct:
            raise TypeError(f"{type(self).__name__} does not allow distinct")
        if default is not None and not self.allow_default:
            raise TypeError(f"{type(self).__name__} does not allow default (it is never NULL)")
        super().__init__(*expressions, **extra)
        self.distinct = distinct
        self.filter = filter
        # What to give instead of NULL (no rows): Sum("x", default=0) is COALESCE(SUM(x), 0).
        self.default = default

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
        if hasattr(self.default, "resolve_expression"):
            clone.default = self.default.resolve_expression(query, allow_joins, reuse, summarize)
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
        if self.default is not None:
            default_sql, default_params = self._default_sql(compiler, connection)
            sql = f"COALESCE({sql}, {default_sql})"
            params.extend(default_params)
        return sql, params

    def _default_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        default = self.default
        if hasattr(default, "resolve_expression"):
            return compiler.compile(default)
        # A plain value, bound as the aggregate's own type (a datetime for Max("at")).
        from dorm.expressions import bind

        return connection.ops.placeholder, [bind(self.output_field, default, connection)]

    def empty_result(self) -> Any:
        """What the aggregate of no rows is: ``default`` when a plain value, else None."""
        default = self.default
        if default is None or hasattr(default, "resolve_expression"):
            return getattr(default, "value", None)
        return default

    def get_group_by_cols(self) -> list[Any]:
        return []


class Count(Aggregate):
    function = "COUNT"
    allow_distinct = True
    allow_default = False

    def empty_result(self) -> Any:
        return 0

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
