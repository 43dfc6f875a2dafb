"""The slow transaction watch: the timing hooks, the warning, and the span event.

``install()`` registers observer hooks on the transaction events. When an outermost
``atomic()`` / ``aatomic()`` block starts, the line of application code that opened it is
remembered (and, on PostgreSQL, its server process id); when it ends after more than the
threshold, one WARNING goes to ``dorm.contrib.slow_tx`` and a ``dorm.slow_tx`` event to the
current OpenTelemetry span. Nested blocks (savepoints) are part of their transaction and
are not reported on their own. On PostgreSQL a watcher thread looks, while a transaction is
past the threshold, for the sessions blocking it (``pg_blocking_pids``), on a connection of
its own, so the warning can name them.
"""

from __future__ import annotations

import logging
import threading
import time
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace

from dorm import plugins
from dorm.contrib.nplusone.location import CodeLocation, caller_location

__all__ = ["OpenTransaction", "SlowTxWatch", "install", "installed", "uninstall"]

logger = logging.getLogger("dorm.contrib.slow_tx")

_open: ContextVar[tuple[OpenTransaction, ...]] = ContextVar("dorm_slow_tx_open", default=())


class OpenTransaction:
    """An outermost block being timed."""

    __slots__ = ("alias", "blockers", "location", "pid", "started", "vendor")

    def __init__(self, alias: str, vendor: str, location: CodeLocation | None, pid: int | None):
        self.alias = alias
        self.vendor = vendor
        self.location = location
        self.pid = pid
        self.started = time.perf_counter()
        self.blockers: dict[int, str] = {}


def _backend_pid(conn: Any) -> int | None:
    info = getattr(conn, "info", None)
    pid = getattr(info, "backend_pid", None)
    if pid is None:
        raw = getattr(conn, "raw", None)
        getter = getattr(raw, "get_server_pid", None)
        pid = getter() if getter is not None else None
    return int(pid) if pid else None


class SlowTxWatch:
    """The hook object ``install()`` registers; ``threshold`` is in seconds."""

    def __init__(self, threshold: float, watch_locks: bool, poll_interval: float) -> None:
        self.threshold = threshold
        self.watch_locks = watch_locks
        self.poll_interval = poll_interval
        self._watched: dict[int, OpenTransaction] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @plugins.hookimpl
    def dorm_transaction_started(self, alias: str, savepoint: bool) -> None:
        if savepoint:
            return
        from dorm.db.connection import connections

        db = connections[alias]
        pid = None
        if self.watch_locks and db.vendor == "postgresql":
            pid = _backend_pid(db.state.conn)
        tx = OpenTransaction(alias, db.vendor, caller_location(2), pid)
        _open.set((*_open.get(), tx))
        if pid is not None:
            with self._lock:
                self._watched[id(tx)] = tx
                self._ensure_watcher()

    @plugins.hookimpl
    def dorm_transaction_committed(self, alias: str, savepoint: bool, duration: float) -> None:
        if not savepoint:
            self._finish(alias, duration, "committed")

    @plugins.hookimpl
    def dorm_transaction_rolled_back(self, alias: str, savepoint: bool, duration: float) -> None:
        if not savepoint:
            self._finish(alias, duration, "rolled back")

    def _finish(self, alias: str, duration: float, outcome: str) -> None:
        stack = _open.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].alias == alias:
                tx = stack[i]
                _open.set(stack[:i] + stack[i + 1 :])
                break
        else:
            return  # started before install()
        with self._lock:
            self._watched.pop(id(tx), None)
            blockers = sorted(tx.blockers.items())
        if duration < self.threshold:
            return
        where = str(tx.location) if tx.location else "an unknown location"
        blocked = ""
        if blockers:
            blocked = "; blocked by " + ", ".join(text for _pid, text in blockers)
        logger.warning(
            "slow transaction on %r: %.1f ms (threshold %.0f ms), opened at %s, %s%s",
            alias,
            duration * 1000,
            self.threshold * 1000,
            where,
            outcome,
            blocked,
            extra={
                "alias": alias,
                "duration_ms": duration * 1000,
                "location": tx.location,
                "blocker_pids": [pid for pid, _text in blockers],
            },
        )
        span = trace.get_current_span()
        if span.is_recording():
            attributes: dict[str, Any] = {
                "dorm.alias": alias,
                "dorm.duration_ms": duration * 1000,
                "dorm.threshold_ms": self.threshold * 1000,
                "dorm.outcome": outcome,
            }
            if tx.location is not None:
                attributes["code.filepath"] = tx.location.filename
                attributes["code.lineno"] = tx.location.lineno
                attributes["code.function"] = tx.location.function
            if blockers:
                attributes["dorm.blocker_pids"] = [pid for pid, _text in blockers]
                attributes["dorm.blockers"] = [text for _pid, text in blockers]
            span.add_event("dorm.slow_tx", attributes)

    # -- the PostgreSQL lock watcher --------------------------------------------------------

    def _ensure_watcher(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._watch, name="dorm-slow-tx-watch", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None

    def _watch(self) -> None:
        from dorm.contrib.slow_tx.locks import BlockerProbe

        probe = BlockerProbe()
        try:
            while not self._stop.wait(self.poll_interval):
                now = time.perf_counter()
                with self._lock:
                    due = [
                        tx for tx in self._watched.values() if now - tx.started >= self.threshold
                    ]
                for tx in due:
                    found = probe.blockers(tx.alias, tx.pid)
                    if found:
                        with self._lock:
                            tx.blockers.update(found)
        finally:
            probe.close()


_lock = threading.Lock()
_active: SlowTxWatch | None = None


def install(
    threshold_ms: float = 500, *, watch_locks: bool = True, poll_interval: float | None = None
) -> SlowTxWatch:
    """Warn about every transaction that lasts longer than ``threshold_ms``.

    Call it once at process start; calling it again replaces the earlier settings.
    ``watch_locks`` (PostgreSQL) looks for blocking sessions every ``poll_interval``
    seconds (default: a quarter of the threshold, between 20 ms and 1 s).
    """
    global _active
    if isinstance(threshold_ms, bool) or not isinstance(threshold_ms, int | float):
        raise TypeError(
            f"slow_tx.install(threshold_ms=...): expected a number, got {threshold_ms!r}"
        )
    if threshold_ms < 0:
        raise ValueError(f"slow_tx.install(threshold_ms=...): must be >= 0, got {threshold_ms!r}")
    if poll_interval is None:
        poll_interval = min(max(threshold_ms / 4000, 0.02), 1.0)
    elif not isinstance(poll_interval, int | float) or poll_interval <= 0:
        raise ValueError(f"slow_tx.install(poll_interval=...): must be > 0, got {poll_interval!r}")
    watch = SlowTxWatch(threshold_ms / 1000, watch_locks, float(poll_interval))
    with _lock:
        _drop_active()
        plugins.register(watch, name=f"observability.slow_tx.{id(watch)}")
        _active = watch
    return watch


def _drop_active() -> None:
    global _active
    if _active is not None:
        if plugins.get_plugin_manager().is_registered(_active):
            plugins.unregister(_active)
        _active.stop()
        _active = None


def uninstall() -> None:
    """Stop watching transactions."""
    with _lock:
        _drop_active()


def installed() -> SlowTxWatch | None:
    active = _active
    if active is not None and plugins.get_plugin_manager().is_registered(active):
        return active
    return None
