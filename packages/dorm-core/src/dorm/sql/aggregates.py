"""``aggregate()`` and ``count()``: directly, or over the query as a subquery when needed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.exceptions import EmptyResultSet, FieldError
from dorm.expressions import F, Ref
from dorm.sql.compiler import SQLCompiler, unmask

if TYPE_CHECKING:
    from dorm.sql.query import Query

__all__ = ["AggregateCompiler"]


class AggregateCompiler:
    """``aggregate()`` / ``count()``: directly, or over the query as a subquery when needed."""

    def __init__(self, query: Query, using: str, aggregates: dict[str, Any]) -> None:
        from dorm.db.connection import connections

        self.query = query
        self.connection = connections[using]
        self.aggregates = aggregates

    def count_statement(self) -> tuple[str, list[Any], Any] | None:
        """``(sql, params, sensitive)`` of a direct ``SELECT COUNT(*) ... WHERE ...``, or
        None when the count needs a subquery (slices, DISTINCT, GROUP BY, ...).

        :raises EmptyResultSet: the WHERE can match nothing.
        """
        query = self.query.clone()
        if self._needs_subquery(query):
            return None
        compiler = self._direct(query)
        sql, params = compiler.as_sql()
        return sql, params, compiler.sensitive

    @staticmethod
    def _needs_subquery(query: Query) -> bool:
        return (
            query.is_sliced
            or query.distinct
            or query.combinator is not None
            or query.group_by is not None
            or any(
                getattr(a, "contains_aggregate", False) for a in query.annotation_select.values()
            )
            # A condition on a window needs the wrapping subquery (dorm.sql.qualify).
            or any(getattr(a, "contains_over_clause", False) for a in query.annotations.values())
        )

    def _direct(self, query: Query) -> SQLCompiler:
        query.select = []
        query.values_select = ()
        query.default_cols = False
        query.select_related = False
        query.clear_ordering(force=True)
        query.annotation_select_mask = []
        for alias, agg in self.aggregates.items():
            query.add_annotation(agg, alias)
        query.annotation_select_mask = list(self.aggregates)
        query.group_by = None
        return query.get_compiler(connection=self.connection)

    def execute(self) -> dict[str, Any]:
        query = self.query.clone()
        if self._needs_subquery(query):
            return self._via_subquery(query)
        compiler = self._direct(query)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return self._empty()
        row = self.connection.fetchone(sql, params, compiler.sensitive)
        compiler.setup()
        return self._convert(compiler, row)

    def _empty(self) -> dict[str, Any]:
        return {
            a: (0 if type(agg).__name__ == "Count" else None) for a, agg in self.aggregates.items()
        }

    def _via_subquery(self, inner: Query) -> dict[str, Any]:
        from dorm.sql.query import Query

        if not inner.is_sliced:
            inner.clear_ordering(force=True)
        needed: dict[str, Any] = {}
        for agg in self.aggregates.values():
            for node in agg.walk() if hasattr(agg, "walk") else []:
                if isinstance(node, F) and node.name not in inner.annotations:
                    needed[node.name] = node
        for name in needed:
            inner.add_annotation(F(name), f"__agg_{name}")
        compiler = inner.get_compiler(connection=self.connection)
        try:
            inner_sql, inner_params = compiler.as_sql()
        except EmptyResultSet:
            return self._empty()
        sensitive = compiler.sensitive
        qn = self.connection.ops.quote_name
        fake = _SubqueryColumns(inner, needed)
        parts: list[str] = []
        outer_params: list[Any] = []
        outer_compiler = SQLCompiler(Query(None), self.connection)
        resolved: list[Any] = []
        for alias, agg in self.aggregates.items():
            expr = agg.resolve_expression(fake)
            sql, p = outer_compiler.compile(expr)
            parts.append(f"{sql} AS {qn(alias)}")
            outer_params.extend(p)
            resolved.append(expr)
        out, extra_sensitive = unmask(outer_params)
        sql = f"SELECT {', '.join(parts)} FROM ({inner_sql}) {qn('subquery')}"
        offset = len(out)
        row = self.connection.fetchone(
            sql, [*out, *inner_params], [*extra_sensitive, *(i + offset for i in sensitive)]
        )
        outer_compiler.select = [(e, a) for e, a in zip(resolved, self.aggregates, strict=True)]
        return self._convert(outer_compiler, row)

    def _convert(self, compiler: SQLCompiler, row: tuple[Any, ...] | None) -> dict[str, Any]:
        if row is None:
            return self._empty()
        values = list(row[-len(self.aggregates) :])
        offset = len(row) - len(self.aggregates)
        converters = dict(compiler.converters())
        result: dict[str, Any] = {}
        for i, alias in enumerate(self.aggregates):
            value = values[i]
            convert = converters.get(offset + i)
            if convert is not None and value is not None:
                value = convert(value)
            if value is None and type(self.aggregates[alias]).__name__ == "Count":
                value = 0
            result[alias] = value
        return result


class _SubqueryColumns:
    """Stands in for a Query when resolving aggregates over ``(inner) subquery``."""

    def __init__(self, inner: Query, needed: dict[str, Any]) -> None:
        self.inner = inner
        self.annotations = inner.annotations
        self.needed = needed

    def resolve_ref(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.inner.annotation_select and not name.startswith("__agg_"):
            return _SubCol(name, self.inner.annotations[name])
        if f"__agg_{name}" in self.inner.annotations:
            return _SubCol(f"__agg_{name}", self.inner.annotations[f"__agg_{name}"])
        raise FieldError(f"cannot aggregate over {name!r} here")

    def build_where(self, q: Any, outer_join: bool = False, can_reuse: Any = None) -> Any:
        raise FieldError("aggregate(filter=...) over a sliced or grouped query is not supported")


class _SubCol(Ref):
    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return f"{compiler.quote_name('subquery')}.{compiler.quote_name(self.refs)}", []

    def get_group_by_cols(self) -> list[Any]:
        return []
