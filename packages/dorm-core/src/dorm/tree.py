"""Tree queries over a self-referencing foreign key: ``subtree_filter`` (recursive CTE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import FieldDoesNotExist, FieldError
from dorm.expressions import Expression, bind

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.models.query import QuerySet
    from dorm.sql.compiler import SQLCompiler

__all__ = ["subtree_filter"]


class _ParentFieldError(FieldError, ValueError):
    """A bad ``parent_field``: catchable as FieldError or as ValueError."""


def subtree_filter(
    model: type[Model],
    root_pk: Any,
    where_sql: str | None = None,
    where_params: Sequence[Any] = (),
    parent_field: str = "parent",
) -> QuerySet:
    """Return a QuerySet of the node ``root_pk`` and all its descendants.

    The descendants are found with a recursive CTE (``WITH RECURSIVE``, ``UNION``) over the
    self-referencing foreign key ``parent_field``, used as ``pk__in=<subquery>``: the result
    chains like any QuerySet (``filter``, ``count``, ``order_by``, ``values``, ``update``,
    ``delete``). ``UNION`` drops rows already found, so a cycle in the data terminates.
    An unknown root gives an empty QuerySet.

    ``where_sql`` is an SQL condition checked on every node, the root included. A node that
    fails it is left out *together with its whole subtree*: the walk does not go below it.
    It uses ``?`` placeholders on every backend (a ``?`` inside a quoted string, a quoted
    identifier or a comment is not one) bound to ``where_params``, never formatted into the
    SQL. Unqualified column names refer to the node's table.

    The SQL is built when the query is compiled, so ``.using()`` may pick another database.

    :param root_pk: the primary key of the subtree's root (a model instance is accepted too).
    :raises FieldError: (also a ValueError) if ``parent_field`` is not a ForeignKey of
        ``model`` to ``model`` itself.
    :raises ValueError: if ``root_pk`` is None, or the number of ``?`` placeholders in
        ``where_sql`` differs from ``len(where_params)``.
    """
    meta = getattr(model, "_meta", None)
    if not isinstance(model, type) or meta is None or meta.pk is None:
        raise TypeError(f"subtree_filter() needs a model class, got {model!r}")
    parent = _parent_fk(model, parent_field)
    if root_pk is None:
        raise ValueError(
            f"subtree_filter({model.__name__}): root_pk is required; pass the primary key "
            "of the subtree's root"
        )
    if isinstance(root_pk, model):
        root_pk = root_pk.pk
    if where_sql is not None and not isinstance(where_sql, str):
        raise TypeError(f"subtree_filter(): where_sql must be a str or None, got {where_sql!r}")
    if isinstance(where_params, (str, bytes)):
        raise TypeError(
            f"subtree_filter(): where_params must be a sequence of values, got {where_params!r}"
        )
    params = list(where_params)
    segments = _split_placeholders(where_sql) if where_sql else None
    placeholders = len(segments) - 1 if segments is not None else 0
    if placeholders != len(params):
        raise ValueError(
            f"subtree_filter({model.__name__}): where_sql has {placeholders} '?' "
            f"placeholder(s) but where_params has {len(params)} value(s); pass one value "
            "per '?' (a '?' inside quotes is not a placeholder)"
        )
    subquery = _SubtreePks(model, parent, root_pk, segments, params)
    return model._default_manager.filter(pk__in=subquery)  # type: ignore[no-any-return]


def _parent_fk(model: type[Model], name: str) -> Field:
    """Return the ForeignKey ``name`` of ``model`` if it points at ``model`` itself."""
    from dorm.models.related import ForeignKey

    meta = model._meta
    choices = sorted(
        f.name
        for f in meta.concrete_fields
        if isinstance(f, ForeignKey) and f.related_model is model
    )
    hint = (
        f"Self-referencing ForeignKeys of {model.__name__}: {', '.join(choices)}"
        if choices
        else f"{model.__name__} has no ForeignKey to itself"
    )
    try:
        field = meta.get_field(name)
    except FieldDoesNotExist:
        raise _ParentFieldError(
            f"{model.__name__}.{name}: no such field for parent_field. {hint}."
        ) from None
    if not isinstance(field, ForeignKey) or field.related_model is not model:
        raise _ParentFieldError(
            f"{model.__name__}.{name}: parent_field must be a ForeignKey of "
            f"{model.__name__} to {model.__name__} itself. {hint}."
        )
    return field


def _split_placeholders(sql: str) -> list[str]:
    """Split ``sql`` at each ``?`` outside quotes and comments (n placeholders, n+1 parts)."""
    parts: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            # A doubled quote inside the literal is an escaped quote.
            j = i + 1
            while True:
                j = sql.find(ch, j)
                if j == -1:
                    raise ValueError(f"where_sql has an unterminated {ch} quote: {sql!r}")
                if j + 1 < n and sql[j + 1] == ch:
                    j += 2
                    continue
                break
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            if j == -1:
                # The condition is embedded in a larger statement: end the comment here.
                sql += "\n"
                n = len(sql)
                j = n - 1
            i = j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j == -1:
                raise ValueError(f"where_sql has an unterminated /* comment: {sql!r}")
            i = j + 2
        elif ch == "?":
            parts.append(sql[start:i])
            i += 1
            start = i
        else:
            i += 1
    parts.append(sql[start:])
    return parts


class _SubtreePks(Expression):
    """``WITH RECURSIVE ... SELECT pk``: the primary keys of a subtree, rendered per vendor."""

    def __init__(
        self,
        model: type[Model],
        parent: Field,
        root_pk: Any,
        where_segments: list[str] | None,
        where_params: list[Any],
    ) -> None:
        super().__init__(model._meta.pk)
        self.model = model
        self.parent = parent
        self.root_pk = root_pk
        self.where_segments = where_segments
        self.where_params = where_params

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        qn = connection.ops.quote_name
        ph = connection.ops.placeholder
        meta = self.model._meta
        pk = meta.pk
        assert pk is not None
        key = self.parent.target_field  # type: ignore[attr-defined]
        table = qn(meta.db_table)
        cte_pk, cte_key = _cte_names(meta.concrete_fields)
        cte = qn(cte_pk[: -len("_pk")])
        pk_col = f"{table}.{qn(pk.column)}"
        key_col = f"{table}.{qn(key.column)}"
        where = ""
        if self.where_segments is not None:
            segments = self.where_segments
            if "%" in ph:
                # pyformat drivers (psycopg) read % anywhere, even inside a string literal.
                segments = [s.replace("%", "%%") for s in segments]
            where = f"({ph.join(segments)})"
        anchor = f"SELECT {pk_col}, {key_col} FROM {table} WHERE {pk_col} = {ph}"
        step = (
            f"SELECT {pk_col}, {key_col} FROM {table} INNER JOIN {cte} "
            f"ON {table}.{qn(self.parent.column)} = {cte}.{qn(cte_key)}"
        )
        if where:
            anchor += f" AND {where}"
            step += f" WHERE {where}"
        sql = (
            f"WITH RECURSIVE {cte} ({qn(cte_pk)}, {qn(cte_key)}) AS ({anchor} UNION {step}) "
            f"SELECT {qn(cte_pk)} FROM {cte}"
        )
        root = bind(pk, self.root_pk, connection)
        return f"({sql})", [root, *self.where_params, *self.where_params]

    def __repr__(self) -> str:
        return f"_SubtreePks({self.model.__name__}, root_pk={self.root_pk!r})"


def _cte_names(fields: Sequence[Field]) -> tuple[str, str]:
    """Column names for the CTE that no column of the node table uses."""
    taken = {f.column.lower() for f in fields if f.column}
    stem = "dorm_subtree"
    while f"{stem}_pk" in taken or f"{stem}_key" in taken or stem in taken:
        stem = f"_{stem}"
    return f"{stem}_pk", f"{stem}_key"
