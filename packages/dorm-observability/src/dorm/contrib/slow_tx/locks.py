"""Who blocks a PostgreSQL session: ``pg_blocking_pids`` read on a connection of its own.

The probe connects with the alias's settings but outside dorm's pools and hooks, so its
queries neither take a pooled connection nor show up in metrics, spans or N+1 scopes.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["BLOCKERS_SQL", "BlockerProbe"]

logger = logging.getLogger("dorm.contrib.slow_tx")

BLOCKERS_SQL = (
    "SELECT a.pid, a.usename, a.application_name, a.state, left(a.query, 200) "
    "FROM pg_stat_activity AS a WHERE a.pid = ANY(pg_blocking_pids(%s)) ORDER BY a.pid"
)


class BlockerProbe:
    """One autocommit connection per alias, opened on first need, used by one thread."""

    def __init__(self) -> None:
        self._conns: dict[str, Any] = {}

    def _connection(self, alias: str) -> Any:
        conn = self._conns.get(alias)
        if conn is not None and not conn.closed:
            return conn
        import psycopg

        from dorm.db.connection import connections

        wrapper = connections.sync_wrapper(alias)
        conn = psycopg.connect(wrapper.conninfo(), autocommit=True)  # type: ignore[attr-defined]
        self._conns[alias] = conn
        return conn

    def blockers(self, alias: str, pid: int | None) -> dict[int, str]:
        """``{pid: description}`` of the sessions blocking ``pid`` now."""
        if pid is None:
            return {}
        try:
            rows = self._connection(alias).execute(BLOCKERS_SQL, [pid]).fetchall()
        except Exception as exc:  # the watch must never break the application
            logger.debug("slow_tx: could not read the blockers of pid %s: %s", pid, exc)
            self._conns.pop(alias, None)
            return {}
        return {
            int(row[0]): (
                f"pid {row[0]} (user {row[1]!r}, application {row[2]!r}, state {row[3]!r}, "
                f"query {row[4]!r})"
            )
            for row in rows
        }

    def close(self) -> None:
        for conn in self._conns.values():
            try:
                conn.close()
            except Exception:
                logger.debug("slow_tx: closing a probe connection failed", exc_info=True)
        self._conns.clear()
