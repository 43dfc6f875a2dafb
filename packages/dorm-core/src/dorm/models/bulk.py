"""bulk_create, bulk_update and upsert: multi-row statements, one hook call per operation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm import signals, transaction
from dorm.db.connection import connections
from dorm.exceptions import FieldError
from dorm.expressions import Case, Value, When
from dorm.sql import writes

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.models.query import QuerySet

__all__ = ["bulk_create", "bulk_update", "upsert"]


def _concrete(model: type[Model], names: Sequence[str], what: str) -> list[Field]:
    opts = model._meta
    fields: list[Field] = []
    for name in names:
        try:
            field = opts.get_field(name)
        except Exception:
            field = None
        if field is None or not getattr(field, "concrete", False) or field.many_to_many:
            raise FieldError(
                f"{model.__name__}: {what} names {name!r}, which is not a concrete field; "
                f"fields are: {', '.join(f.name for f in opts.concrete_fields)}"
            )
        fields.append(field)
    return fields


def bulk_create(
    qs: QuerySet,
    objs: list[Any],
    batch_size: int | None,
    ignore_conflicts: bool,
    update_conflicts: bool,
    update_fields: Sequence[str] | None,
    unique_fields: Sequence[str] | None,
) -> list[Any]:
    model = qs.model
    assert model is not None
    if batch_size is not None and batch_size <= 0:
        raise ValueError("bulk_create(batch_size=...) must be positive")
    if ignore_conflicts and update_conflicts:
        raise ValueError("bulk_create(): ignore_conflicts and update_conflicts are exclusive")
    if not objs:
        return objs
    for obj in objs:
        if not isinstance(obj, model):
            raise TypeError(f"bulk_create() of {model.__name__} got {obj!r}")
    opts = model._meta
    pk = opts.pk
    assert pk is not None
    on_conflict = None
    unique: list[Field] = []
    updates: list[Field] = []
    if update_conflicts:
        if not update_fields:
            raise ValueError("bulk_create(update_conflicts=True) needs update_fields")
        if not unique_fields:
            raise ValueError("bulk_create(update_conflicts=True) needs unique_fields")
        unique = _concrete(model, unique_fields, "unique_fields")
        updates = _concrete(model, update_fields, "update_fields")
        if any(f.primary_key for f in updates):
            raise ValueError("bulk_create(): update_fields cannot contain the primary key")
        on_conflict = "update"
    elif ignore_conflicts:
        on_conflict = "ignore"
    qs._for_write = True
    using = qs.db
    db = connections[using]
    for obj in objs:
        if obj.pk is None and pk.has_default():
            obj.pk = pk.get_default()
    with_pk = [o for o in objs if o.pk is not None]
    without_pk = [o for o in objs if o.pk is None]
    all_fields = list(opts.concrete_fields)
    no_pk_fields = [f for f in all_fields if not f.primary_key]
    returning = [pk] if on_conflict != "ignore" else []
    with transaction.atomic(using=using, savepoint=False):
        if with_pk:
            writes.insert(
                model, with_pk, all_fields, db, (), on_conflict, unique, updates, batch_size
            )
        if without_pk:
            rows = writes.insert(
                model,
                without_pk,
                no_pk_fields,
                db,
                returning,
                on_conflict,
                unique,
                updates,
                batch_size,
            )
            if returning and len(rows) == len(without_pk):
                for obj, row in zip(without_pk, rows, strict=True):
                    obj.__dict__[pk.attname] = row[0]
        for obj in objs:
            obj._state.adding = False
            obj._state.db = using
        if signals.bulk_created.has_listeners(model):
            signals.bulk_created.send(sender=model, objs=objs, using=using)
    return objs


def bulk_update(qs: QuerySet, objs: list[Any], names: Sequence[str], batch_size: int | None) -> int:
    """UPDATE ``fields`` of each object: one ``CASE pk WHEN ...`` statement per batch."""
    model = qs.model
    assert model is not None
    if batch_size is not None and batch_size <= 0:
        raise ValueError("bulk_update(batch_size=...) must be positive")
    if not names:
        raise ValueError("bulk_update() needs field names")
    fields = _concrete(model, names, "bulk_update()")
    if any(f.primary_key for f in fields):
        raise ValueError("bulk_update() cannot update the primary key")
    if any(o.pk is None for o in objs):
        raise ValueError("bulk_update() objects must all have primary keys")
    if not objs:
        return 0
    qs._for_write = True
    using = qs.db
    size = batch_size or max(1, min(len(objs), 1000 // max(1, len(fields))))
    rows = 0
    with transaction.atomic(using=using, savepoint=False):
        for start in range(0, len(objs), size):
            batch = objs[start : start + size]
            values: list[tuple[Field, Any]] = []
            for field in fields:
                whens = [
                    When(pk=obj.pk, then=Value(field.pre_save(obj, False), output_field=field))
                    for obj in batch
                ]
                values.append((field, Case(*whens, output_field=field)))
            rows += (
                model._base_manager.using(using)
                .filter(pk__in=[o.pk for o in batch])
                ._update(values)
            )
        if signals.bulk_updated.has_listeners(model):
            signals.bulk_updated.send(sender=model, objs=objs, fields=list(names), using=using)
    return rows


def upsert(
    qs: QuerySet,
    objs: list[Any],
    unique_fields: Sequence[str] | None,
    update_fields: Sequence[str] | None,
    returning: bool,
    batch_size: int | None,
) -> list[Any]:
    model = qs.model
    assert model is not None
    if not unique_fields:
        if not objs:
            return []
        raise ValueError(
            f"unique_fields is required for {model.__name__}.objects.upsert(): name the "
            f"column(s) of a unique constraint the conflict is detected on"
        )
    unique = _concrete(model, unique_fields, "upsert(unique_fields=...)")
    opts = model._meta
    unique_sets = [{f.name} for f in opts.concrete_fields if f.unique]
    unique_sets += [set(g) for g in opts.unique_together]
    from dorm.models.constraints import UniqueConstraint

    unique_sets += [
        set(c.fields)
        for c in opts.constraints
        if isinstance(c, UniqueConstraint) and c.condition is None
    ]
    names = {f.name for f in unique}
    if names not in unique_sets:
        raise ValueError(
            f"{model.__name__}.objects.upsert(): unique_fields {sorted(names)} is not a unique "
            f"column or unique_together / UniqueConstraint set; ON CONFLICT needs one"
        )
    if update_fields is None:
        update_fields = [
            f.name for f in opts.concrete_fields if not f.primary_key and f.name not in names
        ]
    if not objs:
        return []
    result = bulk_create(
        qs, objs, batch_size, False, True, list(update_fields), list(unique_fields)
    )
    if not returning:
        return result
    # Build the returned rows by field name from the database (M2M fields are not columns).
    lookup_values = [tuple(getattr(o, f.attname) for f in unique) for o in objs]
    saved = model._base_manager.using(qs.db).filter(
        **{f"{unique[0].name}__in": [v[0] for v in lookup_values]}
    )
    by_key = {tuple(getattr(o, f.attname) for f in unique): o for o in saved}
    return [by_key[key] for key in lookup_values if key in by_key]
