"""The value-type registry: what each model field carries, for streams and schemas alike.

Core field classes are mapped here; plugin field classes come from the
``dorm_register_value_schemas`` hook, whose answers are plain data (a carrier type plus
JSON Schema keywords), so a field plugin never imports this package and this package never
imports a field plugin. A field class resolves to its nearest registered base class, a
plugin's entry winning over core's at the same class. The hook is read once per plugin
set, and columns once per (model, field selection): never per row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dorm.contrib.serializers.exceptions import SerializerError, UnknownFieldTypeError
from dorm.exceptions import PluginConflictError, PluginError

__all__ = ["CARRIERS", "Column", "ValueType", "columns_for", "value_type"]

HOOK = "dorm_register_value_schemas"
#: The carrier types a plugin may name; core adds the temporal, uuid and binary kinds.
CARRIERS = frozenset({"string", "integer", "number", "decimal", "boolean", "json"})

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class ValueType:
    """How one field's values travel: ``kind`` plus the bounds schemas state.

    ``plugin`` is True for hook-described fields, whose values are carried as
    ``get_db_prep_value`` coerced to ``kind`` and read back through ``to_python``.
    """

    kind: str
    max_length: int | None = None
    max_digits: int | None = None
    decimal_places: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    json_schema: dict[str, Any] = field(default_factory=dict)
    plugin: bool = False


@dataclass(frozen=True)
class Column:
    """One serialized field: its key (``name``), attribute, field and value type."""

    name: str
    attname: str
    field: Any
    vtype: ValueType
    #: ``app_label.Model`` of the target when the column holds a relation's key.
    relation: str | None = None


def _text(f: Any) -> ValueType:
    return ValueType("string", max_length=f.max_length)


def _integer(bounds: tuple[int, int]) -> Callable[[Any], ValueType]:
    return lambda f: ValueType("integer", minimum=bounds[0], maximum=bounds[1])


def _kind(kind: str, **extra: Any) -> Callable[[Any], ValueType]:
    return lambda f: ValueType(kind, json_schema=dict(extra))


def _core_table() -> dict[type, Callable[[Any], ValueType]]:
    import dorm

    def decimal(f: Any) -> ValueType:
        return ValueType("decimal", max_digits=f.max_digits, decimal_places=f.decimal_places)

    return {
        dorm.CharField: _text,
        dorm.TextField: _text,
        dorm.EmailField: lambda f: ValueType(
            "string", f.max_length, json_schema={"format": "email"}
        ),
        dorm.URLField: lambda f: ValueType("string", f.max_length, json_schema={"format": "uri"}),
        dorm.SlugField: lambda f: ValueType(
            "string", f.max_length, json_schema={"pattern": "^[-a-zA-Z0-9_]+$"}
        ),
        dorm.GenericIPAddressField: _kind("string", description="An IPv4 or IPv6 address"),
        dorm.IntegerField: _integer(_INT32),
        dorm.AutoField: _integer(_INT32),
        dorm.SmallIntegerField: _integer((-32768, 32767)),
        dorm.PositiveIntegerField: _integer((0, _INT32[1])),
        dorm.BigIntegerField: _integer(_INT64),
        dorm.BigAutoField: _integer(_INT64),
        dorm.FloatField: _kind("number"),
        dorm.BooleanField: _kind("boolean"),
        dorm.DecimalField: decimal,
        dorm.DateField: _kind("date"),
        dorm.DateTimeField: _kind("datetime"),
        dorm.TimeField: _kind("time"),
        dorm.DurationField: _kind("duration"),
        dorm.UUIDField: _kind("uuid"),
        dorm.JSONField: _kind("json"),
        dorm.BinaryField: _kind("binary"),
    }


_lock = threading.Lock()
_core: dict[type, Callable[[Any], ValueType]] | None = None
_plugins: tuple[tuple[Any, ...], dict[type, tuple[str, Callable[[Any], Any]]]] | None = None
_columns: dict[tuple[Any, ...], list[Column]] = {}


def _plugin_table() -> tuple[tuple[Any, ...], dict[type, tuple[str, Callable[[Any], Any]]]]:
    """The hook's entries, rebuilt only when the set of implementations changed."""
    global _plugins
    from dorm.plugins import get_plugin_manager

    impls = getattr(get_plugin_manager().hook, HOOK).get_hookimpls()
    key = tuple((impl.plugin_name, impl.function) for impl in impls)
    cached = _plugins
    if cached is not None and cached[0] == key:
        return cached
    table: dict[type, tuple[str, Callable[[Any], Any]]] = {}
    for owner, function in reversed(key):
        try:
            items = function()
        except Exception as exc:
            raise PluginError(
                f"dorm plugin {owner!r} failed in {HOOK}: {type(exc).__name__}: {exc}"
            ) from exc
        for item in items or ():
            if not (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], type)
                and callable(item[1])
            ):
                raise PluginError(
                    f"dorm plugin {owner!r}: {HOOK} must return (field_class, describe) "
                    f"pairs, got {item!r}"
                )
            cls, describe = item
            previous = table.get(cls)
            if previous is not None and previous[1] is not describe:
                raise PluginConflictError(
                    f"the value schema of {cls.__qualname__} is registered by both "
                    f"{previous[0]!r} and {owner!r}; uninstall or disable one of them"
                )
            table[cls] = (owner, describe)
    with _lock:
        _plugins = (key, table)
        _columns.clear()
    return key, table


def _from_plugin(owner: str, describe: Callable[[Any], Any], f: Any, where: str) -> ValueType:
    answer = describe(f)
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind not in CARRIERS:
        raise SerializerError(
            f"{where}: dorm plugin {owner!r} described {type(f).__name__} with "
            f"{answer!r}; 'type' must be one of {', '.join(sorted(CARRIERS))}"
        )
    assert isinstance(answer, dict)
    keywords = answer.get("json_schema") or {}
    if kind == "decimal" and not (
        isinstance(answer.get("max_digits"), int) and isinstance(answer.get("decimal_places"), int)
    ):
        raise SerializerError(
            f"{where}: dorm plugin {owner!r} described a decimal without integer "
            f"'max_digits' and 'decimal_places': {answer!r}"
        )
    return ValueType(
        kind,
        max_length=answer.get("max_length"),
        max_digits=answer.get("max_digits"),
        decimal_places=answer.get("decimal_places"),
        minimum=answer.get("minimum"),
        maximum=answer.get("maximum"),
        json_schema=dict(keywords),
        plugin=True,
    )


def value_type(f: Any) -> ValueType:
    """Return the value type of field ``f`` (a relation's is its target key's).

    :raises UnknownFieldTypeError: no class in the field's MRO is registered; the
        message names the field and the hook that registers it.
    """
    global _core
    if _core is None:
        _core = _core_table()
    _key, plugins = _plugin_table()
    where = f"{f.model.__name__}.{f.name}" if getattr(f, "model", None) is not None else f.name
    if getattr(f, "is_relation", False) and getattr(f, "target_field", None) is not None:
        return value_type(f.target_field)
    for cls in type(f).__mro__:
        entry = plugins.get(cls)
        if entry is not None:
            return _from_plugin(entry[0], entry[1], f, where)
        core = _core.get(cls)
        if core is not None:
            return core(f)
    raise UnknownFieldTypeError(
        f"{where}: no serializer type for field class {type(f).__module__}."
        f"{type(f).__qualname__}. Register one with the {HOOK} hook: a plugin returns "
        f"[({type(f).__name__}, lambda field: {{'type': 'string'}})] (carriers: "
        f"{', '.join(sorted(CARRIERS))})"
    )


def _concrete(model: type) -> list[Any]:
    meta: Any = model._meta  # type: ignore[attr-defined]
    return [f for f in meta.concrete_fields if not getattr(f, "many_to_many", False)]


def columns_for(model: type, fields: Sequence[str] | None = None) -> list[Column]:
    """Return the columns of ``model`` to serialize: ``fields`` (names or attnames, in
    that order) or every concrete field. Cached per model, selection and plugin set.

    :raises ValueError: a name in ``fields`` is not a concrete field of ``model``.
    """
    if isinstance(fields, str):
        raise TypeError(f"fields must be a list of field names, not the string {fields!r}")
    key_plugins, _table = _plugin_table()
    key = (model, tuple(fields) if fields is not None else None, key_plugins)
    found = _columns.get(key)
    if found is not None:
        return found
    concrete = _concrete(model)
    if fields is None:
        chosen = concrete
    else:
        by_name = {f.name: f for f in concrete} | {f.attname: f for f in concrete}
        chosen = []
        for name in fields:
            if name not in by_name:
                known = ", ".join(f.name for f in concrete)
                raise ValueError(
                    f"fields: {model.__name__} has no concrete field {name!r}; known: {known}"
                )
            chosen.append(by_name[name])
    result = []
    for f in chosen:
        relation = None
        if getattr(f, "is_relation", False):
            relation = f.remote_field.model._meta.label
        result.append(Column(f.name, f.attname, f, value_type(f), relation))
    with _lock:
        _columns[key] = result
    return result
