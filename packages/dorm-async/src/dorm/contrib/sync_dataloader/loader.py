"""``SyncDataLoader``: queue keys while walking objects, fetch them in one call, read them back."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from dorm.contrib.sync_dataloader.batches import (
    MISSING,
    align,
    check_key,
    check_options,
    split,
    unwrap,
)

__all__ = ["SyncDataLoader"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_OWNER = "SyncDataLoader"
_ABSENT: Any = object()  # not loaded (MISSING is a loaded "no value")


class SyncDataLoader(Generic[K, V]):
    """Collect keys with ``load()``, fetch them with one ``batch_fn`` call per ``flush()``.

    ``load(key)`` returns the key's value once a ``flush()`` has loaded it; until then it
    queues the key and returns None. ``flush()`` calls ``batch_fn`` with the queued keys,
    deduplicated, in first-seen order, at most ``max_batch_size`` per call. ``batch_fn``
    returns a dict keyed by the keys or a list aligned with them; a key it does not answer
    (or answers with None) loads as None, or makes ``load()`` raise KeyError when
    ``raise_missing=True``. A value that is an exception instance is raised by ``load()``
    of that key only. With ``cache=False`` each ``flush()`` forgets what the previous one
    loaded.

    A loader is meant for one unit of work (a request, a job) in one thread: make a new
    one per request, so that no value outlives the request that read it.
    """

    def __init__(
        self,
        batch_fn: Callable[[list[K]], Mapping[K, V | None] | Sequence[V | None]],
        max_batch_size: int | None = None,
        cache: bool = True,
        *,
        raise_missing: bool = False,
    ) -> None:
        check_options(_OWNER, batch_fn, max_batch_size, cache)
        self.batch_fn = batch_fn
        self.max_batch_size = max_batch_size
        self.cache = cache
        self.raise_missing = bool(raise_missing)
        self._values: dict[K, Any] = {}
        self._queued: dict[K, None] = {}  # an ordered set: first-seen order

    def __repr__(self) -> str:
        return (
            f"<SyncDataLoader {len(self._values)} loaded, {len(self._queued)} queued, "
            f"max_batch_size={self.max_batch_size}, cache={self.cache}>"
        )

    def load(self, key: K) -> V | None:
        """Return ``key``'s value if a flush loaded it; else queue it and return None.

        :raises KeyError: the key's batch did not answer it and ``raise_missing`` is set.
        """
        try:
            value = self._values.get(key, _ABSENT)
        except TypeError:
            check_key(_OWNER, key)
            raise
        if value is _ABSENT:
            self._queued[key] = None
            return None
        result: V | None = unwrap(_OWNER, key, value, self.raise_missing)
        return result

    def flush(self) -> None:
        """Fetch every queued key: one ``batch_fn`` call per ``max_batch_size`` keys.

        An exception of ``batch_fn`` propagates here; the keys of that batch, and of the
        batches after it, stay queued and unloaded (the next ``flush()`` tries them again),
        while batches before it keep what they loaded.

        :raises DataLoaderError: ``batch_fn`` answered with something else than a dict or
            a list of one value per key.
        """
        if not self.cache:
            self._values.clear()
        if not self._queued:
            return
        for keys in split(list(self._queued), self.max_batch_size):
            answer = self.batch_fn(keys)
            values = align(_OWNER, self.batch_fn, keys, answer)
            for key, value in zip(keys, values, strict=True):
                self._values[key] = value
                del self._queued[key]

    def clear(self, key: K) -> None:
        """Forget ``key``'s value (and drop it from the queue): the next load fetches it."""
        self._values.pop(key, None)
        self._queued.pop(key, None)

    def clear_all(self) -> None:
        """Forget every value and empty the queue."""
        self._values.clear()
        self._queued.clear()

    def prime(self, key: K, value: V | BaseException | None) -> None:
        """Store ``value`` for ``key`` without a fetch, unless the key is already loaded.

        ``clear(key)`` first to replace a loaded value. None primes the key as missing; an
        exception instance makes ``load(key)`` raise it.
        """
        check_key(_OWNER, key)
        if key in self._values:
            return
        self._values[key] = MISSING if value is None else value
        self._queued.pop(key, None)
