"""Distance and text-rank expressions, usable in annotate(), order_by() and filter().

``L2Distance("embedding", q)`` renders as ``"embedding" <-> %s::vector`` on PostgreSQL
(pgvector's operator, so an HNSW / IVFFlat index with the matching opclass serves
``ORDER BY ... LIMIT``) and as a distance function on SQLite (see ``sqlite.py``). The
query vector is validated by the vector field (dimensions, finite values) and always bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from dorm.contrib.pgvector import sqlite as sqlite_functions
from dorm.contrib.pgvector.fields import SearchVectorField, VectorField
from dorm.contrib.pgvector.fulltext import rank_sql
from dorm.exceptions import FieldError, NotSupportedError
from dorm.expressions import Col, Expression, F
from dorm.models.fields import FloatField

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.sql.compiler import SQLCompiler

__all__ = ["CosineDistance", "Distance", "L2Distance", "MaxInnerProduct", "TextRank"]

SQL = tuple[str, list[Any]]


# The output field of every distance and rank: a float, no conversion. One instance
# shared (as Django's functions declare theirs on the class): building a Field per
# expression was a twentieth of a k-NN query's Python time.
_FLOAT = FloatField()


def _field_ref(value: Any) -> Any:
    return F(value) if isinstance(value, str) else value


class Distance(Expression):
    """Base of the three distances: ``(vector field name or expression, query vector)``."""

    pg_operator: ClassVar[str] = ""
    sqlite_function: ClassVar[str] = ""
    #: The pgvector opclass whose index serves ``ORDER BY`` this distance.
    opclass: ClassVar[str] = ""

    def __init__(self, expression: Any, vector: Any) -> None:
        if vector is None:
            raise TypeError(f"{type(self).__name__}: the query vector is None")
        super().__init__(output_field=_FLOAT)
        self.lhs = _field_ref(expression)
        self.vector = vector  # validated and bound by the column's VectorField

    def get_source_expressions(self) -> list[Any]:
        return [self.lhs]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.lhs,) = exprs

    def plan_shape(self) -> Hashable | None:
        """What of this distance shapes its SQL, for dorm-core's expression plans: the
        field name and the vector's type (the vector is bound); None for another left side."""
        lhs = self.lhs
        if type(lhs) is not F:
            return None
        return (lhs.name, type(self.vector))

    def plan_binder(self) -> Callable[[Distance], list[Any]] | None:
        """On the resolved distance: the parameters of a distance of the same shape, bound
        as ``_operands`` binds them (ValidationError for a bad vector)."""
        lhs = self.lhs
        field = getattr(lhs, "output_field", None)
        if type(lhs) is not Col or not isinstance(field, VectorField):
            return None
        prep = field.get_db_prep_value

        def bind(node: Distance) -> list[Any]:
            return [prep(node.vector)]

        return bind

    def _operands(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        field = getattr(self.lhs, "output_field", None)
        if not isinstance(field, VectorField):
            raise FieldError(
                f"{type(self).__name__}: {self.lhs!r} is not a VectorField "
                f"(got {type(field).__name__ if field is not None else 'no field'})"
            )
        lhs, params = compiler.compile(self.lhs)
        bound = field.get_db_prep_value(self.vector)  # ValidationError names the field
        return lhs, [*params, bound]

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs, params = self._operands(compiler, connection)
        ph = connection.ops.placeholder
        return f"({lhs} {self.pg_operator} CAST({ph} AS vector))", params

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs, params = self._operands(compiler, connection)
        return f"{self.sqlite_function}({lhs}, {connection.ops.placeholder})", params

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        raise NotSupportedError(
            f"{type(self).__name__} is not available on {connection.vendor}; "
            f"dorm-pgvector supports postgresql and sqlite"
        )


class L2Distance(Distance):
    """Euclidean distance (pgvector ``<->``; opclass ``vector_l2_ops``)."""

    pg_operator = "<->"
    sqlite_function = sqlite_functions.L2
    opclass = "vector_l2_ops"


class CosineDistance(Distance):
    """``1 - cosine similarity`` (pgvector ``<=>``; opclass ``vector_cosine_ops``)."""

    pg_operator = "<=>"
    sqlite_function = sqlite_functions.COSINE
    opclass = "vector_cosine_ops"


class MaxInnerProduct(Distance):
    """The negative inner product (pgvector ``<#>``; opclass ``vector_ip_ops``): smaller
    is more similar, so ``order_by`` ascending gives the largest inner products first."""

    pg_operator = "<#>"
    sqlite_function = sqlite_functions.NEGATIVE_INNER_PRODUCT
    opclass = "vector_ip_ops"


class TextRank(Expression):
    """``TextRank("search_vector", "machine learning")``: how well a row's full-text
    column matches the words (0 when not all of them occur), higher is better.

    PostgreSQL: ``ts_rank`` with ``plainto_tsquery`` in the field's config; SQLite:
    minus FTS5's ``bm25``. The scales differ between vendors; the order is what counts.
    """

    def __init__(self, expression: Any, query: str) -> None:
        if not isinstance(query, str):
            raise TypeError(f"TextRank: the query must be a str, got {type(query).__name__}")
        super().__init__(output_field=_FLOAT)
        self.lhs = _field_ref(expression)
        self.query = query

    def get_source_expressions(self) -> list[Any]:
        return [self.lhs]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.lhs,) = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        lhs = self.lhs
        field = getattr(lhs, "output_field", None)
        if not isinstance(lhs, Col) or not isinstance(field, SearchVectorField):
            raise FieldError(f"TextRank: {lhs!r} is not a SearchVectorField column")
        if connection.vendor not in ("postgresql", "sqlite"):
            raise NotSupportedError(f"TextRank is not available on {connection.vendor}")
        column, params = compiler.compile(lhs)
        qn = compiler.quote_name
        pk_column = field.model._meta.pk.column
        pk_sql = qn(pk_column) if lhs.alias is None else f"{qn(lhs.alias)}.{qn(pk_column)}"
        sql, rank_params = rank_sql(connection, field, column, pk_sql, self.query)
        return sql, [*params, *rank_params]
