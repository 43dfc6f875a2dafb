"""``Listener`` (LISTEN on its own connection) and ``notify`` (pg_notify in dorm's transaction)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from dorm.db.connection import get_connection
from dorm.exceptions import NotSupportedError, OperationalError

__all__ = ["Listener", "Notification", "notify", "supports_listen_notify"]

logger = logging.getLogger("dorm.contrib.listen_notify")

# PostgreSQL identifiers, channel names included, are cut at 63 bytes.
_MAX_CHANNEL = 63


@dataclass(frozen=True)
class Notification:
    """One NOTIFY received: its channel, payload and the sending backend's process id."""

    channel: str
    payload: str
    pid: int


def supports_listen_notify(using: str = "default") -> bool:
    """True when the alias ``using`` is a PostgreSQL database (LISTEN/NOTIFY available)."""
    return get_connection(using).vendor == "postgresql"


def _check_channel(channel: str) -> str:
    if not isinstance(channel, str) or not channel or len(channel.encode()) > _MAX_CHANNEL:
        raise ValueError(
            f"channel {channel!r}: expected a non-empty string of at most {_MAX_CHANNEL} bytes"
        )
    return channel


def notify(channel: str, payload: str = "", using: str = "default") -> None:
    """Send ``NOTIFY channel, payload`` through dorm's connection for ``using``.

    Inside ``atomic()`` PostgreSQL holds the notification until COMMIT and drops it on
    ROLLBACK; outside, it is sent at once. Identical notifications of one transaction are
    delivered once.
    """
    db = get_connection(using)
    if db.vendor != "postgresql":
        raise NotSupportedError(
            f"notify({channel!r}): database {using!r} is {db.display_name}; LISTEN/NOTIFY "
            f"needs PostgreSQL"
        )
    db.fetchone("SELECT pg_notify(%s, %s)", [_check_channel(channel), payload])


class Listener:
    """``LISTEN`` on ``channels`` over a connection of its own, outside dorm's pool.

    The connection is in autocommit mode (a LISTEN inside an open transaction would only
    take effect at its COMMIT) and lives until ``close()``. ``wait(timeout)`` blocks until a
    notification arrives or the timeout passes.
    """

    def __init__(self, *channels: str, using: str = "default") -> None:
        if not channels:
            raise ValueError("Listener() needs at least one channel name")
        self.channels = tuple(_check_channel(c) for c in channels)
        self.using = using
        db = get_connection(using)
        if db.vendor != "postgresql":
            raise NotSupportedError(
                f"Listener{self.channels!r}: database {using!r} is {db.display_name}; "
                f"LISTEN/NOTIFY needs PostgreSQL (poll instead)"
            )
        import psycopg

        try:
            self._conn: Any = psycopg.connect(db.conninfo(), autocommit=True)  # type: ignore[attr-defined]
            for channel in self.channels:
                self._conn.execute(f"LISTEN {db.ops.quote_name(channel)}")
        except psycopg.Error as exc:
            raise OperationalError(
                f"Listener{self.channels!r} on {using!r}: could not LISTEN: {exc}"
            ) from exc

    def wait(self, timeout: float | None = None) -> list[Notification]:
        """Return the notifications that arrive within ``timeout`` seconds (None: no limit).

        Returns as soon as one arrives, with any others already received; an empty list
        means the timeout passed.
        """
        found: list[Notification] = []
        try:
            for note in self._conn.notifies(timeout=timeout, stop_after=1):
                found.append(Notification(note.channel, note.payload, note.pid))
            if found:
                # Take whatever else is already buffered, without waiting.
                for note in self._conn.notifies(timeout=0.0):
                    found.append(Notification(note.channel, note.payload, note.pid))
        except Exception as exc:
            raise OperationalError(
                f"Listener{self.channels!r} on {self.using!r} lost its connection: {exc}"
            ) from exc
        return found

    def close(self) -> None:
        """Close the listening connection (its LISTENs end with it)."""
        if not self._conn.closed:
            self._conn.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
