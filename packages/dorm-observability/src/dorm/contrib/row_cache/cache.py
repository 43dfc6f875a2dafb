"""``RowCache(Model, maxsize=...)``: a per-model LRU of rows by primary key.

What is cached: the concrete column values of rows read by ``get(pk)`` / ``aget(pk)``;
every call builds a fresh instance from them, so callers cannot change the cached row.

Why an entry can be trusted: every write path that dorm reports drops what it touches
through the lifecycle hooks (``save``, ``delete`` and cascades, ``bulk_create`` and
``upsert``, ``bulk_update``, ``QuerySet.update``, ``QuerySet.delete``). A write inside
``atomic()`` drops the entry at once and again when the transaction commits, so a reader
that fetched the old row in between cannot keep it; a read that an invalidation overtook
while it was running is not stored. Inside ``atomic()`` the cache is bypassed (a
transaction must see its own writes, and its rows are not committed yet).

What bypasses it: raw SQL and other processes' writes, which dorm does not see.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Generic, NamedTuple, TypeVar

from dorm import plugins

__all__ = ["CacheInfo", "RowCache"]

M = TypeVar("M")


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    invalidations: int
    size: int
    maxsize: int


class RowCache(Generic[M]):
    """An LRU of ``model`` rows keyed by primary key; thread-safe.

    :param using: the alias rows are read from (writes on other aliases are ignored).
    """

    def __init__(self, model: type[M], maxsize: int = 1024, using: str = "default") -> None:
        meta = getattr(model, "_meta", None)
        if not isinstance(model, type) or meta is None or getattr(meta, "abstract", False):
            raise TypeError(f"RowCache: expected a concrete dorm model class, got {model!r}")
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(
                f"RowCache({model.__name__}): maxsize must be an int >= 1, not {maxsize!r}"
            )
        if not isinstance(using, str) or not using:
            raise ValueError(
                f"RowCache({model.__name__}): using must be an alias name, not {using!r}"
            )
        self.model = model
        self.maxsize = maxsize
        self.using = using
        self._attnames = tuple(f.attname for f in meta.local_fields)
        self._pk_field = meta.pk
        self._rows: OrderedDict[Any, tuple[Any, ...]] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by every invalidation: a read that saw another value at its start is
        # not stored (it may hold the row as it was before the write).
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        _track(self)

    def __repr__(self) -> str:
        return f"<RowCache {self.model.__name__} {len(self._rows)}/{self.maxsize}>"

    def __len__(self) -> int:
        return len(self._rows)

    def _key(self, pk: Any) -> Any:
        try:
            return self._pk_field.to_python(pk)
        except Exception as exc:
            raise ValueError(
                f"RowCache({self.model.__name__}).get: bad primary key {pk!r}: {exc}"
            ) from exc

    def _in_transaction(self) -> bool:
        from dorm.transaction import _state

        return bool(_state(self.using).blocks)

    def _lookup(self, key: Any) -> tuple[Any, int] | None:
        """``(instance, -1)`` on a hit, ``(None, generation)`` on a miss."""
        with self._lock:
            values = self._rows.get(key)
            if values is not None:
                self._rows.move_to_end(key)
                self.hits += 1
                return self._build(values), -1
            self.misses += 1
            return None, self._generation

    def _build(self, values: tuple[Any, ...]) -> Any:
        return self.model.from_db(self.using, self._attnames, values)  # type: ignore[attr-defined]

    def _store(self, key: Any, obj: Any, generation: int) -> None:
        values = tuple(obj.__dict__.get(a) for a in self._attnames)
        with self._lock:
            if generation != self._generation:
                return
            self._rows[key] = values
            self._rows.move_to_end(key)
            while len(self._rows) > self.maxsize:
                self._rows.popitem(last=False)

    def get(self, pk: Any) -> M:
        """The row with primary key ``pk``: from the cache, else read and remembered.

        :raises Model.DoesNotExist: no such row (misses are not cached).
        """
        key = self._key(pk)
        if self._in_transaction():
            return self.model.objects.using(self.using).get(pk=key)  # type: ignore[attr-defined,no-any-return]
        found = self._lookup(key)
        assert found is not None
        obj, generation = found
        if obj is not None:
            return obj  # type: ignore[no-any-return]
        obj = self.model.objects.using(self.using).get(pk=key)  # type: ignore[attr-defined]
        self._store(key, obj, generation)
        return obj  # type: ignore[no-any-return]

    async def aget(self, pk: Any) -> M:
        """``get`` for coroutines: a hit does no I/O, a miss awaits ``aget``."""
        key = self._key(pk)
        if self._in_transaction():
            return await self.model.objects.using(self.using).aget(pk=key)  # type: ignore[attr-defined,no-any-return]
        found = self._lookup(key)
        assert found is not None
        obj, generation = found
        if obj is not None:
            return obj  # type: ignore[no-any-return]
        obj = await self.model.objects.using(self.using).aget(pk=key)  # type: ignore[attr-defined]
        self._store(key, obj, generation)
        return obj  # type: ignore[no-any-return]

    def invalidate(self, pk: Any = None) -> None:
        """Drop the row ``pk``, or every row when ``pk`` is None."""
        with self._lock:
            self._generation += 1
            self.invalidations += 1
            if pk is None:
                self._rows.clear()
            else:
                try:
                    key = self._pk_field.to_python(pk)
                except Exception:
                    self._rows.clear()
                    return
                self._rows.pop(key, None)

    def clear(self) -> None:
        """Drop every row (the counters stay)."""
        self.invalidate(None)

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(
                self.hits, self.misses, self.invalidations, len(self._rows), self.maxsize
            )

    def close(self) -> None:
        """Stop following writes and drop every row."""
        _untrack(self)
        with self._lock:
            self._rows.clear()


# -- invalidation through the lifecycle hooks ------------------------------------------------

_lock = threading.Lock()
# Model label -> the live caches of that model.
_caches: dict[str, weakref.WeakSet[RowCache[Any]]] = {}


class _Invalidator:
    """The hook object registered while at least one RowCache exists."""

    @plugins.hookimpl
    def dorm_post_save(self, sender: type, instance: Any, using: str) -> None:
        _drop(sender, using, [instance.pk])

    @plugins.hookimpl
    def dorm_post_delete(self, sender: type, instance: Any, using: str) -> None:
        _drop(sender, using, [instance.pk])

    @plugins.hookimpl
    def dorm_bulk_created(self, sender: type, objs: Any, using: str) -> None:
        _drop(sender, using, [obj.pk for obj in objs])

    @plugins.hookimpl
    def dorm_bulk_updated(self, sender: type, objs: Any, using: str) -> None:
        _drop(sender, using, [obj.pk for obj in objs])

    @plugins.hookimpl
    def dorm_queryset_updated(self, sender: type, using: str) -> None:
        # The filter may no longer match the updated rows: drop the model's rows.
        _drop(sender, using, None)

    @plugins.hookimpl
    def dorm_queryset_deleted(self, sender: type, deleted: dict[str, int], using: str) -> None:
        _drop(sender, using, None)
        for label in deleted:
            for cache in list(_caches.get(label, ())):
                _drop_in(cache, using, None)


_invalidator = _Invalidator()


def _track(cache: RowCache[Any]) -> None:
    with _lock:
        _caches.setdefault(cache.model._meta.label, weakref.WeakSet()).add(cache)
        if not plugins.get_plugin_manager().is_registered(_invalidator):
            plugins.register(_invalidator, name="observability.row_cache")


def _untrack(cache: RowCache[Any]) -> None:
    with _lock:
        label = cache.model._meta.label
        found = _caches.get(label)
        if found is not None:
            found.discard(cache)
            if not found:
                del _caches[label]
        if not any(_caches.values()) and plugins.get_plugin_manager().is_registered(_invalidator):
            plugins.unregister(_invalidator)


def _drop(sender: type, using: str, pks: list[Any] | None) -> None:
    found = _caches.get(sender._meta.label)  # type: ignore[attr-defined]
    if not found:
        return
    if pks is not None and any(pk is None for pk in pks):
        pks = None  # rows written without their keys known (some bulk paths)
    for cache in list(found):
        _drop_in(cache, using, pks)


def _drop_in(cache: RowCache[Any], using: str, pks: list[Any] | None) -> None:
    if cache.using != using:
        return

    def drop() -> None:
        if pks is None:
            cache.invalidate(None)
        else:
            for pk in pks:
                cache.invalidate(pk)

    drop()
    from dorm.transaction import _state

    if _state(using).blocks:
        # Again at commit: a reader may have fetched the old row after the first drop.
        from dorm.transaction import on_commit

        on_commit(drop, using=using)
