"""Window expressions: ``Window(expression, partition_by=, order_by=, frame=)``, the frames
RowRange / ValueRange and the window functions (RowNumber, Rank, ..., NthValue).

An aggregate (``Sum``, ``Avg``, ...) inside a Window is computed over the window and
leaves the query ungrouped. Filtering on a window annotation wraps the query in a
subquery and applies the condition outside it (``dorm.sql.qualify``), as Django 4.2 does.
Frame bounds are validated integers, written into the SQL; other values are bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dorm.expressions import SQL, Expression, F, Func, OrderBy, Value

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler
    from dorm.sql.query import Query

__all__ = [
    "CumeDist",
    "DenseRank",
    "FirstValue",
    "Lag",
    "LastValue",
    "Lead",
    "NTile",
    "NthValue",
    "PercentRank",
    "Rank",
    "RowNumber",
    "RowRange",
    "ValueRange",
    "Window",
]


def _bound(value: int | None, name: str, owner: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{owner}({name}=...): an int (negative = preceding, 0 = current row, positive "
            f"= following) or None (unbounded), got {value!r}"
        )
    return value


class _Frame:
    frame_type = ""

    def __init__(self, start: int | None = None, end: int | None = None) -> None:
        owner = type(self).__name__
        self.start = _bound(start, "start", owner)
        self.end = _bound(end, "end", owner)
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"{owner}: start ({start}) is after end ({end})")

    @staticmethod
    def _edge(value: int | None, unbounded: str) -> str:
        if value is None:
            return f"UNBOUNDED {unbounded}"
        if value == 0:
            return "CURRENT ROW"
        return f"{abs(int(value))} {'PRECEDING' if value < 0 else 'FOLLOWING'}"

    def as_sql(self) -> str:
        start = self._edge(self.start, "PRECEDING")
        end = self._edge(self.end, "FOLLOWING")
        return f"{self.frame_type} BETWEEN {start} AND {end}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(start={self.start}, end={self.end})"


class RowRange(_Frame):
    """``ROWS BETWEEN ...``: ``RowRange(start=-2, end=0)`` is the two rows before and this one."""

    frame_type = "ROWS"


class ValueRange(_Frame):
    """``RANGE BETWEEN ...``: peers by the ordering value (``ValueRange(end=0)``: up to the
    current row's value)."""

    frame_type = "RANGE"


def _ordering(item: Any) -> Any:
    if isinstance(item, str):
        name = item.lstrip("-+")
        return OrderBy(F(name), descending=item.startswith("-"))
    if isinstance(item, OrderBy):
        return item
    if hasattr(item, "resolve_expression"):
        return OrderBy(item)
    raise TypeError(f"Window(order_by=...) takes field names or expressions, got {item!r}")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Expression, F)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


class Window(Expression):
    """``Window(Rank(), partition_by="dept", order_by="-salary")``: a value per row computed
    over the rows of its partition."""

    contains_over_clause = True

    def __init__(
        self,
        expression: Any,
        partition_by: Any = None,
        order_by: Any = None,
        frame: _Frame | None = None,
        output_field: Field | None = None,
    ) -> None:
        if not getattr(expression, "window_compatible", False) and not getattr(
            expression, "contains_aggregate", False
        ):
            raise ValueError(
                f"Window: {type(expression).__name__} cannot be computed over a window; use "
                f"an aggregate (Sum, Avg, Count, ...) or a window function (RowNumber, Rank, "
                f"Lag, ...)"
            )
        orderings = [_ordering(o) for o in _listed(order_by)]
        if getattr(expression, "requires_order", False) and not orderings:
            raise ValueError(
                f"Window: {type(expression).__name__}() needs order_by=...: without an "
                f"ordering the rank of each row is arbitrary"
            )
        if frame is not None and not isinstance(frame, _Frame):
            raise TypeError(f"Window(frame=...) takes a RowRange or ValueRange, got {frame!r}")
        super().__init__(output_field)
        self.source_expression = expression
        self.partition_by = [F(p) if isinstance(p, str) else p for p in _listed(partition_by)]
        self.order_by = orderings
        self.frame = frame

    def _resolve_output_field(self) -> Field | None:
        return getattr(self.source_expression, "output_field", None)

    def get_source_expressions(self) -> list[Any]:
        return [self.source_expression, *self.partition_by, *self.order_by]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        exprs = list(exprs)
        self.source_expression = exprs[0]
        count = len(self.partition_by)
        self.partition_by = exprs[1 : 1 + count]
        self.order_by = exprs[1 + count :]

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        clone = super().resolve_expression(query, allow_joins, reuse, summarize)
        clone.contains_aggregate = False  # computed per row: no GROUP BY
        return clone

    def walk(self) -> Iterable[Any]:
        # Not below the windowed aggregate: a condition on a window is no HAVING.
        yield self
        for source in self.get_source_expressions()[1:]:
            yield from source.walk() if hasattr(source, "walk") else [source]
        for source in self.source_expression.get_source_expressions():
            yield from source.walk() if hasattr(source, "walk") else [source]

    def get_group_by_cols(self) -> list[Any]:
        cols: list[Any] = []
        for source in self.get_source_expressions()[1:]:
            if hasattr(source, "get_group_by_cols"):
                cols.extend(source.get_group_by_cols())
        return cols

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        source = self.source_expression
        default = getattr(source, "default", None)
        if default is not None:  # Sum(..., default=0): COALESCE around the whole window
            source = source.copy()
            source.default = None
        sql, params = compiler.compile(source)
        clauses: list[str] = []
        if self.partition_by:
            parts = []
            for expr in self.partition_by:
                part, p = compiler.compile(expr)
                parts.append(part)
                params.extend(p)
            clauses.append(f"PARTITION BY {', '.join(parts)}")
        if self.order_by:
            parts = []
            for expr in self.order_by:
                part, p = compiler.compile(expr)
                parts.append(part)
                params.extend(p)
            clauses.append(f"ORDER BY {', '.join(parts)}")
        if self.frame is not None:
            clauses.append(self.frame.as_sql())
        sql = f"{sql} OVER ({' '.join(clauses)})"
        if default is not None:
            default_sql, default_params = self.source_expression._default_sql(compiler, connection)
            return f"COALESCE({sql}, {default_sql})", [*params, *default_params]
        return sql, params

    def __repr__(self) -> str:
        return (
            f"Window({self.source_expression!r}, partition_by={self.partition_by!r}, "
            f"order_by={self.order_by!r}, frame={self.frame!r})"
        )


# -- window functions --------------------------------------------------------------------------


class _WindowFunction(Func):
    window_compatible = True
    output_type = "IntegerField"

    def _resolve_output_field(self) -> Field | None:
        from dorm.models import fields

        field_class: type[Field] = getattr(fields, self.output_type)
        return field_class()


class RowNumber(_WindowFunction):
    """1, 2, 3, ... in the window's order."""

    function = "ROW_NUMBER"
    arity = 0
    requires_order = True


class Rank(_WindowFunction):
    """The rank with gaps after ties (1, 1, 3)."""

    function = "RANK"
    arity = 0
    requires_order = True


class DenseRank(_WindowFunction):
    """The rank without gaps (1, 1, 2)."""

    function = "DENSE_RANK"
    arity = 0
    requires_order = True


class PercentRank(_WindowFunction):
    """``(rank - 1) / (rows - 1)`` in the partition, a float in [0, 1]."""

    function = "PERCENT_RANK"
    arity = 0
    requires_order = True
    output_type = "FloatField"


class CumeDist(_WindowFunction):
    """The fraction of the partition's rows ordered at or before this one."""

    function = "CUME_DIST"
    arity = 0
    requires_order = True
    output_type = "FloatField"


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name!r} must be an int >= 1, got {value!r}")
    return value


class _IntArgs(_WindowFunction):
    """Integer arguments are cast on PostgreSQL, which picks the function by type."""

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        parts: list[str] = []
        params: list[Any] = []
        for i, expr in enumerate(self.source_expressions):
            sql, p = compiler.compile(expr)
            cast = self.pg_cast(i, connection)
            parts.append(f"CAST({sql} AS {cast})" if cast else sql)
            params.extend(p)
        return f"{self.function}({', '.join(parts)})", params

    def pg_cast(self, index: int, connection: BaseDatabaseWrapper) -> str | None:
        return "integer" if index else None


class NTile(_IntArgs):
    """``NTile(num_buckets)``: which of ``num_buckets`` nearly equal groups the row is in."""

    function = "NTILE"
    requires_order = True

    def __init__(self, num_buckets: int = 1, **extra: Any) -> None:
        super().__init__(Value(_positive_int("NTile", "num_buckets", num_buckets)), **extra)

    def pg_cast(self, index: int, connection: BaseDatabaseWrapper) -> str | None:
        return "integer"


class Lag(_IntArgs):
    """``Lag(expression, offset=1, default=None)``: the value ``offset`` rows before."""

    function = "LAG"

    def __init__(self, expression: Any, offset: int = 1, default: Any = None, **extra: Any):
        args = [expression, Value(_positive_int(type(self).__name__, "offset", offset))]
        if default is not None:
            args.append(default if hasattr(default, "resolve_expression") else Value(default))
        super().__init__(*args, **extra)

    def _resolve_output_field(self) -> Field | None:
        return getattr(self.source_expressions[0], "output_field", None)

    def pg_cast(self, index: int, connection: BaseDatabaseWrapper) -> str | None:
        if index == 1:
            return "integer"
        if index == 2:  # the default takes the value's type (LAG is polymorphic)
            field = self.output_field
            return field.db_type(connection) if field is not None else None
        return None


class Lead(Lag):
    """``Lead(expression, offset=1, default=None)``: the value ``offset`` rows after."""

    function = "LEAD"


class FirstValue(_WindowFunction):
    """The expression's value on the frame's first row."""

    function = "FIRST_VALUE"
    arity = 1

    def _resolve_output_field(self) -> Field | None:
        return getattr(self.source_expressions[0], "output_field", None)


class LastValue(FirstValue):
    """The expression's value on the frame's last row (by default the current row's peers:
    give ``frame=RowRange()`` for the partition's last row)."""

    function = "LAST_VALUE"


class NthValue(_IntArgs):
    """``NthValue(expression, nth=1)``: the value on the frame's ``nth`` row (or NULL)."""

    function = "NTH_VALUE"

    def __init__(self, expression: Any, nth: int = 1, **extra: Any) -> None:
        super().__init__(expression, Value(_positive_int("NthValue", "nth", nth)), **extra)

    def _resolve_output_field(self) -> Field | None:
        return getattr(self.source_expressions[0], "output_field", None)
