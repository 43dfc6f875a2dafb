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
from dorm.expressions import Col, F, Masked, OrderBy, Ref
from dorm.sql.datastructures import Join
from dorm.sql.where import FullResultSet

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.sql.query import Query

__all__ = ["SQLCompiler", "column_converter", "unmask"]

_dispatch: dict[tuple[type, str], Callable[..., Any]] = {}
_quote_caches: dict[type, dict[str, str]] = {}
_dispatch_source: list[Any] = [None]
_SET_OPERATORS = {"union": "UNION", "intersection": "INTERSECT", "difference": "EXCEPT"}


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
        # Shared by every compiler of one operations class: quoting depends only on the
        # vendor, and re-quoting the same names for each query was ~5% of a get().
        self.quote_cache = _quote_caches.setdefault(type(self.ops), {})
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
            opts = query.model._meta
            if opts.parents:
                aliased = self._field_aliases(opts, alias, fields)
                select.extend((Col(a, f), None) for a, f in aliased)
            else:
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

    def _field_aliases(
        self, opts: Any, alias: str, fields: Sequence[Field]
    ) -> list[tuple[str, Field]]:
        """Each of ``fields`` with the alias of its table: a multi-table child's inherited
        fields come from its parents' tables, joined on first use."""
        parents: dict[Any, str] = {}
        result: list[tuple[str, Field]] = []
        concrete = opts.concrete_model
        for field in fields:
            owner = field.model
            if owner is None or owner._meta.concrete_model is concrete:
                result.append((alias, field))
                continue
            found = parents.get(owner)
            if found is None:
                found = parents[owner] = self.query.join_parent(opts, alias, owner)
            result.append((found, field))
        return result

    @staticmethod
    def _loaded_fields(
        model: type[Model], deferred: tuple[frozenset[str], bool], prefix: str = ""
    ) -> list[Field]:
        """The columns of ``model`` to select under ``only()`` / ``defer()``; ``prefix`` is
        the select_related path reaching it (``"author__"``)."""
        names, defer = deferred
        fields = model._meta.concrete_fields
        if not names:
            return list(fields)
        local: set[str] = set()
        traversed: set[str] = set()
        for name in names:
            if not name.startswith(prefix):
                continue
            head, sep, _tail = name[len(prefix) :].partition("__")
            (traversed if sep else local).add(head)
        pk = model._meta.pk
        if defer:
            return [f for f in fields if f.name not in local and f.attname not in local or f is pk]
        if prefix and not local and not traversed:
            return list(fields)  # only() said nothing of this related model: all of it
        keep = local | traversed  # only("author__name") keeps the author column
        return [f for f in fields if f.name in keep or f.attname in keep or f is pk]

    def _add_related(
        self,
        model: type[Model],
        alias: str,
        requested: bool | dict[str, Any],
        select: list[tuple[Any, str | None]],
        klass_info: dict[str, Any],
        depth: int,
        seen: set[Any],
        prefix: str = "",
    ) -> None:
        from dorm.sql.datastructures import INNER, LOUTER

        if depth > 5:
            return
        opts = model._meta
        if requested is True:
            candidates = [
                f
                for f in opts.concrete_fields
                if f.is_relation and not f.null and not getattr(f, "parent_link", False)
            ]
            names: dict[str, Any] = {f.name: True for f in candidates}
        else:
            names = dict(requested)  # type: ignore[arg-type]
        for name, sub in names.items():
            filtered = self.query.filtered_relations.get(name) if depth == 0 else None
            try:
                field = opts.get_field(filtered.relation_name if filtered else name)
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
            if (field, depth, name) in seen:
                continue
            seen.add((field, depth, name))
            if field.concrete and field not in klass_info["fields"]:
                if requested is True:
                    continue  # select_related() with no names skips deferred relations
                raise FieldError(
                    f"Field {opts.object_name}.{field.name} cannot be both deferred and "
                    f"traversed using select_related at the same time: add "
                    f"{prefix + name!r} to only() (or take it out of defer()), or drop it "
                    f"from select_related()"
                )
            info = field.get_path_info()[0]
            from_alias = alias
            if (
                opts.parents
                and field.concrete
                and field.model._meta.concrete_model is not (opts.concrete_model)
            ):
                from_alias = self.query.join_parent(opts, alias, field.model)
            if filtered is not None:
                # The FilteredRelation's own join (LEFT OUTER, its condition in ON).
                new_alias = self.query.setup_joins([name], opts, alias, outer=True)[0].joins[-1]
            else:
                parent = self.query.alias_map[from_alias]
                left = info.nullable or parent.join_type == LOUTER
                join = Join(
                    info.to_opts.db_table,
                    from_alias,
                    "",
                    LOUTER if left else INNER,
                    info.join_cols,
                    info.nullable,
                    field,
                )
                new_alias = self.query.join(join, outer=left)
            related_model = info.to_opts.model
            child_prefix = f"{prefix}{name}__"
            fields = self._loaded_fields(related_model, self.query.deferred_loading, child_prefix)
            start = len(select)
            if info.to_opts.parents:
                select.extend(
                    (Col(a, f), None)
                    for a, f in self._field_aliases(info.to_opts, new_alias, fields)
                )
            else:
                select.extend((Col(new_alias, f), None) for f in fields)
            child = {
                "model": related_model,
                "attnames": tuple(f.attname for f in fields),
                "fields": fields,
                "start": start,
                "end": len(select),
                "related": [],
                # Where the pk sits among the child's columns: a NULL there means no row.
                "pk_index": [f.primary_key for f in fields].index(True),
                "field": field,
                "reverse": not getattr(field, "concrete", False),
            }
            if filtered is not None:
                child["attr"] = name  # the related object goes to obj.<alias>, as Django
            klass_info["related"].append(child)
            if sub is True and requested is True:
                self._add_related(
                    related_model, new_alias, True, select, child, depth + 1, seen, child_prefix
                )
            elif isinstance(sub, dict) and sub:
                self._add_related(
                    related_model, new_alias, sub, select, child, depth + 1, seen, child_prefix
                )

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
        if query.annotations and query.where.children:
            from dorm.sql import qualify

            if qualify.has_window_condition(query):
                return qualify.qualify_sql(self, with_limits)
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
                # An impossible part adds nothing to a union and leaves nothing to
                # intersect; from a difference only the first part's rows can come.
                if query.combinator == "intersection" or (
                    query.combinator == "difference" and not parts
                ):
                    raise
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
        keyword = _SET_OPERATORS[query.combinator]  # type: ignore[index]
        joiner = f" {keyword}{' ALL' if query.combinator_all else ''} "
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
        for i, (expr, _alias) in enumerate(self.select):
            field = getattr(expr, "output_field", None)
            if field is None:
                continue
            # Computed decimals (Avg, Sum, arithmetic) keep their precision; only columns
            # are quantized to the field's decimal places.
            computed_decimal = (
                not isinstance(expr, Col) and field.get_internal_type() == "DecimalField"
            )
            convert = column_converter(self.ops, field, _to_decimal if computed_decimal else None)
            if convert is not None:
                result.append((i, convert))
        return result


def column_converter(
    ops: Any, field: Field, backend: Callable[[Any], Any] | None = None
) -> Callable[[Any], Any] | None:
    """The ``db value -> Python`` function of a column: the backend's converter (or
    ``backend``), then the field's own ``from_db_value`` when a subclass defines one."""
    from dorm.models.fields import Field as BaseField

    if backend is None:
        backend = ops.converter_for(field)
    custom = (
        field.from_db_value if type(field).from_db_value is not BaseField.from_db_value else None
    )
    if backend is not None and custom is not None:
        return _chain(backend, custom)
    return backend or custom


def _to_decimal(value: Any) -> Any:
    return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))


def _chain(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: second(first(value))
