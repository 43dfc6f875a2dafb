"""Text functions: Substr, Replace, StrIndex, Trim, LTrim, RTrim, Left, Right, Reverse,
Repeat, LPad, RPad, MD5, SHA256 (re-exported by ``dorm.functions``).

Positions count from 1, as in SQL and Django. On SQLite, Reverse, LPad, RPad, MD5 and
SHA256 call functions dorm registers on each connection (see
``dorm.db.backends.sqlite_functions``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.expressions import SQL, Func, Value

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler

__all__ = [
    "LPad",
    "LTrim",
    "Left",
    "MD5",
    "RPad",
    "RTrim",
    "Repeat",
    "Replace",
    "Reverse",
    "Right",
    "SHA256",
    "StrIndex",
    "Substr",
    "Trim",
]


def _positive(owner: str, name: str, value: Any, minimum: int = 1) -> Any:
    """Check a plain integer argument (expressions pass through); return it as a Value."""
    if hasattr(value, "resolve_expression"):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {name!r} must be an int >= {minimum}, got {value!r}")
    return Value(value)


class _Text(Func):
    """A function returning text."""

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import TextField

        return TextField()

    def int_arg(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, index: int) -> SQL:
        """Argument ``index`` as an integer (PostgreSQL picks function overloads by type)."""
        sql, params = compiler.compile(self.source_expressions[index])
        if connection.vendor == "postgresql":
            return f"({sql})::integer", params
        return sql, params

    def text_arg(self, compiler: SQLCompiler, index: int) -> SQL:
        return compiler.compile(self.source_expressions[index])


class Substr(_Text):
    """``Substr(expression, pos, length=None)``: ``length`` characters from ``pos`` (1-based)."""

    def __init__(self, expression: Any, pos: Any, length: Any = None, **extra: Any) -> None:
        args = [expression, _positive("Substr", "pos", pos)]
        if length is not None:
            args.append(_positive("Substr", "length", length, minimum=0))
        super().__init__(*args, **extra)

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        parts: list[str] = []
        params: list[Any] = []
        for i in range(len(self.source_expressions)):
            sql, p = self.int_arg(compiler, connection, i) if i else self.text_arg(compiler, 0)
            parts.append(sql)
            params.extend(p)
        return f"SUBSTR({', '.join(parts)})", params


class Replace(_Text):
    """``Replace(expression, text, replacement="")``: every occurrence replaced."""

    function = "REPLACE"

    def __init__(self, expression: Any, text: Any, replacement: Any = "", **extra: Any) -> None:
        super().__init__(expression, _text(text), _text(replacement), **extra)


def _text(value: Any) -> Any:
    """A text argument: an expression, or a literal string (never a field name)."""
    return value if hasattr(value, "resolve_expression") else Value(str(value))


class StrIndex(Func):
    """``StrIndex(string, substring)``: the 1-based position of ``substring``, 0 if absent."""

    arity = 2

    def __init__(self, string: Any, substring: Any, **extra: Any) -> None:
        super().__init__(string, substring, **extra)

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import IntegerField

        return IntegerField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        return super().as_sql(compiler, connection, function="INSTR")

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return super().as_sql(compiler, connection, function="STRPOS")


class Trim(_Text):
    function = "TRIM"
    arity = 1


class LTrim(_Text):
    function = "LTRIM"
    arity = 1


class RTrim(_Text):
    function = "RTRIM"
    arity = 1


class Left(_Text):
    """``Left(expression, length)``: the first ``length`` characters."""

    def __init__(self, expression: Any, length: Any, **extra: Any) -> None:
        super().__init__(expression, _positive(type(self).__name__, "length", length), **extra)

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        text, p1 = self.text_arg(compiler, 0)
        length, p2 = self.int_arg(compiler, connection, 1)
        return f"SUBSTR({text}, 1, {length})", [*p1, *p2]

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        text, p1 = self.text_arg(compiler, 0)
        length, p2 = self.int_arg(compiler, connection, 1)
        return f"LEFT({text}, {length})", [*p1, *p2]


class Right(Left):
    """``Right(expression, length)``: the last ``length`` characters."""

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        text, p1 = self.text_arg(compiler, 0)
        length, p2 = self.int_arg(compiler, connection, 1)
        return f"SUBSTR({text}, MAX(LENGTH({text}) - {length} + 1, 1))", [*p1, *p1, *p2]

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        text, p1 = self.text_arg(compiler, 0)
        length, p2 = self.int_arg(compiler, connection, 1)
        return f"RIGHT({text}, {length})", [*p1, *p2]


class Reverse(_Text):
    function = "REVERSE"
    arity = 1

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return self.as_sql(compiler, connection, function="dorm_reverse")


class Repeat(_Text):
    """``Repeat(expression, number)``: the text ``number`` times over."""

    def __init__(self, expression: Any, number: Any, **extra: Any) -> None:
        super().__init__(expression, _positive("Repeat", "number", number, minimum=0), **extra)

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        text, p1 = self.text_arg(compiler, 0)
        number, p2 = self.int_arg(compiler, connection, 1)
        # n zero bytes, hex-encoded, is n copies of '00': replace each with the text.
        return f"REPLACE(HEX(ZEROBLOB({number})), '00', {text})", [*p2, *p1]

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        text, p1 = self.text_arg(compiler, 0)
        number, p2 = self.int_arg(compiler, connection, 1)
        return f"REPEAT({text}, {number})", [*p1, *p2]


class LPad(_Text):
    """``LPad(expression, length, fill_text=" ")``: pad (or cut) to ``length`` characters."""

    function = "LPAD"

    def __init__(self, expression: Any, length: Any, fill_text: Any = " ", **extra: Any) -> None:
        fill = _text(fill_text)
        if isinstance(fill, Value) and not fill.value:
            raise ValueError(f"{type(self).__name__}: fill_text must not be empty")
        super().__init__(
            expression, _positive(type(self).__name__, "length", length, minimum=0), fill, **extra
        )

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        text, p1 = self.text_arg(compiler, 0)
        length, p2 = self.int_arg(compiler, connection, 1)
        fill, p3 = self.text_arg(compiler, 2)
        name = self.function if connection.vendor == "postgresql" else f"dorm_{self.function}"
        return f"{name}({text}, {length}, {fill})", [*p1, *p2, *p3]


class RPad(LPad):
    function = "RPAD"


class MD5(_Text):
    """The MD5 digest of the text (UTF-8), as 32 lower-case hex digits."""

    function = "MD5"
    arity = 1

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return self.as_sql(compiler, connection, function="dorm_md5")


class SHA256(_Text):
    """The SHA-256 digest of the text (UTF-8), as 64 lower-case hex digits."""

    arity = 1

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        return super().as_sql(compiler, connection, function="dorm_sha256")

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = self.text_arg(compiler, 0)
        return f"ENCODE(SHA256(CONVERT_TO(({sql})::text, 'UTF8')), 'hex')", params
