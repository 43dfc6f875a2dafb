"""What both loaders share: option checks, batch splitting, and reading a batch's answer.

A batch function gets the keys of one batch as a list and answers with either a mapping
keyed by them (a key it leaves out, or maps to None, is missing) or a sequence aligned
with them (None for a missing key). A value that is an exception instance is that key's
error: only the callers of that key see it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, Final

from dorm.contrib.sync_dataloader.exceptions import DataLoaderError

__all__ = ["MISSING", "align", "check_key", "check_options", "describe", "split", "unwrap"]


class _Missing:
    """The marker of a key its batch function did not answer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


def describe(fn: object) -> str:
    """``fn``'s name for messages: ``module.qualname``, or its repr."""
    name = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if isinstance(name, str):
        return f"{module}.{name}" if isinstance(module, str) else name
    return repr(fn)


def check_options(owner: str, batch_fn: object, max_batch_size: object, cache: object) -> None:
    """Raise TypeError / ValueError naming the constructor argument at fault."""
    if not callable(batch_fn):
        raise TypeError(f"{owner}(batch_fn): expected a callable, got {batch_fn!r}")
    if max_batch_size is not None and (
        isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int)
    ):
        raise TypeError(
            f"{owner}(max_batch_size={max_batch_size!r}): expected an int >= 1, or None "
            f"for no limit"
        )
    if isinstance(max_batch_size, int) and max_batch_size < 1:
        raise ValueError(
            f"{owner}(max_batch_size={max_batch_size!r}): expected an int >= 1, or None "
            f"for no limit"
        )
    if not isinstance(cache, bool):
        raise TypeError(f"{owner}(cache={cache!r}): expected True or False")


def check_key(owner: str, key: object) -> None:
    """Raise TypeError unless ``key`` can be a dict key (the loaders deduplicate by hash)."""
    if not isinstance(key, Hashable):
        raise TypeError(
            f"{owner}.load(): key {key!r} ({type(key).__name__}) is not hashable; "
            f"use a hashable key such as an int, a str or a tuple"
        )
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(f"{owner}.load(): key {key!r} is not hashable: {exc}") from None


def split(keys: list[Any], size: int | None) -> Iterator[list[Any]]:
    """``keys`` in batches of at most ``size`` (one batch when size is None)."""
    if size is None or len(keys) <= size:
        yield keys
        return
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def align(owner: str, batch_fn: Callable[..., Any], keys: list[Any], answer: object) -> list[Any]:
    """The value of each of ``keys`` in ``answer``, MISSING where it has none.

    :raises DataLoaderError: ``answer`` is neither a mapping nor a sequence of len(keys).
    """
    if isinstance(answer, Mapping):
        values = [answer.get(key, MISSING) for key in keys]
        return [MISSING if value is None else value for value in values]
    if isinstance(answer, Sequence) and not isinstance(answer, str | bytes | bytearray):
        if len(answer) != len(keys):
            raise DataLoaderError(
                f"{owner}: batch function {describe(batch_fn)} returned {len(answer)} "
                f"values for {len(keys)} keys; return a list aligned with the keys (None "
                f"for a missing one) or a dict keyed by them"
            )
        return [MISSING if value is None else value for value in answer]
    hint = ""
    if hasattr(answer, "model") and hasattr(answer, "filter"):
        hint = " (for a QuerySet, return Model.objects.in_bulk(keys), a dict)"
    raise DataLoaderError(
        f"{owner}: batch function {describe(batch_fn)} returned an object of type "
        f"{type(answer).__qualname__}; expected a dict keyed by the keys or a list aligned "
        f"with them{hint}"
    )


def unwrap(owner: str, key: object, value: object, raise_missing: bool) -> Any:
    """The caller's result for ``key``: the value, None, or the key's exception raised."""
    if value is MISSING:
        if raise_missing:
            raise KeyError(f"{owner}: key {key!r} is not in the answer of its batch function")
        return None
    if isinstance(value, BaseException):
        raise value
    return value
