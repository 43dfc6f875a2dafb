"""Connections by alias: ``get_connection(alias)``, ``close_all()``, ``reset_connections()``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dorm import plugins
from dorm.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.db.backends.bridged import AsyncDatabaseWrapper

__all__ = [
    "DEFAULT_DB_ALIAS",
    "ConnectionHandler",
    "awarmup_pool",
    "close_all",
    "connections",
    "get_async_connection",
    "get_connection",
    "reset_connections",
    "warmup_pool",
]

DEFAULT_DB_ALIAS = "default"


class _BridgeLocal(threading.local):
    """Per thread: the connection states of the async task whose sync ORM code runs now
    (set by ``dorm.db.bridge.run_sync`` around each switch into it), else None."""

    states: dict[str, Any] | None = None


bridge_local = _BridgeLocal()


class ConnectionHandler:
    """Creates one backend wrapper per configured alias, on first use."""

    def __init__(self) -> None:
        self._wrappers: dict[str, BaseDatabaseWrapper] = {}
        self._async: dict[str, AsyncDatabaseWrapper] = {}
        self._lock = threading.Lock()

    def __getitem__(self, alias: str) -> BaseDatabaseWrapper:
        if bridge_local.states is not None:
            # Sync ORM code run by an async twin: the same backend, I/O awaited.
            return self.async_wrapper(alias).bridged
        wrapper = self._wrappers.get(alias)
        return wrapper if wrapper is not None else self.sync_wrapper(alias)

    def sync_wrapper(self, alias: str) -> BaseDatabaseWrapper:
        """The sync wrapper of ``alias``, even inside an async twin."""
        wrapper = self._wrappers.get(alias)
        if wrapper is not None:
            return wrapper
        with self._lock:
            wrapper = self._wrappers.get(alias)
            if wrapper is None:
                wrapper = self._wrappers[alias] = self._create(alias)
        return wrapper

    def async_wrapper(self, alias: str) -> AsyncDatabaseWrapper:
        """The async API of ``alias`` (created on first use)."""
        found = self._async.get(alias)
        if found is not None:
            return found
        sync = self.sync_wrapper(alias)
        with self._lock:
            found = self._async.get(alias)
            if found is None:
                found = self._async[alias] = self._create_async(sync)
        return found

    @staticmethod
    def _create_async(sync: BaseDatabaseWrapper) -> AsyncDatabaseWrapper:
        import importlib

        from dorm.db.backends.bridged import AsyncDatabaseWrapper

        if sync.async_backend is None:
            raise ImproperlyConfigured(
                f"DATABASES[{sync.alias!r}]: the {sync.display_name} backend has no async "
                f"support; use the sync API (in a thread: asyncio.to_thread)"
            )
        module = importlib.import_module(sync.async_backend)
        return AsyncDatabaseWrapper(module.bridged_class(type(sync))(sync))

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
            wrappers = [*self._wrappers.values(), *(a.bridged for a in self._async.values())]
        for wrapper in wrappers:
            wrapper.close()

    def reset(self) -> None:
        """Close everything and forget the wrappers (settings changed)."""
        self.close_all()
        with self._lock:
            self._wrappers.clear()
            self._async.clear()
        from dorm.sql import expression_plans, plan_cache

        plan_cache.clear()  # plans hold converters chosen for the old settings
        expression_plans.clear()


connections = ConnectionHandler()


def get_connection(alias: str = DEFAULT_DB_ALIAS) -> BaseDatabaseWrapper:
    """Return the backend wrapper of ``alias`` (created on first use)."""
    return connections[alias]


def get_async_connection(alias: str = DEFAULT_DB_ALIAS) -> AsyncDatabaseWrapper:
    """Return the async API of ``alias``: ``await conn.fetchall(sql, params)``, ..."""
    return connections.async_wrapper(alias)


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
    from dorm.db.backends.base import _get_running_loop, _refuse_in_event_loop

    if _get_running_loop() is not None:
        _refuse_in_event_loop("warmup_pool()")
    wrapper = connections[alias]
    wanted = _warmup_target("warmup_pool", alias, wrapper.settings_dict, target)
    start = time.perf_counter()
    size = wrapper.warmup(wanted)
    seconds = time.perf_counter() - start
    plugins.notify("dorm_pool_warmed", alias=alias, seconds=seconds, size=size, is_async=False)
    return seconds


def _warmup_target(name: str, alias: str, settings_dict: dict[str, Any], target: int | None) -> int:
    limit = int(settings_dict.get("MAX_POOL_SIZE", 10))
    wanted = int(settings_dict.get("MIN_POOL_SIZE", 1)) if target is None else target
    if isinstance(wanted, bool) or not isinstance(wanted, int):
        raise TypeError(f"{name}({alias!r}): target must be an int, not {wanted!r}")
    if wanted > limit:
        raise ValueError(
            f"{name}({alias!r}): target={wanted} is above MAX_POOL_SIZE={limit} of "
            f"DATABASES[{alias!r}]"
        )
    if wanted < 1:
        raise ValueError(f"{name}({alias!r}): target must be at least 1, not {wanted}")
    return wanted


async def awarmup_pool(alias: str = DEFAULT_DB_ALIAS, target: int | None = None) -> float:
    """Open connections of the running event loop's pool of ``alias`` up to ``target``.

    The async twin of ``warmup_pool`` (for an ASGI startup hook): returns the seconds
    taken and reports them to the ``dorm_pool_warmed`` hook with ``is_async=True``.
    """
    wrapper = connections.async_wrapper(alias)
    wanted = _warmup_target("awarmup_pool", alias, wrapper.settings_dict, target)
    start = time.perf_counter()
    size = await wrapper.warmup(wanted)
    seconds = time.perf_counter() - start
    plugins.notify("dorm_pool_warmed", alias=alias, seconds=seconds, size=size, is_async=True)
    return seconds
