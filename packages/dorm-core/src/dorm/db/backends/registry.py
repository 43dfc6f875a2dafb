"""Core's backends, registered through ``dorm_backend_for`` like a plugin's would be."""

from __future__ import annotations

from dorm.plugins import hookimpl


@hookimpl(trylast=True)
def dorm_backend_for(vendor: str) -> type | None:
    if vendor == "sqlite":
        from dorm.db.backends.sqlite import DatabaseWrapper

        return DatabaseWrapper
    if vendor == "postgresql":
        from dorm.db.backends.postgresql import DatabaseWrapper as PgWrapper

        return PgWrapper
    return None
