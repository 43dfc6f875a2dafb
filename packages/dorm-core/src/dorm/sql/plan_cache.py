"""A cache of compiled SELECTs for ``filter(**kwargs)`` / ``get(**kwargs)`` query shapes.

Repeating a shape (same model, connection class, base queryset state and keyword names)
with new values skips name resolution and SQL generation: the entry keeps the SQL, one
binder per placeholder and what the row builder needs. Only plain values compared with
``exact`` / ``gt`` / ``gte`` / ``lt`` / ``lte`` on a column are cached; anything whose
value could change the SQL (None, lists, model instances, expressions) bypasses it, as
do lookups through transforms (JSON keys, ``__hour``, ...: their left side is no plain
column), annotations (functions, windows) and queries with a FilteredRelation (its
condition is part of the SQL but not of the shape).
An entry is stored only after its binders reproduced the compiler's own parameters.

Keys carry the plugin extensions object and the sensitive-patterns version, so
registering a plugin or changing patterns makes old entries unreachable; ``clear()`` runs
when connections are reset. The cache is a bounded LRU guarded by a lock.
"""

from __future__ import annotations

import datetime
import decimal
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dorm import plugins
from dorm.db import utils as db_utils
from dorm.db.utils import patterns_version
from dorm.expressions import Col, CombinedExpression, F, Masked, Value, bind
from dorm.lookups import Exact, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual
from dorm.sql.where import AND, WhereNode

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler
    from dorm.sql.expression_plans import SelectPlan
    from dorm.sql.query import Query

__all__ = [
    "MAX_ENTRIES",
    "CachedCompiler",
    "Plan",
    "clear",
    "fresh_plan",
    "fresh_shape_of",
    "lookup",
    "shape_of",
    "size",
    "store",
]

MAX_ENTRIES = 512

#: Value types whose lookups always render as one placeholder.
PLAIN_TYPES = frozenset(
    {
        int,
        str,
        float,
        bool,
        bytes,
        decimal.Decimal,
        uuid.UUID,
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
    }
)
_SAFE_LOOKUPS = frozenset({Exact, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual})

_lock = threading.Lock()
_entries: OrderedDict[tuple[Any, ...], Plan] = OrderedDict()
# What the entries were built under: (plugin extensions object, patterns version).
_source: list[Any] = [None, None]
_clock = [0]  # advances on every store and LRU refresh


class Plan:
    """One compiled shape: SQL, the field of each placeholder, row-building info."""

    __slots__ = (
        "converters",
        "fields",
        "klass_info",
        "names",
        "sensitive",
        "sql",
        "stamp",
        "count_sql",
        "builders",
        "binder",
        "updates",
    )

    def __init__(
        self,
        sql: str,
        names: tuple[str, ...],
        fields: tuple[Field, ...],
        sensitive: list[int],
        klass_info: dict[str, Any],
        converters: list[tuple[int, Callable[[Any], Any]]],
    ) -> None:
        self.sql = sql
        self.names = names
        self.fields = fields
        self.sensitive = sensitive
        self.klass_info = klass_info
        self.converters = converters
        self.stamp = 0  # _clock when last stored or moved to the LRU end
        # SELECT COUNT(*) over the same WHERE, same parameters; learnt by the first count().
        self.count_sql: str | None = None
        # alias -> the compiled builder of the instance of one row holding exactly the
        # model's columns.
        self.builders: dict[str, Callable[[Any], Any]] = {}
        # (connection, compiled kwargs -> bound parameters), made on first get_objects().
        self.binder: tuple[Any, Callable[[dict[str, Any]], list[Any] | None]] | None = None
        # update() of this filter: values shape (see update_key) -> (SQL, sensitive).
        self.updates: dict[Any, tuple[str, list[int]]] = {}

    def prepare(self, kwargs: dict[str, Any]) -> list[Any]:
        """The values in placeholder order, converted as the lookups would (``to_python``)."""
        return [f.to_python(kwargs[n]) for f, n in zip(self.fields, self.names, strict=True)]

    def objects(
        self, values: list[Any], connection: BaseDatabaseWrapper, db: str
    ) -> list[Any] | None:
        """Run the plan and build its instances, or None when rows carry related objects."""
        if self.klass_info["related"]:
            return None
        rows = connection.fetchall(self.sql, self.params(values, connection), self.sensitive)
        return self._built(rows, db)

    def get_objects(
        self, kwargs: dict[str, Any], connection: BaseDatabaseWrapper, db: str
    ) -> list[Any] | None:
        """``objects()`` straight from the keyword values (prepared and bound by one function
        compiled for this plan); None when the plan cannot serve them."""
        if self.klass_info["related"]:
            return None
        binder = self.binder  # bound(), inlined: this is every Manager.get()
        if binder is None or binder[0] is not connection:
            binder = self.binder = (connection, _compile_binder(self, connection))
        params = binder[1](kwargs)
        if params is None:
            return None
        rows = connection.fetchall(self.sql, params, self.sensitive)
        if len(rows) == 1 and not self.converters:
            build = self.builders.get(db)
            if build is not None:
                return [build(rows[0])]
        return self._built(rows, db)

    def bound(self, kwargs: dict[str, Any], connection: BaseDatabaseWrapper) -> list[Any] | None:
        """``params(prepare(kwargs))`` by the function compiled for this plan and
        connection; None when a value prepares to None (not this plan's SQL)."""
        binder = self.binder
        if binder is None or binder[0] is not connection:
            binder = self.binder = (connection, _compile_binder(self, connection))
        return binder[1](kwargs)

    def _built(self, rows: list[Any], db: str) -> list[Any]:
        info = self.klass_info
        if not rows:
            return []
        if len(rows) == 1 and not self.converters:
            # get(): one row, the builder kept on the plan (no cache key to build).
            build = self.builders.get(db)
            if build is not None:
                return [build(rows[0])]
        from dorm.models import iterables

        if not self.converters and len(rows[0]) == len(info["attnames"]):
            self.builders[db] = iterables.one_row_builder(info, db)
        return iterables.build_rows(info, rows, self.converters, db)

    def params(self, values: list[Any], connection: BaseDatabaseWrapper) -> list[Any]:
        """The bound parameters for ``values`` (prepared), in placeholder order."""
        return [_unmasked(bind(f, v, connection)) for f, v in zip(self.fields, values, strict=True)]

    def compiler(self, values: list[Any], connection: BaseDatabaseWrapper) -> CachedCompiler[Plan]:
        params = [
            _unmasked(bind(f, v, connection)) for f, v in zip(self.fields, values, strict=True)
        ]
        return CachedCompiler(self, params, connection)


def _compile_binder(
    plan: Plan, connection: BaseDatabaseWrapper
) -> Callable[[dict[str, Any]], list[Any] | None]:
    """One function doing ``params(prepare(kwargs))`` for ``plan`` on ``connection``:
    ``to_python``, ``get_db_prep_value`` and the vendor adapter of each placeholder's field
    called directly; None when a value prepares to None (exact(None) is IS NULL)."""
    namespace: dict[str, Any] = {}
    lines = ["def bind(kwargs):"]
    out = []
    for i, (field, name) in enumerate(zip(plan.fields, plan.names, strict=True)):
        namespace[f"name{i}"] = name
        namespace[f"to_python{i}"] = field.to_python
        namespace[f"prep{i}"] = field.get_db_prep_value
        identity = field._identity_types()
        lines.append(f"    v{i} = kwargs[name{i}]")
        if identity:
            # A value of a type the field passes through unchanged is not None and needs
            # neither to_python nor get_db_prep_value.
            namespace[f"same{i}"] = identity
            lines.append(f"    if type(v{i}) not in same{i}:")
            lines.append(f"        v{i} = to_python{i}(v{i})")
            lines.append(f"        if v{i} is None:")
            lines.append("            return None")
            lines.append(f"        v{i} = prep{i}(v{i})")
        else:
            lines.append(f"    v{i} = to_python{i}(v{i})")
            lines.append(f"    if v{i} is None:")
            lines.append("        return None")
            lines.append(f"    v{i} = prep{i}(v{i})")
        value = f"v{i}"
        adapter = connection.ops.adapter_for(field)
        if adapter is not None:
            namespace[f"adapt{i}"] = adapter
            value = f"adapt{i}({value})"
        out.append(value)
    lines.append(f"    return [{', '.join(out)}]")
    exec(compile("\n".join(lines), "<dorm plan binder>", "exec"), namespace)
    return namespace["bind"]  # type: ignore[no-any-return]


def _expression_key(expr: Any) -> Any:
    """The shape of an ``update()`` value built from F(), literal values and arithmetic
    (the SQL depends on it, not on the literals), or None for anything else."""
    kind = type(expr)
    if kind is F:
        return ("F", expr.name)
    if kind is Value and expr._output_field is None and type(expr.value) in PLAIN_TYPES:
        return ("V", type(expr.value))
    if kind is CombinedExpression and expr._output_field is None:
        lhs, rhs = _expression_key(expr.lhs), _expression_key(expr.rhs)
        if lhs is not None and rhs is not None:
            return ("C", expr.connector, lhs, rhs)
    return None


def update_key(values: list[tuple[Field, Any]]) -> Any:
    """The shape of ``update()``'s ``(field, value)`` pairs, or None when not cacheable."""
    key = []
    for field, value in values:
        if type(value) in PLAIN_TYPES:
            key.append((field, type(value)))
            continue
        shape = _expression_key(value)
        if shape is None:
            return None
        key.append((field, shape))
    return tuple(key)


def _literals(expr: Any, out: list[Any]) -> None:
    # In the order CombinedExpression.as_sql emits them: left operand, then right.
    kind = type(expr)
    if kind is Value:
        out.append(expr.value)
    elif kind is CombinedExpression:
        _literals(expr.lhs, out)
        _literals(expr.rhs, out)


def update_params(
    plan: Plan, values: list[tuple[Field, Any]], kwargs: dict[str, Any], connection: Any
) -> list[Any] | None:
    """The parameters of ``plan``'s cached UPDATE for these values (SET) and the filter's
    keyword values (WHERE); None when a filter value is not this plan's (None)."""
    where = plan.bound(kwargs, connection)
    if where is None:
        return None
    out: list[Any] = []
    for field, value in values:
        if type(value) in PLAIN_TYPES:
            out.append(_unmasked(bind(field, value, connection)))
        else:
            _literals(value, out)
    out.extend(where)
    return out


def remember_update(
    plan: Plan, key: Any, sql: str, params: list[Any], mine: list[Any] | None, sensitive: list[int]
) -> None:
    """Keep the UPDATE compiled for ``key`` when ``update_params`` reproduced its
    parameters exactly (same types, same values)."""
    if (
        mine is not None
        and len(mine) == len(params)
        and all(type(a) is type(b) and a == b for a, b in zip(mine, params, strict=True))
    ):
        plan.updates[key] = (sql, list(sensitive))


def _unmasked(value: Any) -> Any:
    return value.value if type(value) is Masked else value


# The entry a CachedCompiler serves: a Plan, or an expression_plans.SelectPlan (both keep
# sql, converters, klass_info and sensitive).
P = TypeVar("P", "Plan", "SelectPlan")


class CachedCompiler(Generic[P]):
    """The part of SQLCompiler the model iterable uses, served from a Plan."""

    def __init__(self, plan: P, params: list[Any], connection: BaseDatabaseWrapper) -> None:
        self.plan: P = plan
        self.params = params
        self.connection = connection
        self.klass_info: dict[str, Any] | None = plan.klass_info
        self.annotation_col_map: dict[str, int] = {}
        self.sensitive: list[int] = plan.sensitive

    def converters(self) -> list[tuple[int, Callable[[Any], Any]]]:
        converters: list[tuple[int, Callable[[Any], Any]]] = self.plan.converters
        return converters

    def execute(self) -> list[tuple[Any, ...]]:
        return self.connection.fetchall(self.plan.sql, self.params, self.sensitive)

    def chunks(self, chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
        yield from self.connection.stream(self.plan.sql, self.params, chunk_size, self.sensitive)


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def _state(q: Query) -> tuple[Any, ...] | None:
    """What of ``q`` besides WHERE shapes the SQL, or None when it is not a plain SELECT."""
    if (
        q.annotations
        or q.annotation_select_mask is not None
        or q.values_select
        or q.select
        or not q.default_cols
        or q.combinator is not None
        or q.cte is not None
        or q.filtered_relations
        or q.subquery
        or q.is_empty_query
        or q.distinct
        or q.group_by is not None
        or q.select_for_update
        or q.extra_order_by
        or q.alias_prefix != "T"
        or not all(type(item) is str for item in q.order_by)
    ):
        return None
    return (
        q.model,
        q.order_by,
        q.default_ordering,
        q.low_mark,
        q.high_mark,
        _frozen(q.select_related),
        q.deferred_loading,
    )


_fresh_shapes: dict[tuple[Any, ...], Any] = {}


# (model, keyword names, alias, connection class, get mode) -> the plan that lookup()
# found for fresh_shape_of(model, kwargs, get mode) there: Manager.get()'s and
# Manager.filter()'s way to the plan in one dict lookup. Emptied with the entries and
# whenever one is evicted (an evicted plan is not kept alive here).
_fresh_plans: dict[tuple[Any, ...], Plan] = {}


def fresh_plan(
    model: Any,
    kwargs: dict[str, Any],
    alias: str,
    connection: BaseDatabaseWrapper,
    get_mode: bool,
) -> Plan | None:
    """``lookup(fresh_shape_of(model, kwargs, get_mode), alias, connection)``, for kwargs
    whose values the caller has checked are all of PLAIN_TYPES."""
    key = (model, tuple(kwargs), alias, type(connection), get_mode)
    plan = _fresh_plans.get(key)
    if (
        plan is not None
        and _source[0] is plugins._extensions
        and _source[1] == db_utils._version
        and plan.stamp >= _clock[0] - MAX_ENTRIES // 2
    ):
        return plan
    shape = fresh_shape_of(model, kwargs, get_mode)
    if shape is None:
        return None
    plan = lookup(shape, alias, connection)
    if plan is not None:
        if len(_fresh_plans) > 4096:
            _fresh_plans.clear()
        _fresh_plans[key] = plan
    return plan


def fresh_shape_of(model: Any, kwargs: dict[str, Any], get_mode: bool) -> Any:
    """``shape_of`` for ``Query(model)``, whose state is the same for every fresh query:
    the shape object itself is kept per (model, keyword names, get mode)."""
    for value in kwargs.values():
        if type(value) not in PLAIN_TYPES:
            return None
    names = tuple(kwargs)
    try:
        return _fresh_shapes[model, names, get_mode]
    except KeyError:
        pass
    from dorm.sql.query import Query

    state = _state(Query(model))
    shape = None
    if state is not None:
        if get_mode:
            state = (*state[:1], (), False, 0, 21, *state[5:])
        shape = (names, state)
    if len(_fresh_shapes) > 4096:
        _fresh_shapes.clear()
    _fresh_shapes[model, names, get_mode] = shape
    return shape


def shape_of(query: Query, kwargs: dict[str, Any], get_mode: bool) -> Any:
    """The shape of ``query.filter(**kwargs)`` (then sliced for ``get()`` in get_mode).

    None when it cannot be cached: ``query`` already filters or joins, or a value is not
    a plain scalar.
    """
    for value in kwargs.values():
        if type(value) not in PLAIN_TYPES:
            return None
    if query.where.children or len(query.alias_map) > 1:
        return None
    state = _state(query)
    if state is None:
        return None
    if get_mode:
        if query.is_sliced:
            return None
        # What get() leaves: clear_ordering(force=True), set_limits(high=21).
        state = (*state[:1], (), False, 0, 21, *state[5:])
    return (tuple(kwargs), state)


def _fresh() -> None:
    """Drop every entry when plugins or sensitive patterns changed since they were built."""
    ext, version = plugins.extensions(), patterns_version()
    if _source[0] is not ext or _source[1] != version:
        with _lock:
            _entries.clear()
            _fresh_plans.clear()
            _source[0], _source[1] = ext, version


def lookup(shape: Any, alias: str, connection: BaseDatabaseWrapper) -> Plan | None:
    """The plan stored for ``shape`` on ``alias`` / this connection class, or None."""
    if _source[0] is not plugins._extensions or _source[1] != db_utils._version:
        _fresh()
    key = (shape, alias, type(connection))
    # A read needs no lock (a dict lookup is atomic); the LRU order is refreshed only
    # for entries in the older half, so a hot plan is not moved on every call.
    plan = _entries.get(key)
    if plan is not None and plan.stamp < _clock[0] - MAX_ENTRIES // 2:
        with _lock:
            if key in _entries:
                _entries.move_to_end(key)
                _clock[0] += 1
                plan.stamp = _clock[0]
    return plan


def store(
    shape: Any, alias: str, compiler: SQLCompiler, kwargs: dict[str, Any]
) -> CachedCompiler[Plan] | None:
    """Record ``compiler`` (set up, over the query built for ``shape``) and run from it.

    Nothing is stored, and None returned, unless the query is exactly the plain shape
    expected and the plan's binding reproduces the compiler's own parameters.
    """
    from dorm.exceptions import EmptyResultSet

    _fresh()
    connection = compiler.connection
    query = compiler.query
    if compiler.klass_info is None or compiler.annotation_col_map:
        return None
    if _state(query) != shape[1] or shape[0] != tuple(kwargs):
        return None
    root = query.where
    if root.negated or root.connector != AND or len(root.children) != 1:
        return None
    node = root.children[0]
    if type(node) is not WhereNode or node.negated or node.connector != AND:
        return None
    if len(node.children) != len(kwargs):
        return None
    ext = plugins.extensions()
    vendor = connection.vendor
    fields: list[Field] = []
    names = sorted(kwargs)  # Q(**kwargs) orders its children by name
    for lookup_node in node.children:
        if type(lookup_node) not in _SAFE_LOOKUPS or type(lookup_node.lhs) is not Col:
            return None
        if ext.renderer(type(lookup_node), vendor) is not None or lookup_node.rhs is None:
            return None
        field = lookup_node.lhs_field
        if field is None:
            return None
        fields.append(field)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None
    plan = Plan(sql, tuple(names), tuple(fields), list(compiler.sensitive), compiler.klass_info, [])
    mine = [bind(f, v, connection) for f, v in zip(fields, plan.prepare(kwargs), strict=True)]
    mine_sensitive = [i for i, p in enumerate(mine) if type(p) is Masked]
    unwrapped = [_unmasked(p) for p in mine]
    if (
        len(unwrapped) != len(params)
        or mine_sensitive != plan.sensitive
        or any(type(a) is not type(b) or a != b for a, b in zip(unwrapped, params, strict=True))
    ):
        return None
    plan.converters = compiler.converters()
    key = (shape, alias, type(connection))
    with _lock:
        _clock[0] += 1
        plan.stamp = _clock[0]
        _entries[key] = plan
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
            _fresh_plans.clear()
    return CachedCompiler(plan, list(params), connection)


def clear() -> None:
    """Forget every plan (connections were reset, or a test wants a cold cache)."""
    with _lock:
        _entries.clear()
        _fresh_plans.clear()


def size() -> int:
    return len(_entries)
