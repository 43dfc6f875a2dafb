"""Lookups (``field__<name>=value``) and transforms (``date__year``).

Core's lookups register through ``dorm_register_lookups`` / ``dorm_register_transforms``
(see ``dorm.sql.builtins``), the same hooks a plugin uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import EmptyResultSet, FieldError
from dorm.expressions import SQL, Expression, Masked, bind, bind_many

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler
    from dorm.sql.query import Query

__all__ = [
    "Contains",
    "Date",
    "Day",
    "EndsWith",
    "Exact",
    "GreaterThan",
    "GreaterThanOrEqual",
    "IContains",
    "IEndsWith",
    "IExact",
    "IStartsWith",
    "IRegex",
    "In",
    "IsNull",
    "LessThan",
    "LessThanOrEqual",
    "Lookup",
    "Month",
    "Range",
    "Regex",
    "StartsWith",
    "Transform",
    "Year",
]


class Lookup(Expression):
    """``lhs <operator> rhs``. Subclasses set ``lookup_name``; vendors map it to SQL."""

    lookup_name = ""
    conditional = True
    prepare_rhs = True
    #: A lookup that gives ``None`` a meaning (as Django's) sets this; others reject None.
    can_use_none_as_rhs = False

    def __init__(self, lhs: Any, rhs: Any) -> None:
        super().__init__()
        self.lhs = lhs
        self.rhs = rhs

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import BooleanField

        return BooleanField()

    def get_source_expressions(self) -> list[Any]:
        if hasattr(self.rhs, "resolve_expression"):
            return [self.lhs, self.rhs]
        return [self.lhs]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        if len(exprs) == 2:
            self.lhs, self.rhs = exprs
        else:
            (self.lhs,) = exprs

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        clone = super().resolve_expression(query, allow_joins, reuse, summarize)
        clone.rhs = clone.prep_rhs(clone.rhs)
        return clone

    @property
    def lhs_field(self) -> Field | None:
        return getattr(self.lhs, "output_field", None)

    def prep_rhs(self, value: Any) -> Any:
        """Convert a plain value to the lhs field's Python type (ValidationError if bad)."""
        if hasattr(value, "resolve_expression") or not self.prepare_rhs:
            return value
        field = self.lhs_field
        return field.to_python(value) if field is not None else value

    def process_lhs(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return compiler.compile(self.lhs)

    def process_rhs(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        value = self.rhs
        if hasattr(value, "as_sql"):
            return compiler.compile(value)
        return connection.ops.placeholder, [self.bind_value(value, connection)]

    def bind_value(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        return bind(self.lhs_field, value, connection)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        """``(sql, params)`` from the vendor's operator for ``lookup_name``.

        A lookup the vendor has no operator for must define ``as_sql`` (or
        ``as_<vendor>``) itself; otherwise NotSupportedError says so.
        """
        if self.lookup_name not in connection.ops.operators:
            from dorm.exceptions import NotSupportedError

            cls = type(self)
            raise NotSupportedError(
                f"lookup {self.lookup_name!r} ({cls.__module__}.{cls.__qualname__}) has no "
                f"SQL for {connection.display_name} (vendor {connection.vendor!r}): define "
                f"as_sql() or as_{connection.vendor}() on the lookup class, or register a "
                f"renderer with the dorm_register_vendor_sql hook"
            )
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        return (
            connection.ops.lookup_sql(self.lookup_name, lhs_sql, rhs_sql),
            [*lhs_params, *rhs_params],
        )

    def get_group_by_cols(self) -> list[Any]:
        cols: list[Any] = []
        for source in self.get_source_expressions():
            cols.extend(source.get_group_by_cols())
        return cols

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lhs!r}, {self.rhs!r})"


class Exact(Lookup):
    lookup_name = "exact"

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        if self.rhs is None:
            return IsNull(self.lhs, True).as_sql(compiler, connection)
        return super().as_sql(compiler, connection)


class IExact(Lookup):
    lookup_name = "iexact"

    def process_rhs(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        if hasattr(self.rhs, "as_sql") or connection.vendor == "postgresql":
            return super().process_rhs(compiler, connection)
        value = connection.ops.prep_pattern("iexact", str(self.rhs))
        return connection.ops.placeholder, [_mask_like(self, value)]


def _mask_like(lookup: Lookup, value: str) -> Any:
    field = lookup.lhs_field
    return Masked(value) if field is not None and field.sensitive else value


class _Pattern(Lookup):
    """contains / startswith / endswith and their case-insensitive twins."""

    def prep_rhs(self, value: Any) -> Any:
        if hasattr(value, "resolve_expression"):
            return value
        if value is None:
            raise ValueError(f"{self.lookup_name} does not accept None")
        return str(value)

    def process_rhs(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        if hasattr(self.rhs, "as_sql"):
            raise FieldError(f"{self.lookup_name} needs a plain string, not an expression")
        pattern = connection.ops.prep_pattern(self.lookup_name, self.rhs)
        return connection.ops.placeholder, [_mask_like(self, pattern)]


class Contains(_Pattern):
    lookup_name = "contains"


class IContains(_Pattern):
    lookup_name = "icontains"


class StartsWith(_Pattern):
    lookup_name = "startswith"


class IStartsWith(_Pattern):
    lookup_name = "istartswith"


class EndsWith(_Pattern):
    lookup_name = "endswith"


class IEndsWith(_Pattern):
    lookup_name = "iendswith"


class GreaterThan(Lookup):
    lookup_name = "gt"


class GreaterThanOrEqual(Lookup):
    lookup_name = "gte"


class LessThan(Lookup):
    lookup_name = "lt"


class LessThanOrEqual(Lookup):
    lookup_name = "lte"


class Regex(Lookup):
    lookup_name = "regex"
    prepare_rhs = False

    def bind_value(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        return _mask_like(self, str(value))


class IRegex(Regex):
    """``name__iregex=r"^a"``: a case-insensitive regular expression (``~*`` on
    PostgreSQL; on SQLite Python's ``re`` with the ``(?i)`` flag)."""

    lookup_name = "iregex"

    def bind_value(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        pattern = str(value)
        if connection.vendor == "sqlite":
            pattern = f"(?i){pattern}"
        return _mask_like(self, pattern)


class In(Lookup):
    """``field__in=[...]`` or ``field__in=<queryset>`` (a subquery)."""

    lookup_name = "in"

    def prep_rhs(self, value: Any) -> Any:
        if hasattr(value, "resolve_expression"):
            return value
        field = self.lhs_field
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            shown = field._display(value) if field is not None else repr(value)
            raise TypeError(f"the 'in' lookup needs an iterable of values, got {shown}")
        values = [v for v in value if v is not None]
        if field is not None:
            to_python = field.to_python
            same = field._identity_types()
            values = [v if type(v) in same else to_python(v) for v in values]
        # Duplicates only lengthen the statement.
        try:
            return list(dict.fromkeys(values))
        except TypeError:  # an unhashable value (a list for an array column, a dict)
            seen: list[Any] = []
            for v in values:
                if v not in seen:
                    seen.append(v)
            return seen

    def process_rhs(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        if hasattr(self.rhs, "as_sql"):
            sql, params = compiler.compile(self.rhs)
            return sql if sql.startswith("(") else f"({sql})", params
        if not self.rhs:
            raise EmptyResultSet
        ph = connection.ops.placeholder
        marks = f"({', '.join([ph] * len(self.rhs))})"
        field = self.lhs_field
        if field is not None and type(self).bind_value is Lookup.bind_value:
            return marks, bind_many(field, self.rhs, connection)
        return marks, [self.bind_value(v, connection) for v in self.rhs]

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs_sql} IN {rhs_sql}", [*lhs_params, *rhs_params]


class Range(Lookup):
    """``field__range=(low, high)`` and ``F("x").between(low, high)``: inclusive bounds."""

    lookup_name = "range"

    def __init__(self, lhs: Any, rhs: Any) -> None:
        if isinstance(lhs, str):
            from dorm.expressions import F

            lhs = F(lhs)
        super().__init__(lhs, rhs)

    def get_source_expressions(self) -> list[Any]:
        return [self.lhs, *(v for v in self._bounds() if hasattr(v, "resolve_expression"))]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.lhs = exprs[0]
        rest = list(exprs[1:])
        self.rhs = tuple(
            rest.pop(0) if hasattr(v, "resolve_expression") else v for v in self._bounds()
        )

    def _bounds(self) -> tuple[Any, Any]:
        try:
            low, high = self.rhs
        except (TypeError, ValueError):
            raise TypeError(
                f"range / between needs exactly two bounds (low, high), got {self.rhs!r}"
            ) from None
        return low, high

    def prep_rhs(self, value: Any) -> Any:
        low, high = self._bounds()
        return (super().prep_rhs(low), super().prep_rhs(high))

    def process_rhs(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        parts: list[str] = []
        params: list[Any] = []
        for bound in self.rhs:
            if hasattr(bound, "as_sql"):
                sql, p = compiler.compile(bound)
            else:
                sql, p = connection.ops.placeholder, [self.bind_value(bound, connection)]
            parts.append(sql)
            params.extend(p)
        return f"{parts[0]} AND {parts[1]}", params

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs_sql} BETWEEN {rhs_sql}", [*lhs_params, *rhs_params]


class IsNull(Lookup):
    lookup_name = "isnull"
    prepare_rhs = False

    def prep_rhs(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"the isnull lookup takes True or False, got {value!r}")
        return value

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = compiler.compile(self.lhs)
        return f"{sql} IS {'NULL' if self.rhs else 'NOT NULL'}", params


# -- transforms ------------------------------------------------------------------------------


class Transform(Expression):
    """A function of the left-hand side that further lookups apply to (``created__year``)."""

    lookup_name = ""

    def __init__(self, lhs: Any) -> None:
        super().__init__()
        self.lhs = lhs

    def get_source_expressions(self) -> list[Any]:
        return [self.lhs]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.lhs,) = exprs

    def get_lookup(self, name: str) -> type | None:
        field = self.output_field
        return field.get_lookup(name) if field is not None else None

    def get_transform(self, name: str) -> type | None:
        field = self.output_field
        return field.get_transform(name) if field is not None else None


class _Extract(Transform):
    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import IntegerField

        return IntegerField()

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = compiler.compile(self.lhs)
        return connection.ops.date_extract_sql(self.lookup_name, sql), params


class Year(_Extract):
    lookup_name = "year"


class Month(_Extract):
    lookup_name = "month"


class Day(_Extract):
    lookup_name = "day"


class Date(Transform):
    lookup_name = "date"

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import DateField

        return DateField()

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = compiler.compile(self.lhs)
        return connection.ops.datetime_cast_date_sql(sql), params


BUILTIN_LOOKUPS: tuple[type[Lookup], ...] = (
    Exact,
    IExact,
    Contains,
    IContains,
    StartsWith,
    IStartsWith,
    EndsWith,
    IEndsWith,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    In,
    Range,
    IsNull,
    Regex,
    IRegex,
)
