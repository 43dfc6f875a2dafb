"""Conditions on window annotations: ``annotate(r=Window(Rank(), ...)).filter(r__lte=3)``.

SQL evaluates WHERE before window functions, so such a condition cannot sit next to the
window. As in Django 4.2, the query becomes a subquery that selects its columns, the
window values and the ordering terms under generated aliases; the outer query keeps the
rows matching the window conditions, then orders and slices. Conditions without windows
stay inside (and filter the rows the windows see, as SQL does).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from dorm.exceptions import EmptyResultSet
from dorm.expressions import Col, OrderBy, Ref
from dorm.sql.where import AND, FullResultSet, WhereNode

if TYPE_CHECKING:
    from dorm.sql.compiler import SQLCompiler
    from dorm.sql.query import Query

__all__ = ["has_window_condition", "qualify_sql"]


def _has_window(node: Any) -> bool:
    walk = getattr(node, "walk", None)
    if walk is None:
        return False
    return any(getattr(n, "contains_over_clause", False) for n in walk())


def has_window_condition(query: Query) -> bool:
    """True when a WHERE condition of ``query`` reads a window expression."""
    if not any(getattr(a, "contains_over_clause", False) for a in query.annotations.values()):
        return False
    return any(_has_window(child) for child in query.where.children)


def _split(where: WhereNode) -> tuple[WhereNode, WhereNode]:
    inner = WhereNode(connector=where.connector, negated=where.negated)
    outer = WhereNode(connector=AND)
    if where.connector != AND or where.negated:
        outer.add(where)  # the whole tree reads a window somewhere: evaluate it outside
        return inner, outer
    for child in where.children:
        (outer if _has_window(child) else inner).add(child)
    return inner, outer


class _Columns:
    """The extra columns of the inner SELECT, one alias per distinct compiled expression."""

    def __init__(self, compiler: SQLCompiler) -> None:
        self.compiler = compiler
        self.items: list[tuple[Any, str]] = []
        self.by_sql: dict[tuple[str, tuple[Any, ...]], str] = {}

    def ref(self, expr: Any, prefix: str) -> Ref:
        sql, params = self.compiler.compile(expr)
        key = (sql, tuple(map(repr, params)))
        alias = self.by_sql.get(key)
        if alias is None:
            alias = self.by_sql[key] = f"__{prefix}{len(self.items)}"
            self.items.append((expr, alias))
        return Ref(alias, expr)


def _swap(node: Any, columns: _Columns) -> Any:
    """``node`` with every window and column replaced by a reference to an inner column."""
    if getattr(node, "contains_over_clause", False) or isinstance(node, Col):
        return columns.ref(node, "q")
    if isinstance(node, WhereNode):
        clone = node.clone()
        clone.children = [_swap(c, columns) for c in node.children]
        return clone
    sources = node.get_source_expressions() if hasattr(node, "get_source_expressions") else []
    if not sources:
        return node
    clone = copy.copy(node)
    clone.set_source_expressions([_swap(s, columns) for s in sources])
    return clone


def qualify_sql(compiler: SQLCompiler, with_limits: bool) -> tuple[str, list[Any]]:
    """The SELECT of ``compiler`` (set up) as ``SELECT cols FROM (inner) WHERE <windows>``."""
    from dorm.sql.compiler import SQLCompiler

    query = compiler.query
    order_by = compiler.get_order_by()
    compiler.setup()
    inner_query = query.clone()
    inner_query.where, outer_where = _split(query.where)
    inner_query.clear_ordering(force=True)
    inner_query.low_mark, inner_query.high_mark = 0, None
    inner = SQLCompiler(inner_query, compiler.connection)
    inner.setup()
    columns = _Columns(inner)
    select = [(expr, f"__c{i}") for i, (expr, _alias) in enumerate(inner.select)]
    condition = _swap(outer_where, columns)
    orderings: list[Any] = []
    for term in order_by:
        if isinstance(term, str):  # "?" -> RANDOM()
            orderings.append(term)
            continue
        expr = term.expression
        if isinstance(expr, Ref) and expr.refs in inner.annotation_col_map:
            ref = Ref(f"__c{inner.annotation_col_map[expr.refs]}", expr.source)
        else:
            ref = columns.ref(expr.source if isinstance(expr, Ref) else expr, "o")
        orderings.append(OrderBy(ref, term.descending, term.nulls_first, term.nulls_last))
    inner.select = [*select, *columns.items]
    inner_sql, inner_params = inner._as_sql(with_limits=False, subquery=False)
    qn = compiler.quote_name
    cols = ", ".join(qn(alias) for _expr, alias in select) or "1"
    try:
        where_sql, where_params = compiler.compile(condition)
    except FullResultSet:
        where_sql, where_params = "", []
    except EmptyResultSet:
        raise
    sql = f"SELECT {cols} FROM ({inner_sql}) {qn('qualify')}"
    if where_sql:
        sql = f"{sql} WHERE {where_sql}"
    params = [*inner_params, *where_params]
    if orderings:
        parts = []
        for term in orderings:
            if isinstance(term, str):
                parts.append(term)
                continue
            part, p = compiler.compile(term)
            parts.append(part)
            params.extend(p)
        sql = f"{sql} ORDER BY {', '.join(parts)}"
    if with_limits and query.is_sliced:
        sql = f"{sql} {compiler.ops.limit_offset_sql(query.low_mark, query.high_mark)}"
    return sql, params
