"""SQL functions, Django's set, all importable from here.

Coalesce, Lower, Upper, Length, Concat, Now and Cast live here; window functions in
``dorm.window``; math, text and date/time functions in ``dorm.math_functions``,
``dorm.text_functions`` and ``dorm.date_functions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.date_functions import *  # noqa: F403
from dorm.date_functions import __all__ as _date_all
from dorm.expressions import SQL, Func
from dorm.math_functions import *  # noqa: F403
from dorm.math_functions import __all__ as _math_all
from dorm.text_functions import *  # noqa: F403
from dorm.text_functions import __all__ as _text_all
from dorm.window import (
    CumeDist,
    DenseRank,
    FirstValue,
    Lag,
    LastValue,
    Lead,
    NthValue,
    NTile,
    PercentRank,
    Rank,
    RowNumber,
)

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler

__all__ = [
    "Cast",
    "Coalesce",
    "Concat",
    "Length",
    "Lower",
    "Now",
    "Upper",
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
    *_date_all,
    *_math_all,
    *_text_all,
]


class Coalesce(Func):
    """The first non-NULL of its arguments: ``Coalesce("nick", Value("anon"))``."""

    function = "COALESCE"

    def __init__(self, *expressions: Any, output_field: Field | None = None) -> None:
        if len(expressions) < 2:
            raise ValueError("Coalesce needs at least two expressions")
        super().__init__(*expressions, output_field=output_field)


class Lower(Func):
    function = "LOWER"
    arity = 1


class Upper(Func):
    function = "UPPER"
    arity = 1


class Length(Func):
    function = "LENGTH"
    arity = 1

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import IntegerField

        return IntegerField()


class Concat(Func):
    """Concatenate text; NULL arguments count as empty strings on every backend."""

    function = "CONCAT"

    def __init__(self, *expressions: Any, output_field: Field | None = None) -> None:
        if len(expressions) < 2:
            raise ValueError("Concat needs at least two expressions")
        super().__init__(*expressions, output_field=output_field)

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import TextField

        return TextField()

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        parts, params = self.compile_args(compiler, "COALESCE({}, '')")
        return f"({' || '.join(parts)})", params

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        parts, params = self.compile_args(compiler, "({})::text")
        return f"CONCAT({', '.join(parts)})", params


class Now(Func):
    """The current timestamp, in UTC."""

    arity = 0

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import DateTimeField

        return DateTimeField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        return "STATEMENT_TIMESTAMP()", []

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        # Same text layout as stored datetimes: 'YYYY-MM-DD HH:MM:SS.ffffff'.
        return "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')", []


class Cast(Func):
    """``Cast(expression, output_field)``: convert to the output field's column type."""

    arity = 1

    def __init__(self, expression: Any, output_field: Field) -> None:
        super().__init__(expression, output_field=output_field)

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        sql, params = compiler.compile(self.source_expressions[0])
        assert self._output_field is not None
        return connection.ops.cast_sql(sql, self._output_field.db_type(connection)), params
