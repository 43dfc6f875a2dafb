"""Saving, deleting, reloading and uniqueness checks of single model instances."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dorm import signals, transaction
from dorm.db.connection import connections
from dorm.db.router import router
from dorm.exceptions import FieldError, ValidationError
from dorm.models.fields import DATABASE_DEFAULT
from dorm.sql import writes

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.fields import Field

__all__ = ["delete", "refresh", "save", "validate_unique"]


def _prepare_related(obj: Model) -> None:
    """A foreign key's cached object decides its ``<name>_id`` (and must be saved)."""
    relations = obj._meta.concrete_relations
    if not relations:
        return
    cache = obj._state.fields_cache
    if not cache:
        return
    for field in relations:
        if field.name not in cache:
            continue
        related = cache[field.name]
        if related is None:
            continue
        if related.pk is None:
            raise ValueError(
                f"save() of {type(obj).__name__} prohibited: the related object "
                f"{field.name!r} ({related!r}) is unsaved; save it first"
            )
        target = getattr(related, field.target_field.attname)  # type: ignore[attr-defined]
        if obj.__dict__.get(field.attname) != target:
            obj.__dict__[field.attname] = target


def save(
    obj: Model,
    force_insert: bool,
    force_update: bool,
    using: str | None,
    update_fields: Iterable[str] | None,
) -> None:
    cls = type(obj)
    opts = cls._meta
    if force_insert and (force_update or update_fields):
        raise ValueError("save(): force_insert cannot be combined with force_update/update_fields")
    if update_fields is not None:
        names = frozenset(update_fields)
        if not names:
            return
        valid = {f.name for f in opts.concrete_fields} | {f.attname for f in opts.concrete_fields}
        unknown = sorted(names - valid)
        if unknown:
            raise ValueError(
                f"{cls.__name__}.save(update_fields=...): unknown or non-concrete field(s) "
                f"{', '.join(map(repr, unknown))}; fields are: "
                f"{', '.join(f.name for f in opts.concrete_fields)}"
            )
    else:
        names = None
    _prepare_related(obj)
    using = using or router.db_for_write(cls, instance=obj)
    if names is None and not force_insert and not obj._state.adding and using == obj._state.db:
        # An instance loaded with only()/defer() saves just its loaded columns, as in Django:
        # the deferred ones were never read, so writing them would store NULLs.
        loaded = obj.__dict__
        concrete = [f for f in opts.concrete_fields if not f.primary_key]
        if any(f.attname not in loaded for f in concrete):
            names = frozenset(f.name for f in concrete if f.attname in loaded)
            if not names:
                return
    if signals.pre_save.has_listeners(cls):
        signals.pre_save.send(sender=cls, instance=obj, raw=False, using=using, update_fields=names)
    db = connections[using]
    pk_field = opts.pk
    assert pk_field is not None
    try:
        if opts.parents:
            created = _save_inherited(obj, db, using, force_insert, force_update, names)
        else:
            created = _save_table(obj, db, using, force_insert, force_update, names)
    except BaseException:
        transaction._mark_rollback(using)  # inside atomic(): the block is doomed
        raise
    obj._state.db = using
    obj._state.adding = False
    if signals.post_save.has_listeners(cls):
        signals.post_save.send(
            sender=cls,
            instance=obj,
            created=created,
            raw=False,
            using=using,
            update_fields=names,
        )


def _save_inherited(
    obj: Model,
    db: Any,
    using: str,
    force_insert: bool,
    force_update: bool,
    update_fields: frozenset[str] | None,
) -> bool:
    """Save a multi-table child: its parents' rows (the root first), then its own, in one
    transaction. ``force_insert`` applies to the child's table, as in Django; a parent row
    inserted now means the child's row is new too."""
    from dorm.models.inheritance import save_parents

    cls = type(obj)._meta.concrete_model
    with transaction.atomic(using=using, savepoint=False):
        inserted = save_parents(cls, obj, db, using, force_update, update_fields, _save_table)
        return _save_table(
            obj, db, using, force_insert or inserted, force_update, update_fields, cls
        )


def _save_table(
    obj: Model,
    db: Any,
    using: str,
    force_insert: bool,
    force_update: bool,
    update_fields: frozenset[str] | None,
    cls: type[Model] | None = None,
) -> bool:
    """UPDATE if the row exists, else INSERT, in the table of ``cls`` (default: the
    object's own model); return True when a row was inserted."""
    table_only = cls is not None  # a table of a multi-table chain: only its own columns
    if cls is None:
        cls = type(obj)
    opts = cls._meta
    pk_field = opts.pk
    assert pk_field is not None
    pk_val = obj.__dict__.get(pk_field.attname)
    if pk_val is None:
        default = pk_field.get_default() if pk_field.has_default() else None
        if default is not None:
            obj.pk = pk_val = default
    # A new object whose pk came from a default is inserted directly (one round trip).
    skip_update = force_insert or (obj._state.adding and pk_field.has_default())
    if pk_val is not None and not skip_update:
        non_pk = [f for f in opts.local_concrete_fields if not f.primary_key]
        if update_fields is not None:
            non_pk = [f for f in non_pk if f.name in update_fields or f.attname in update_fields]
            if table_only and not non_pk:
                return False  # update_fields names nothing of this table
        if opts.db_default_fields:
            # Generated columns are never written; a db_default value the database has
            # not given yet is not written over the row's.
            non_pk = [f for f in non_pk if not f.generated]
            values = [(f, f.pre_save(obj, False)) for f in non_pk]
            values = [(f, v) for f, v in values if v is not DATABASE_DEFAULT]
        else:
            values = [(f, f.pre_save(obj, False)) for f in non_pk]
        qs = cls._base_manager.using(using).filter(pk=pk_val)
        rows = qs._update(values) if values else int(qs.exists())
        if rows:
            for field in opts.db_default_fields:
                if field.generated:
                    obj.__dict__.pop(field.attname, None)  # recomputed: reload on access
            return False
        if force_update or update_fields is not None:
            from dorm.exceptions import DatabaseError

            raise DatabaseError(
                f"{cls.__name__}.save(): no row with pk={pk_val!r} was updated "
                f"({'force_update' if force_update else 'update_fields'} forbids an insert)"
            )
    elif force_update:
        raise ValueError(f"{cls.__name__}.save(force_update=True) needs a primary key value")
    returning: tuple[Field, ...] = ()
    if obj.__dict__.get(pk_field.attname) is None:
        fields, returning = opts.insert_fields, (pk_field,)
    else:
        fields = opts.local_concrete_fields
    defaulted = opts.db_default_fields and tuple(
        f
        for f in opts.db_default_fields
        if f.generated or obj.__dict__.get(f.attname) is DATABASE_DEFAULT
    )
    if defaulted:
        # The database fills these columns: leave them out and read them back.
        fields = [f for f in fields if f not in defaulted]
        returning = (*returning, *defaulted)
    if fields:
        rows = writes.insert_one(cls, obj, fields, db, returning)
    else:
        rows = writes.insert(cls, [obj], fields, db, returning_fields=returning)
    if returning:
        if rows:
            if defaulted:
                store_returned(db, obj, returning, rows[0])
            else:  # the hot path: only the new primary key
                obj.__dict__[pk_field.attname] = pk_field.to_python(rows[0][0])
        else:  # a backend without RETURNING
            obj.__dict__[pk_field.attname] = db.fetchone("SELECT last_insert_rowid()")[0]
            if defaulted:
                obj.refresh_from_db(fields=[f.attname for f in defaulted])
    return True


def returned_converters(db: Any, fields: Sequence[Field]) -> list[Any]:
    """The ``db value -> Python`` function of each RETURNING column (None: as it comes)."""
    from dorm.sql.compiler import column_converter

    return [column_converter(db.ops, field) for field in fields]


def store_returned(
    db: Any,
    obj: Model,
    fields: Sequence[Field],
    row: Sequence[Any],
    converters: Sequence[Any] | None = None,
) -> None:
    """Set ``obj``'s ``fields`` from a RETURNING row, converted as a query would."""
    if converters is None:
        converters = returned_converters(db, fields)
    values = obj.__dict__
    for field, value, convert in zip(fields, row, converters, strict=True):
        value = value if convert is None else convert(value)
        values[field.attname] = field.to_python(value) if field.primary_key else value


def delete(obj: Model, using: str | None) -> tuple[int, dict[str, int]]:
    from dorm.models.deletion import Collector

    if obj.pk is None:
        raise ValueError(
            f"{type(obj).__name__} object can't be deleted because its primary key is None"
        )
    using = using or router.db_for_write(type(obj), instance=obj)
    collector = Collector(using, origin=obj)
    collector.collect([obj])
    return collector.delete()


def refresh(obj: Model, using: str | None, fields: Iterable[str] | None) -> None:
    """Reload ``obj``'s fields (or only ``fields``) from the database, as Django does: a
    cached related object whose foreign key changed is dropped, reverse relation caches
    are dropped, and so are prefetched results (all of them, or those named in
    ``fields``)."""
    cls = type(obj)
    opts = cls._meta
    if obj.pk is None:
        raise ValueError(f"refresh_from_db() of an unsaved {cls.__name__}")
    qs = cls._base_manager.using(using or obj._state.db or router.db_for_read(cls, instance=obj))
    prefetched = obj.__dict__.get("_prefetched_objects_cache")
    if fields is not None:
        fields = list(fields)
        for name in list(fields):
            if prefetched is not None and name in prefetched:
                del prefetched[name]  # refresh_from_db(fields=["books"]) re-reads on use
                fields.remove(name)
        if not fields:
            return
        for name in fields:
            try:
                opts.get_field(name)
            except Exception:
                raise FieldError(
                    f"{cls.__name__}.refresh_from_db(fields=...): unknown field {name!r}"
                ) from None
        qs = qs.only(*fields)
    try:
        fresh = qs.get(pk=obj.pk)
    except cls.DoesNotExist:
        raise cls.DoesNotExist(
            f"{cls.__name__} with pk={obj.pk!r} no longer exists in the database"
        ) from None
    loaded = fresh.__dict__
    cache = obj._state.fields_cache
    forward = set()
    for field in opts.concrete_fields:
        if field.is_relation:
            forward.add(field.name)
        if field.attname not in loaded:
            continue
        if fields is not None and field.name not in fields and field.attname not in fields:
            continue
        obj.__dict__[field.attname] = loaded[field.attname]
        if field.is_relation and field.name in cache:
            cached = cache[field.name]  # None: the relation was known to be empty
            target = getattr(field, "target_field", None)
            held = (
                None
                if cached is None
                else getattr(cached, target.attname)
                if target is not None
                else cached.pk
            )
            if held != loaded[field.attname]:
                del cache[field.name]
    for name in [n for n in cache if n not in forward]:
        del cache[name]  # reverse relations (one-to-one accessors, prefetch back-references)
    obj._state.db = fresh._state.db
    if fields is None:
        obj.__dict__.pop("_prefetched_objects_cache", None)


def validate_unique(obj: Model, exclude: set[str]) -> None:
    cls = type(obj)
    opts = cls._meta
    checks: list[tuple[str, ...]] = [
        (f.name,) for f in opts.concrete_fields if f.unique and f.name not in exclude
    ]
    # Meta.constraints are checked by Model.validate_constraints(), as in Django 4.1+.
    checks.extend(g for g in opts.unique_together if not set(g) & exclude)
    errors: dict[str, list[str]] = {}
    for group in checks:
        lookup: dict[str, Any] = {}
        skip = False
        for name in group:
            field = opts.get_field(name)
            value = obj.__dict__.get(field.attname)
            if value is None or (field.primary_key and obj._state.adding and value is None):
                skip = True
                break
            lookup[field.attname if field.is_relation else field.name] = value
        if skip:
            continue
        owner = cls
        if opts.parents:
            # A parent's unique field is unique among all the parent's rows (as in Django).
            owners = {opts.get_field(name).model for name in group}
            if len(owners) == 1:
                owner = owners.pop()
        qs = owner._default_manager.filter(**lookup)
        if not obj._state.adding and obj.pk is not None:
            qs = qs.exclude(pk=obj.pk)
        if qs.exists():
            key = group[0] if len(group) == 1 else "__all__"
            errors.setdefault(key, []).append(
                f"{cls.__name__} with this {' and '.join(group)} already exists"
            )
    if errors:
        raise ValidationError(errors)
