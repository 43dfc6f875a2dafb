"""Database access: connections by alias and the router."""

from __future__ import annotations

from dorm.db.connection import DEFAULT_DB_ALIAS, connections, get_connection
from dorm.db.router import router

__all__ = ["DEFAULT_DB_ALIAS", "connections", "get_connection", "router"]
