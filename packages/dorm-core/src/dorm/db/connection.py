"""Connections by alias: ``get_connection(alias)``, ``close_all()``, ``reset_connections()``."""

from __future__ import annotations

import threading
import time
from asyncio import _get_running_loop
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dorm import plugins
from dorm.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper

__all__ = [
    "DEFAULT_DB_ALIAS",
    "ConnectionHandler",
    "close_all",
    "connections",
    "get_connection",
    "reset_connections",
    "warmup_pool",
]

DEFAULT_DB_ALIAS = "default"


class ConnectionHandler:
    """Creates one backend wrapper per configured alias, on first use."""

    def __init__(self) -> None:
        self._wrappers: dict[str, BaseDatabaseWrapper] = {}
        self._lock = threading.Lock()

    def __getitem__(self, alias: str) -> BaseDatabaseWrapper:
        wrapper = self._wrappers.get(alias)
        if wrapper is not None:
            return wrapper
        with self._lock:
            wrapper = self._wrappers.get(alias)
            if wrapper is None:
                wrapper = self._wrappers[alias] = self._create(alias)
        return wrapper

    def _create(self, alias: str) -> BaseDatabaseWrapper:
        from dorm.conf import settings

        databases = settings.DATABASES
        if alias not in databases:
            if not databases:
                raise ImproperlyConfigured(
                    "DATABASES is empty: call dorm.configure(DATABASES={'default': "
                    "{'ENGINE': 'sqlite', 'NAME': 'app.db'}}) or add a settings.py"
                )
            raise ImproperlyConfigured(
                f"database alias {alias!r} is not in DATABASES (known: "
                f"{', '.join(sorted(databases))})"
            )
        config = databases[alias]
        vendor = config["ENGINE"]
        backend = plugins.get_plugin_manager().hook.dorm_backend_for(vendor=vendor)
        if backend is None:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}]['ENGINE'] = {vendor!r} is not a known backend; core "
                f"has 'sqlite' and 'postgresql', plugins add others through dorm_backend_for"
            )
        wrapper: BaseDatabaseWrapper = backend(alias, config)
        return wrapper

    def __iter__(self) -> Iterator[str]:
        from dorm.conf import settings

        return iter(settings.DATABASES)

    def all(self) -> list[BaseDatabaseWrapper]:
        return [self[alias] for alias in self]

    def close_all(self) -> None:
        with self._lock:
            wrappers = list(self._wrappers.values())
        for wrapper in wrappers:
            wrapper.close()

    def reset(self) -> None:
        """Close everything and forget the wrappers (settings changed)."""
        self.close_all()
        with self._lock:
            self._wrappers.clear()
        from dorm.sql import plan_cache

        plan_cache.clear()  # plans hold converters chosen for the old settings


connections = ConnectionHandler()


def get_connection(alias: str = DEFAULT_DB_ALIAS) -> BaseDatabaseWrapper:
    """Return the backend wrapper of ``alias`` (created on first use)."""
    return connections[alias]


def close_all() -> None:
    """Close every open connection and pool; they reopen on next use."""
    connections.close_all()


def reset_connections() -> None:
    """Close everything and rebuild the wrappers from the current settings on next use."""
    connections.reset()


def warmup_pool(alias: str = DEFAULT_DB_ALIAS, target: int | None = None) -> float:
    """Open connections of ``alias`` until its pool holds ``target`` (default MIN_POOL_SIZE).

    Returns the seconds taken and reports them to the ``dorm_pool_warmed`` hook. On SQLite
    this opens the calling thread's connection (size 1). A target above MAX_POOL_SIZE
    raises ValueError.
    """
    from dorm.db.backends.base import _refuse_in_event_loop

    if _get_running_loop() is not None:
        _refuse_in_event_loop("warmup_pool()")
    wrapper = connections[alias]
    limit = int(wrapper.settings_dict.get("MAX_POOL_SIZE", 10))
    wanted = int(wrapper.settings_dict.get("MIN_POOL_SIZE", 1)) if target is None else target
    if wanted > limit:
        raise ValueError(
            f"warmup_pool({alias!r}): target={wanted} is above MAX_POOL_SIZE={limit} of "
            f"DATABASES[{alias!r}]"
        )
    if wanted < 1:
        raise ValueError(f"warmup_pool({alias!r}): target must be at least 1, not {wanted}")
    start = time.perf_counter()
    size = wrapper.warmup(wanted)
    seconds = time.perf_counter() - start
    plugins.notify("dorm_pool_warmed", alias=alias, seconds=seconds, size=size, is_async=False)
    return seconds
