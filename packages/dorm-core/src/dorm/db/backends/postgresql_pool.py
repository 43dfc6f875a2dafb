"""The psycopg_pool of one PostgreSQL alias: opened without races, replaced when it fails.

- Opening: one thread opens the pool while the others wait on a lock; the pool is
  published only once its MIN_POOL_SIZE connections are open, so no other thread can take
  them first and make the opening time out.
- The server first: before a pool is built, one direct connection is tried (again every
  50 ms until POOL_TIMEOUT for a server that refuses or is unreachable). A permanent
  refusal (unknown database or role, failed authentication) fails at once, and every
  failure carries the server's or the network's own message instead of a bare timeout.
- Failure: a pool that could not open is closed and forgotten, and so is one whose
  checkout timed out while it had free slots (the server went away, or came back while
  psycopg_pool waits out its reconnection backoff). The next checkout builds a new pool,
  so queries succeed again as soon as the server answers. Threads that were waiting on
  the lock while an opening failed get that failure instead of trying one after another.
- Every driver and pool error leaves as dorm's OperationalError, the cause chained.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any

from dorm.exceptions import OperationalError

if TYPE_CHECKING:
    from dorm.db.backends.postgresql import DatabaseWrapper

__all__ = ["SyncPool"]

# Server refusals that no retry can fix (libpq gives no SQLSTATE for a failed connection,
# only its message).
_PERMANENT = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf entry",
    "not permitted to log in",
    "permission denied",
)
_PROBE_PAUSE = 0.05


def _is_permanent(exc: BaseException) -> bool:
    text = str(exc)
    return any(marker in text for marker in _PERMANENT)


class SyncPool:
    """The current psycopg_pool of one alias and the connections checked out of it."""

    def __init__(self, db: DatabaseWrapper) -> None:
        self.db = db
        self.current: Any = None
        self.lock = threading.Lock()
        # id(connection) -> the pool it came from: a pool may be replaced while a thread
        # still holds one of its connections, which must go back to that (closed) pool.
        self.owners: dict[int, Any] = {}
        # (when, message, cause) of the last failed opening.
        self.failure: tuple[float, str, BaseException | None] | None = None

    @property
    def timeout(self) -> float:
        return float(self.db.settings_dict["POOL_TIMEOUT"])

    # -- opening ----------------------------------------------------------------------------

    def get(self, retry: bool = True) -> Any:
        """The open pool, opening one when there is none.

        :raises OperationalError: the server cannot be reached (within POOL_TIMEOUT when
            ``retry``) or refused the connection.
        """
        pool = self.current
        if pool is not None:
            return pool
        asked = time.monotonic()
        with self.lock:
            pool = self.current
            if pool is not None:
                return pool
            failed = self.failure
            if failed is not None and failed[0] >= asked:
                # Another thread's attempt failed while this one waited for the lock.
                raise OperationalError(failed[1]) from failed[2]
            try:
                pool = self._open(retry)
            except OperationalError as exc:
                self.failure = (time.monotonic(), str(exc), exc.__cause__)
                raise
            self.failure = None
            self.current = pool
        self.db._pool_opened()
        return pool

    def _open(self, retry: bool) -> Any:
        db = self.db
        s = db.settings_dict
        self._probe(retry)
        pool = db._psycopg_pool.ConnectionPool(
            db.conninfo(),
            min_size=s["MIN_POOL_SIZE"],
            max_size=s["MAX_POOL_SIZE"],
            timeout=s["POOL_TIMEOUT"],
            kwargs={"autocommit": True},
            configure=db._configure,
            name=f"dorm-{db.alias}",
            open=False,
        )
        try:
            # MIN_POOL_SIZE connections before anyone checks one out: a first checkout that
            # found none ready would make the pool grow one more, and statements would then
            # alternate between server processes for no reason.
            pool.open(wait=True, timeout=self.timeout)
        except Exception as exc:
            pool.close(timeout=0)
            raise OperationalError(
                f"the connection pool of {db.alias!r} did not open its MIN_POOL_SIZE="
                f"{s['MIN_POOL_SIZE']} connection(s) within POOL_TIMEOUT={self.timeout:g}s: "
                f"{exc}"
            ) from exc
        return pool

    def _probe(self, retry: bool) -> None:
        """Open and close one connection; raise OperationalError with the server's reason."""
        db = self.db
        deadline = time.monotonic() + (self.timeout if retry else 0.0)
        while True:
            remaining = deadline - time.monotonic()
            try:
                conn = db._psycopg.connect(
                    db.conninfo(), autocommit=True, connect_timeout=max(2, math.ceil(remaining))
                )
            except db._psycopg.Error as exc:
                # A malformed setting (ProgrammingError) is as permanent as a refusal.
                permanent = _is_permanent(exc) or not isinstance(exc, db._psycopg.OperationalError)
                if permanent or remaining <= _PROBE_PAUSE:
                    waited = "" if permanent or not retry else f" (for {self.timeout:g}s)"
                    raise OperationalError(
                        f"cannot connect to {db.alias!r}{waited}: {str(exc).strip()}"
                    ) from exc
                time.sleep(_PROBE_PAUSE)
                continue
            conn.close()
            return

    # -- checkout -------------------------------------------------------------------------

    def busy(self, pool: Any) -> int:
        """Connections of ``pool`` checked out now."""
        return sum(1 for owner in tuple(self.owners.values()) if owner is pool)

    def acquire(self) -> Any:
        pool = self.get()
        errors = self.db._psycopg_pool
        try:
            conn = pool.getconn()
        except errors.PoolClosed:
            # Closed by close() in another thread, or replaced: take the new one.
            self.drop(pool)
            pool = self.get()
            conn = self._getconn(pool)
        except errors.PoolTimeout as exc:
            s = self.db.settings_dict
            if self.busy(pool) >= int(s["MAX_POOL_SIZE"]):
                raise OperationalError(
                    f"no connection to {self.db.alias!r} within POOL_TIMEOUT="
                    f"{self.timeout:g}s: all MAX_POOL_SIZE={s['MAX_POOL_SIZE']} are in use"
                ) from exc
            # Free slots and still no connection: the pool cannot connect. A new pool
            # probes the server once: it fails with the reason, or serves at once.
            self.drop(pool)
            pool = self.get(retry=False)
            conn = self._getconn(pool)
        except self.db._psycopg.Error as exc:
            raise OperationalError(f"no connection to {self.db.alias!r}: {exc}") from exc
        self.owners[id(conn)] = pool
        return conn

    def _getconn(self, pool: Any) -> Any:
        try:
            return pool.getconn()
        except self.db._psycopg.Error as exc:
            raise OperationalError(
                f"no connection to {self.db.alias!r} within POOL_TIMEOUT={self.timeout:g}s: {exc}"
            ) from exc

    def release(self, conn: Any) -> None:
        pool = self.owners.pop(id(conn), None) or self.get()
        pool.putconn(conn)

    def drop(self, pool: Any) -> None:
        """Forget ``pool`` (if still current) and close it without waiting for its workers;
        its checked-out connections are closed as they come back."""
        with self.lock:
            if self.current is pool:
                self.current = None
        pool.close(timeout=0)

    def close(self) -> None:
        with self.lock:
            pool, self.current = self.current, None
            self.failure = None
        if pool is not None:
            pool.close()
