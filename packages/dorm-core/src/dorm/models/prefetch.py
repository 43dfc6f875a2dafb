"""prefetch_related: one query per relation level, results attached to the instances."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from dorm.expressions import F
from dorm.models.base import LOADED_CACHE, LOADED_FROM

__all__ = ["aprefetch_related_objects", "prefetch_related_objects"]


async def aprefetch_related_objects(instances: Sequence[Any], *lookups: Any) -> None:
    """Async twin of ``prefetch_related_objects()``."""
    from dorm.models.twins import run_sync

    await run_sync(prefetch_related_objects, instances, *lookups)


def prefetch_related_objects(instances: Sequence[Any], *lookups: Any) -> None:
    """Fetch the related objects named by ``lookups`` for all ``instances`` at once."""
    from dorm.models.query import Prefetch

    if not instances:
        return
    done: set[str] = set()
    for lookup in lookups:
        if isinstance(lookup, str):
            lookup = Prefetch(lookup)
        parts = lookup.prefetch_through.split("__")
        objs = list(instances)
        for level, name in enumerate(parts):
            if not objs:
                break
            last = level == len(parts) - 1
            path = "__".join(parts[: level + 1])
            plain = not last or (lookup.queryset is None and lookup.to_attr is None)
            # A level already fetched (under its name or a to_attr) is walked, not refetched:
            # refetching would replace objects that carry the deeper prefetches.
            if path in done and plain:
                objs = _already_fetched(objs, name)
                continue
            queryset = lookup.queryset if last else None
            to_attr = lookup.to_attr if last else None
            objs = _prefetch_level(objs, name, queryset, to_attr)
            done.add("__".join([*parts[:level], to_attr]) if to_attr else path)


def _already_fetched(objs: Sequence[Any], name: str) -> list[Any]:
    found: list[Any] = []
    for obj in objs:
        cache = obj.__dict__.get("_prefetched_objects_cache", {})
        if name in cache:
            found.extend(cache[name])
        elif isinstance(obj.__dict__.get(name), list):  # a Prefetch(..., to_attr=name) list
            found.extend(obj.__dict__[name])
        elif hasattr(obj.__dict__.get(name), "_meta"):  # a forward relation's to_attr
            found.append(obj.__dict__[name])
        elif name in obj._state.fields_cache and obj._state.fields_cache[name] is not None:
            found.append(obj._state.fields_cache[name])
    return found


def _prefetch_level(
    objs: Sequence[Any], name: str, queryset: Any, to_attr: str | None
) -> list[Any]:
    from dorm.models.many_to_many import ManyToManyDescriptor
    from dorm.models.related import (
        ForwardManyToOneDescriptor,
        ReverseManyToOneDescriptor,
        ReverseOneToOneDescriptor,
    )

    model = type(objs[0])
    descriptor = model.__dict__.get(name)
    if descriptor is None:
        for klass in model.__mro__:
            if name in klass.__dict__:
                descriptor = klass.__dict__[name]
                break
    db = objs[0]._state.db
    if isinstance(descriptor, ForwardManyToOneDescriptor):
        return _forward(objs, descriptor.field, queryset, to_attr, db)
    if isinstance(descriptor, ReverseOneToOneDescriptor):
        return _reverse_one(objs, descriptor.rel, queryset, to_attr, db)
    if isinstance(descriptor, ReverseManyToOneDescriptor):
        return _reverse_many(objs, descriptor.rel, queryset, to_attr, db)
    if isinstance(descriptor, ManyToManyDescriptor):
        return _many_to_many(objs, descriptor, queryset, to_attr, db)
    raise AttributeError(
        f"cannot find {name!r} on {model.__name__} objects: {name!r} is not a relation that "
        f"prefetch_related() can follow"
    )


def _base(model: Any, queryset: Any, db: str | None) -> Any:
    qs = queryset if queryset is not None else model._base_manager.all()
    return qs.using(db) if db and queryset is None else qs


def _forward(
    objs: Sequence[Any], field: Any, queryset: Any, to_attr: str | None, db: Any
) -> list[Any]:
    target = field.target_field.attname
    ids = {o.__dict__.get(field.attname) for o in objs} - {None}
    found: dict[Any, Any] = {}
    if ids:
        for rel in _base(field.related_model, queryset, db).filter(**{f"{target}__in": list(ids)}):
            found[getattr(rel, target)] = rel
    for obj in objs:
        value = found.get(obj.__dict__.get(field.attname))
        if to_attr:
            setattr(obj, to_attr, value)
        else:
            obj._state.fields_cache[field.name] = value
    return list(found.values())


def _reverse_one(
    objs: Sequence[Any], rel: Any, queryset: Any, to_attr: str | None, db: Any
) -> list[Any]:
    fk = rel.field
    target = fk.target_field.attname
    ids = {getattr(o, target) for o in objs} - {None}
    found: dict[Any, Any] = {}
    if ids:
        for sub in _base(fk.model, queryset, db).filter(**{f"{fk.attname}__in": list(ids)}):
            found[sub.__dict__[fk.attname]] = sub
    accessor = rel.get_accessor_name()
    for obj in objs:
        value = found.get(getattr(obj, target))
        if value is not None:
            value._state.fields_cache[fk.name] = obj
        if to_attr:
            setattr(obj, to_attr, value)
        else:
            obj._state.fields_cache[accessor] = value
    return list(found.values())


def _reverse_many(
    objs: Sequence[Any], rel: Any, queryset: Any, to_attr: str | None, db: Any
) -> list[Any]:
    fk = rel.field
    target = fk.target_field.attname
    keys = [getattr(o, target) for o in objs]
    by_value = dict(zip(keys, objs, strict=True))
    groups: dict[Any, list[Any]] = defaultdict(list)
    fetched: list[Any] = []
    ids = [v for v in by_value if v is not None]
    if ids:
        subs = _base(fk.model, queryset, db).filter(**{f"{fk.name}__in": ids})
        name = fk.name
        attname = fk.attname
        # One (relation name, owner) pair per owner, shared by its rows: a row loaded just
        # now has no state yet, and its state takes the pair over when (if ever) it is made.
        pairs = {key: (name, owner) for key, owner in by_value.items()}
        fetched = list(subs)
        for sub in fetched:
            values = sub.__dict__
            key = values[attname]
            pair = pairs.get(key)
            if pair is not None:
                if LOADED_FROM not in values:
                    sub._state.fields_cache[name] = pair[1]
                else:
                    pending = values.get(LOADED_CACHE)
                    if pending is None:
                        values[LOADED_CACHE] = pair
                    else:
                        values[LOADED_CACHE] = {**_as_cache(pending), name: pair[1]}
            groups[key].append(sub)
    _assign_many(objs, keys, rel.get_accessor_name(), groups, to_attr)
    return fetched


def _as_cache(pending: Any) -> dict[str, Any]:
    """A pending relation cache (a shared ``(name, object)`` pair, or a dict) as a dict."""
    return {pending[0]: pending[1]} if type(pending) is tuple else dict(pending)


#: The annotation that carries, on each row of a many-to-many prefetch, its owner's key.
_OWNER = "_dorm_prefetch_owner"


def _many_to_many(
    objs: Sequence[Any], descriptor: Any, queryset: Any, to_attr: str | None, db: Any
) -> list[Any]:
    from dorm.models.iterables import KeyedModelIterable, ModelIterable
    from dorm.models.query import QuerySet

    field = descriptor.field
    if descriptor.reverse:
        related_model, query_name = field.model, field.name
        cache_name = field.remote_field.get_accessor_name()
    else:
        related_model, query_name = field.related_model, field.remote_field.query_name
        cache_name = field.name
    pk_name = type(objs[0])._meta.pk.attname
    keys = [o.__dict__.get(pk_name) for o in objs]
    ids = [k for k in keys if k is not None]
    groups: dict[Any, list[Any]] = defaultdict(list)
    fetched: list[Any] = []
    if ids:
        qs = _base(related_model, queryset, db).filter(**{f"{query_name}__in": ids})
        qs = qs.annotate(**{_OWNER: F(query_name)})
        cls = type(qs)
        if (
            qs._iterable_class is ModelIterable
            and cls.__iter__ is QuerySet.__iter__
            and cls._fetch_all is QuerySet._fetch_all
        ):
            # The owner keys come apart from the rows' objects: none is set on them to be
            # popped again. The rest is what iterating the queryset does.
            fetched, owners = KeyedModelIterable(qs).fetch_keyed(_OWNER)
            if qs._prefetch_related_lookups:
                prefetch_related_objects(fetched, *qs._prefetch_related_lookups)
        else:
            fetched = list(qs)
            owners = [sub.__dict__.pop(_OWNER) for sub in fetched]
        for sub, owner in zip(fetched, owners, strict=True):
            groups[owner].append(sub)
    _assign_many(objs, keys, cache_name, groups, to_attr)
    return fetched


def _assign_many(
    objs: Sequence[Any],
    keys: list[Any],
    cache_name: str,
    groups: dict[Any, list[Any]],
    to_attr: str | None,
) -> None:
    """Give each object (whose key is at the same index of ``keys``) its group: the
    group's list itself, or a copy when another object has the same key."""
    shared = len(set(keys)) != len(keys)
    for obj, key in zip(objs, keys, strict=True):
        items = groups.get(key)
        if items is None:
            items = []
        elif shared:
            items = list(items)
        if to_attr:
            setattr(obj, to_attr, items)
            continue
        values = obj.__dict__
        cache = values.get("_prefetched_objects_cache")
        if cache is None:
            values["_prefetched_objects_cache"] = {cache_name: items}
        else:
            cache[cache_name] = items
