"""Render migrations as Python source: ``serialize`` for values, ``MigrationWriter`` for files.

Output depends only on the values rendered (sets and dict keys are sorted by their source
text), so the same migration is byte-identical whatever ``PYTHONHASHSEED`` is.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import importlib
import math
import types
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MigrationWriter", "serialize"]

_WIDTH = 99
_OPERATIONS_MODULE = "dorm.migrations.operations"
_OPERATIONS_IMPORT = "from dorm.migrations import operations"


@dataclass
class _Group:
    """A bracketed, comma-separated run of items: a call, list, tuple, set or dict."""

    open: str
    items: list[tuple[str, _Node]]  # (prefix such as "key=" or "'k': ", value)
    close: str
    single_comma: bool = False  # a one-element tuple needs its trailing comma


_Node = str | _Group


@dataclass
class _Rendered:
    node: _Node
    imports: set[str] = field(default_factory=set)


def _flat(node: _Node) -> str:
    if isinstance(node, str):
        return node
    inner = ", ".join(prefix + _flat(value) for prefix, value in node.items)
    if node.single_comma and len(node.items) == 1:
        inner += ","
    return f"{node.open}{inner}{node.close}"


def _layout(node: _Node, indent: int, used: int) -> str:
    """Return ``node`` on one line when it fits in the width left, else one item a line."""
    flat = _flat(node)
    if isinstance(node, str) or not node.items or used + len(flat) < _WIDTH:
        return flat
    inner = " " * (indent + 4)
    lines = [node.open]
    for prefix, value in node.items:
        body = _layout(value, indent + 4, indent + 4 + len(prefix))
        lines.append(f"{inner}{prefix}{body},")
    lines.append(" " * indent + node.close)
    return "\n".join(lines)


def serialize(value: Any) -> tuple[str, set[str]]:
    """Return Python source that rebuilds ``value``, and the import lines it needs.

    :raises ValueError: ``value`` (or something inside it) has no importable source form,
        such as a lambda, a function defined inside another function, or an arbitrary object.
    """
    rendered = _serialize(value)
    return _flat(rendered.node), rendered.imports


def _serialize(value: Any) -> _Rendered:
    from dorm.expressions import F, Q
    from dorm.models.fields import Field

    if value is None or value is True or value is False:
        return _Rendered(repr(value))
    if isinstance(value, enum.Enum):
        klass = _serialize_path_object(type(value))
        return _Rendered(f"{_flat(klass.node)}[{value.name!r}]", klass.imports)
    if isinstance(value, int):
        return _Rendered(repr(int(value)))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return _Rendered(f"float({str(value)!r})")
        return _Rendered(repr(float(value)))
    if isinstance(value, str):
        return _Rendered(repr(str(value)))
    if isinstance(value, bytes):
        return _Rendered(repr(bytes(value)))
    if isinstance(value, decimal.Decimal):
        return _Rendered(f"decimal.Decimal({str(value)!r})", {"import decimal"})
    if isinstance(value, (datetime.datetime, datetime.time)):
        return _serialize_clock(value)
    if isinstance(value, (datetime.date, datetime.timedelta)):
        return _Rendered(repr(value), {"import datetime"})
    if isinstance(value, uuid.UUID):
        return _Rendered(f"uuid.UUID({str(value)!r})", {"import uuid"})
    if isinstance(value, type):
        return _serialize_path_object(value)
    if isinstance(value, Field):
        _name, path, args, kwargs = value.deconstruct()
        return _call(path, args, kwargs, f"field {value!r}")
    if isinstance(value, Q):
        return _serialize_q(value)
    if isinstance(value, F):
        return _call("dorm.F", [value.name], {}, repr(value))
    deconstruct = getattr(value, "deconstruct", None)
    if callable(deconstruct):
        parts = deconstruct()
        if isinstance(parts, tuple) and len(parts) == 3 and isinstance(parts[0], str):
            # An operation's keywords keep the order they were given in (name first).
            keep = parts[0].startswith(_OPERATIONS_MODULE + ".")
            return _call(parts[0], list(parts[1]), dict(parts[2]), repr(value), not keep)
    if isinstance(value, (list, tuple)):
        items = [_serialize(item) for item in value]
        imports = _union(items)
        nodes = [("", item.node) for item in items]
        if isinstance(value, list):
            return _Rendered(_Group("[", nodes, "]"), imports)
        return _Rendered(_Group("(", nodes, ")", single_comma=True), imports)
    if isinstance(value, (set, frozenset)):
        items = sorted((_serialize(item) for item in value), key=lambda r: _flat(r.node))
        imports = _union(items)
        nodes = [("", item.node) for item in items]
        if isinstance(value, frozenset):
            inner: _Node = _Group("{", nodes, "}") if nodes else ""
            return _Rendered(_Group("frozenset(", [("", inner)] if nodes else [], ")"), imports)
        return _Rendered(_Group("{", nodes, "}") if nodes else "set()", imports)
    if isinstance(value, dict):
        pairs = [(_serialize(k), _serialize(v)) for k, v in value.items()]
        pairs.sort(key=lambda pair: _flat(pair[0].node))
        imports = _union([r for pair in pairs for r in pair])
        return _Rendered(
            _Group("{", [(f"{_flat(k.node)}: ", v.node) for k, v in pairs], "}"), imports
        )
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return _serialize_path_object(value)
    raise ValueError(
        f"cannot serialize {value!r} (type {type(value).__qualname__}) into a migration: "
        f"use a plain value, or give the class a deconstruct() method returning "
        f"(import path, args, kwargs)"
    )


def _union(items: Iterable[_Rendered]) -> set[str]:
    imports: set[str] = set()
    for item in items:
        imports |= item.imports
    return imports


def _path_import(path: str) -> tuple[str, str]:
    """Source text and import line for a dotted ``module.Name`` path."""
    if path.startswith(_OPERATIONS_MODULE + "."):
        return "operations." + path[len(_OPERATIONS_MODULE) + 1 :], _OPERATIONS_IMPORT
    module, _, _name = path.rpartition(".")
    if not module:
        raise ValueError(f"import path {path!r} must look like 'module.Name'")
    return path, f"import {module}"


def _call(
    path: str, args: Sequence[Any], kwargs: dict[str, Any], owner: str, sort: bool = True
) -> _Rendered:
    text, import_line = _path_import(path)
    imports = {import_line}
    items: list[tuple[str, _Node]] = []
    try:
        for arg in args:
            rendered = _serialize(arg)
            imports |= rendered.imports
            items.append(("", rendered.node))
        for key in sorted(kwargs) if sort else kwargs:
            rendered = _serialize(kwargs[key])
            imports |= rendered.imports
            items.append((f"{key}=", rendered.node))
    except ValueError as exc:
        if str(exc).startswith("in "):
            raise
        raise ValueError(f"in {owner}: {exc}") from exc
    return _Rendered(_Group(f"{text}(", items, ")"), imports)


def _serialize_q(q: Any) -> _Rendered:
    _path, args, kwargs = q.deconstruct()
    keys = [child[0] for child in args if isinstance(child, tuple) and len(child) == 2]
    as_keywords = (
        len(keys) == len(args)
        and all(isinstance(k, str) and k.isidentifier() for k in keys)
        and keys == sorted(set(keys))
    )
    if as_keywords:
        # Q(a=1, b=2) stores its keywords sorted, so this spelling rebuilds an equal Q.
        merged = {key: value for key, value in args}
        merged.update(kwargs)
        return _call("dorm.Q", [], merged, repr(q))
    return _call("dorm.Q", list(args), kwargs, repr(q))


def _serialize_clock(value: datetime.datetime | datetime.time) -> _Rendered:
    tz = value.tzinfo
    if tz is None:
        return _Rendered(repr(value), {"import datetime"})
    imports = {"import datetime"}
    if tz is datetime.UTC:
        tz_text = "datetime.timezone.utc"
    elif isinstance(tz, datetime.timezone):
        tz_text = repr(tz)
    elif type(tz).__module__ == "zoneinfo" and getattr(tz, "key", None):
        tz_text = f"zoneinfo.ZoneInfo({tz.key!r})"  # type: ignore[attr-defined]
        imports.add("import zoneinfo")
    else:
        raise ValueError(
            f"cannot serialize {value!r}: its tzinfo {tz!r} is neither a datetime.timezone "
            f"nor a zoneinfo.ZoneInfo"
        )
    naive = repr(value.replace(tzinfo=None))
    return _Rendered(f"{naive[:-1]}, tzinfo={tz_text})", imports)


def _serialize_path_object(value: Any) -> _Rendered:
    """A class or function by the dotted path it is importable under."""
    owner = getattr(value, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        if not isinstance(owner, type):
            raise ValueError(
                f"cannot serialize the bound method {value!r}: only functions, classes and "
                f"class methods can be referenced from a migration"
            )
        klass = _serialize_path_object(owner)
        return _Rendered(f"{_flat(klass.node)}.{value.__name__}", klass.imports)
    module = getattr(value, "__module__", None)
    if owner is not None:
        module = owner.__name__
    qualname = str(getattr(value, "__qualname__", None) or getattr(value, "__name__", ""))
    if getattr(value, "__name__", "") == "<lambda>":
        raise ValueError(
            f"cannot serialize the lambda {qualname} of {module} into a migration: define a "
            f"function at module level and use it instead"
        )
    if "<locals>" in qualname or not module:
        raise ValueError(
            f"cannot serialize {value!r} into a migration: {qualname!r} is defined inside a "
            f"function; move it to module level so it can be imported"
        )
    if module == "builtins":
        return _Rendered(qualname)
    if module == "__main__":
        raise ValueError(
            f"cannot serialize {value!r} into a migration: it lives in __main__, which a "
            f"migration cannot import; move it into a module"
        )
    if module.startswith("dorm.") and "." not in qualname:
        import dorm

        if getattr(dorm, qualname, None) is value:
            return _Rendered(f"dorm.{qualname}", {"import dorm"})
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not value:
        raise ValueError(
            f"cannot serialize {value!r} into a migration: {module}.{qualname} does not "
            f"import back to it"
        )
    return _Rendered(f"{module}.{qualname}", {f"import {module}"})


class MigrationWriter:
    """Build the source of one migration file.

    ``dependencies`` are ``(app_label, migration_name)`` pairs; ``operations`` are
    operation instances, rendered through their ``deconstruct()``.
    """

    def __init__(
        self,
        migration_name: str,
        app_label: str,
        dependencies: Iterable[tuple[str, str]],
        operations: Iterable[Any],
    ) -> None:
        self.migration_name = migration_name
        self.app_label = app_label
        self.dependencies = [tuple(dep) for dep in dependencies]
        self.operations = list(operations)

    @property
    def filename(self) -> str:
        return f"{self.migration_name}.py"

    def as_string(self) -> str:
        """Return the migration module's source text.

        :raises ValueError: an operation holds a value ``serialize`` cannot render.
        """
        from dorm import __version__

        imports = {"from dorm.migrations import Migration as BaseMigration", _OPERATIONS_IMPORT}
        rendered_ops: list[str] = []
        for operation in self.operations:
            rendered = _serialize(operation)
            imports |= rendered.imports
            rendered_ops.append(f"        {_layout(rendered.node, 8, 8)},")
        deps = [f"        {_flat(_serialize(dep).node)}," for dep in sorted(self.dependencies)]
        plain = sorted(line for line in imports if line.startswith("import "))
        froms = sorted(line for line in imports if line.startswith("from "))
        return "\n".join(
            [
                f'"""{self.app_label}.{self.migration_name}: generated by dorm {__version__}."""',
                "",
                *plain,
                *([""] if plain else []),
                *froms,
                "",
                "",
                "class Migration(BaseMigration):",
                *_block("dependencies", deps),
                "",
                *_block("operations", rendered_ops),
                "",
            ]
        )


def _block(name: str, items: list[str]) -> list[str]:
    if not items:
        return [f"    {name} = []"]
    return [f"    {name} = [", *items, "    ]"]
