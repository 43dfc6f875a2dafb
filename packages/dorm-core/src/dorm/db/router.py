"""``DATABASE_ROUTERS``: which alias a model reads from and writes to."""

from __future__ import annotations

import importlib
from typing import Any

from dorm.db.connection import DEFAULT_DB_ALIAS
from dorm.exceptions import ImproperlyConfigured

__all__ = ["router"]


class ConnectionRouter:
    """Asks each router in ``settings.DATABASE_ROUTERS`` in turn; the first answer wins."""

    def _routers(self) -> list[Any]:
        from dorm.conf import settings

        routers = []
        for entry in settings.DATABASE_ROUTERS:
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
        return self._route("db_for_read", model, hints)

    def db_for_write(self, model: type, **hints: Any) -> str:
        return self._route("db_for_write", model, hints)


router = ConnectionRouter()
