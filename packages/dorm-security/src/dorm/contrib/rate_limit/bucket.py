"""``TokenBucket`` and the ``@rate_limited`` decorator."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

from dorm.contrib.rate_limit.exceptions import RateLimited
from dorm.contrib.rate_limit.stores import BucketStore, Decision, MemoryStore

__all__ = ["TokenBucket", "rate_limited"]

F = TypeVar("F", bound=Callable[..., Any])


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(value)


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate_per_second``; one bucket per key.

    ``store`` keeps the levels: a ``MemoryStore`` (default; one process) or a
    ``PostgresStore`` (shared by every process on the database). ``name`` separates the
    buckets of several limits kept in one store.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: float,
        *,
        store: BucketStore | None = None,
        name: str = "default",
    ) -> None:
        self.rate = _number("rate_per_second", rate_per_second)
        self.burst = _number("burst", burst)
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        self.store: BucketStore = store if store is not None else MemoryStore()
        self.name = name

    def __repr__(self) -> str:
        return f"<TokenBucket {self.name!r} rate={self.rate}/s burst={self.burst}>"

    def _args(self, key: Any, cost: float) -> tuple[str, float]:
        cost = _number("cost", cost)
        if cost > self.burst:
            raise ValueError(f"cost {cost} exceeds the bucket's burst {self.burst}: never allowed")
        return f"{self.name}:{key}", cost

    def take(self, key: Any = "", cost: float = 1) -> Decision:
        """Take ``cost`` tokens from ``key``'s bucket if it holds them; say what happened."""
        full_key, cost = self._args(key, cost)
        return self.store.take(full_key, self.rate, self.burst, cost)

    async def atake(self, key: Any = "", cost: float = 1) -> Decision:
        """``take`` without blocking the event loop."""
        full_key, cost = self._args(key, cost)
        return await self.store.atake(full_key, self.rate, self.burst, cost)


def rate_limited(
    bucket: TokenBucket, key: Callable[..., Any] | None = None, cost: float = 1
) -> Callable[[F], F]:
    """Take ``cost`` tokens before each call; ``key(*args, **kwargs)`` picks the bucket
    (one shared bucket without it). Coroutine functions use ``bucket.atake``.

    :raises RateLimited: the bucket is empty; ``retry_after`` says for how long.
    """
    if not isinstance(bucket, TokenBucket):
        raise TypeError(f"rate_limited() needs a TokenBucket, got {type(bucket).__name__}")
    if key is not None and not callable(key):
        raise TypeError(f"key must be a callable taking the function's arguments, got {key!r}")

    def decorate(func: F) -> F:
        def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            return "" if key is None else str(key(*args, **kwargs))

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                k = key_of(args, kwargs)
                decision = await bucket.atake(k, cost)
                if not decision.allowed:
                    raise RateLimited(bucket.name, k, decision.retry_after)
                return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = key_of(args, kwargs)
            decision = bucket.take(k, cost)
            if not decision.allowed:
                raise RateLimited(bucket.name, k, decision.retry_after)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
