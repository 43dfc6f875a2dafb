"""``DATABASE_ROUTERS``: which alias a model reads from and writes to."""

from __future__ import annotations

import importlib
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

    def db_for_read(self, model: type, **hints: Any) -> str:
        if not hints and not self._routers():
            return DEFAULT_DB_ALIAS  # the common case: no routers, nothing to ask
        return self._route("db_for_read", model, hints)

    def db_for_write(self, model: type, **hints: Any) -> str:
        if not hints and not self._routers():
            return DEFAULT_DB_ALIAS  # the common case: no routers, nothing to ask
        return self._route("db_for_write", model, hints)


def _settings() -> Any:
    """``dorm.conf.settings``, imported on first use (dorm.conf imports this package)."""
    global _settings_object
    if _settings_object is None:
        from dorm.conf import settings

        _settings_object = settings
    return _settings_object


_settings_object: Any = None
router = ConnectionRouter()
