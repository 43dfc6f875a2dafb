"""``@requires(perm, scope=None)`` and ``@requires_any(*perms)``.

The user is the decorated function's argument named ``user`` or, without one, its first
argument. ``scope="article"`` names the argument holding the object: a grant on that very
object satisfies the check as well as a global one. Signatures are read once, at decoration
time, so a misspelt scope fails when the module loads, not at the first request.
Coroutine functions get an async wrapper that asks ``source.ahas_perm``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from dorm.contrib.permissions.exceptions import PermissionDenied
from dorm.contrib.permissions.sources import PermissionSource, _check_perm, get_permission_source

__all__ = ["requires", "requires_any"]

F = TypeVar("F", bound=Callable[..., Any])


def requires(
    perm: str, scope: str | None = None, *, source: PermissionSource | None = None
) -> Callable[[F], F]:
    """Let the call through only if the user holds ``perm`` (on the ``scope`` argument).

    :raises PermissionDenied: at call time, naming the permission, the user and the object.
    :raises TypeError: at decoration time, when ``scope`` is not a parameter.
    """
    return _guard((_check_perm(perm),), scope, source)


def requires_any(*perms: str, source: PermissionSource | None = None) -> Callable[[F], F]:
    """Let the call through if the user holds at least one of ``perms`` (globally)."""
    if not perms:
        raise ValueError("requires_any() needs at least one permission")
    return _guard(tuple(_check_perm(p) for p in perms), None, source)


def _guard(
    perms: tuple[str, ...], scope: str | None, source: PermissionSource | None
) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        params = list(signature.parameters)
        if not params:
            raise TypeError(f"{func.__qualname__}: a guarded function needs a user argument")
        user_arg = "user" if "user" in params else params[0]
        if scope is not None and scope not in params:
            raise TypeError(
                f"{func.__qualname__}: scope={scope!r} is not one of its parameters "
                f"({', '.join(params)})"
            )

        def subject(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
            bound = signature.bind(*args, **kwargs).arguments
            obj = bound.get(scope) if scope is not None else None
            return bound.get(user_arg), obj

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                user, obj = subject(args, kwargs)
                checker = source or get_permission_source()
                for perm in perms:
                    if await checker.ahas_perm(user, perm, obj):
                        return await func(*args, **kwargs)
                raise PermissionDenied(perms, user, obj)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user, obj = subject(args, kwargs)
            checker = source or get_permission_source()
            if any(checker.has_perm(user, perm, obj) for perm in perms):
                return func(*args, **kwargs)
            raise PermissionDenied(perms, user, obj)

        return wrapper  # type: ignore[return-value]

    return decorate
