"""Math functions: Abs, Ceil, Floor, Round, Power, Sqrt, Mod, Sign, Log, Ln, Exp, Random,
Greatest, Least, NullIf (re-exported by ``dorm.functions``).

Output fields follow Django: Ceil, Floor, Power, Sqrt, Mod, Log, Ln and Exp give a float
for integer input and a Decimal for decimal input; Abs, Round and Sign keep the input's
field; Random is a float in [0, 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.exceptions import NotSupportedError
from dorm.expressions import SQL, Func

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler

__all__ = [
    "Abs",
    "Ceil",
    "Exp",
    "Floor",
    "Greatest",
    "Least",
    "Ln",
    "Log",
    "Mod",
    "NullIf",
    "Power",
    "Random",
    "Round",
    "Sign",
    "Sqrt",
]


class _Numeric(Func):
    """A function whose result is a float, or a Decimal when an argument is one."""

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import DecimalField, FloatField

        fields = [getattr(e, "output_field", None) for e in self.source_expressions]
        if any(isinstance(f, DecimalField) for f in fields):
            return DecimalField(max_digits=65, decimal_places=30)
        return FloatField()

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = self.as_sql(compiler, connection)
        from dorm.models.fields import FloatField

        if isinstance(self.output_field, FloatField):
            # numeric in, numeric out on PostgreSQL: a float result is asked for.
            return f"({sql})::double precision", params
        return sql, params


class Abs(Func):
    function = "ABS"
    arity = 1


class Ceil(_Numeric):
    function = "CEIL"
    arity = 1


class Floor(_Numeric):
    function = "FLOOR"
    arity = 1


class Sign(Func):
    function = "SIGN"
    arity = 1

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = self.as_sql(compiler, connection)
        return connection.ops.cast_sql(sql, _db_type(self, connection)), params


def _db_type(func: Func, connection: BaseDatabaseWrapper) -> str:
    field = func.output_field
    assert field is not None
    return field.db_type(connection)


class Round(Func):
    """``Round(expression, precision=0)``: half away from zero on both backends."""

    function = "ROUND"

    def __init__(self, expression: Any, precision: int = 0, **extra: Any) -> None:
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise TypeError(f"Round(precision=...) takes an int, got {precision!r}")
        super().__init__(expression, **extra)
        self.precision = precision

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        if self.precision < 0:
            raise NotSupportedError(
                f"Round(precision={self.precision}): a negative precision is not supported "
                f"on {connection.display_name}; it is on PostgreSQL"
            )
        sql, params = compiler.compile(self.source_expressions[0])
        text = f"ROUND({sql}, {int(self.precision)})"
        if self.output_field is not None and self.output_field.get_internal_type().endswith(
            "IntegerField"
        ):
            text = f"CAST({text} AS INTEGER)"
        return text, params

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = compiler.compile(self.source_expressions[0])
        # ROUND(x, n) exists for numeric only; the result goes back to the input's type.
        text = f"ROUND(({sql})::numeric, {int(self.precision)})"
        return connection.ops.cast_sql(text, _db_type(self, connection)), params


class Power(_Numeric):
    function = "POWER"
    arity = 2


class Sqrt(_Numeric):
    function = "SQRT"
    arity = 1


class Mod(_Numeric):
    function = "MOD"
    arity = 2

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        parts, params = self.compile_args(compiler, "({})::numeric")
        sql = f"MOD({', '.join(parts)})"
        return connection.ops.cast_sql(sql, _db_type(self, connection)), params


class Log(_Numeric):
    """``Log(base, x)``: the logarithm of ``x`` to ``base`` (Django's argument order)."""

    function = "LOG"
    arity = 2

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        parts, params = self.compile_args(compiler, "({})::numeric")
        sql = f"LOG({', '.join(parts)})"
        return connection.ops.cast_sql(sql, _db_type(self, connection)), params


class Ln(_Numeric):
    function = "LN"
    arity = 1


class Exp(_Numeric):
    function = "EXP"
    arity = 1


class Random(Func):
    """A float in [0, 1), new for each row."""

    arity = 0

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import FloatField

        return FloatField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        return "RANDOM()", []

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        # SQLite's RANDOM() is a signed 64-bit integer: scale it into [0, 1).
        return "((RANDOM() / 18446744073709551616.0) + 0.5)", []


class _Extreme(Func):
    sqlite_function = ""

    def __init__(self, *expressions: Any, output_field: Field | None = None) -> None:
        if len(expressions) < 2:
            raise ValueError(f"{type(self).__name__} needs at least two expressions")
        super().__init__(*expressions, output_field=output_field)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        # SQLite's multi-argument MAX()/MIN(): NULL when any argument is NULL (PostgreSQL's
        # GREATEST/LEAST skip NULLs), as Django documents for the two vendors.
        return self.as_sql(compiler, connection, function=self.sqlite_function)


class Greatest(_Extreme):
    """The largest argument (PostgreSQL ignores NULLs; on SQLite any NULL gives NULL)."""

    function = "GREATEST"
    sqlite_function = "MAX"


class Least(_Extreme):
    """The smallest argument (PostgreSQL ignores NULLs; on SQLite any NULL gives NULL)."""

    function = "LEAST"
    sqlite_function = "MIN"


class NullIf(Func):
    """``NullIf(a, b)``: NULL when ``a`` equals ``b``, else ``a``."""

    function = "NULLIF"
    arity = 2
