"""Multi-table inheritance: a concrete model subclassing another concrete model.

The child has its own table holding its own fields and a ``OneToOneField(parent,
parent_link=True, primary_key=True)`` (``<parent>_ptr``, or an explicit field with
``parent_link=True``); the parent's fields stay in the parent's table, as in Django.
``_meta.concrete_fields`` lists every column an instance carries (the parents' first),
``_meta.local_concrete_fields`` those of the model's own table and ``_meta.parents`` maps
each parent to its link. Reads join the parents' tables (``Query.join_parent``), saves
write each table from the root down, in one transaction (``save_parents``), deletes
remove the parents' rows too (the delete collector), and ``QuerySet.update()`` runs one
UPDATE per table (``update``). Models without a concrete parent never reach this module:
each caller checks ``_meta.parents``, empty for them, first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import FieldError, NotSupportedError

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.models.query import QuerySet

__all__ = [
    "add_parent_link",
    "check_bulk_create",
    "check_local_names",
    "concrete_parent",
    "inherited_meta",
    "is_inherited",
    "parent_objects",
    "save_parents",
    "update",
]

#: Primary keys per UPDATE of a parent table (the bound parameters of one IN list).
BATCH = 500


def concrete_parent(name: str, parents: Sequence[Any]) -> Any:
    """The one concrete model ``name`` inherits from.

    :raises NotSupportedError: it has several concrete parents.
    """
    concrete = list(dict.fromkeys(p._meta.concrete_model for p in parents))
    if len(concrete) > 1:
        raise NotSupportedError(
            f"{name} subclasses several concrete models "
            f"({', '.join(p.__name__ for p in concrete)}): multi-table inheritance from more "
            f"than one parent is not supported; make all but one of them abstract"
        )
    return concrete[0]


def inherited_meta(meta: Any, parent: type[Model]) -> Any:
    """``meta`` plus the options a child of a concrete model inherits unless it sets them
    (``ordering`` and ``get_latest_by``, as in Django)."""
    inherited: dict[str, Any] = {}
    for option in ("ordering", "get_latest_by"):
        value = getattr(parent._meta, option)
        if value and (meta is None or not hasattr(meta, option)):
            inherited[option] = value
    if not inherited:
        return meta
    return type("Meta", (meta,) if meta is not None else (), inherited)


def _points_at(field: Any, parent: type[Model]) -> bool:
    to = field.to
    if not isinstance(to, str):
        return bool(to._meta.concrete_model is parent)
    popts = parent._meta
    return to.lower() in (popts.label_lower, popts.model_name)


def add_parent_link(cls: Any, parent: type[Model], declared: dict[str, Any]) -> None:
    """Give the child ``cls`` its link to ``parent`` and record it in ``_meta.parents``
    (called by ModelBase before the declared fields are added).

    :raises FieldError: a declared field has the name of one of the parent's fields, or
        of the automatic link ``<parent>_ptr``.
    """
    from dorm.models.fields import Field
    from dorm.models.related import CASCADE, OneToOneField

    opts = cls._meta
    popts = parent._meta
    inherited = {f.name for f in popts.fields} | {f.attname for f in popts.concrete_fields}
    for attr, value in declared.items():
        if isinstance(value, Field) and attr in inherited:
            raise FieldError(
                f"Local field {attr!r} in class {cls.__name__!r} clashes with field of the "
                f"same name from base class {parent.__name__!r}; rename one of them"
            )
    check_local_names(cls, parent)
    links = [
        (attr, value)
        for attr, value in declared.items()
        if getattr(value, "parent_link", False) and _points_at(value, parent)
    ]
    if links:
        link = links[0][1]
    else:
        attr = f"{popts.model_name}_ptr"
        if attr in declared:
            raise FieldError(
                f"{cls.__name__}.{attr} clashes with the link multi-table inheritance adds "
                f"to {parent.__name__}; rename the field, or declare it as "
                f"OneToOneField({parent.__name__}, on_delete=dorm.CASCADE, parent_link=True)"
            )
        link = OneToOneField(
            parent, on_delete=CASCADE, parent_link=True, auto_created=True, primary_key=True
        )
        link.creation_counter = -1  # first among the child's own fields, as in Django
        declared[attr] = link
    if not any(getattr(v, "primary_key", False) for v in declared.values()):
        link.primary_key = True
        link.null = False
    opts.parents[parent] = link


def check_local_names(cls: Any, parent: type[Model]) -> None:
    """``unique_together``, ``indexes`` and constraints of a child may name only columns of
    its own table (Django's models.E016). Checked before the child's fields are added, so
    a refused class leaves no relation behind on its parent.

    :raises FieldError: naming the option, the field and the parent it lives in.
    """
    opts = cls._meta
    inherited = {f.name: f.model for f in parent._meta.concrete_fields}
    groups: list[tuple[str, list[str]]] = [
        ("unique_together", list(group)) for group in opts.unique_together
    ]
    groups += [("indexes", [n for n, _o in index.field_orders()]) for index in opts.indexes]
    groups += [("constraints", list(getattr(c, "fields", ()) or ())) for c in opts.constraints]
    for option, names in groups:
        for name in names:
            if name in inherited:
                raise FieldError(
                    f"{cls.__name__}.Meta.{option} names {name!r}, which is not local to "
                    f"{cls.__name__}: it lives in the table of {inherited[name].__name__}; "
                    f"declare the {option} entry on {inherited[name].__name__}"
                )


def is_inherited(opts: Any, field: Any) -> bool:
    """True when ``field`` is a column of one of the tables of ``opts``'s parents."""
    model = getattr(field, "model", None)
    return (
        model is not None
        and model._meta.concrete_model is not opts.concrete_model
        and model in opts.get_parent_list()
    )


def check_bulk_create(model: type[Model]) -> None:
    """:raises ValueError: ``model`` inherits from a concrete model (as in Django)."""
    parents = model._meta.parents
    if parents:
        raise ValueError(
            f"Can't bulk create a multi-table inherited model: {model.__name__} stores its "
            f"fields in the tables of {', '.join(p.__name__ for p in parents)} too; "
            f"use create() or save() for each object"
        )


def save_parents(
    cls: type[Model],
    obj: Model,
    db: Any,
    using: str,
    force_update: bool,
    update_fields: frozenset[str] | None,
    save_table: Any,
) -> bool:
    """Save the rows of ``obj`` in the tables of ``cls``'s parents, the root first, then
    point the links at them; return True when a parent row was inserted."""
    inserted = False
    for parent, link in cls._meta.parents.items():
        ppk = parent._meta.pk
        assert ppk is not None
        values = obj.__dict__
        if values.get(link.attname) is None and values.get(ppk.attname) is not None:
            values[link.attname] = values[ppk.attname]
        elif values.get(link.attname) is not None and values.get(ppk.attname) is None:
            values[ppk.attname] = values[link.attname]
        parent_inserted = save_parents(
            parent, obj, db, using, force_update, update_fields, save_table
        )
        inserted = (
            save_table(obj, db, using, parent_inserted, force_update, update_fields, parent)
            or inserted
        )
        values[link.attname] = values[ppk.attname]
        cached = obj._state.fields_cache.get(link.name)
        if cached is not None and cached.pk != values[link.attname]:
            del obj._state.fields_cache[link.name]
    return inserted


def parent_objects(obj: Model) -> list[Model]:
    """``obj``'s rows in its parents' tables as instances of each parent, nearest first,
    built from the values ``obj`` carries (no query)."""
    from dorm.models.base import ModelState

    found: list[Model] = []
    values = obj.__dict__
    for parent in type(obj)._meta.concrete_model._meta.get_parent_list():
        instance = parent.__new__(parent)
        instance.__dict__.update(
            {
                f.attname: values[f.attname]
                for f in parent._meta.concrete_fields
                if f.attname in values
            }
        )
        instance._state = ModelState(obj._state.db, False)
        found.append(instance)
    return found


def update(qs: QuerySet, values: Sequence[tuple[Field, Any]], alias: str) -> int:
    """``QuerySet.update()`` of a child setting its parents' fields: the matching primary
    keys are read first, then each table is updated by primary key, in one transaction,
    so a condition on a field being updated still selects the rows it matched."""
    from dorm import transaction

    model = qs.model
    assert model is not None
    opts = model._meta
    by_model: dict[type[Model], list[tuple[Field, Any]]] = {}
    for field, value in values:
        owner = field.model if is_inherited(opts, field) else opts.concrete_model
        by_model.setdefault(owner, []).append((field, value))
    for field, value in values:
        if hasattr(value, "resolve_expression") and is_inherited(opts, field):
            _check_same_table(model, field, value)
    with transaction.atomic(using=alias, savepoint=False):
        pks = list(qs.order_by().values_list("pk", flat=True))
        rows = 0
        for owner, owner_values in by_model.items():
            count = 0
            for start in range(0, len(pks), BATCH):
                count += (
                    owner._base_manager.using(alias)
                    .filter(pk__in=pks[start : start + BATCH])
                    ._update(owner_values, alias)
                )
            if owner is opts.concrete_model or not rows:
                rows = count
    return rows


def _check_same_table(model: type[Model], field: Any, value: Any) -> None:
    """An expression setting a parent's field may read only that parent's columns."""
    from dorm.expressions import F

    def names(node: Any) -> list[str]:
        found = [node.name] if isinstance(node, F) else []
        for source in getattr(node, "get_source_expressions", list)():
            if source is not None:
                found.extend(names(source))
        return found

    owner = field.model._meta
    for name in names(value):
        try:
            target = owner.get_field(name.split("__")[0])
        except Exception:
            target = None
        if target is None:
            raise FieldError(
                f"{model.__name__}.objects.update({field.name}=...): the expression reads "
                f"{name!r}, which is not a field of {owner.object_name} (the table "
                f"{field.name!r} lives in); update that field in a separate update() call"
            )
