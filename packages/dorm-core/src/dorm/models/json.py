"""JSONField key transforms (``data__address__city``) and JSON lookups (``has_key``, ``contains``).

A key transform is the JSON value under one object key (or array index, for a key made of
digits); transforms chain for nested keys. PostgreSQL renders them with ``->`` / ``->>``
on ``jsonb`` (so expression and GIN indexes apply); SQLite with its JSON1 ``->`` / ``->>``
operators and ``json_type()``. Key names and compared values are always bound parameters.

What a key transform returns has its own field class, :class:`JSONKeyField`, so the
lookups that follow a key (``exact``, ``icontains``, ``isnull``, ...) register through
``dorm_register_lookups`` like any other and a plugin may add more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import NotSupportedError
from dorm.expressions import SQL, F
from dorm.lookups import (
    EndsWith,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    In,
    IRegex,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    Lookup,
    Regex,
    StartsWith,
    Transform,
)
from dorm.models.data_fields import JSONField

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler

__all__ = [
    "ContainedBy",
    "DataContains",
    "HasAnyKeys",
    "HasKey",
    "HasKeys",
    "JSONKeyField",
    "KeyTextTransform",
    "KeyTransform",
    "KEY_LOOKUPS",
    "JSON_LOOKUPS",
]


class JSONKeyField(JSONField):
    """The output field of a key transform: a JSON value found inside a document."""


def _is_index(key: str) -> bool:
    return key.isdigit()


def _sqlite_path(key: str) -> str:
    """The JSON1 path of one step: ``$[3]`` for an index, ``$."key"`` for a key."""
    return f"$[{key}]" if _is_index(key) else f"$.{json.dumps(key)}"


def _check_sqlite() -> None:
    import sqlite3

    if sqlite3.sqlite_version_info < (3, 38):
        raise NotSupportedError(
            f"JSON key transforms need SQLite 3.38 or later (its -> and ->> operators); "
            f"this Python uses SQLite {sqlite3.sqlite_version}"
        )


def _pg_key(key: str, connection: BaseDatabaseWrapper) -> SQL:
    ph = connection.ops.placeholder
    if _is_index(key):
        return f"{ph}::integer", [int(key)]
    return f"{ph}::text", [key]


class KeyTransform(Transform):
    """``KeyTransform("city", "address")``: the JSON value under a key, decoded when read."""

    operator = "->"

    def __init__(self, key_name: Any, lhs: Any) -> None:
        if isinstance(key_name, bool) or not isinstance(key_name, (str, int)):
            raise TypeError(
                f"{type(self).__name__}: a key name is a str or an int, got {key_name!r}"
            )
        if isinstance(key_name, int) and key_name < 0:
            raise ValueError(f"{type(self).__name__}: array indexes start at 0, got {key_name}")
        super().__init__(F(lhs) if isinstance(lhs, str) else lhs)
        self.key_name = str(key_name)

    def _resolve_output_field(self) -> Field | None:
        base = getattr(self.lhs, "output_field", None)
        return JSONKeyField(
            encoder=getattr(base, "encoder", None), decoder=getattr(base, "decoder", None)
        )

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs, params = compiler.compile(self.lhs)
        key, key_params = _pg_key(self.key_name, connection)
        return f"({lhs} {self.operator} {key})", [*params, *key_params]

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        _check_sqlite()
        lhs, params = compiler.compile(self.lhs)
        ph = connection.ops.placeholder
        return f"({lhs} {self.operator} {ph})", [*params, _sqlite_path(self.key_name)]

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        raise NotSupportedError(
            f"JSON key transforms have no SQL for {connection.display_name} (vendor "
            f"{connection.vendor!r}): register a renderer for {type(self).__name__} with the "
            f"dorm_register_vendor_sql hook"
        )

    def sort_form(self, connection: BaseDatabaseWrapper) -> Any:
        """What ORDER BY sorts: on SQLite the SQL value (``->>``: numbers as numbers), not
        the JSON text that is selected; jsonb sorts by value already."""
        if connection.vendor != "sqlite" or self.operator != "->":
            return self
        typed = KeyTransform(self.key_name, self.lhs)
        typed.operator = "->>"
        return typed

    def as_text(self) -> KeyTextTransform:
        """The same key read as text (``->>``), for text lookups."""
        return KeyTextTransform(self.key_name, self.lhs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key_name!r}, {self.lhs!r})"


class KeyTextTransform(KeyTransform):
    """``KeyTextTransform("name", "data")``: a key's value as SQL text (``->>``); a
    string comes back without its JSON quotes, a number or boolean as its JSON text."""

    operator = "->>"

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import TextField

        return TextField()

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return super().as_postgresql(compiler, connection)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        # SQLite's ->> gives integers for JSON true/false and numbers; PostgreSQL gives
        # their JSON text. Match PostgreSQL for scalars that are not strings.
        _check_sqlite()
        lhs, params = compiler.compile(self.lhs)
        ph = connection.ops.placeholder
        path = _sqlite_path(self.key_name)
        return (
            f"(CASE json_type({lhs}, {ph}) WHEN 'text' THEN {lhs} ->> {ph} "
            f"WHEN 'null' THEN NULL ELSE {lhs} -> {ph} END)",
            [*params, path, *params, path, *params, path],
        )


# -- lookups on a whole document (or on a key holding an object) -------------------------------


class _PostgresOnly(Lookup):
    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        raise NotSupportedError(
            f"the JSON lookup {self.lookup_name!r} is only supported on PostgreSQL (jsonb), "
            f"not on {connection.display_name}; compare keys with data__<key>=... instead"
        )

    def _jsonb(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, op: str) -> SQL:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} {op} {rhs}", [*lhs_params, *rhs_params]


class DataContains(_PostgresOnly):
    """``data__contains={"a": 1}``: the document holds these keys and values (``@>``)."""

    lookup_name = "contains"

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return self._jsonb(compiler, connection, "@>")


class ContainedBy(_PostgresOnly):
    """``data__contained_by={...}``: every key and value of the document is in this one."""

    lookup_name = "contained_by"

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return self._jsonb(compiler, connection, "<@")


class HasKey(Lookup):
    """``data__has_key="name"``: the document (an object) has this top-level key."""

    lookup_name = "has_key"
    prepare_rhs = False
    pg_operator = "?"
    joiner = " AND "

    def _keys(self) -> list[str]:
        value = self.rhs
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return [str(value)]
        raise TypeError(f"{self.lookup_name} takes one key (a str), got {value!r}")

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs, params = compiler.compile(self.lhs)
        keys = self._keys()
        ph = connection.ops.placeholder
        if len(keys) == 1 and self.pg_operator == "?":
            return f"{lhs} ? {ph}::text", [*params, keys[0]]
        return f"{lhs} {self.pg_operator} {ph}::text[]", [*params, keys]

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs, params = compiler.compile(self.lhs)
        ph = connection.ops.placeholder
        parts: list[str] = []
        out: list[Any] = []
        for key in self._keys():
            parts.append(f"json_type({lhs}, {ph}) IS NOT NULL")
            # An object key that looks like an index is still a key here: "$.\"0\"".
            out.extend([*params, f"$.{json.dumps(key)}"])
        return f"({self.joiner.join(parts)})", out


class HasKeys(HasKey):
    """``data__has_keys=["a", "b"]``: every one of these keys is present."""

    lookup_name = "has_keys"
    pg_operator = "?&"

    def _keys(self) -> list[str]:
        value = self.rhs
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise TypeError(f"{self.lookup_name} takes a non-empty list of keys, got {value!r}")
        return [str(v) for v in value]


class HasAnyKeys(HasKeys):
    """``data__has_any_keys=["a", "b"]``: at least one of these keys is present."""

    lookup_name = "has_any_keys"
    pg_operator = "?|"
    joiner = " OR "


# -- lookups after a key transform -------------------------------------------------------------


def _key_of(lhs: Any) -> KeyTransform:
    assert isinstance(lhs, KeyTransform), lhs
    return lhs


class _KeyCompare(Lookup):
    """A comparison of a key's JSON value with a Python value (JSON-encoded, then bound)."""

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        # jsonb against jsonb: numbers compare as numbers, strings as strings.
        return super().as_sql(compiler, connection)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        # ->> yields SQL values; json_extract(?, '$') decodes the bound JSON the same way.
        key = _key_of(self.lhs)
        plain = KeyTransform(key.key_name, key.lhs)
        plain.operator = "->>"
        lhs, lhs_params = compiler.compile(plain)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return (
            connection.ops.lookup_sql(self.lookup_name, lhs, f"json_extract({rhs}, '$')"),
            [*lhs_params, *rhs_params],
        )


class KeyExact(_KeyCompare, Exact):
    """``data__key=value``; ``data__key=None`` matches a JSON null (not a missing key)."""

    can_use_none_as_rhs = True

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        if self.rhs is None:
            lhs, params = compiler.compile(self.lhs)
            return f"{lhs} = 'null'::jsonb", params
        return super().as_postgresql(compiler, connection)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        if self.rhs is None:
            lhs, params = compiler.compile(self.lhs)  # -> gives the JSON text 'null'
            return f"{lhs} = 'null'", params
        return super().as_sqlite(compiler, connection)


class KeyGreaterThan(_KeyCompare, GreaterThan):
    pass


class KeyGreaterThanOrEqual(_KeyCompare, GreaterThanOrEqual):
    pass


class KeyLessThan(_KeyCompare, LessThan):
    pass


class KeyLessThanOrEqual(_KeyCompare, LessThanOrEqual):
    pass


class KeyIn(In):
    """``data__key__in=[...]``: the key's JSON value is one of these values."""

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return super().as_sql(compiler, connection)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        key = _key_of(self.lhs)
        plain = KeyTransform(key.key_name, key.lhs)
        plain.operator = "->>"
        lhs, lhs_params = compiler.compile(plain)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        ph = connection.ops.placeholder
        rhs = rhs.replace(ph, f"json_extract({ph}, '$')")
        return f"{lhs} IN {rhs}", [*lhs_params, *rhs_params]


class KeyIsNull(Lookup):
    """``data__key__isnull=True``: the key is missing, or the document is NULL (a key whose
    value is JSON null is not missing)."""

    lookup_name = "isnull"
    prepare_rhs = False

    def prep_rhs(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"the isnull lookup takes True or False, got {value!r}")
        return value

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        key = _key_of(self.lhs)
        if not _is_index(key.key_name):
            sql, params = compiler.compile(HasKey(key.lhs, key.key_name))  # GIN-indexable
            # A NULL document has no key either (IS NOT TRUE, as SQLite's json_type gives).
            return (f"({sql}) IS NOT TRUE" if self.rhs else sql), params
        # -> gives SQL NULL for a missing element, jsonb 'null' for a JSON null.
        sql, params = compiler.compile(KeyTransform(key.key_name, key.lhs))
        return f"{sql} IS {'NULL' if self.rhs else 'NOT NULL'}", params

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        key = _key_of(self.lhs)
        lhs, params = compiler.compile(key.lhs)
        ph = connection.ops.placeholder
        test = "IS NULL" if self.rhs else "IS NOT NULL"
        return f"json_type({lhs}, {ph}) {test}", [*params, _sqlite_path(key.key_name)]


class _KeyText:
    """Mix in before a text lookup: compare the key's value read as text (``->>``)."""

    def __init__(self, lhs: Any, rhs: Any) -> None:
        super().__init__(_key_of(lhs).as_text(), rhs)  # type: ignore[call-arg]


class KeyIExact(_KeyText, IExact):
    pass


class KeyIContains(_KeyText, IContains):
    pass


class KeyStartsWith(_KeyText, StartsWith):
    pass


class KeyIStartsWith(_KeyText, IStartsWith):
    pass


class KeyEndsWith(_KeyText, EndsWith):
    pass


class KeyIEndsWith(_KeyText, IEndsWith):
    pass


class KeyRegex(_KeyText, Regex):
    pass


class KeyIRegex(_KeyText, IRegex):
    pass


KEY_LOOKUPS: tuple[type[Lookup], ...] = (
    KeyExact,
    KeyIExact,
    KeyIContains,
    KeyStartsWith,
    KeyIStartsWith,
    KeyEndsWith,
    KeyIEndsWith,
    KeyRegex,
    KeyIRegex,
    KeyGreaterThan,
    KeyGreaterThanOrEqual,
    KeyLessThan,
    KeyLessThanOrEqual,
    KeyIn,
    KeyIsNull,
)
"""Lookups registered on :class:`JSONKeyField` (what follows ``data__<key>__``)."""

JSON_LOOKUPS: tuple[type[Lookup], ...] = (DataContains, ContainedBy, HasKey, HasKeys, HasAnyKeys)
"""Lookups registered on :class:`JSONField` (and so on keys holding objects)."""


class KeyTransformFactory:
    """What ``JSONField.get_transform(name)`` returns for a name that is no transform: a
    callable building the key transform for ``name``."""

    def __init__(self, key_name: str) -> None:
        self.key_name = key_name

    def __call__(self, lhs: Any) -> KeyTransform:
        return KeyTransform(self.key_name, lhs)
