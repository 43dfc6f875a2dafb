"""``Meta.indexes`` and ``Meta.constraints``: Index, UniqueConstraint, CheckConstraint."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["BaseConstraint", "CheckConstraint", "Index", "UniqueConstraint"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name must be an identifier of at most 63 characters, got {name!r}"
        )
    return name


def default_name(table: str, columns: Sequence[str], suffix: str) -> str:
    """A deterministic name that fits PostgreSQL's 63-character limit."""
    import hashlib

    digest = hashlib.sha1(f"{table}:{','.join(columns)}".encode()).hexdigest()[:8]
    base = f"{table}_{'_'.join(columns)}"[: 63 - len(suffix) - 10]
    return f"{base}_{digest}_{suffix}"


class Index:
    """``Index(fields=["-created", "title"], name="article_created_idx")``."""

    def __init__(
        self, *, fields: Sequence[str], name: str | None = None, condition: Any = None
    ) -> None:
        if not fields or isinstance(fields, str):
            raise ValueError("Index.fields must be a non-empty list of field names")
        self.fields = list(fields)
        self.name = _check_name("Index", name) if name is not None else None
        self.condition = condition

    def field_orders(self) -> list[tuple[str, str]]:
        return [(f[1:], "DESC") if f.startswith("-") else (f, "") for f in self.fields]

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"fields": self.fields}
        if self.name:
            kwargs["name"] = self.name
        if self.condition is not None:
            kwargs["condition"] = self.condition
        return "dorm.Index", [], kwargs

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and self.deconstruct() == other.deconstruct()

    def __repr__(self) -> str:
        return f"<Index fields={self.fields!r} name={self.name!r}>"


def _referenced_names(condition: Any) -> set[str]:
    """The first path segment of every field a Q (and its F() values) refers to."""
    from dorm.expressions import F, Q

    names: set[str] = set()
    for child in getattr(condition, "children", ()):
        if isinstance(child, Q):
            names |= _referenced_names(child)
        elif isinstance(child, tuple) and len(child) == 2:
            names.add(child[0].split("__")[0])
            if isinstance(child[1], F):
                names.add(child[1].name.split("__")[0])
    return names


def _value_map(instance: Any, exclude: set[str]) -> dict[str, Any]:
    """``{name: Value(current value)}`` for the instance's concrete fields (as Django builds)."""
    from dorm.expressions import Value

    values: dict[str, Any] = {}
    for field in type(instance)._meta.concrete_fields:
        if field.name in exclude:
            continue
        value = Value(instance.__dict__.get(field.attname), output_field=field)
        values[field.name] = value
        values.setdefault(field.attname, value)
        if field.primary_key:
            values["pk"] = value
    return values


def condition_holds(model: Any, against: dict[str, Any], condition: Any, using: str) -> bool:
    """Evaluate ``condition`` over the values in ``against`` with one FROM-less SELECT.

    Every field name resolves to a bound parameter, so no table is read. As in SQL CHECK
    constraints, an unknown (NULL) result counts as satisfied.
    """
    from dorm.db.connection import connections
    from dorm.exceptions import EmptyResultSet, FieldError
    from dorm.sql.query import Query
    from dorm.sql.where import FullResultSet

    connection = connections[using]
    query = Query(model)
    for name, value in against.items():
        query.add_annotation(value, name)
    where = query.build_where(condition)
    if query.alias_map:
        raise FieldError(
            f"{model.__name__}: the condition {condition!r} can only refer to the model's "
            f"own fields"
        )
    try:
        sql, params = query.get_compiler(connection=connection).compile(where)
    except EmptyResultSet:
        return False
    except FullResultSet:
        return True
    row = connection.fetchone(f"SELECT 1 WHERE COALESCE(({sql}), TRUE)", params)
    return row is not None


def violated(name: str) -> str:
    return f"Constraint \u201c{name}\u201d is violated."


class BaseConstraint:
    def __init__(self, *, name: str) -> None:
        self.name = _check_name(type(self).__name__, name)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        raise NotImplementedError

    def validate(
        self,
        model: Any,
        instance: Any,
        exclude: Iterable[str] | None = None,
        using: str = "default",
    ) -> None:
        """Raise ValidationError when ``instance`` would violate this constraint."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.deconstruct() == other.deconstruct()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.deconstruct()[2]!r}>"


class Deferrable(enum.Enum):
    """When a deferrable constraint is checked: at COMMIT, or after each statement."""

    DEFERRED = "deferred"
    IMMEDIATE = "immediate"

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class UniqueConstraint(BaseConstraint):
    """``UniqueConstraint(fields=["a", "b"], name="uniq_ab", condition=Q(active=True))``.

    ``deferrable=Deferrable.DEFERRED`` checks at COMMIT, ``include=["c"]`` adds covering
    columns to the index, ``nulls_distinct=False`` makes NULLs collide: PostgreSQL has all
    three (``nulls_distinct`` from version 15); SQLite has none, and the schema editor
    raises NotSupportedError naming the constraint and the option.
    """

    def __init__(
        self,
        *,
        fields: Sequence[str],
        name: str,
        condition: Any = None,
        deferrable: Deferrable | None = None,
        include: Sequence[str] | None = None,
        nulls_distinct: bool | None = None,
    ) -> None:
        if not fields or isinstance(fields, str):
            raise ValueError("UniqueConstraint.fields must be a non-empty list of field names")
        super().__init__(name=name)
        if deferrable is not None and not isinstance(deferrable, Deferrable):
            raise ValueError(
                f"UniqueConstraint {name!r}: deferrable must be Deferrable.DEFERRED or "
                f"Deferrable.IMMEDIATE, got {deferrable!r}"
            )
        if deferrable is not None and condition is not None:
            raise ValueError(
                f"UniqueConstraint {name!r}: a constraint with a condition cannot be deferred"
            )
        if deferrable is not None and include:
            raise ValueError(
                f"UniqueConstraint {name!r}: a constraint with include fields cannot be deferred"
            )
        if include is not None and (
            isinstance(include, str) or not all(isinstance(n, str) for n in include)
        ):
            raise ValueError(f"UniqueConstraint {name!r}: include must be a list of field names")
        if nulls_distinct is not None and not isinstance(nulls_distinct, bool):
            raise ValueError(
                f"UniqueConstraint {name!r}: nulls_distinct must be True, False or None"
            )
        self.fields = list(fields)
        self.condition = condition
        self.deferrable = deferrable
        self.include = list(include or [])
        self.nulls_distinct = nulls_distinct

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"fields": self.fields, "name": self.name}
        if self.condition is not None:
            kwargs["condition"] = self.condition
        if self.deferrable is not None:
            kwargs["deferrable"] = self.deferrable
        if self.include:
            kwargs["include"] = self.include
        if self.nulls_distinct is not None:
            kwargs["nulls_distinct"] = self.nulls_distinct
        return "dorm.UniqueConstraint", [], kwargs

    def unsupported_options(self) -> list[str]:
        """The options set here that only PostgreSQL supports."""
        found = []
        if self.deferrable is not None:
            found.append("deferrable")
        if self.include:
            found.append("include")
        if self.nulls_distinct is not None:
            found.append("nulls_distinct")
        return found

    def validate(
        self,
        model: Any,
        instance: Any,
        exclude: Iterable[str] | None = None,
        using: str = "default",
    ) -> None:
        from dorm.exceptions import ValidationError

        skip = set(exclude or ())
        if set(self.fields) & skip:
            return
        opts = model._meta
        lookup: dict[str, Any] = {}
        for name in self.fields:
            field = opts.get_field(name)
            value = instance.__dict__.get(field.attname)
            key = field.attname if field.is_relation else field.name
            if value is None:
                if self.nulls_distinct is not False:
                    return  # NULLs never collide in a unique index
                lookup[f"{key}__isnull"] = True  # NULLS NOT DISTINCT: they do
                continue
            lookup[key] = value
        qs = model._default_manager.using(using).filter(**lookup)
        if not instance._state.adding and instance.pk is not None:
            qs = qs.exclude(pk=instance.pk)
        if self.condition is None:
            if qs.exists():
                raise ValidationError(
                    f"{model.__name__} with this {' and '.join(self.fields)} already exists",
                    code="unique",
                )
            return
        if _referenced_names(self.condition) & skip:
            return
        against = _value_map(instance, skip)
        # Only rows matching the condition are in the partial index, the instance included.
        if (
            condition_holds(model, against, self.condition, using)
            and qs.filter(self.condition).exists()
        ):
            raise ValidationError(violated(self.name), code="unique")


class CheckConstraint(BaseConstraint):
    """``CheckConstraint(condition=Q(amount__gt=0), name="amount_positive")``.

    ``check=`` is accepted as the older spelling of ``condition=``.
    """

    def __init__(self, *, name: str, condition: Any = None, check: Any = None) -> None:
        super().__init__(name=name)
        condition = condition if condition is not None else check
        if condition is None:
            raise ValueError(f"CheckConstraint {name!r} needs condition=Q(...)")
        self.condition = condition

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return "dorm.CheckConstraint", [], {"condition": self.condition, "name": self.name}

    def validate(
        self,
        model: Any,
        instance: Any,
        exclude: Iterable[str] | None = None,
        using: str = "default",
    ) -> None:
        from dorm.exceptions import ValidationError

        skip = set(exclude or ())
        if _referenced_names(self.condition) & skip:
            return
        if not condition_holds(model, _value_map(instance, skip), self.condition, using):
            raise ValidationError(violated(self.name), code="check_constraint")
