"""The SQL compiler: turns a Query into SQL and bound parameters for one connection.

One compiler for every vendor; vendor differences live in the backend's operations
object and in ``as_<vendor>`` methods or plugin overrides that ``compile()`` dispatches to.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dorm import plugins
from dorm.exceptions import EmptyResultSet, FieldError, TransactionManagementError
from dorm.expressions import Col, F, Masked, OrderBy, Ref, bind
from dorm.sql.datastructures import Join
from dorm.sql.where import FullResultSet

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.sql.query import Query

__all__ = ["AggregateCompiler", "SQLCompiler", "delete_sql", "insert", "update_sql"]

_dispatch: dict[tuple[type, str], Callable[..., Any]] = {}
_dispatch_source: list[Any] = [None]


def _renderer(node_class: type, vendor: str) -> Callable[..., Any] | None:
    ext = plugins.extensions()
    if _dispatch_source[0] is not ext:
        _dispatch.clear()
        _dispatch_source[0] = ext
    key = (node_class, vendor)
    try:
        return _dispatch[key]
    except KeyError:
        pass
    found = ext.renderer(node_class, vendor)
    if found is None:
        method = getattr(node_class, f"as_{vendor}", None)
        chosen: Callable[..., Any] = method if method is not None else node_class.as_sql  # type: ignore[attr-defined]
        _dispatch[key] = chosen
        return chosen
    _dispatch[key] = lambda node, compiler, connection: found(node, compiler, connection)
    return _dispatch[key]


def unmask(params: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """Unwrap Masked values; return the driver params and the sensitive positions."""
    out: list[Any] = []
    sensitive: list[int] = []
    for i, p in enumerate(params):
        if type(p) is Masked:
            out.append(p.value)
            sensitive.append(i)
        else:
            out.append(p)
    return out, sensitive


class SQLCompiler:
    """Compiles SELECT queries and turns their rows into Python values."""

    def __init__(self, query: Query, connection: BaseDatabaseWrapper) -> None:
        self.query = query.clone()
        self.connection = connection
        self.ops = connection.ops
        self.quote_cache: dict[str, str] = {}
        self.select: list[tuple[Any, str | None]] = []
        self.klass_info: dict[str, Any] | None = None
        self.annotation_col_map: dict[str, int] = {}
        self.col_count = 0
        self.sensitive: list[int] = []
        self._setup_done = False

    def quote_name(self, name: str) -> str:
        cached = self.quote_cache.get(name)
        if cached is None:
            cached = self.quote_cache[name] = self.ops.quote_name(name)
        return cached

    def compile(self, node: Any) -> tuple[str, list[Any]]:
        render = _renderer(type(node), self.connection.vendor)
        assert render is not None
        return render(node, self, self.connection)  # type: ignore[no-any-return]

    # -- selection -------------------------------------------------------------------------------

    def setup(self) -> None:
        if self._setup_done:
            return
        self._setup_done = True
        query = self.query
        if query.combinator and query.combined_queries:
            # A UNION's columns are those of its first part; iterables read them before SQL.
            first = query.combined_queries[0].get_compiler(connection=self.connection)
            first.setup()
            self.select, self.klass_info = first.select, first.klass_info
            self.annotation_col_map = first.annotation_col_map
            self.col_count = first.col_count
            return
        select: list[tuple[Any, str | None]] = []
        if query.select or query.values_select:
            select = [(expr, None) for expr in query.select]
        elif query.model is not None and query.default_cols:
            alias = query.get_initial_alias()
            fields = self._loaded_fields(query.model, query.deferred_loading)
            start = len(select)
            select.extend((Col(alias, f), None) for f in fields)
            self.klass_info = {
                "model": query.model,
                "attnames": tuple(f.attname for f in fields),
                "fields": fields,
                "start": start,
                "end": len(select),
                "related": [],
            }
            if query.select_related:
                self._add_related(
                    query.model, alias, query.select_related, select, self.klass_info, 0, set()
                )
        for alias_name, expr in query.annotation_select.items():
            self.annotation_col_map[alias_name] = len(select)
            select.append((expr, alias_name))
        self.select = select
        self.col_count = len(select)

    @staticmethod
    def _loaded_fields(model: type[Model], deferred: tuple[frozenset[str], bool]) -> list[Field]:
        names, defer = deferred
        fields = model._meta.concrete_fields
        if not names:
            return list(fields)
        pk = model._meta.pk
        if defer:
            return [f for f in fields if f.name not in names and f.attname not in names or f is pk]
        return [f for f in fields if f.name in names or f.attname in names or f is pk]

    def _add_related(
        self,
        model: type[Model],
        alias: str,
        requested: bool | dict[str, Any],
        select: list[tuple[Any, str | None]],
        klass_info: dict[str, Any],
        depth: int,
        seen: set[Any],
    ) -> None:
        from dorm.sql.datastructures import INNER, LOUTER

        if depth > 5:
            return
        opts = model._meta
        if requested is True:
            candidates = [f for f in opts.concrete_fields if f.is_relation and not f.null]
            names: dict[str, Any] = {f.name: True for f in candidates}
        else:
            names = dict(requested)  # type: ignore[arg-type]
        for name, sub in names.items():
            try:
                field = opts.get_field(name)
            except Exception:
                field = None
            if (
                field is None
                or not getattr(field, "is_relation", False)
                or field.many_to_many
                or (
                    not getattr(field, "concrete", False)
                    and not getattr(field, "one_to_one", False)
                )
            ):
                choices = [f.name for f in opts.concrete_fields if f.is_relation]
                raise FieldError(
                    f"{opts.object_name}: select_related({name!r}) must name a foreign key or "
                    f"one-to-one field. Choices are: {', '.join(choices) or '(none)'}"
                )
            if (field, depth) in seen:
                continue
            seen.add((field, depth))
            info = field.get_path_info()[0]
            parent = self.query.alias_map[alias]
            left = info.nullable or parent.join_type == LOUTER
            join = Join(
                info.to_opts.db_table,
                alias,
                "",
                LOUTER if left else INNER,
                info.join_cols,
                info.nullable,
                field,
            )
            new_alias = self.query.join(join, outer=left)
            related_model = info.to_opts.model
            fields = list(related_model._meta.concrete_fields)
            start = len(select)
            select.extend((Col(new_alias, f), None) for f in fields)
            child = {
                "model": related_model,
                "attnames": tuple(f.attname for f in fields),
                "fields": fields,
                "start": start,
                "end": len(select),
                "related": [],
                "field": field,
                "reverse": not getattr(field, "concrete", False),
            }
            klass_info["related"].append(child)
            if sub is True and requested is True:
                self._add_related(related_model, new_alias, True, select, child, depth + 1, seen)
            elif isinstance(sub, dict) and sub:
                self._add_related(related_model, new_alias, sub, select, child, depth + 1, seen)

    # -- SQL -------------------------------------------------------------------------------------

    def get_order_by(self) -> list[Any]:
        query = self.query
        if query.order_by:
            items: Sequence[Any] = query.order_by
        elif query.default_ordering and query.model is not None and query.group_by is None:
            # Meta.ordering is ignored in GROUP BY queries (as in Django): its columns would
            # join the GROUP BY and split the groups.
            items = query.opts.ordering
        else:
            items = ()
        result: list[Any] = []
        for item in items:
            if hasattr(item, "resolve_expression"):
                expr = item if isinstance(item, OrderBy) else OrderBy(item)
                expr = expr.resolve_expression(query)
                result.append(expr)
                continue
            if item == "?":
                result.append("RANDOM()")
                continue
            descending = item.startswith("-")
            name = item.lstrip("-+")
            if name in query.annotations:
                if name in query.annotation_select:
                    result.append(OrderBy(Ref(name, query.annotations[name]), descending))
                else:
                    result.append(OrderBy(query.annotations[name], descending))
                continue
            if query.combinator:
                result.append(OrderBy(Ref(name, None), descending))
                continue
            col = F(name).resolve_expression(query)
            field = getattr(col, "output_field", None)
            if getattr(field, "is_relation", False) and field is not None:
                related_ordering = field.related_model._meta.ordering
                if related_ordering and isinstance(col, Col):
                    for sub in related_ordering:
                        if isinstance(sub, str):
                            sub_desc = sub.startswith("-") ^ descending
                            sub_col = F(f"{name}__{sub.lstrip('-+')}").resolve_expression(query)
                            result.append(OrderBy(sub_col, sub_desc))
                    continue
            result.append(OrderBy(col, descending))
        return result

    def get_from_clause(self) -> tuple[list[str], list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        query = self.query
        if not query.alias_map:
            query.get_initial_alias()
        for alias, table in query.alias_map.items():
            if query.alias_refcount.get(alias, 0) <= 0 and isinstance(table, Join):
                continue
            sql, p = self.compile(table)
            if isinstance(table, Join):
                parts[-1] = f"{parts[-1]} {sql}" if parts else sql
            else:
                parts.append(sql)
            params.extend(p)
        return parts, params

    def as_sql(self, with_limits: bool = True, subquery: bool = False) -> tuple[str, list[Any]]:
        """Return ``(sql, params)``; Masked params are unwrapped and noted in ``self.sensitive``."""
        sql, params = self._as_sql(with_limits, subquery)
        if subquery:
            return sql, params
        out, self.sensitive = unmask(params)
        return sql, out

    def _as_sql(self, with_limits: bool, subquery: bool) -> tuple[str, list[Any]]:
        query = self.query
        if query.is_empty_query:
            raise EmptyResultSet
        if query.combinator:
            return self._combinator_sql(with_limits)
        order_by = self.get_order_by()
        self.setup()
        params: list[Any] = []
        out_cols: list[str] = []
        for expr, alias in self.select:
            sql, p = self.compile(expr)
            out_cols.append(f"{sql} AS {self.quote_name(alias)}" if alias else sql)
            params.extend(p)
        if not out_cols:
            out_cols = ["1"]
        order_sql: list[str] = []
        order_params: list[Any] = []
        for term in order_by:
            if isinstance(term, str):
                order_sql.append(term)
                continue
            sql, p = self.compile(term)
            order_sql.append(sql)
            order_params.extend(p)
            if query.distinct and not query.distinct_fields:
                inner_sql = self.compile(term.expression)[0]
                if not any(inner_sql == c.split(" AS ")[0] for c in out_cols) and not isinstance(
                    term.expression, Ref
                ):
                    out_cols.append(inner_sql)
                    params.extend(self.compile(term.expression)[1])
        from_parts, from_params = self.get_from_clause()
        where, having = query.where.split_having()
        where_sql, where_params = self._condition(where)
        having_sql, having_params = self._condition(having)
        distinct = ""
        if query.distinct:
            if query.distinct_fields:
                if self.connection.vendor != "postgresql":
                    from dorm.exceptions import NotSupportedError

                    raise NotSupportedError("distinct(*fields) (DISTINCT ON) is PostgreSQL-only")
                cols = [
                    self.compile(F(n).resolve_expression(query))[0] for n in query.distinct_fields
                ]
                distinct = f"DISTINCT ON ({', '.join(cols)}) "
            else:
                distinct = "DISTINCT "
        clauses = [f"SELECT {distinct}{', '.join(out_cols)}", f"FROM {', '.join(from_parts)}"]
        if where_sql:
            clauses.append(f"WHERE {where_sql}")
        group_params: list[Any] = []
        if query.group_by is not None:
            group_sql, group_params = self._group_by(order_by, having)
            if group_sql:
                clauses.append(f"GROUP BY {', '.join(group_sql)}")
        if having_sql:
            clauses.append(f"HAVING {having_sql}")
        if order_sql and not (subquery and not query.is_sliced):
            clauses.append(f"ORDER BY {', '.join(order_sql)}")
        else:
            order_params = []
        if with_limits and query.is_sliced:
            clauses.append(self.ops.limit_offset_sql(query.low_mark, query.high_mark))
        if query.select_for_update and self.connection.supports_select_for_update:
            of = [self.quote_name(self._alias_of(n)) for n in query.select_for_update_of]
            clauses.append(
                self.ops.for_update_sql(
                    query.select_for_update_nowait, query.select_for_update_skip_locked, of
                )
            )
        text = " ".join(clauses)
        all_params = [
            *params,
            *from_params,
            *where_params,
            *group_params,
            *having_params,
            *order_params,
        ]
        if query.cte is not None and not subquery:
            cte_sql, cte_params = query.cte
            text = f"{cte_sql} {text}"
            all_params = [*cte_params, *all_params]
        return text, all_params

    def _alias_of(self, name: str) -> str:
        if name == "self":
            return self.query.base_alias
        info, _rest = self.query.setup_joins(
            name.split("__"), self.query.opts, self.query.get_initial_alias()
        )
        return info.joins[-1]

    def _condition(self, node: Any) -> tuple[str, list[Any]]:
        if node is None:
            return "", []
        try:
            return self.compile(node)
        except FullResultSet:
            return "", []

    def _group_by(self, order_by: list[Any], having: Any) -> tuple[list[str], list[Any]]:
        query = self.query
        expressions: list[Any] = []
        if isinstance(query.group_by, tuple):
            expressions.extend(query.group_by)
        for expr, alias in self.select:
            if getattr(expr, "contains_aggregate", False):
                continue
            if alias is not None and expr.get_group_by_cols() == [expr]:
                expressions.append(Ref(alias, expr))
            else:
                expressions.extend(expr.get_group_by_cols())
        for term in order_by:
            if (
                not isinstance(term, str)
                and not getattr(term.expression, "contains_aggregate", False)
                and not isinstance(term.expression, Ref)
            ):
                expressions.extend(term.expression.get_group_by_cols())
        if having is not None:
            expressions.extend(having.get_group_by_cols())
        seen: set[str] = set()
        sql_parts: list[str] = []
        params: list[Any] = []
        for expr in expressions:
            sql, p = self.compile(expr)
            if sql in seen or sql == "1":
                continue
            seen.add(sql)
            sql_parts.append(sql)
            params.extend(p)
        return sql_parts, params

    def _combinator_sql(self, with_limits: bool) -> tuple[str, list[Any]]:
        query = self.query
        parts: list[str] = []
        params: list[Any] = []
        for sub in query.combined_queries:
            compiler = sub.get_compiler(connection=self.connection)
            compiler.query.clear_ordering(force=True)
            try:
                sql, p = compiler._as_sql(with_limits=False, subquery=False)
            except EmptyResultSet:
                continue
            if not self.select:
                self.select = compiler.select
                self.klass_info = compiler.klass_info
                self.annotation_col_map = compiler.annotation_col_map
                self.col_count = compiler.col_count
            parts.append(sql)
            params.extend(p)
        if not parts:
            raise EmptyResultSet
        joiner = f" {query.combinator.upper()}{' ALL' if query.combinator_all else ''} "  # type: ignore[union-attr]
        sql = joiner.join(parts)
        order = []
        names = list(query.values_select) or (
            list(self.klass_info["attnames"]) if self.klass_info else []
        )
        names = [*names, *query.annotation_select]
        for item in query.order_by:
            if not isinstance(item, str):
                raise FieldError("order_by() on a union takes field names only")
            name = item.lstrip("-+")
            pos = None
            for i, candidate in enumerate(names):
                if candidate == name or (name == "pk" and candidate == query.opts.pk.attname):  # type: ignore[union-attr]
                    pos = i + 1
            if pos is None:
                raise FieldError(f"cannot order a union by {name!r}: it is not selected")
            order.append(f"{pos} {'DESC' if item.startswith('-') else 'ASC'}")
        if order:
            sql = f"{sql} ORDER BY {', '.join(order)}"
        if with_limits and query.is_sliced:
            sql = f"{sql} {self.ops.limit_offset_sql(query.low_mark, query.high_mark)}"
        return sql, params

    # -- execution -------------------------------------------------------------------------------

    def _check_for_update(self) -> None:
        if self.query.select_for_update and not self.connection.in_atomic_block:
            raise TransactionManagementError(
                "select_for_update() must run inside transaction.atomic(): the row locks "
                "would be released as soon as the statement ends"
            )

    def execute(self) -> list[tuple[Any, ...]]:
        """Run the SELECT and return its rows (an impossible WHERE returns [] unsent)."""
        self._check_for_update()
        try:
            sql, params = self.as_sql()
        except EmptyResultSet:
            return []
        return self.connection.fetchall(sql, params, self.sensitive)

    def chunks(self, chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
        self._check_for_update()
        try:
            sql, params = self.as_sql()
        except EmptyResultSet:
            return
        yield from self.connection.stream(sql, params, chunk_size, self.sensitive)

    def has_results(self) -> bool:
        try:
            sql, params = self.as_sql()
        except EmptyResultSet:
            return False
        return self.connection.fetchone(sql, params, self.sensitive) is not None

    def explain(self, **options: Any) -> str:
        sql, params = self.as_sql()
        prefix = self.ops.explain_prefix(**options)
        rows = self.connection.fetchall(f"{prefix} {sql}", params, self.sensitive)
        return "\n".join(
            " ".join(str(c) for c in row) if len(row) > 1 else str(row[0]) for row in rows
        )

    def converters(self) -> list[tuple[int, Callable[[Any], Any]]]:
        """One converter per column that needs one, chosen once per query."""
        result: list[tuple[int, Callable[[Any], Any]]] = []
        from dorm.models.fields import Field

        for i, (expr, _alias) in enumerate(self.select):
            field = getattr(expr, "output_field", None)
            if field is None:
                continue
            if not isinstance(expr, Col) and field.get_internal_type() == "DecimalField":
                # Computed decimals (Avg, Sum, arithmetic) keep their precision; only
                # columns are quantized to the field's decimal places.
                backend: Callable[[Any], Any] | None = _to_decimal
            else:
                backend = self.ops.converter_for(field)
            custom = (
                field.from_db_value
                if type(field).from_db_value is not Field.from_db_value
                else None
            )
            if backend is not None and custom is not None:
                result.append((i, _chain(backend, custom)))
            elif backend is not None or custom is not None:
                result.append((i, backend or custom))  # type: ignore[arg-type]
        return result


def _to_decimal(value: Any) -> Any:
    return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))


def _chain(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: second(first(value))


class AggregateCompiler:
    """``aggregate()`` / ``count()``: directly, or over the query as a subquery when needed."""

    def __init__(self, query: Query, using: str, aggregates: dict[str, Any]) -> None:
        from dorm.db.connection import connections

        self.query = query
        self.connection = connections[using]
        self.aggregates = aggregates

    def execute(self) -> dict[str, Any]:
        query = self.query.clone()
        needs_subquery = (
            query.is_sliced
            or query.distinct
            or query.combinator is not None
            or query.group_by is not None
            or any(
                getattr(a, "contains_aggregate", False) for a in query.annotation_select.values()
            )
        )
        if not needs_subquery:
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
            compiler = query.get_compiler(connection=self.connection)
            try:
                sql, params = compiler.as_sql()
            except EmptyResultSet:
                return self._empty()
            row = self.connection.fetchone(sql, params, compiler.sensitive)
            compiler.setup()
            return self._convert(compiler, row)
        return self._via_subquery(query)

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


# -- writes ----------------------------------------------------------------------------------------


def insert(
    model: type[Model],
    objs: Sequence[Model],
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field] = (),
    on_conflict: str | None = None,
    unique_fields: Sequence[Field] = (),
    update_fields: Sequence[Field] = (),
    batch_size: int | None = None,
) -> list[tuple[Any, ...]]:
    """INSERT ``objs`` in multi-row batches; return the RETURNING rows (one per object)."""
    ops = connection.ops
    qn = ops.quote_name
    table = qn(model._meta.db_table)
    ph = ops.placeholder
    returning = returning_fields if connection.supports_returning else ()
    if not fields and connection.vendor == "sqlite" and len(objs) > 1:
        rows: list[tuple[Any, ...]] = []
        for obj in objs:
            rows.extend(
                insert(
                    model,
                    [obj],
                    fields,
                    connection,
                    returning_fields,
                    on_conflict,
                    unique_fields,
                    update_fields,
                )
            )
        return rows
    size = ops.bulk_batch_size(max(1, len(fields)), len(objs))
    if batch_size:
        size = min(size, batch_size)
    cols = ", ".join(qn(f.column) for f in fields)
    adapters = [ops.adapter_for(f) for f in fields]
    sensitive_cols = [f.sensitive for f in fields]
    tail = ""
    if on_conflict == "ignore":
        tail = " ON CONFLICT DO NOTHING"
    elif on_conflict == "update":
        target = ", ".join(qn(f.column) for f in unique_fields)
        sets = ", ".join(f"{qn(f.column)} = EXCLUDED.{qn(f.column)}" for f in update_fields)
        tail = (
            f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
            if sets
            else (f" ON CONFLICT ({target}) DO NOTHING")
        )
    if returning:
        tail += " RETURNING " + ", ".join(qn(f.column) for f in returning)
    result: list[tuple[Any, ...]] = []
    n = len(fields)
    for start in range(0, len(objs), size):
        batch = objs[start : start + size]
        params: list[Any] = []
        sensitive: list[int] = []
        for obj in batch:
            for i, field in enumerate(fields):
                value = field.get_db_prep_value(field.pre_save(obj, True))
                adapter = adapters[i]
                if adapter is not None:
                    value = adapter(value)
                if sensitive_cols[i]:
                    sensitive.append(len(params))
                params.append(value)
        if n:
            row = f"({', '.join([ph] * n)})"
            sql = f"INSERT INTO {table} ({cols}) VALUES {', '.join([row] * len(batch))}{tail}"
        elif connection.vendor == "postgresql" and len(batch) > 1:
            pk = model._meta.pk
            assert pk is not None
            values = ", ".join(["(DEFAULT)"] * len(batch))
            sql = f"INSERT INTO {table} ({qn(pk.column)}) VALUES {values}{tail}"
        else:
            sql = f"INSERT INTO {table} DEFAULT VALUES{tail}"
        if returning:
            result.extend(connection.fetchall(sql, params, sensitive))
        else:
            connection.execute(sql, params, sensitive)
    return result


def update_sql(
    query: Query, values: Sequence[tuple[Field, Any]], connection: BaseDatabaseWrapper
) -> tuple[str, list[Any], list[int]]:
    """``UPDATE table SET ... WHERE ...``; joins in the filter become ``pk IN (subquery)``."""
    query = query.clone()
    qn = connection.ops.quote_name
    opts = query.opts
    table = opts.db_table
    compiler = SQLCompiler(query, connection)
    sets: list[str] = []
    params: list[Any] = []
    base = query.get_initial_alias()
    for field, value in values:
        if hasattr(value, "resolve_expression"):
            expr = value.resolve_expression(query, allow_joins=False)
            if getattr(expr, "contains_aggregate", False):
                raise FieldError(f"update() cannot set {field.name!r} to an aggregate")
            sql, p = compiler.compile(expr)
        else:
            if value is None and not field.null:
                from dorm.exceptions import IntegrityError

                raise IntegrityError(
                    f"{opts.object_name}.{field.name} cannot be set to NULL (null=False)"
                )
            sql, p = connection.ops.placeholder, [bind(field, value, connection)]
        sets.append(f"{qn(field.column)} = {sql}")
        params.extend(p)
    has_joins = any(
        isinstance(t, Join) and query.alias_refcount.get(a, 0) > 0
        for a, t in query.alias_map.items()
    )
    if has_joins or query.is_sliced:
        inner = query.clone()
        inner.set_select_pk()
        inner.annotations = {}
        inner.annotation_select_mask = []
        inner.clear_ordering(force=not inner.is_sliced)
        inner_compiler = inner.get_compiler(connection=connection)
        inner_sql, inner_params = inner_compiler._as_sql(True, False)
        pk = opts.pk
        assert pk is not None
        if connection.vendor == "sqlite" or query.is_sliced:
            inner_sql = f"SELECT * FROM ({inner_sql}) AS {qn('u')}"
        where = f"{qn(pk.column)} IN ({inner_sql})"
        where_params = inner_params
    else:
        try:
            where, where_params = compiler.compile(query.where)
        except FullResultSet:
            where, where_params = "", []
        if base != table:
            raise FieldError("update() on an aliased base table is not supported")
    sql = f"UPDATE {qn(table)} SET {', '.join(sets)}"
    if where:
        sql += f" WHERE {where}"
    out, sensitive = unmask([*params, *where_params])
    return sql, out, sensitive


def delete_sql(query: Query, connection: BaseDatabaseWrapper) -> tuple[str, list[Any], list[int]]:
    """``DELETE FROM table WHERE ...``; joins become ``pk IN (subquery)``."""
    query = query.clone()
    qn = connection.ops.quote_name
    opts = query.opts
    compiler = SQLCompiler(query, connection)
    query.get_initial_alias()
    has_joins = any(
        isinstance(t, Join) and query.alias_refcount.get(a, 0) > 0
        for a, t in query.alias_map.items()
    )
    if has_joins:
        inner = query.clone()
        inner.set_select_pk()
        inner.clear_ordering(force=True)
        inner_sql, params = inner.get_compiler(connection=connection)._as_sql(True, False)
        if connection.vendor == "sqlite":
            inner_sql = f"SELECT * FROM ({inner_sql}) AS {qn('u')}"
        pk = opts.pk
        assert pk is not None
        where = f"{qn(pk.column)} IN ({inner_sql})"
    else:
        try:
            where, params = compiler.compile(query.where)
        except FullResultSet:
            where, params = "", []
    sql = f"DELETE FROM {qn(opts.db_table)}"
    if where:
        sql += f" WHERE {where}"
    out, sensitive = unmask(params)
    return sql, out, sensitive
