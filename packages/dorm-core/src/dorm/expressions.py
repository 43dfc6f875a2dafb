"""Query expressions: F, Value, Q, Col, Func, aggregates, Case/When, Subquery/OuterRef/Exists.

Every node renders through ``compiler.compile(node)``, which tries a vendor override
registered by a plugin, then ``as_<vendor>``, then ``as_sql``. Nodes are immutable once
resolved against a query: ``resolve_expression`` returns a resolved copy.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import FieldError

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.fields import Field
    from dorm.sql.compiler import SQLCompiler
    from dorm.sql.query import Query

__all__ = [
    "Aggregate",
    "Avg",
    "Case",
    "Col",
    "Combinable",
    "CombinedExpression",
    "Count",
    "Exists",
    "Expression",
    "ExpressionWrapper",
    "F",
    "Func",
    "Masked",
    "Max",
    "Min",
    "OrderBy",
    "OuterRef",
    "Q",
    "RawSQL",
    "Star",
    "Subquery",
    "Sum",
    "Value",
    "When",
]

SQL = tuple[str, list[Any]]


class Masked:
    """A bound value of a sensitive column; the compiler unwraps it and notes its position."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"


def bind(field: Field | None, value: Any, connection: BaseDatabaseWrapper) -> Any:
    """Prepare ``value`` for a column of ``field``: prep, vendor adapter, masking."""
    if field is None:
        return value
    value = field.get_db_prep_value(value)
    adapter = connection.ops.adapter_for(field)
    if adapter is not None:
        value = adapter(value)
    return Masked(value) if field.sensitive else value


def bind_many(field: Field, values: Sequence[Any], connection: BaseDatabaseWrapper) -> list[Any]:
    """``[bind(field, v, connection) for v in values]``, the field's hooks looked up once."""
    prep = field.get_db_prep_value
    same = field._identity_types()
    bound = [v if type(v) in same else prep(v) for v in values]
    adapter = connection.ops.adapter_for(field)
    if adapter is not None:
        bound = [adapter(v) for v in bound]
    if field.sensitive:
        return [Masked(v) for v in bound]
    return bound


#: Expression class -> True when a plain ``__dict__`` copy copies it (see ``copy()``).
_dict_only: dict[type, bool] = {}


class Combinable:
    """Arithmetic and boolean operators shared by F and every expression."""

    def _combine(self, other: Any, connector: str, reversed_: bool) -> CombinedExpression:
        if not hasattr(other, "resolve_expression"):
            other = Value(other)
        if reversed_:
            return CombinedExpression(other, connector, self)
        return CombinedExpression(self, connector, other)

    def __add__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "+", False)

    def __sub__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "-", False)

    def __mul__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "*", False)

    def __truediv__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "/", False)

    def __mod__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "%%", False)

    def __radd__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "+", True)

    def __rsub__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "-", True)

    def __rmul__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "*", True)

    def __rtruediv__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "/", True)

    def __neg__(self) -> CombinedExpression:
        return CombinedExpression(Value(0), "-", self)

    def __and__(self, other: Any) -> Q:
        if getattr(self, "conditional", False) and getattr(other, "conditional", False):
            return Q(self) & Q(other)
        raise NotImplementedError("use .bitand() / Q() for & on non-boolean expressions")

    def __or__(self, other: Any) -> Q:
        if getattr(self, "conditional", False) and getattr(other, "conditional", False):
            return Q(self) | Q(other)
        raise NotImplementedError("use .bitor() / Q() for | on non-boolean expressions")

    def __invert__(self) -> Q:
        if getattr(self, "conditional", False):
            return ~Q(self)
        raise NotImplementedError("only boolean expressions can be negated")

    def asc(self, nulls_first: bool = False, nulls_last: bool = False) -> OrderBy:
        return OrderBy(self, descending=False, nulls_first=nulls_first, nulls_last=nulls_last)

    def desc(self, nulls_first: bool = False, nulls_last: bool = False) -> OrderBy:
        return OrderBy(self, descending=True, nulls_first=nulls_first, nulls_last=nulls_last)

    def between(self, low: Any, high: Any) -> Any:
        """``F("age").between(18, 65)``: a boolean expression for ``filter()``."""
        from dorm.lookups import Range

        return Range(self, (low, high))

    def coalesce(self, *defaults: Any) -> Any:
        """``F("nick").coalesce("anon")`` is ``Coalesce(F("nick"), Value("anon"))``."""
        from dorm.functions import Coalesce

        if not defaults:
            raise ValueError("coalesce() needs at least one default")
        # Defaults are values, not field names: F("nick").coalesce("anon") means Value("anon").
        return Coalesce(self, *(_value_or_expression(d) for d in defaults))


class Expression(Combinable):
    """A node of SQL with an ``output_field``."""

    contains_aggregate = False
    conditional = False
    is_summary = False
    _output_field: Field | None = None

    def __init__(self, output_field: Field | None = None) -> None:
        if output_field is not None:
            self._output_field = output_field

    @property
    def output_field(self) -> Field | None:
        if self._output_field is not None:
            return self._output_field
        return self._resolve_output_field()

    def _resolve_output_field(self) -> Field | None:
        for source in self.get_source_expressions():
            field = getattr(source, "output_field", None)
            if field is not None:
                return field  # type: ignore[no-any-return]
        return None

    def get_source_expressions(self) -> list[Any]:
        return []

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        assert not exprs

    def get_lookup(self, name: str) -> type | None:
        field = self.output_field
        return field.get_lookup(name) if field is not None else None

    def get_transform(self, name: str) -> type | None:
        field = self.output_field
        return field.get_transform(name) if field is not None else None

    def copy(self) -> Any:
        """A shallow copy (``copy.copy`` without its reduce machinery when the class keeps
        its state in ``__dict__`` only, as every dorm expression does)."""
        cls = type(self)
        plain = _dict_only.get(cls)
        if plain is None:
            plain = _dict_only[cls] = (
                all("__slots__" not in k.__dict__ for k in cls.__mro__[:-1])
                and getattr(cls, "__copy__", None) is None
                and cls.__reduce_ex__ is object.__reduce_ex__
                and cls.__getstate__ is object.__getstate__
            )
        if not plain:
            return copy.copy(self)
        obj = object.__new__(cls)
        obj.__dict__.update(self.__dict__)
        return obj

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        clone = self.copy()
        clone.set_source_expressions(
            [
                e.resolve_expression(query, allow_joins, reuse, summarize)
                if hasattr(e, "resolve_expression")
                else e
                for e in self.get_source_expressions()
            ]
        )
        clone.contains_aggregate = clone.contains_aggregate or any(
            getattr(e, "contains_aggregate", False) for e in clone.get_source_expressions()
        )
        return clone

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        raise NotImplementedError(f"{type(self).__name__} cannot be rendered")

    def get_group_by_cols(self) -> list[Any]:
        if self.contains_aggregate:
            cols: list[Any] = []
            for source in self.get_source_expressions():
                if hasattr(source, "get_group_by_cols"):
                    cols.extend(source.get_group_by_cols())
            return cols
        return [self]

    def walk(self) -> Iterable[Any]:
        """Yield this node and every node below it."""
        yield self
        for source in self.get_source_expressions():
            if hasattr(source, "walk"):
                yield from source.walk()
            else:
                yield source  # F() and plain values are leaves

    def __repr__(self) -> str:
        args = ", ".join(repr(e) for e in self.get_source_expressions())
        return f"{type(self).__name__}({args})"


class F(Combinable):
    """A reference to a field (``F("price")``, ``F("author__name")``) resolved per query."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"F() needs a field name, got {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"F({self.name})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash((type(self), self.name))

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        if query is None:
            raise FieldError(f"F({self.name!r}) can only be used in a query")
        return query.resolve_ref(self.name, allow_joins, reuse, summarize)


class OuterRef(F):
    """A reference to a field of the outer query, for use inside ``Subquery`` / ``Exists``."""

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        return ResolvedOuterRef(self.name)


class ResolvedOuterRef(Expression):
    """An OuterRef inside the inner query, waiting for the outer query to resolve it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        raise FieldError(
            f"OuterRef({self.name!r}) was used outside a Subquery()/Exists() of another query"
        )

    def __repr__(self) -> str:
        return f"OuterRef({self.name})"


class Col(Expression):
    """A column of a table alias in the query."""

    def __init__(self, alias: str | None, target: Field, output_field: Field | None = None) -> None:
        super().__init__(output_field or target)
        self.alias = alias
        self.target = target

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        qn = compiler.quote_name
        if self.alias is None:
            return qn(self.target.column), []
        return f"{qn(self.alias)}.{qn(self.target.column)}", []

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def relabeled(self, change_map: dict[str, str]) -> Col:
        if self.alias in change_map:
            return Col(change_map[self.alias], self.target, self._output_field)
        return self

    def __repr__(self) -> str:
        model = self.target.model.__name__ if self.target.model else "?"
        return f"Col({self.alias}, {model}.{self.target.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Col) and other.alias == self.alias and other.target is self.target

    def __hash__(self) -> int:
        return hash((self.alias, id(self.target)))


class Ref(Expression):
    """A reference to an annotation of the same query by its alias (ORDER BY / GROUP BY)."""

    def __init__(self, refs: str, source: Any) -> None:
        super().__init__()
        self.refs = refs
        self.source = source

    def get_source_expressions(self) -> list[Any]:
        return [self.source]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.source,) = exprs

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        return self

    @property
    def output_field(self) -> Field | None:
        return getattr(self.source, "output_field", None)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return compiler.quote_name(self.refs), []

    def get_group_by_cols(self) -> list[Any]:
        return [self]


class Value(Expression):
    """A literal value, always sent as a bound parameter."""

    def __init__(self, value: Any, output_field: Field | None = None) -> None:
        super().__init__(output_field)
        self.value = value

    def _resolve_output_field(self) -> Field | None:
        from dorm.models import fields as f

        value = self.value
        kinds: list[tuple[type, type[f.Field]]] = [
            (bool, f.BooleanField),
            (int, f.IntegerField),
            (float, f.FloatField),
            (str, f.TextField),
        ]
        for python_type, field_class in kinds:
            if isinstance(value, python_type):
                return field_class()
        return None

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        field = self._output_field
        value = bind(field, self.value, connection) if field is not None else self.value
        return connection.ops.placeholder, [value]

    def get_group_by_cols(self) -> list[Any]:
        return []

    def __repr__(self) -> str:
        return f"Value({self.value!r})"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        """For migration files (a ``db_default``, say): ``dorm.Value(value, ...)``."""
        kwargs = {"output_field": self._output_field} if self._output_field is not None else {}
        return "dorm.Value", [self.value], kwargs


class RawSQL(Expression):
    """A fragment of SQL with its own bound parameters (``?`` / ``%s`` per backend)."""

    def __init__(self, sql: str, params: Sequence[Any], output_field: Field | None = None) -> None:
        super().__init__(output_field)
        self.sql = sql
        self.params = list(params)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return f"({self.sql})", list(self.params)


class Star(Expression):
    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return "*", []


class CombinedExpression(Expression):
    """``lhs <op> rhs`` for arithmetic between expressions and values."""

    def __init__(self, lhs: Any, connector: str, rhs: Any, output_field: Field | None = None):
        super().__init__(output_field)
        self.lhs = lhs
        self.connector = connector
        self.rhs = rhs

    def get_source_expressions(self) -> list[Any]:
        return [self.lhs, self.rhs]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.lhs, self.rhs = exprs

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        """For migration files (a GeneratedField's ``F("a") * F("b")``, say)."""
        kwargs = {"output_field": self._output_field} if self._output_field is not None else {}
        return "dorm.expressions.CombinedExpression", [self.lhs, self.connector, self.rhs], kwargs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs_sql, lhs_params = compiler.compile(self.lhs)
        rhs_sql, rhs_params = compiler.compile(self.rhs)
        op = self.connector
        if op == "%%" and connection.vendor != "postgresql":
            op = "%"
        return f"({lhs_sql} {op} {rhs_sql})", [*lhs_params, *rhs_params]


class ExpressionWrapper(Expression):
    """Give an expression an explicit ``output_field``."""

    def __init__(self, expression: Any, output_field: Field) -> None:
        super().__init__(output_field)
        self.expression = expression

    def get_source_expressions(self) -> list[Any]:
        return [self.expression]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.expression,) = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return compiler.compile(self.expression)


class Func(Expression):
    """An SQL function call: ``function(arg, arg, ...)``."""

    function = ""
    template = "{function}({expressions})"
    arg_joiner = ", "
    arity: int | None = None

    def __init__(self, *expressions: Any, output_field: Field | None = None, **extra: Any) -> None:
        if self.arity is not None and len(expressions) != self.arity:
            raise TypeError(
                f"{type(self).__name__} takes {self.arity} argument(s), got {len(expressions)}"
            )
        super().__init__(output_field)
        self.source_expressions = [_parse(e) for e in expressions]
        self.extra = extra

    def get_source_expressions(self) -> list[Any]:
        return list(self.source_expressions)

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.source_expressions = list(exprs)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        """For migration files (a ``db_default``, say): the class path, the arguments and
        ``output_field`` when one was given."""
        kwargs: dict[str, Any] = dict(self.extra)
        if "_output_field" in self.__dict__:
            kwargs["output_field"] = self._output_field
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", list(self.source_expressions), kwargs

    def compile_args(self, compiler: SQLCompiler, wrap: str = "{}") -> tuple[list[str], list[Any]]:
        """Compile each argument; ``wrap`` formats each one (``"COALESCE({}, '')"``)."""
        parts: list[str] = []
        params: list[Any] = []
        for expr in self.source_expressions:
            sql, p = compiler.compile(expr)
            parts.append(wrap.format(sql))
            params.extend(p)
        return parts, params

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
    ) -> SQL:
        parts, params = self.compile_args(compiler)
        text = (template or self.template).format(
            function=function or self.function,
            expressions=(arg_joiner or self.arg_joiner).join(parts),
            **self.extra,
        )
        return text, params


def _parse(value: Any) -> Any:
    """Strings name fields (``Lower("name")``); other plain values become Value()."""
    if isinstance(value, str):
        return F(value)
    if hasattr(value, "resolve_expression"):
        return value
    return Value(value)


class Q:
    """A tree of filter conditions joined with ``&``, ``|`` and negated with ``~``."""

    AND = "AND"
    OR = "OR"
    conditional = True

    def __init__(self, *args: Any, _connector: str = "AND", _negated: bool = False, **kwargs: Any):
        self.children: list[Any] = [*args, *sorted(kwargs.items())]
        self.connector = _connector
        self.negated = _negated

    def _combine(self, other: Any, connector: str) -> Q:
        if getattr(other, "conditional", False) is False:
            raise TypeError(f"cannot combine Q with {other!r}")
        if not isinstance(other, Q):
            other = Q(other)
        if not other.children:
            same: Q = copy.deepcopy(self)
            return same
        if not self.children:
            other_copy: Q = copy.deepcopy(other)
            return other_copy
        combined = Q(_connector=connector)
        combined.children = [self, other]
        return combined

    def __and__(self, other: Any) -> Q:
        return self._combine(other, self.AND)

    def __or__(self, other: Any) -> Q:
        return self._combine(other, self.OR)

    def __invert__(self) -> Q:
        clone = Q(_connector=self.connector, _negated=not self.negated)
        clone.children = list(self.children)
        return clone

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(repr(c) for c in self.children)
        return f"<Q: {'NOT ' if self.negated else ''}({inner})>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Q)
            and other.connector == self.connector
            and other.negated == self.negated
            and other.children == self.children
        )

    def __hash__(self) -> int:
        return hash((self.connector, self.negated, repr(self.children)))

    def resolve_expression(self, query: Query | None = None, *args: Any, **kwargs: Any) -> Any:
        if query is None:
            raise FieldError("Q() can only be resolved in a query")
        return query.build_where(self)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if self.connector != self.AND:
            kwargs["_connector"] = self.connector
        if self.negated:
            kwargs["_negated"] = True
        return "dorm.Q", list(self.children), kwargs


class When(Expression):
    """``When(Q(...) or lookups, then=value)`` inside ``Case``."""

    def __init__(self, condition: Any = None, then: Any = None, **lookups: Any) -> None:
        super().__init__()
        if lookups:
            condition = Q(condition, **lookups) if condition is not None else Q(**lookups)
        if condition is None or not getattr(condition, "conditional", False):
            raise TypeError("When() needs a Q object, a boolean expression or lookups")
        self.condition = condition
        self.result = _value_or_expression(then)

    def get_source_expressions(self) -> list[Any]:
        return [self.condition, self.result]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.condition, self.result = exprs

    def _resolve_output_field(self) -> Field | None:
        return getattr(self.result, "output_field", None)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        cond_sql, cond_params = compiler.compile(self.condition)
        result_sql, result_params = compiler.compile(self.result)
        return f"WHEN {cond_sql or '1=1'} THEN {result_sql}", [*cond_params, *result_params]


def _value_or_expression(value: Any) -> Any:
    return value if hasattr(value, "resolve_expression") else Value(value)


class Case(Expression):
    """``Case(When(...), When(...), default=..., output_field=...)``."""

    def __init__(self, *cases: When, default: Any = None, output_field: Field | None = None):
        if not all(isinstance(c, When) for c in cases):
            raise TypeError("Case() positional arguments must be When() objects")
        super().__init__(output_field)
        self.cases = list(cases)
        self.default = _value_or_expression(default)

    def get_source_expressions(self) -> list[Any]:
        return [*self.cases, self.default]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        *self.cases, self.default = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        if not self.cases:
            return compiler.compile(self.default)
        parts: list[str] = []
        params: list[Any] = []
        for case in self.cases:
            sql, p = compiler.compile(case)
            parts.append(sql)
            params.extend(p)
        default_sql, default_params = compiler.compile(self.default)
        return f"CASE {' '.join(parts)} ELSE {default_sql} END", [*params, *default_params]


class Subquery(Expression):
    """A queryset used as a value: ``Subquery(qs.values("x")[:1])``."""

    template = "({subquery})"

    def __init__(self, queryset: Any, output_field: Field | None = None) -> None:
        super().__init__(output_field)
        self.query = getattr(queryset, "query", queryset)

    def _resolve_output_field(self) -> Field | None:
        return self.query.single_output_field()  # type: ignore[no-any-return]

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
    ) -> Any:
        clone = self.copy()
        clone.query = self.query.resolved_as_subquery(query)
        return clone

    def get_group_by_cols(self) -> list[Any]:
        return []

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = self.query.get_compiler(connection=connection).as_sql(subquery=True)
        return self.template.format(subquery=sql), params


class Exists(Subquery):
    """``Exists(qs)``: a boolean expression usable in filter() and annotate()."""

    template = "EXISTS({subquery})"
    conditional = True

    def __init__(self, queryset: Any, negated: bool = False) -> None:
        super().__init__(queryset)
        self.negated = negated

    def _resolve_output_field(self) -> Field | None:
        from dorm.models.fields import BooleanField

        return BooleanField()

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        clone = super().resolve_expression(*args, **kwargs)
        clone.query = clone.query.exists_query()
        return clone

    def __invert__(self) -> Any:
        clone = self.copy()
        clone.negated = not self.negated
        return clone

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        sql, params = super().as_sql(compiler, connection)
        return (f"NOT {sql}" if self.negated else sql), params


class OrderBy(Expression):
    """An ORDER BY term: ``F("x").desc(nulls_last=True)``."""

    def __init__(
        self,
        expression: Any,
        descending: bool = False,
        nulls_first: bool = False,
        nulls_last: bool = False,
    ) -> None:
        if nulls_first and nulls_last:
            raise ValueError("nulls_first and nulls_last are mutually exclusive")
        super().__init__()
        self.expression = expression
        self.descending = descending
        self.nulls_first = nulls_first
        self.nulls_last = nulls_last

    def get_source_expressions(self) -> list[Any]:
        return [self.expression]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.expression,) = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        expression = self.expression
        # A node whose selected form does not sort as its value (a JSON key on SQLite is
        # JSON text) offers the form to sort by.
        sort_form = getattr(expression, "sort_form", None)
        if sort_form is not None:
            expression = sort_form(connection)
        sql, params = compiler.compile(expression)
        sql = f"{sql} {'DESC' if self.descending else 'ASC'}"
        if self.nulls_first:
            sql += " NULLS FIRST"
        elif self.nulls_last:
            sql += " NULLS LAST"
        return sql, params

    def reverse_ordering(self) -> OrderBy:
        clone: OrderBy = self.copy()
        clone.descending = not self.descending
        if self.nulls_first or self.nulls_last:
            clone.nulls_first, clone.nulls_last = self.nulls_last, self.nulls_first
        return clone


# Aggregates live in dorm.aggregates; re-exported so dorm.expressions names every node.
from dorm.aggregates import Aggregate, Avg, Count, Max, Min, Sum  # noqa: E402
