"""FilteredRelation: a relation joined with an extra condition in its ``ON`` clause.

``Author.objects.annotate(recent=FilteredRelation("books", condition=Q(books__year__gte=2020)))``
makes ``recent`` a name for the ``books`` relation that only sees matching rows:
``filter(recent__title=...)``, ``values("recent__title")``, ``Count("recent")``, and for a
forward foreign key ``select_related("recent")``. The join is a LEFT OUTER JOIN, as in
Django, so rows without a match keep NULLs instead of disappearing.
"""

from __future__ import annotations

from typing import Any

from dorm.expressions import Q

__all__ = ["FilteredRelation"]


class FilteredRelation:
    """``FilteredRelation(relation_name, condition=Q(...))``; condition paths start with
    ``relation_name`` and read fields of the related model only."""

    def __init__(self, relation_name: str, *, condition: Q | None = None) -> None:
        if not isinstance(relation_name, str) or not relation_name:
            raise ValueError(
                f"FilteredRelation: relation_name must be a name, got {relation_name!r}"
            )
        if "__" in relation_name:
            raise ValueError(
                f"FilteredRelation({relation_name!r}): give one relation of the model; "
                f"nested relations are not supported"
            )
        condition = Q() if condition is None else condition
        if not isinstance(condition, Q):
            raise ValueError(f"FilteredRelation: condition must be a Q object, got {condition!r}")
        self.relation_name = relation_name
        self.condition = condition

    def check_condition(self) -> None:
        """Every path of the condition starts with the relation (else ValueError)."""
        for name in _paths(self.condition):
            if name.split("__")[0] != self.relation_name:
                raise ValueError(
                    f"FilteredRelation({self.relation_name!r}): the condition names {name!r}; "
                    f"its paths must start with {self.relation_name!r}"
                )

    def condition_for(self, alias: str) -> Q:
        """The condition with its paths going through ``alias`` (the filtered join)."""
        return _renamed(self.condition, self.relation_name, alias)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FilteredRelation)
            and other.relation_name == self.relation_name
            and other.condition == self.condition
        )

    def __hash__(self) -> int:
        return hash((self.relation_name, repr(self.condition)))

    def __repr__(self) -> str:
        return f"FilteredRelation({self.relation_name!r}, condition={self.condition!r})"


def _paths(q: Q) -> list[str]:
    out: list[str] = []
    for child in q.children:
        if isinstance(child, Q):
            out.extend(_paths(child))
        elif isinstance(child, tuple):
            out.append(child[0])
        else:
            raise ValueError(
                f"FilteredRelation: the condition takes keyword lookups in Q(), got {child!r}"
            )
    return out


def _renamed(q: Q, old: str, new: str) -> Q:
    clone = Q(_connector=q.connector, _negated=q.negated)
    children: list[Any] = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(_renamed(child, old, new))
        else:
            name, value = child
            children.append((new + name[len(old) :], value))
    clone.children = children
    return clone
