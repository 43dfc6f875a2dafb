"""A cache of compiled SELECTs whose only varying parts are values bound by expressions.

What is cached: a query without WHERE, joins, annotations, grouping, DISTINCT, locking or
set operations, selecting the model's columns or plain columns of its table (values(),
values_list()), ordered by field names and by expressions that opt in (below), sliced or
not. ``Doc.objects.order_by(CosineDistance("embedding", q)).values_list("pk", flat=True)[:10]``
is the case it is for: another vector ``q`` gives the same SQL, only the bound vector
differs, so a repeat skips name resolution and SQL generation and binds the new value.

The key: the model; every attribute of the query that shapes its SQL (a query carrying
an attribute this module does not know, or a known one away from a new query's value,
bypasses the cache); each selected column (alias, field, output field); each ordering
term as a field name, or as its class and ``plan_shape()`` (for the distances: the field
name and the type of the vector); the database alias and the connection class. Entries
are built under one plugin extensions object and one sensitive-patterns version:
registering a plugin or changing patterns empties the cache, and so does
``reset_connections()``. The cache is a bounded LRU; writes take a lock, reads do not.

Why an entry can be trusted: it is stored only after the binders of its ordering terms
reproduced, for the query being compiled, exactly the parameters the compiler produced
(same types, same values, same sensitive positions), and only when no plugin renders
those terms. A shape that fails either check is remembered as uncacheable: its queries
are compiled as before, once each, never twice. Values are always bound parameters; the
SQL of an entry is the compiler's own.

The protocol, for an Expression class whose SQL depends on its class and a few names but
not on the values it binds:

- ``plan_shape(self) -> Hashable | None``: what besides the class shapes its SQL (field
  names, the types of bound values), or None when this instance cannot be cached.
- ``plan_binder(self) -> Callable[[node], list] | None``: called once, on the node resolved
  against the query; returns a function from an unresolved node of the same shape to the
  parameters its SQL binds, in order, computed as rendering computes them (validation
  errors included), or None.

The opt-in is honoured for the class that defines ``plan_shape`` and for its subclasses
that only set class data (``pg_operator = "<=>"``); a subclass that defines any method
(its own ``as_sql``, ``__init__``, ...) is compiled every time.
"""

from __future__ import annotations

import operator
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dorm import plugins
from dorm.db import utils as db_utils
from dorm.exceptions import EmptyResultSet
from dorm.expressions import Col, Masked, OrderBy
from dorm.sql.compiler import unmask
from dorm.sql.datastructures import BaseTable
from dorm.sql.plan_cache import CachedCompiler
from dorm.sql.query import Query
from dorm.sql.where import WhereNode

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.sql.compiler import SQLCompiler

__all__ = [
    "MAX_ENTRIES",
    "PlanCompiler",
    "SelectPlan",
    "clear",
    "compiler_for",
    "select_shape",
    "size",
    "store",
]

MAX_ENTRIES = 512

# The attributes of a Query that select_shape() reads into the key (or requires empty),
# in the order it unpacks them; values() also sets values_select_default, read by nothing.
_HANDLED = (
    "model",
    "alias_map",
    "where",
    "annotations",
    "select",
    "filtered_relations",
    "annotation_select_mask",
    "values_select",
    "default_cols",
    "order_by",
    "default_ordering",
    "low_mark",
    "high_mark",
    "select_related",
    "deferred_loading",
)
# Derived from alias_map (table_map, alias_refcount: counts that matter for joins only).
_DERIVED = ("alias_refcount", "table_map")
# Every other attribute of a new Query, with its value there: a query whose value differs
# (distinct(), select_for_update(), a union, a subquery, ...) is not cached.
_DEFAULTS = {
    k: v for k, v in Query(None).__dict__.items() if k not in _HANDLED and k not in _DERIVED
}
_DEFAULT_VALUES = tuple(_DEFAULTS.values())
# One C call reads them all (a KeyError: one is missing); the defaults come last.
_read = operator.itemgetter(*_HANDLED, *_DERIVED, *_DEFAULTS)
_ALWAYS = len(_HANDLED) + len(_DERIVED) + len(_DEFAULTS)
_FIRST_DEFAULT = len(_HANDLED) + len(_DERIVED)


class SelectPlan:
    """One compiled shape: its SQL, the binders of its ordering terms, row information.

    ``usable`` is False for a shape found uncacheable (then only ``stamp`` matters).
    """

    __slots__ = (
        "binders",
        "col_count",
        "converters",
        "klass_info",
        "sensitive",
        "sql",
        "stamp",
        "usable",
    )

    def __init__(
        self,
        sql: str,
        binders: list[tuple[int, bool, Callable[[Any], list[Any]]]],
        sensitive: list[int],
        klass_info: dict[str, Any] | None,
        converters: list[tuple[int, Callable[[Any], Any]]],
        col_count: int,
        usable: bool = True,
    ) -> None:
        self.sql = sql
        # (index in query.order_by, wrapped in OrderBy, binder) per parameterised term.
        self.binders = binders
        self.sensitive = sensitive
        self.klass_info = klass_info
        self.converters = converters
        self.col_count = col_count
        self.usable = usable
        self.stamp = 0

    def params(self, query: Query) -> list[Any]:
        """The bound parameters of ``query`` (of this plan's shape), as the binders give them."""
        order = query.order_by
        binders = self.binders
        if len(binders) == 1:
            index, wrapped, bind = binders[0]
            item = order[index]
            return bind(item.expression if wrapped else item)
        params: list[Any] = []
        for index, wrapped, bind in binders:
            item = order[index]
            params.extend(bind(item.expression if wrapped else item))
        return params


class PlanCompiler(CachedCompiler[SelectPlan]):
    """The part of SQLCompiler the iterables use, served from a SelectPlan."""

    def __init__(
        self, plan: SelectPlan, params: list[Any], connection: BaseDatabaseWrapper, query: Query
    ) -> None:
        super().__init__(plan, params, connection)
        self.query = query
        self.col_count = plan.col_count


# -- shapes ----------------------------------------------------------------------------------

_eligible: dict[type, bool] = {}


_CLASS_DATA = ("__module__", "__qualname__", "__doc__", "__annotations__")


def _opted_in(cls: type) -> bool:
    """``cls`` defines ``plan_shape`` and ``plan_binder``, or inherits them from a class
    it changes no method of (remembered per class)."""
    mro = cls.__mro__
    owner = next((k for k in mro if "plan_shape" in k.__dict__), None)
    ok = owner is not None and callable(getattr(cls, "plan_binder", None))
    if owner is not None:
        for klass in mro[: mro.index(owner)]:
            for name, value in vars(klass).items():
                if name not in _CLASS_DATA and (
                    callable(value)
                    or isinstance(
                        value, (property, classmethod, staticmethod, types.MemberDescriptorType)
                    )
                ):
                    ok = False
    _eligible[cls] = ok
    return ok


def _node_shape(node: Any) -> Any:
    cls = type(node)
    ok = _eligible.get(cls)
    if not (_opted_in(cls) if ok is None else ok):
        return None
    shape = node.plan_shape()
    if shape is None:
        return None
    return (cls, shape)


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def select_shape(query: Query) -> tuple[Any, ...] | None:
    """The cache key part of ``query``, or None when it cannot be cached (module docstring)."""
    if type(query) is not Query:
        return None
    attrs = query.__dict__
    count = len(attrs)
    if count != _ALWAYS and not (count == _ALWAYS + 1 and "values_select_default" in attrs):
        return None  # an attribute this module does not know
    try:
        values = _read(attrs)
    except KeyError:
        return None  # one was deleted
    if values[_FIRST_DEFAULT:] != _DEFAULT_VALUES:
        return None
    (
        model,
        alias_map,
        where,
        annotations,
        select,
        filtered_relations,
        mask,
        values_select,
        default_cols,
        order_by,
        default_ordering,
        low_mark,
        high_mark,
        select_related,
        deferred_loading,
    ) = values[: len(_HANDLED)]
    if (
        type(where) is not WhereNode
        or where.children
        or where.negated
        or annotations
        or filtered_relations
    ):
        return None
    tables: tuple[Any, ...] = ()
    if alias_map:
        if len(alias_map) != 1:
            return None
        ((alias, table),) = alias_map.items()
        if type(table) is not BaseTable:
            return None
        tables = (alias, table.table_name)
    cols: list[Any] = []
    for col in select:
        if type(col) is not Col:
            return None
        cols.append((col.alias, col.target, col._output_field))
    order: list[Any] = []
    for item in order_by:
        if type(item) is str:
            order.append(item)
            continue
        if type(item) is OrderBy:
            inner = _node_shape(item.expression)
            if inner is None:
                return None
            order.append((OrderBy, item.descending, item.nulls_first, item.nulls_last, inner))
            continue
        shape = _node_shape(item)
        if shape is None:
            return None
        order.append(shape)
    return (
        model,
        tables,
        tuple(cols),
        values_select,
        None if mask is None else tuple(mask),
        default_cols,
        tuple(order),
        default_ordering,
        low_mark,
        high_mark,
        _frozen(select_related) if type(select_related) is dict else select_related,
        deferred_loading,
    )


# -- the store ---------------------------------------------------------------------------------

_lock = threading.Lock()
_entries: OrderedDict[tuple[Any, ...], SelectPlan] = OrderedDict()
# What the entries were built under: (plugin extensions object, patterns version).
_source: list[Any] = [None, None]
_clock = [0]  # advances on every store and LRU refresh


def _fresh() -> None:
    """Drop every entry when plugins or sensitive patterns changed since they were built."""
    ext, version = plugins.extensions(), db_utils.patterns_version()
    if _source[0] is not ext or _source[1] != version:
        with _lock:
            _entries.clear()
            _source[0], _source[1] = ext, version


def _lookup(key: tuple[Any, ...]) -> SelectPlan | None:
    if _source[0] is not plugins._extensions or _source[1] != db_utils._version:
        _fresh()
    plan = _entries.get(key)
    # The LRU order is refreshed only for entries in the older half, so a hot plan is not
    # moved (under the lock) on every call.
    if plan is not None and plan.stamp < _clock[0] - MAX_ENTRIES // 2:
        with _lock:
            if key in _entries:
                _entries.move_to_end(key)
                _clock[0] += 1
                plan.stamp = _clock[0]
    return plan


def _put(key: tuple[Any, ...], plan: SelectPlan) -> None:
    with _lock:
        _clock[0] += 1
        plan.stamp = _clock[0]
        _entries[key] = plan
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def compiler_for(
    shape: tuple[Any, ...], alias: str, connection: BaseDatabaseWrapper, query: Query
) -> PlanCompiler | bool:
    """A compiler served by the plan stored for ``shape``; False when the shape is known to
    be uncacheable, True when nothing is stored yet (compile, then ``store()``)."""
    try:
        plan = _lookup((shape, alias, type(connection)))
    except TypeError:
        return False  # a plan_shape() that is not hashable: never cached
    if plan is None:
        return True
    if not plan.usable:
        return False
    params = plan.params(query)
    for param in params:
        if type(param) is Masked:
            params, sensitive = unmask(params)
            if sensitive != plan.sensitive:
                return False  # the binder masked another position: compile this one
            break
    else:
        if plan.sensitive:
            return False
    return PlanCompiler(plan, params, connection, query)


def store(
    shape: tuple[Any, ...], alias: str, compiler: SQLCompiler, query: Query
) -> PlanCompiler | None:
    """Compile ``compiler`` (set up, over ``query`` of ``shape``), check the binders
    against its parameters, remember the plan (or that the shape is uncacheable) and
    return a compiler that runs the compiled statement; None when that cannot be done."""
    _fresh()
    connection = compiler.connection
    key = (shape, alias, type(connection))
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None
    try:
        binders = _binders(query, compiler)
    except Exception:
        binders = None  # the compiler resolved these terms: a failure here is the binder's
    if binders is None:
        _put(key, SelectPlan("", [], [], None, [], 0, usable=False))
        return None
    plan = SelectPlan(
        sql, binders, list(compiler.sensitive), compiler.klass_info, [], compiler.col_count
    )
    try:
        mine, mine_sensitive = unmask(plan.params(query))
    except Exception:
        # The compiler rendered this value, so a binder that refuses it is not its twin.
        _put(key, SelectPlan("", [], [], None, [], 0, usable=False))
        return None
    if (
        len(mine) != len(params)
        or mine_sensitive != plan.sensitive
        or any(type(a) is not type(b) or a != b for a, b in zip(mine, params, strict=True))
    ):
        _put(key, SelectPlan("", [], [], None, [], 0, usable=False))
        return None
    plan.converters = compiler.converters()
    _put(key, plan)
    return PlanCompiler(plan, list(params), connection, query)


def _binders(
    query: Query, compiler: SQLCompiler
) -> list[tuple[int, bool, Callable[[Any], list[Any]]]] | None:
    """The binder of each expression term of ``query.order_by``, made on the term
    resolved as the compiler resolves it; None when a term has none or a plugin renders it."""
    ext = plugins.extensions()
    vendor = compiler.connection.vendor
    binders: list[tuple[int, bool, Callable[[Any], list[Any]]]] = []
    for index, item in enumerate(query.order_by):
        if type(item) is str:
            continue
        wrapped = type(item) is OrderBy
        if wrapped and ext.renderer(OrderBy, vendor) is not None:
            return None
        node = item.expression if wrapped else item
        if ext.renderer(type(node), vendor) is not None:
            return None
        resolved = node.resolve_expression(compiler.query)
        binder = resolved.plan_binder() if type(resolved) is type(node) else None
        if binder is None:
            return None
        binders.append((index, wrapped, binder))
    return binders


def clear() -> None:
    """Forget every plan (connections were reset, or a test wants a cold cache)."""
    with _lock:
        _entries.clear()


def size() -> int:
    """How many shapes are stored (uncacheable ones included)."""
    return len(_entries)
