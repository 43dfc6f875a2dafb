"""``Meta.indexes`` and ``Meta.constraints``: Index, UniqueConstraint, CheckConstraint."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
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


class BaseConstraint:
    def __init__(self, *, name: str) -> None:
        self.name = _check_name(type(self).__name__, name)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.deconstruct() == other.deconstruct()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.deconstruct()[2]!r}>"


class UniqueConstraint(BaseConstraint):
    """``UniqueConstraint(fields=["a", "b"], name="uniq_ab", condition=Q(active=True))``."""

    def __init__(self, *, fields: Sequence[str], name: str, condition: Any = None) -> None:
        if not fields or isinstance(fields, str):
            raise ValueError("UniqueConstraint.fields must be a non-empty list of field names")
        super().__init__(name=name)
        self.fields = list(fields)
        self.condition = condition

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"fields": self.fields, "name": self.name}
        if self.condition is not None:
            kwargs["condition"] = self.condition
        return "dorm.UniqueConstraint", [], kwargs


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
