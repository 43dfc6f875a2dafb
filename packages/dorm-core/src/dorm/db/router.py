"""``DATABASE_ROUTERS``: which alias a model reads from and writes to."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dorm.db.connection import DEFAULT_DB_ALIAS
from dorm.exceptions import ImproperlyConfigured

__all__ = ["router"]


class ConnectionRouter:
    """Asks each router in ``settings.DATABASE_ROUTERS`` in turn; the first answer wins.

    The routers are built once per value of the setting (a dotted path is imported and
    instantiated once, as in Django), not on every query.
    """

    def __init__(self) -> None:
        # (the settings' values dict, the setting's list, its length, the routers)
        self._cache: tuple[Any, Any, int, list[Any]] | None = None

    def _routers(self) -> list[Any]:
        cache = self._cache
        settings = _settings()
        # configure() replaces the values dict, so its identity says "settings unchanged".
        if cache is not None and cache[0] is settings._values and cache[2] == len(cache[1]):
            return cache[3]
        entries = settings.DATABASE_ROUTERS
        routers = self._build(entries)
        self._cache = (settings._values, entries, len(entries), routers)
        return routers

    @staticmethod
    def _build(entries: Any) -> list[Any]:
        routers = []
        for entry in entries:
            if isinstance(entry, str):
                module, _, name = entry.rpartition(".")
                try:
                    entry = getattr(importlib.import_module(module), name)()
                except (ImportError, AttributeError, ValueError) as exc:
                    raise ImproperlyConfigured(
                        f"DATABASE_ROUTERS: cannot import {entry!r}: {exc}"
                    ) from exc
            routers.append(entry)
        return routers

    def _route(self, method: str, model: type, hints: dict[str, Any]) -> str:
        for r in self._routers():
            chosen = getattr(r, method, None)
            if chosen is None:
                continue
            alias = chosen(model, **hints)
            if alias:
                return str(alias)
        instance = hints.get("instance")
        state = getattr(instance, "_state", None)
        if state is not None and state.db:
            return str(state.db)
        return DEFAULT_DB_ALIAS

    db_for_read: Callable[..., str]
    db_for_write: Callable[..., str]


def _routed(method: str) -> Callable[..., str]:
    """``ConnectionRouter.<method>(model, **hints)``: the first router's answer, or the
    default alias."""

    def route(self: ConnectionRouter, model: type, **hints: Any) -> str:
        cache = self._cache
        if (
            not hints
            and cache is not None
            and not cache[3]
            and cache[0] is _settings_object._values
            and cache[2] == len(cache[1])
        ):
            return DEFAULT_DB_ALIAS  # the common case: no routers, nothing to ask
        return self._route(method, model, hints)

    route.__name__ = route.__qualname__ = method
    return route


ConnectionRouter.db_for_read = _routed("db_for_read")
ConnectionRouter.db_for_write = _routed("db_for_write")


def _settings() -> Any:
    """``dorm.conf.settings``, imported on first use (dorm.conf imports this package)."""
    global _settings_object
    if _settings_object is None:
        from dorm.conf import settings

        _settings_object = settings
    return _settings_object


_settings_object: Any = None
router = ConnectionRouter()
