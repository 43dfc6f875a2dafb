"""bulk_create, bulk_update and upsert: multi-row statements, one hook call per operation."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from dorm import signals, transaction
from dorm.db.connection import connections
from dorm.expressions import Case, Value, When
from dorm.models.base import LOADED_FROM
from dorm.models.fields import DATABASE_DEFAULT
from dorm.models.persistence import returned_converters, store_returned
from dorm.sql import writes
from dorm.sql.compiler import column_converter

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.models.query import QuerySet

__all__ = ["bulk_create", "bulk_update", "upsert"]


def _concrete(model: type[Model], names: Sequence[str], what: str) -> list[Field]:
    return [model._meta.get_concrete_field(name, what) for name in names]


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
    if model._meta.parents:
        from dorm.models.inheritance import check_bulk_create

        check_bulk_create(model)
    if ignore_conflicts and update_conflicts:
        raise ValueError("bulk_create(): ignore_conflicts and update_conflicts are exclusive")
    if not objs:
        return objs
    if set(map(type, objs)) != {model}:  # one pass in C for the usual case
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
    key = pk.attname
    if pk.has_default():
        for obj in objs:
            if obj.__dict__.get(key) is None:
                obj.__dict__[key] = pk.get_default()
    all_fields = list(opts.concrete_fields)
    no_pk_fields = [f for f in all_fields if not f.primary_key]
    read_back = on_conflict != "ignore"  # an ignored row returns nothing to match
    marked = False
    with transaction.atomic(using=using, savepoint=False):
        for has_pk, defaulted, group in _insert_groups(objs, opts.db_default_fields, key):
            if not group:
                continue
            fields = all_fields if has_pk else no_pk_fields
            returning: list[Field] = []
            if read_back:
                returning = [*([] if has_pk else [pk]), *defaulted]
            if defaulted:
                # The database fills these columns (db_default): leave them out.
                fields = [f for f in fields if f not in defaulted]
            rows = writes.insert(
                model, group, fields, db, returning, on_conflict, unique, updates, batch_size
            )
            if returning and len(rows) == len(group):
                if defaulted:
                    converters = returned_converters(db, returning)
                    for obj, row in zip(group, rows, strict=True):
                        store_returned(db, obj, returning, row, converters)
                elif group is objs:  # the one group: keys stored, rows marked saved
                    _mark_saved(objs, using, key, rows)
                    marked = True
                else:  # only the new primary keys, as they come
                    for obj, row in zip(group, rows, strict=True):
                        obj.__dict__[key] = row[0]
        if not marked:
            _mark_saved(objs, using)
        if signals.bulk_created.has_listeners(model):
            signals.bulk_created.send(sender=model, objs=objs, using=using)
    return objs


def _mark_saved(
    objs: Sequence[Any], using: str, key: str | None = None, rows: Sequence[Any] = ()
) -> None:
    """Each object is now a row of ``using``: its state says so, or, when it has none yet,
    the one made on first use will (LOADED_FROM; no state built per object). With ``key``
    (the primary key's attname), each object also takes its new key from its one-column
    row in ``rows``, in the same pass."""
    keys = repeat(None) if key is None else map(itemgetter(0), rows)
    for obj, new in zip(objs, keys, strict=False):  # rows: one per object (checked)
        values = obj.__dict__
        if key is not None:
            values[key] = new
        if "_state" in values:
            state = values["_state"]
            state.adding = False
            state.db = using
        else:
            values[LOADED_FROM] = using


def _insert_groups(
    objs: list[Any], db_default_fields: Sequence[Field], key: str
) -> list[tuple[bool, tuple[Field, ...], list[Any]]]:
    """``(has pk, fields left to the database, objects)``: one INSERT shape per group (one
    group unless a batch mixes them); ``key`` is the primary key's attname."""
    if not db_default_fields:  # the usual case: split by primary key only
        try:
            for obj in objs:
                if obj.__dict__[key] is not None:
                    break
            else:
                return [(False, (), objs)]  # no object has a key (one cheap pass)
        except KeyError:  # an object without the attribute: the split below reads .get()
            pass
        with_pk = [o for o in objs if o.__dict__.get(key) is not None]
        if not with_pk:
            return [(False, (), objs)]
        without_pk = [o for o in objs if o.__dict__.get(key) is None]
        return [(True, (), with_pk), (False, (), without_pk)]
    groups: dict[tuple[bool, tuple[Field, ...]], list[Any]] = {}
    for obj in objs:
        values = obj.__dict__
        defaulted = tuple(
            f for f in db_default_fields if f.generated or values.get(f.attname) is DATABASE_DEFAULT
        )
        groups.setdefault((values.get(key) is not None, defaulted), []).append(obj)
    # Rows with a primary key first, as bulk_create always wrote them.
    ordered = sorted(groups.items(), key=lambda item: not item[0][0])
    return [(has_pk, defaulted, group) for (has_pk, defaulted), group in ordered]


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
                saved = [(obj, field.pre_save(obj, False)) for obj in batch]
                writes.check_write_ranges([(field, value) for _obj, value in saved])
                whens = [
                    When(pk=obj.pk, then=Value(value, output_field=field)) for obj, value in saved
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


def _unique_sets(model: type[Model]) -> list[set[str]]:
    """The column sets ``ON CONFLICT`` can target: unique fields, unique_together, constraints."""
    from dorm.models.constraints import UniqueConstraint

    opts = model._meta
    sets = [{f.name} for f in opts.concrete_fields if f.unique or f.primary_key]
    sets += [set(group) for group in opts.unique_together]
    sets += [
        set(c.fields)
        for c in opts.constraints
        if isinstance(c, UniqueConstraint) and c.condition is None
    ]
    return sets


def upsert(
    qs: QuerySet,
    objs: list[Any],
    unique_fields: Sequence[str] | None,
    update_fields: Sequence[str] | None,
    returning: bool,
    batch_size: int | None,
) -> list[Any]:
    """INSERT ... ON CONFLICT (unique) DO UPDATE, one statement per batch.

    Every argument is checked before any SQL runs. The primary keys (and with
    ``returning=True`` every column) come from the statement's RETURNING rows, matched
    to the objects by their unique key: a conflicting row keeps its stored primary key.
    """
    model = qs.model
    assert model is not None
    opts = model._meta
    if opts.parents:
        from dorm.models.inheritance import check_bulk_create

        check_bulk_create(model)
    if not unique_fields:
        if not objs:
            return []
        raise ValueError(
            f"unique_fields is required for {model.__name__}.objects.upsert(): name the "
            f"column(s) of a unique constraint the conflict is detected on"
        )
    unique = _concrete(model, unique_fields, "upsert(unique_fields=...)")
    names = {f.name for f in unique}
    if names not in _unique_sets(model):
        raise ValueError(
            f"{model.__name__}.objects.upsert(): unique_fields {sorted(names)} is not a unique "
            f"column or unique_together / UniqueConstraint set; ON CONFLICT needs one. Add the "
            f"constraint or name the columns of an existing one"
        )
    if update_fields is None:
        updates = [
            f
            for f in opts.concrete_fields
            if not f.primary_key and not f.generated and f.name not in names
        ]
    else:
        # Many-to-many fields are not columns of this table: skip them, as the default does.
        wanted = [n for n in update_fields if not _is_m2m(model, n)]
        updates = _concrete(model, wanted, "upsert(update_fields=...)")
        if any(f.primary_key for f in updates):
            raise ValueError(
                f"{model.__name__}.objects.upsert(): update_fields cannot contain the primary key"
            )
    if batch_size is not None and batch_size <= 0:
        raise ValueError("upsert(batch_size=...) must be positive")
    if not objs:
        return []
    seen: dict[tuple[Any, ...], int] = {}
    keys: list[tuple[Any, ...]] = []
    for i, obj in enumerate(objs):
        if not isinstance(obj, model):
            raise TypeError(f"{model.__name__}.objects.upsert() got {obj!r}")
        key = tuple(f.to_python(getattr(obj, f.attname)) for f in unique)
        if key in seen:
            # PostgreSQL would fail with "cannot affect row a second time"; SQLite would
            # silently keep the last one. Refuse on both, before any SQL.
            raise ValueError(
                f"{model.__name__}.objects.upsert(): objects #{seen[key]} and #{i} have the same "
                f"unique key ({', '.join(f.name for f in unique)}) = {key!r}; one statement "
                f"cannot write a row twice, merge them first"
            )
        seen[key] = i
        keys.append(key)
    pk = opts.pk
    assert pk is not None
    qs._for_write = True
    using = qs.db
    db = connections[using]
    pk_name = pk.attname
    if pk.has_default():
        for obj in objs:
            if obj.__dict__.get(pk_name) is None:
                obj.__dict__[pk_name] = pk.get_default()
    all_fields = list(opts.concrete_fields)
    back = [pk, *(f for f in unique if not f.primary_key)]
    if returning:
        back += [f for f in all_fields if f not in back]
    key_at = [back.index(f) for f in unique]
    convert = [column_converter(db.ops, f) for f in back]
    # With nothing to update, a no-op SET still makes RETURNING report conflicting rows.
    sets = updates or unique[:1]
    with transaction.atomic(using=using, savepoint=False):
        for has_pk in (True, False):
            group = [i for i, o in enumerate(objs) if (o.pk is not None) is has_pk]
            if not group:
                continue
            fields = all_fields if has_pk else [f for f in all_fields if not f.primary_key]
            rows = writes.insert(
                model,
                [objs[i] for i in group],
                fields,
                db,
                back,
                "update",
                unique,
                sets,
                batch_size,
            )
            if db.supports_returning:
                converted = [
                    tuple(v if c is None else c(v) for c, v in zip(convert, row, strict=True))
                    for row in rows
                ]
            else:
                converted = _reselect(model, using, back, unique, [keys[i] for i in group])
            by_key = {tuple(row[j] for j in key_at): row for row in converted}
            matched = [by_key.get(keys[i]) for i in group]
            if None in matched and len(converted) == len(group):
                matched = list(converted)  # values the key match cannot compare: row order
            for i, row in zip(group, matched, strict=True):
                if row is not None:
                    objs[i].__dict__.update(zip((f.attname for f in back), row, strict=True))
        _mark_saved(objs, using)
        if signals.bulk_created.has_listeners(model):
            signals.bulk_created.send(sender=model, objs=objs, using=using)
    return objs


def _is_m2m(model: type[Model], name: str) -> bool:
    try:
        return bool(model._meta.get_field(name).many_to_many)
    except Exception:
        return False


def _reselect(
    model: type[Model],
    using: str,
    back: Sequence[Field],
    unique: Sequence[Field],
    keys: Sequence[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """Read the written rows back by their full unique key (databases without RETURNING)."""
    from dorm.expressions import Q

    condition = Q()
    for key in keys:
        condition |= Q(**{f.attname: v for f, v in zip(unique, key, strict=True)})
    qs = model._base_manager.using(using).filter(condition)
    return [tuple(row) for row in qs.values_list(*(f.attname for f in back))]
