"""Turning result rows into model instances, dicts, tuples or single values."""

from __future__ import annotations

import gc
import keyword
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dorm.db.connection import connections
from dorm.models.base import LOADED_FROM, ModelState
from dorm.sql import expression_plans, plan_cache
from dorm.sql.compiler import SQLCompiler
from dorm.sql.expression_plans import PlanCompiler
from dorm.sql.plan_cache import CachedCompiler

if TYPE_CHECKING:
    from dorm.models.query import QuerySet

__all__ = [
    "BaseIterable",
    "FlatValuesListIterable",
    "KeyedModelIterable",
    "ModelIterable",
    "NamedValuesListIterable",
    "Prefetch",
    "ValuesIterable",
    "ValuesListIterable",
]


class BaseIterable:
    def __init__(self, queryset: QuerySet, chunk_size: int | None = None) -> None:
        self.queryset = queryset
        self.chunk_size = chunk_size

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError

    def fetch_list(self) -> list[Any]:
        """Every result as a list (what ``QuerySet._fetch_all`` caches)."""
        return list(self)

    def _rows(self, compiler: SQLCompiler | CachedCompiler[Any]) -> Iterator[Sequence[Any]]:
        if self.chunk_size is None:
            yield from compiler.execute()
        else:
            for chunk in compiler.chunks(self.chunk_size):
                yield from chunk

    def _chunks(self, compiler: SQLCompiler | CachedCompiler[Any]) -> Iterator[Sequence[Any]]:
        """The result as one list, or in ``chunk_size`` lists (a server-side cursor)."""
        if self.chunk_size is None:
            yield compiler.execute()
        else:
            yield from compiler.chunks(self.chunk_size)

    def _compiler(self) -> SQLCompiler:
        qs = self.queryset
        compiler = qs.query.get_compiler(qs.db)
        compiler.setup()
        return compiler

    def _select_compiler(self) -> SQLCompiler | PlanCompiler:
        """The queryset's compiler: served by its shape's expression plan when there is
        one (stored now if the shape is new), else a new SQLCompiler."""
        qs = self.queryset
        query = qs.query
        db = qs.db
        shape = expression_plans.select_shape(query)
        if shape is None:
            compiler = query.get_compiler(db)
            compiler.setup()
            return compiler
        connection = connections[db]
        found = expression_plans.compiler_for(shape, db, connection, query)
        if type(found) is PlanCompiler:
            return found
        compiler = query.get_compiler(db, connection)
        compiler.setup()
        if found is True:
            stored = expression_plans.store(shape, db, compiler, query)
            if stored is not None:
                return stored
        return compiler


def _converted(rows: Iterable[Sequence[Any]], converters: list[tuple[int, Any]]) -> Iterator[Any]:
    if not converters:
        yield from rows
        return
    for row in rows:
        row = list(row)
        for i, convert in converters:
            value = row[i]
            if value is not None:
                row[i] = convert(value)
        yield row


def _convert_chunk(rows: Sequence[Any], converters: list[tuple[int, Any]]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for row in rows:
        row = list(row)
        for i, convert in converters:
            value = row[i]
            if value is not None:
                row[i] = convert(value)
        append(row)
    return out


# A chunk this long allocates enough objects to trigger several collections of the
# cyclic GC; none can free anything being built, so they are deferred until it is done.
_GC_PAUSE_ROWS = 500


def _without_gc(build: Callable[[Sequence[Any]], list[Any]], rows: Sequence[Any]) -> list[Any]:
    if len(rows) < _GC_PAUSE_ROWS or not gc.isenabled():
        return build(rows)
    gc.disable()
    try:
        return build(rows)
    finally:
        gc.enable()


_constructors: dict[tuple[Any, ...], Callable[[Sequence[Any]], list[Any]]] = {}


def _constructor(
    model: type, attnames: Sequence[str], db: str, start: int, unpack: bool, one: bool = False
) -> Callable[[Sequence[Any]], Any]:
    """A function turning a chunk of rows into instances of ``model``, compiled once per
    query shape: straight-line attribute stores (or one dict display) per row instead of
    a loop over the fields. With ``one`` (and ``unpack``), a function of one row returning
    its instance."""
    key = (model, tuple(attnames), db, start, unpack, one)
    found = _constructors.get(key)
    if found is not None:
        return found
    names = [f"v{i}" for i in range(len(attnames))]
    if unpack:
        targets = f"{', '.join(names)}{',' if len(names) == 1 else ''}"
        head = f"{targets} = row" if one else f"for {targets} in rows:"
        values = names
    else:
        head = "for row in rows:"
        values = [f"row[{start + i}]" for i in range(len(attnames))]
    # The instance's ModelState is made on first use from LOADED_FROM (base.py): most
    # loaded rows never need one, and one object fewer per row is less GC work.
    pad = "    " if one else "        "  # the body of build(), or of its loop
    if _stores_plainly(model, [*attnames, LOADED_FROM]):
        # Attribute stores keep the values in the instance itself (its dict is made only if
        # something asks for ``__dict__``): about a third less work per row than a dict
        # display, allocation, deallocation and collection included.
        fill = "".join(
            f"{pad}obj.{name} = {value}\n"
            for name, value in zip([*attnames, LOADED_FROM], [*values, "db"], strict=True)
        )
    else:
        # repr() makes each attribute name a string literal: nothing of it is executed.
        items = "".join(
            f"{name!r}: {value}, " for name, value in zip(attnames, values, strict=True)
        )
        fill = f"{pad}obj.__dict__ = {{{items}{LOADED_FROM!r}: db}}\n"
    if one:
        source = f"def build(row):\n    {head}\n    obj = new(model)\n{fill}    return obj\n"
    else:
        source = (
            "def build(rows):\n"
            "    out = []\n"
            "    append = out.append\n"
            f"    {head}\n"
            "        obj = new(model)\n"
            f"{fill}"
            "        append(obj)\n"
            "    return out\n"
        )
    namespace: dict[str, Any] = {
        "new": model.__new__,
        "model": model,
        "new_state": _new_state,
        "state_class": ModelState,
        "db": db,
    }
    exec(compile(source, f"<dorm constructor {model.__name__}>", "exec"), namespace)
    build: Callable[[Sequence[Any]], Any] = namespace["build"]
    if len(_constructors) > 2048:
        _constructors.clear()
    _constructors[key] = build
    return build


def _stores_plainly(model: type, names: Sequence[str]) -> bool:
    """Whether ``obj.<name> = value`` stores each of ``names`` in an instance of ``model``
    and does nothing else: the model does not override ``__setattr__``, each name is an
    identifier (it is written into compiled code), and none is a data descriptor on the
    class (a foreign key's ``author_id`` is one, whose ``__set__`` must not run for a
    loaded row)."""
    if any("__setattr__" in klass.__dict__ for klass in model.__mro__[:-1]):
        return False
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name):
            return False
        found = next((k.__dict__[name] for k in model.__mro__ if name in k.__dict__), None)
        if hasattr(type(found), "__set__") or hasattr(type(found), "__delete__"):
            return False
    return True


def one_row_builder(info: dict[str, Any], db: str) -> Callable[[Sequence[Any]], Any]:
    """The compiled builder of the instance of one row that holds exactly ``info``'s
    columns, in order (``get()``: no list, no loop)."""
    return _constructor(info["model"], info["attnames"], db, info["start"], True, one=True)


def build_rows(
    info: dict[str, Any], rows: Sequence[Any], converters: list[tuple[int, Any]], db: str
) -> list[Any]:
    """Instances of ``info["model"]`` from rows holding its columns (no related objects)."""
    if converters:
        rows = _convert_chunk(rows, converters)
    attnames = info["attnames"]
    start = info["start"]
    unpack = start == 0 and len(rows[0]) == len(attnames)
    return _without_gc(_constructor(info["model"], attnames, db, start, unpack), rows)


_joined: dict[tuple[Any, ...], Callable[[Sequence[Any]], list[Any]]] = {}


def _joined_constructor(
    info: dict[str, Any], annotations: list[tuple[str, int]], db: str
) -> Callable[[Sequence[Any]], list[Any]]:
    """A compiled row builder for select_related() and annotated rows: the main instance,
    its annotations, and each related instance (None when its key column is NULL) cached
    as ``select_related`` caches them. One per query shape."""
    key = (_shape_key(info), tuple(annotations), db)
    found = _joined.get(key)
    if found is not None:
        return found
    namespace: dict[str, Any] = {"new_state": _new_state, "state_class": ModelState, "db": db}
    lines = [
        "def build(rows):",
        "    out = []",
        "    append = out.append",
        "    for row in rows:",
    ]
    counter = [0]

    def emit(node: dict[str, Any], indent: str, extra: list[tuple[str, int]]) -> str:
        n = counter[0]
        counter[0] += 1
        model = node["model"]
        namespace[f"model{n}"] = model
        namespace[f"new{n}"] = model.__new__
        start = node["start"]
        # repr(): attribute names are written as string literals, never as code.
        items = "".join(f"{name!r}: row[{start + i}], " for i, name in enumerate(node["attnames"]))
        items += "".join(f"{name!r}: row[{index}], " for name, index in extra)
        obj, state = f"obj{n}", f"state{n}"
        lines.append(f"{indent}{obj} = new{n}(model{n})")
        if node["related"]:
            lines.append(f"{indent}{state} = new_state(state_class)")
            lines.append(f"{indent}{state}.db = db")
            lines.append(f"{indent}{state}.adding = False")
            lines.append(f"{indent}{state}.fields_cache = cache{n} = {{}}")
            lines.append(f"{indent}{obj}.__dict__ = {{{items}'_state': {state}}}")
        else:
            lines.append(f"{indent}{obj}.__dict__ = {{{items}{LOADED_FROM!r}: db}}")
        for child in node["related"]:
            field = child["field"]
            lines.append(f"{indent}if row[{child['start'] + child['pk_index']}] is None:")
            name = field.get_accessor_name() if child["reverse"] else field.name
            attr = child.get("attr")  # a FilteredRelation: an attribute, not the field cache
            target = f"{obj}.__dict__" if attr else f"cache{n}"
            name = attr or name
            lines.append(f"{indent}    {target}[{name!r}] = None")
            lines.append(f"{indent}else:")
            inner = indent + "    "
            c = emit(child, inner, [])
            lines.append(f"{inner}{target}[{name!r}] = {c}")
            back = None
            if child["reverse"]:
                back = field.field.name  # a reverse one-to-one: the child points back
            elif getattr(field, "one_to_one", False):
                back = field.remote_field.get_accessor_name()
            if back is not None:
                lines.append(f"{inner}{c}._state.fields_cache[{back!r}] = {obj}")
        return obj

    root = emit(info, "        ", annotations)
    lines.append(f"        append({root})")
    lines.append("    return out")
    exec(compile("\n".join(lines) + "\n", "<dorm joined constructor>", "exec"), namespace)
    build: Callable[[Sequence[Any]], list[Any]] = namespace["build"]
    if len(_joined) > 1024:
        _joined.clear()
    _joined[key] = build
    return build


def _shape_key(info: dict[str, Any]) -> tuple[Any, ...]:
    return (
        info["model"],
        info["attnames"],
        info["start"],
        info.get("field"),
        info.get("reverse"),
        info.get("attr"),
        tuple(_shape_key(child) for child in info["related"]),
    )


_new_state = ModelState.__new__


class ModelIterable(BaseIterable):
    """Yield model instances (with select_related objects and annotations attached)."""

    def _plan_compiler(self) -> SQLCompiler | CachedCompiler[Any]:
        """The plan cache's compiler when the queryset has (or seeds) a plan."""
        qs = self.queryset
        pending = qs._pending
        if pending is not None:
            db = qs.db
            if db == qs._plan_db:
                plan, values, _kwargs, _get_mode = pending
                return plan.compiler(values, connections[db])
        seed = qs._plan_seed
        if seed is None:
            return self._select_compiler()  # builds a pending queryset's query
        compiler = self._compiler()
        if seed is not None:
            shape, kwargs = seed
            stored = plan_cache.store(shape, qs.db, compiler, kwargs)
            if stored is not None:
                return stored
        return compiler

    def fetch_list(self) -> list[Any]:
        result: list[Any] = []
        for objs in self._built():
            if not result:
                result = objs  # usually the only chunk: no copy, no per-row yield
            else:
                result.extend(objs)
        return result

    def _built(self) -> Iterator[list[Any]]:
        """The instances as lists, chunk by chunk, each built by a constructor compiled
        for the query's shape (plain columns, or joined rows and annotations)."""
        compiler = self._plan_compiler()
        info = compiler.klass_info
        assert info is not None
        db = self.queryset.db
        converters = compiler.converters()
        annotated = list(compiler.annotation_col_map.items())
        plain = not info["related"] and not annotated
        for chunk in self._chunks(compiler):
            if not chunk:
                continue
            if plain:
                yield build_rows(info, chunk, converters, db)
                continue
            if converters:
                chunk = _convert_chunk(chunk, converters)
            yield _without_gc(_joined_constructor(info, annotated, db), chunk)

    def __iter__(self) -> Iterator[Any]:
        for objs in self._built():
            yield from objs


class KeyedModelIterable(ModelIterable):
    """Model instances, and apart from them the value each row holds in one annotation
    (the key of the object a prefetched row belongs to), which is not set on them."""

    def fetch_keyed(self, alias: str) -> tuple[list[Any], list[Any]]:
        """The instances and, at the same indexes, their values of annotation ``alias``."""
        compiler = self._plan_compiler()
        info = compiler.klass_info
        assert info is not None
        db = self.queryset.db
        converters = compiler.converters()
        columns = compiler.annotation_col_map
        index = columns[alias]
        annotated = [(name, i) for name, i in columns.items() if name != alias]
        if info["related"] or annotated:
            build = _joined_constructor(info, annotated, db)
        else:
            build = _constructor(info["model"], info["attnames"], db, info["start"], False)
        objs: list[Any] = []
        keys: list[Any] = []
        for chunk in self._chunks(compiler):
            if not chunk:
                continue
            if converters:
                chunk = _convert_chunk(chunk, converters)
            objs += _without_gc(build, chunk)
            keys += [row[index] for row in chunk]
        return objs, keys


class ValuesIterable(BaseIterable):
    def __iter__(self) -> Iterator[dict[str, Any]]:
        compiler = self._select_compiler()
        names = self.queryset._value_names(compiler)
        for row in _converted(self._rows(compiler), compiler.converters()):
            yield dict(zip(names, row, strict=False))


class ValuesListIterable(BaseIterable):
    def fetch_list(self) -> list[Any]:
        if self.chunk_size is None and type(self) in (ValuesListIterable, FlatValuesListIterable):
            compiler = self._select_compiler()
            if self.queryset._values_order(compiler) is None and not compiler.converters():
                # The driver's rows as they are: no generator step per row.
                rows = compiler.execute()
                width = compiler.col_count
                flat = type(self) is FlatValuesListIterable
                if flat:
                    return [row[0] for row in rows]
                if rows and (type(rows[0]) is not tuple or len(rows[0]) != width):
                    return [tuple(row[:width]) for row in rows]
                return rows
        return list(self)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        compiler = self._select_compiler()
        order = self.queryset._values_order(compiler)
        converters = compiler.converters()
        rows = self._rows(compiler)
        width = compiler.col_count
        if order is None and not converters:
            for row in rows:
                yield tuple(row) if len(row) == width else tuple(row[:width])
            return
        for row in _converted(rows, converters):
            if order is None:
                yield tuple(row[:width])
            else:
                yield tuple(row[i] for i in order)


class NamedValuesListIterable(ValuesListIterable):
    def __iter__(self) -> Iterator[Any]:
        names = self.queryset._fields or ()
        row_class = namedtuple("Row", [n.replace("__", "_") for n in names])  # type: ignore[misc]
        for row in super().__iter__():
            yield row_class._make(row)


class FlatValuesListIterable(ValuesListIterable):
    def __iter__(self) -> Iterator[Any]:
        for row in super().__iter__():
            yield row[0]


class Prefetch:
    """``Prefetch("books", queryset=Book.objects.filter(...), to_attr="recent_books")``."""

    def __init__(self, lookup: str, queryset: QuerySet | None = None, to_attr: str | None = None):
        self.prefetch_through = lookup
        self.prefetch_to = (
            lookup if to_attr is None else "__".join([*lookup.split("__")[:-1], to_attr])
        )
        self.queryset = queryset
        self.to_attr = to_attr

    def __repr__(self) -> str:
        return f"<Prefetch {self.prefetch_through!r} to_attr={self.to_attr!r}>"
