"""The query representation: tables and joins, conditions, selection, ordering, limits.

A QuerySet owns one ``Query`` and clones it for every chained call. Names (fields,
lookups, order_by strings) are resolved against the model here, before any SQL exists:
an unknown name raises FieldError naming the model and the valid choices.

Over 800 lines because name resolution, joins and filters are one tightly bound concept.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import FieldDoesNotExist, FieldError, did_you_mean
from dorm.expressions import Col, F, Q, Ref, ResolvedOuterRef
from dorm.lookups import Exact, IsNull, Lookup
from dorm.sql.datastructures import INNER, LOUTER, BaseTable, Join, JoinInfo, PathInfo
from dorm.sql.names import check_alias
from dorm.sql.where import AND, OR, WhereNode

#: Value types that resolve to themselves in a lookup (a list of them needs no walk).
_SCALARS = frozenset({int, str, float, bool, bytes, type(None)})

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.models.options import Options
    from dorm.sql.compiler import SQLCompiler

__all__ = ["Query"]

LOOKUP_SEP = "__"
_PREFIXES = "TUVWXYZABCDEFGHIJKLMNOPQRS"


# A new query's state besides the model and its mutable containers (below). __init__
# copies it in one step: 32 attribute stores, past the 30 keys of CPython's shared
# instance dicts, cost half as much again as a copy of this dict.
_INITIAL: dict[str, Any] = {
    "alias_prefix": "T",
    "annotation_select_mask": None,
    "values_select": (),
    "default_cols": True,  # select the model's columns when nothing else is selected
    "order_by": (),
    "default_ordering": True,
    "extra_order_by": (),
    "distinct": False,
    "distinct_fields": (),
    "low_mark": 0,
    "high_mark": None,
    "group_by": None,
    "select_related": False,
    "deferred_loading": (frozenset(), True),
    "select_for_update": False,
    "select_for_update_nowait": False,
    "select_for_update_skip_locked": False,
    "select_for_update_of": (),
    "combinator": None,
    "combinator_all": False,
    "combined_queries": (),
    "subquery": False,
    "is_empty_query": False,
    "cte": None,  # (WITH ... sql, params) from plugins/trees
}


class Query:
    """What to select from which tables, under which conditions, in which order."""

    # Every instance has these (set from _INITIAL and in __init__).
    model: type[Model] | None
    alias_prefix: str
    alias_map: dict[str, BaseTable | Join]
    alias_refcount: dict[str, int]
    table_map: dict[str, list[str]]
    where: WhereNode
    annotations: dict[str, Any]
    annotation_select_mask: list[str] | None
    values_select: tuple[str, ...]
    select: list[Any]  # explicit expressions (values()); empty means the model
    default_cols: bool
    order_by: tuple[Any, ...]
    default_ordering: bool
    extra_order_by: tuple[Any, ...]
    distinct: bool
    distinct_fields: tuple[str, ...]
    low_mark: int
    high_mark: int | None
    group_by: tuple[Any, ...] | bool | None
    select_related: bool | dict[str, Any]
    deferred_loading: tuple[frozenset[str], bool]
    select_for_update: bool
    select_for_update_nowait: bool
    select_for_update_skip_locked: bool
    select_for_update_of: tuple[str, ...]
    combinator: str | None
    combinator_all: bool
    combined_queries: tuple[Query, ...]
    subquery: bool
    is_empty_query: bool
    cte: tuple[str, list[Any]] | None
    # alias -> FilteredRelation; replaced, never mutated, so clones may share it.
    filtered_relations: dict[str, Any]

    def __init__(self, model: type[Model] | None) -> None:
        state = _INITIAL.copy()
        state["model"] = model
        state["alias_map"] = {}
        state["alias_refcount"] = {}
        state["table_map"] = {}
        state["where"] = WhereNode()
        state["annotations"] = {}
        state["select"] = []
        state["filtered_relations"] = {}
        self.__dict__ = state

    # -- cloning ---------------------------------------------------------------------------------

    def clone(self) -> Query:
        # A shallow copy of __dict__ (what copy.copy does, minus its reduce machinery,
        # which was a tenth of a get() call); the mutable parts are copied below, in the
        # new dict before it is attached (item stores cost less than attribute stores).
        cls = self.__class__
        obj = cls.__new__(cls)
        state = self.__dict__.copy()
        state["alias_map"] = state["alias_map"].copy()
        state["alias_refcount"] = state["alias_refcount"].copy()
        table_map = {}
        for table, aliases in state["table_map"].items():
            table_map[table] = list(aliases)
        state["table_map"] = table_map
        state["where"] = state["where"].clone()
        state["annotations"] = state["annotations"].copy()
        mask = state["annotation_select_mask"]
        if mask is not None:
            state["annotation_select_mask"] = list(mask)
        state["select"] = list(state["select"])
        select_related = state["select_related"]
        if isinstance(select_related, dict):
            state["select_related"] = copy.deepcopy(select_related)
        obj.__dict__ = state
        return obj

    def chain(self) -> Query:
        return self.clone()

    @property
    def opts(self) -> Options:
        assert self.model is not None
        return self.model._meta

    def get_compiler(
        self, using: str | None = None, connection: BaseDatabaseWrapper | None = None
    ) -> SQLCompiler:
        from dorm.db.connection import connections
        from dorm.sql.compiler import SQLCompiler

        if connection is None:
            connection = connections[using or "default"]
        return SQLCompiler(self, connection)

    def __str__(self) -> str:
        sql, params = self.get_compiler().as_sql()
        return f"{sql} -- params {tuple(params)!r}"

    # -- tables and joins ------------------------------------------------------------------------

    def _new_alias(self, table_name: str, create: bool = False) -> str:
        existing = self.table_map.get(table_name)
        if existing and not create:
            return existing[0]
        if not existing and self.alias_prefix == "T" and not self.subquery:
            alias = table_name
        else:
            alias = f"{self.alias_prefix}{len(self.alias_map)}"
            while alias in self.alias_map:
                alias += "_"
        self.table_map.setdefault(table_name, []).append(alias)
        self.alias_refcount[alias] = 1
        return alias

    def get_initial_alias(self) -> str:
        if self.alias_map:
            alias = next(iter(self.alias_map))
            self.alias_refcount[alias] += 1
            return alias
        table = self.opts.db_table
        alias = self._new_alias(table, create=True)
        self.alias_map[alias] = BaseTable(table, alias)
        return alias

    @property
    def base_alias(self) -> str:
        if not self.alias_map:
            self.get_initial_alias()
        return next(iter(self.alias_map))

    def join(
        self,
        connection: Join,
        reuse: set[str] | None = None,
        outer: bool = False,
        promote: bool = False,
    ) -> str:
        """Reuse an equal join (promoting it to LEFT OUTER if asked) or add a new one."""
        identity = connection.identity()
        for alias, existing in self.alias_map.items():
            if existing.identity() != identity:
                continue
            # A FilteredRelation's join is one per alias, whatever the filter.
            if reuse is not None and alias not in reuse and connection.filtered_relation is None:
                continue
            self.alias_refcount[alias] += 1
            if promote and existing.join_type == INNER and isinstance(existing, Join):
                self.alias_map[alias] = existing.promote()
            return alias
        alias = self._new_alias(connection.table_name, create=True)
        connection.table_alias = alias
        self.alias_map[alias] = connection
        return alias

    def unref(self, alias: str) -> None:
        self.alias_refcount[alias] -= 1

    def promote_joins(self, aliases: Iterable[str]) -> None:
        for alias in aliases:
            join = self.alias_map.get(alias)
            if isinstance(join, Join) and join.join_type == INNER:
                self.alias_map[alias] = join.promote()

    # -- name resolution -------------------------------------------------------------------------

    def names_to_path(
        self, names: Sequence[str], opts: Options, fail_on_missing: bool = False
    ) -> tuple[list[PathInfo], Any, tuple[Field, ...], list[str]]:
        """Walk ``names`` across relations; return the path, final field, targets and the rest."""
        path: list[PathInfo] = []
        final_field: Any = None
        targets: tuple[Field, ...] = ()
        cur = opts
        pos = 0
        for pos, name in enumerate(names):
            if name == "pk" and cur.pk is not None:
                name = cur.pk.name
            elif pos == 0 and name in self.filtered_relations and cur is self.opts:
                name = self.filtered_relations[name].relation_name
            field = cur._find_field(name)
            if field is None:
                if pos == 0 or fail_on_missing:
                    available = sorted(
                        {*cur.field_names(), *(self.annotations if cur is opts else ())}
                    )
                    raise FieldError(
                        f"{cur.object_name}: cannot resolve {name!r} into a field."
                        f"{did_you_mean(name, available)} Choices are: {', '.join(available)}"
                    )
                return path, final_field, targets, list(names[pos:])
            if cur.parents and field.model is not None and _inherited(cur, field):
                # A parent's field (multi-table inheritance): join the parent's table.
                path.extend(cur.get_path_to_parent(field.model))
                cur = field.model._meta
            if hasattr(field, "get_path_info"):
                infos = field.get_path_info()
                path.extend(infos)
                final_field = field
                targets = infos[-1].target_fields
                cur = infos[-1].to_opts
            else:
                final_field = field
                targets = (field,)
                return path, final_field, targets, list(names[pos + 1 :])
        return path, final_field, targets, list(names[pos + 1 :]) if names else []

    def setup_joins(
        self,
        names: Sequence[str],
        opts: Options,
        alias: str,
        can_reuse: set[str] | None = None,
        outer: bool = False,
        promote: bool = False,
    ) -> tuple[JoinInfo, list[str]]:
        path, final_field, targets, rest = self.names_to_path(names, opts)
        filtered = None
        if (
            self.filtered_relations
            and names
            and names[0] in self.filtered_relations
            and opts is self.opts
            and alias == self.base_alias
        ):
            filtered = names[0]
            hops = len(self.names_to_path(names[:1], opts)[0])
        joins = [alias]
        cur_opts = opts
        for i, info in enumerate(path):
            parent = self.alias_map[alias]
            left = outer and (info.nullable or info.m2m)
            join_type = LOUTER if (left or parent.join_type == LOUTER) else INNER
            connection = Join(
                info.to_opts.db_table,
                alias,
                "",
                join_type,
                info.join_cols,
                info.nullable,
                info.join_field,
            )
            if filtered is not None and i == hops - 1:
                connection.join_type = LOUTER  # rows without a match keep NULLs, as Django
                connection.filtered_relation = filtered
            reuse = can_reuse if info.m2m else None
            alias = self.join(
                connection,
                reuse=reuse,
                outer=connection.join_type == LOUTER,
                promote=promote and connection.join_type == LOUTER,
            )
            if connection.filtered_relation is not None and connection.table_alias == alias:
                self._add_join_condition(filtered, alias)  # type: ignore[arg-type]
            joins.append(alias)
            cur_opts = info.to_opts
        return JoinInfo(final_field, targets, cur_opts, joins, path), rest

    def join_parent(self, opts: Options, alias: str, parent: type[Model]) -> str:
        """The alias of the table of ``parent``, an ancestor of the model of ``opts`` whose
        table is at ``alias``, joined through the parent links (LEFT OUTER when ``alias``
        itself is outer-joined)."""
        for info in opts.get_path_to_parent(parent):
            outer = self.alias_map[alias].join_type == LOUTER
            connection = Join(
                info.to_opts.db_table,
                alias,
                "",
                LOUTER if outer else INNER,
                info.join_cols,
                outer,
                info.join_field,
            )
            alias = self.join(connection, outer=outer)
        return alias

    def add_filtered_relation(self, filtered: Any, alias: str) -> None:
        """``annotate(alias=FilteredRelation("books", condition=Q(books__x=1)))``."""
        check_alias(alias)
        name = filtered.relation_name
        try:
            field = self.opts.get_field(name)
        except FieldDoesNotExist:
            field = None
        if field is None or not getattr(field, "is_relation", False):
            relations = sorted(
                f.name for f in self.opts.get_fields() if getattr(f, "is_relation", False)
            )
            raise ValueError(
                f"FilteredRelation({name!r}): {self.opts.object_name} has no relation "
                f"{name!r}; relations are: {', '.join(relations) or '(none)'}"
            )
        filtered.check_condition()
        self.filtered_relations = {**self.filtered_relations, alias: filtered}

    def _add_join_condition(self, name: str, alias: str) -> None:
        """Resolve the FilteredRelation ``name``'s condition against its join ``alias``."""
        join = self.alias_map[alias]
        assert isinstance(join, Join)
        join.condition = True  # being built: the condition's own lookups reuse this join
        before = set(self.alias_map)
        node = self.build_where(self.filtered_relations[name].condition_for(name))
        added = set(self.alias_map) - before
        if added:
            raise ValueError(
                f"FilteredRelation {name!r}: its condition may only read fields of "
                f"{join.table_name!r}, the related table (it joined {len(added)} more)"
            )
        self.alias_map[alias].condition = node  # type: ignore[union-attr]

    def trim_joins(
        self, targets: tuple[Field, ...], joins: list[str], path: list[PathInfo]
    ) -> tuple[tuple[Field, ...], str, list[str]]:
        """Drop trailing forward joins whose only use is the related primary key.

        ``filter(author=1)`` compares ``book.author_id`` instead of joining ``author``.
        """
        joins = list(joins)
        for info in reversed(path):
            if not info.direct or len(joins) == 1:
                break
            if getattr(self.alias_map.get(joins[-1]), "filtered_relation", None) is not None:
                break  # the join carries its condition: it is never dropped
            rhs_cols = {rhs for _lhs, rhs in info.join_cols}
            if not {t.column for t in targets} <= rhs_cols:
                break
            by_rhs = {rhs: lhs for lhs, rhs in info.join_cols}
            local = info.join_field
            targets = tuple(local for t in targets if by_rhs.get(t.column))
            self.unref(joins.pop())
        return targets, joins[-1], joins

    def resolve_ref(
        self,
        name: str,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        """Resolve ``F(name)``: an annotation of this query or a (joined) column."""
        if name in self.annotations:
            if summarize:
                return Ref(name, self.annotations[name])
            return self.annotations[name]
        parts = name.split(LOOKUP_SEP)
        if not allow_joins and len(parts) > 1:
            raise FieldError(
                f"{self.opts.object_name}: joined field references are not allowed here "
                f"(update() sets columns of its own table): {name!r}"
            )
        info, rest = self.setup_joins(parts, self.opts, self.get_initial_alias(), reuse, outer=True)
        targets, alias, _joins = self.trim_joins(info.targets, info.joins, info.path)
        if len(targets) != 1:
            raise FieldError(f"{self.opts.object_name}: {name!r} does not name a single column")
        col = Col(alias, targets[0], info.final_field if _is_relation(info.final_field) else None)
        return self.apply_transforms(col, rest, name)

    def apply_transforms(self, expr: Any, names: Sequence[str], path: str) -> Any:
        """``F("data__address__city")``, ``values("hired__year")``: the transforms after
        the field path, in order; a lookup name there (``__gt``) is an error."""
        for name in names:
            if _get_transform(expr, name) is None:
                kind = "a lookup" if _get_lookup(expr, name) is not None else "no transform"
                raise FieldError(
                    f"{self.opts.object_name}: {path!r}: {name!r} is {kind}; a field path "
                    f"may end only in transforms (year, date, a JSON key, ...)"
                )
            expr = self._transform(expr, name, path)
        return expr

    # -- filters ---------------------------------------------------------------------------------

    def add_q(self, q: Any) -> None:
        """AND the condition ``q`` (a Q, a lookup or a boolean expression) into WHERE."""
        clause = self.build_where(q)
        self.where.add(clause)

    def build_where(
        self, q: Any, outer_join: bool = False, can_reuse: set[str] | None = None
    ) -> WhereNode:
        """Build the condition ``q``; multi-valued joins are reused only from ``can_reuse``."""
        if not isinstance(q, Q):
            q = Q(q)
        node, _used = self._add_q(q, set(can_reuse or ()), branch_outer=outer_join, negated=False)
        return node

    def _add_q(
        self, q: Q, used_aliases: set[str], branch_outer: bool, negated: bool
    ) -> tuple[WhereNode, set[str]]:
        connector = q.connector
        current_negated = negated ^ q.negated
        node = WhereNode(connector=connector, negated=q.negated)
        outer = branch_outer or connector == OR and len(q.children) > 1 or current_negated
        for child in q.children:
            if isinstance(child, Q):
                child_node, used = self._add_q(child, used_aliases, outer, current_negated)
                node.add(child_node)
            else:
                condition, used = self.build_filter(
                    child, can_reuse=used_aliases, current_negated=current_negated, outer=outer
                )
                node.add(condition)
            used_aliases |= used
        return node, used_aliases

    def build_filter(
        self,
        filter_expr: Any,
        can_reuse: set[str] | None = None,
        current_negated: bool = False,
        outer: bool = False,
        allow_joins: bool = True,
    ) -> tuple[Any, set[str]]:
        if isinstance(filter_expr, Q):
            node, used = self._add_q(filter_expr, can_reuse or set(), outer, current_negated)
            return node, used
        if hasattr(filter_expr, "resolve_expression"):
            if not getattr(filter_expr, "conditional", False):
                raise TypeError(f"{filter_expr!r} is not a boolean expression")
            condition = filter_expr.resolve_expression(self, allow_joins, can_reuse)
            if not isinstance(condition, (Lookup, WhereNode)) and not hasattr(condition, "negated"):
                condition = Exact(condition, True)
            return condition, set()
        if not isinstance(filter_expr, tuple) or len(filter_expr) != 2:
            raise TypeError(f"cannot filter on {filter_expr!r}")
        arg, raw_value = filter_expr
        if not arg or not isinstance(arg, str):
            raise FieldError(f"cannot parse keyword query {arg!r}")
        parts = arg.split(LOOKUP_SEP)
        value = self.resolve_lookup_value(raw_value, can_reuse, allow_joins)
        if parts[0] in self.annotations:
            lhs = self.annotations[parts[0]]
            return self.build_lookup(parts[1:], lhs, value, parts[0]), set()
        wants_null = (
            parts[-1] == "isnull"
            and value is True
            or (value is None and parts[-1] in ("exact",) or value is None and len(parts) == 1)
        )
        info, lookups = self.setup_joins(
            parts,
            self.opts,
            self.get_initial_alias(),
            can_reuse,
            outer=outer or wants_null,
            promote=outer or wants_null,
        )
        if current_negated and info.multi_valued:
            for alias in info.joins[1:]:
                self.unref(alias)
            return self.split_exclude(filter_expr), set()
        self._check_related_value(info.final_field, raw_value)
        used = set(info.joins[1:])
        targets, alias, _joins = self.trim_joins(info.targets, info.joins, info.path)
        col = Col(alias, targets[0], info.final_field if _is_relation(info.final_field) else None)
        condition = self.build_lookup(lookups, col, value, arg)
        if (
            current_negated
            and not isinstance(condition, IsNull)
            and (targets[0].null or self._nullable_alias(alias))
        ):
            # exclude(x=1) must keep rows where x IS NULL, as in Django.
            guarded = WhereNode([condition, IsNull(col, False)], AND)
            return guarded, used
        return condition, used

    def _nullable_alias(self, alias: str) -> bool:
        table = self.alias_map.get(alias)
        return isinstance(table, Join) and table.nullable

    def _check_related_value(self, field: Any, value: Any) -> None:
        from dorm.models.base import Model

        if not _is_relation(field):
            return
        expected = field.related_model
        values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        for v in values:
            if isinstance(v, Model) and not isinstance(v, expected):
                raise ValueError(
                    f"cannot query {field.name!r} with {v!r}: it must be a "
                    f"{expected.__name__} instance"
                )

    def resolve_lookup_value(
        self, value: Any, can_reuse: set[str] | None, allow_joins: bool
    ) -> Any:
        from dorm.models.base import Model

        if hasattr(value, "resolve_expression"):
            return value.resolve_expression(self, allow_joins=allow_joins, reuse=can_reuse)
        if isinstance(value, Model):
            if value.pk is None:
                raise ValueError(f"{value!r} is unsaved and cannot be used in a query")
            return value.pk
        if isinstance(value, (list, tuple)):
            if all(type(v) in _SCALARS for v in value):  # the common case: nothing to resolve
                return type(value)(value)
            return type(value)(self.resolve_lookup_value(v, can_reuse, allow_joins) for v in value)
        return value

    def build_lookup(self, lookups: Sequence[str], lhs: Any, rhs: Any, arg: str = "") -> Any:
        """Apply transforms then the final lookup (default ``exact``) to ``lhs``."""
        names = list(lookups) or ["exact"]
        *transforms, name = names
        for transform_name in transforms:
            lhs = self._transform(lhs, transform_name, arg)
        lookup_class = _get_lookup(lhs, name)
        if lookup_class is None:
            if _get_transform(lhs, name) is not None:
                lhs = self._transform(lhs, name, arg)
                name = "exact"
                lookup_class = _get_lookup(lhs, name)
            if lookup_class is None:
                raise self._lookup_error(lhs, name, arg)
        if (
            rhs is None
            and name not in ("exact", "iexact", "isnull")
            and not getattr(lookup_class, "can_use_none_as_rhs", False)
        ):
            raise ValueError(f"{arg or name}: None is only allowed with exact / isnull")
        if rhs is None and not getattr(lookup_class, "can_use_none_as_rhs", False):
            return IsNull(lhs, True)
        lookup = lookup_class(lhs, rhs)
        lookup.rhs = lookup.prep_rhs(lookup.rhs)
        # A condition on an aggregate annotation belongs in HAVING (see split_having).
        lookup.contains_aggregate = any(
            getattr(node, "contains_aggregate", False) for node in lookup.walk()
        )
        return lookup

    def _transform(self, lhs: Any, name: str, arg: str) -> Any:
        transform_class = _get_transform(lhs, name)
        if transform_class is None:
            raise self._lookup_error(lhs, name, arg)
        return transform_class(lhs)

    def _lookup_error(self, lhs: Any, name: str, arg: str) -> FieldError:
        from dorm import plugins

        field = getattr(lhs, "output_field", None)
        known = sorted(plugins.extensions().lookup_names(type(field))) if field is not None else []
        owner = (
            f"{self.opts.object_name}.{arg.split(LOOKUP_SEP)[0]}" if arg else self.opts.object_name
        )
        related = getattr(field, "related_model", None) if _is_relation(field) else None
        also = (
            f" {related.__name__} has no field {name!r} either; its fields are: "
            f"{', '.join(sorted(related._meta.field_names()))}."
            if related is not None and not isinstance(related, str)
            else ""
        )
        hint = did_you_mean(name, known) or " Did a plugin fail to load?"
        return FieldError(
            f"{owner}: unknown lookup {name!r} for {type(field).__name__}.{hint} Known "
            f"lookups: {', '.join(known)}.{also}"
        )

    def split_exclude(self, filter_expr: tuple[str, Any]) -> Any:
        """``exclude(tags__name="x")``: NOT (pk IN (SELECT pk ... WHERE tags.name = 'x'))."""
        inner = Query(self.model)
        inner.bump_prefix(self)
        inner.add_q(Q(filter_expr))
        inner.set_select_pk()
        inner.clear_ordering(force=True)
        pk = self.opts.pk
        assert pk is not None
        col = Col(self.get_initial_alias(), pk)
        from dorm.lookups import In

        # Not negated here: the NOT comes from the exclude()/~Q node this condition sits in.
        return In(col, inner)

    # -- subqueries ------------------------------------------------------------------------------

    def bump_prefix(self, outer: Query) -> None:
        index = _PREFIXES.index(outer.alias_prefix) + 1 if outer.alias_prefix in _PREFIXES else 1
        self.alias_prefix = _PREFIXES[index % len(_PREFIXES)]
        self.subquery = True

    def set_select_pk(self) -> None:
        pk = self.opts.pk
        assert pk is not None
        self.select = [Col(self.get_initial_alias(), pk)]
        self.values_select = ("pk",)

    def single_output_field(self) -> Field | None:
        if len(self.select) == 1:
            return getattr(self.select[0], "output_field", None)
        if self.annotation_select_mask and len(self.annotation_select_mask) == 1:
            return getattr(self.annotations[self.annotation_select_mask[0]], "output_field", None)
        return None

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        """Render as a parenthesised subquery (``... IN (SELECT ...)``)."""
        sql, params = self.get_compiler(connection=connection).as_sql(subquery=True)
        return f"({sql})", params

    def resolve_expression(self, query: Query | None = None, *args: Any, **kwargs: Any) -> Query:
        """A queryset used as a value (``pk__in=qs``) becomes a subquery selecting its pk."""
        clone = self.resolved_as_subquery(query)
        if not clone.select and not clone.values_select:
            clone.set_select_pk()
        return clone

    def resolved_as_subquery(self, outer: Query | None) -> Query:
        if self.alias_map and not self.subquery and outer is not None:
            clone = self.relabeled_for(outer)
        else:
            clone = self.clone()
            if outer is not None:
                clone.bump_prefix(outer)
        clone.subquery = True
        if outer is not None:
            clone._resolve_outer_refs(outer)
        if clone.low_mark == 0 and clone.high_mark is None:
            clone.clear_ordering(force=False)
        return clone

    def relabeled_for(self, outer: Query) -> Query:
        clone = self.clone()
        clone.bump_prefix(outer)
        change_map: dict[str, str] = {}
        new_alias_map: dict[str, BaseTable | Join] = {}
        clone.table_map = {}
        for i, (alias, table) in enumerate(self.alias_map.items()):
            new = f"{clone.alias_prefix}{i}"
            change_map[alias] = new
            clone.table_map.setdefault(table.table_name, []).append(new)
        for alias, table in self.alias_map.items():
            new_alias_map[change_map[alias]] = table.relabeled_clone(change_map)
        clone.alias_map = new_alias_map
        clone.alias_refcount = {change_map[a]: c for a, c in self.alias_refcount.items()}
        clone._relabel_expressions(change_map)
        return clone

    def _relabel_expressions(self, change_map: dict[str, str]) -> None:
        def relabel(node: Any) -> Any:
            return relabeled(node, change_map)

        self.where = relabel(self.where.clone())
        self.annotations = {k: relabel(v) for k, v in self.annotations.items()}
        self.select = [relabel(s) for s in self.select]
        self.order_by = tuple(relabel(o) if not isinstance(o, str) else o for o in self.order_by)
        if isinstance(self.group_by, tuple):
            self.group_by = tuple(relabel(g) for g in self.group_by)

    def _resolve_outer_refs(self, outer: Query) -> None:
        def resolve(node: Any) -> Any:
            if isinstance(node, ResolvedOuterRef):
                return F(node.name).resolve_expression(outer)
            if isinstance(node, Query):
                return node
            if hasattr(node, "get_source_expressions"):
                sources = node.get_source_expressions()
                if sources:
                    new = [resolve(s) for s in sources]
                    if any(a is not b for a, b in zip(new, sources, strict=True)):
                        node = copy.copy(node)
                        node.set_source_expressions(new)
            return node

        self.where = resolve(self.where)
        self.annotations = {k: resolve(v) for k, v in self.annotations.items()}
        self.select = [resolve(s) for s in self.select]

    def exists_query(self) -> Query:
        clone = self.clone()
        clone.select = []
        clone.values_select = ()
        clone.default_cols = False
        clone.annotation_select_mask = []
        clone.clear_ordering(force=True)
        clone.distinct = False
        clone.select_related = False
        if clone.high_mark is None:
            clone.high_mark = clone.low_mark + 1
        return clone

    # -- selection -------------------------------------------------------------------------------

    def add_annotation(self, annotation: Any, alias: str) -> None:
        check_alias(alias)
        resolved = annotation.resolve_expression(self, allow_joins=True, reuse=None)
        self.annotations[alias] = resolved
        if self.annotation_select_mask is not None:
            self.annotation_select_mask.append(alias)
        if getattr(resolved, "contains_aggregate", False) and self.group_by is None:
            self.group_by = True

    @property
    def annotation_select(self) -> dict[str, Any]:
        if self.annotation_select_mask is None:
            return self.annotations
        return {k: self.annotations[k] for k in self.annotation_select_mask}

    def add_fields(self, names: Sequence[str]) -> None:
        """Select ``names`` (values() / values_list()): fields, paths or annotations."""
        alias = self.get_initial_alias()
        select: list[Any] = []
        mask: list[str] = []
        opts = self.opts
        annotations = self.annotations
        local = opts._forward_map
        for name in names:
            if name in annotations:
                mask.append(name)
                continue
            field = local.get(name) if name != "pk" else opts.pk
            if (
                field is not None
                and field.concrete
                and not field.is_relation
                and not (opts.parents and _inherited(opts, field))
            ):
                select.append(Col(alias, field, None))  # a column of this table: no path
                continue
            info, rest = self.setup_joins(name.split(LOOKUP_SEP), opts, alias, None, outer=True)
            if rest and _get_transform(_column_of(info), rest[0]) is None:
                raise FieldError(
                    f"{opts.object_name}: cannot select {name!r}: {rest[0]!r} is not a "
                    f"field of {info.opts.object_name}. Choices are: "
                    f"{', '.join(sorted(info.opts.field_names()))}"
                )
            targets, final_alias, _ = self.trim_joins(info.targets, info.joins, info.path)
            # values("tags") on a many-to-many selects the through table's foreign key:
            # trim_joins() already dropped (unreferenced) the join to the target table.
            field = info.final_field
            col = Col(
                final_alias,
                targets[0],
                field if _is_relation(field) and field.concrete else None,
            )
            select.append(self.apply_transforms(col, rest, name) if rest else col)
        self.select = select
        self.annotation_select_mask = mask
        self.values_select = tuple(names)

    def set_values(self, names: Sequence[str]) -> None:
        if not names:
            names = [f.attname for f in self.opts.concrete_fields]
            self.values_select_default = True
            extra = [a for a in self.annotations]
            self.add_fields([*names])
            self.annotation_select_mask = extra
            self.values_select = (*names, *extra)
            return
        self.add_fields(names)
        self.values_select = tuple(names)

    def add_select_related(self, names: Sequence[str]) -> None:
        tree = self.select_related if isinstance(self.select_related, dict) else {}
        for name in names:
            node = tree
            for part in name.split(LOOKUP_SEP):
                node = node.setdefault(part, {})
        self.select_related = tree

    def add_deferred(self, names: Iterable[str]) -> None:
        existing, defer = self.deferred_loading
        names = frozenset(names)
        self.deferred_loading = (existing | names, True) if defer else (existing - names, False)

    def add_immediate(self, names: Iterable[str]) -> None:
        names = frozenset(names)
        existing, defer = self.deferred_loading
        self.deferred_loading = (names - existing, False) if defer else (names, False)

    def clear_deferred(self) -> None:
        self.deferred_loading = (frozenset(), True)

    # -- ordering and limits ---------------------------------------------------------------------

    def add_ordering(self, *items: Any) -> None:
        for item in items:
            if isinstance(item, str):
                if item == "?":
                    continue
                name = item.lstrip("-+")
                if name.split(LOOKUP_SEP)[0] in self.annotations:
                    continue
                path, _f, _t, rest = self.names_to_path(
                    name.split(LOOKUP_SEP), self.opts, fail_on_missing=True
                )
                if rest and _get_transform(_column_of_field(_f), rest[0]) is None:
                    raise FieldError(
                        f"{self.opts.object_name}: cannot order by {item!r}: {rest[0]!r} is "
                        f"not a field. Choices are: {', '.join(self.opts.field_names())}"
                    )
            elif not hasattr(item, "resolve_expression"):
                raise TypeError(f"order_by() takes field names or expressions, got {item!r}")
        self.order_by = (*self.order_by, *items)
        if items:
            self.default_ordering = False

    def clear_ordering(self, force: bool = False) -> None:
        if force or (self.low_mark == 0 and self.high_mark is None):
            self.order_by = ()
            self.extra_order_by = ()
            self.default_ordering = False

    def set_limits(self, low: int | None = None, high: int | None = None) -> None:
        if high is not None:
            self.high_mark = (
                min(self.high_mark, self.low_mark + high)
                if self.high_mark is not None
                else self.low_mark + high
            )
        if low is not None:
            self.low_mark = (
                min(self.high_mark, self.low_mark + low)
                if self.high_mark is not None
                else self.low_mark + low
            )
        if self.high_mark is not None and self.low_mark == self.high_mark:
            self.is_empty_query = True

    @property
    def is_sliced(self) -> bool:
        return self.low_mark != 0 or self.high_mark is not None

    def set_empty(self) -> None:
        self.is_empty_query = True

    # -- evaluation helpers ----------------------------------------------------------------------

    def get_count(self, using: str) -> int:
        from dorm.expressions import Count

        result = self.get_aggregation(using, {"__count": Count("*")})
        return int(result["__count"] or 0)

    def get_aggregation(self, using: str, aggregates: dict[str, Any]) -> dict[str, Any]:
        for alias in aggregates:
            check_alias(alias)
        if self.is_empty_query:
            return {
                alias: agg.empty_result() if hasattr(agg, "empty_result") else None
                for alias, agg in aggregates.items()
            }
        from dorm.sql.aggregates import AggregateCompiler

        return AggregateCompiler(self, using, aggregates).execute()

    def has_results(self, using: str) -> bool:
        if self.is_empty_query:
            return False
        query = self.exists_query()
        compiler = query.get_compiler(using)
        return compiler.has_results()

    def explain(self, using: str, **options: Any) -> str:
        compiler = self.get_compiler(using)
        return compiler.explain(**options)


def relabeled(node: Any, change_map: dict[str, str]) -> Any:
    """``node`` with its columns moved to the aliases of ``change_map``."""
    if isinstance(node, Col):
        return node.relabeled(change_map)
    if isinstance(node, Query):
        return node
    if hasattr(node, "get_source_expressions"):
        sources = node.get_source_expressions()
        if sources:
            node = copy.copy(node)
            node.set_source_expressions([relabeled(s, change_map) for s in sources])
    return node


def _inherited(opts: Options, field: Any) -> bool:
    """``field`` lives in the table of a parent of ``opts``'s model (multi-table inheritance)."""
    model = getattr(field, "model", None)
    return model is not None and model._meta.concrete_model is not opts.concrete_model


def _is_relation(field: Any) -> bool:
    """A concrete relation field (a foreign key column), usable as a Col's output field."""
    return bool(getattr(field, "is_relation", False)) and bool(getattr(field, "concrete", False))


def _column_of(info: JoinInfo) -> Any:
    return _column_of_field(info.final_field)


def _column_of_field(field: Any) -> Any:
    """A stand-in column of ``field`` for asking which transforms apply to it."""
    return Col(None, field) if hasattr(field, "get_transform") else None


def _get_lookup(lhs: Any, name: str) -> type | None:
    finder = getattr(lhs, "get_lookup", None)
    if finder is not None:
        return finder(name)  # type: ignore[no-any-return]
    field = getattr(lhs, "output_field", None)
    return field.get_lookup(name) if field is not None else None


def _get_transform(lhs: Any, name: str) -> type | None:
    finder = getattr(lhs, "get_transform", None)
    if finder is not None:
        return finder(name)  # type: ignore[no-any-return]
    field = getattr(lhs, "output_field", None)
    return field.get_transform(name) if field is not None else None
