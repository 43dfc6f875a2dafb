"""``ActivePassiveRouter``: writes to the discovered primary, reads to healthy replicas.

The routing decision reads one published tuple ``(primary, replicas)`` (recomputed by
the probe threads of ``monitor.py`` when a status changes), a context variable (sticky
reads) and the calling thread's or task's open ``atomic()`` blocks: no lock, no probe,
no I/O on the query path. A statement that fails on an alias with an error saying the
server went away or turned read-only (``dorm.signals.query_failed``) marks the alias
stale and probes every alias at once; the statement itself is never retried here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from dorm import signals
from dorm.contrib.active_passive.exceptions import NoPrimaryError
from dorm.contrib.active_passive.monitor import Monitor, Statuses
from dorm.contrib.active_passive.probe import PRIMARY, READ_ONLY, REPLICA, AliasStatus
from dorm.db.bridge import await_, in_bridge
from dorm.db.connection import bridge_local, connections
from dorm.exceptions import ImproperlyConfigured, InterfaceError, OperationalError

__all__ = ["ActivePassiveRouter"]

# SQLSTATEs that say "this server cannot take the statement any more": read-only
# transaction (a standby, or a primary turned read-only), shutdown, connection lost.
_ROLE_CHANGED = frozenset(
    {"25006", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"}
)

_routers: weakref.WeakSet[ActivePassiveRouter] = weakref.WeakSet()


def _seconds(name: str, value: object, minimum: float, allow_equal: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"ActivePassiveRouter({name}=...): a number of seconds, not {value!r}")
    ok = value >= minimum if allow_equal else value > minimum
    if not ok or value != value:  # NaN compares false both ways
        bound = f">= {minimum:g}" if allow_equal else f"> {minimum:g}"
        raise ValueError(f"ActivePassiveRouter({name}={value!r}): must be {bound} seconds")
    return float(value)


class ActivePassiveRouter:
    """Route writes to the primary and reads to replicas among ``aliases``, found by
    probing ``pg_is_in_recovery()`` on each.

    :param aliases: ``DATABASES`` aliases of one PostgreSQL primary and its streaming
        replicas, in any order (checked at first use, when the settings are known).
    :param probe_seconds: how often each alias is probed (never more often, except the
        re-probe after a failed statement and ``refresh()``).
    :param sticky_seconds: after a write, reads from the same thread or asyncio task go
        to the primary for this long (read-your-writes); 0 turns it off.
    :param max_replica_lag_seconds: skip replicas whose replay lag, at their last probe,
        is above this (or unknown); None routes to any streaming replica.
    :param probe_timeout: how long a probe waits for a server, and how long a write waits
        for a re-probe to find a primary before NoPrimaryError.
    """

    def __init__(
        self,
        aliases: Sequence[str],
        probe_seconds: float = 10.0,
        sticky_seconds: float = 0.0,
        max_replica_lag_seconds: float | None = None,
        probe_timeout: float = 5.0,
    ) -> None:
        if isinstance(aliases, str) or not isinstance(aliases, Sequence):
            raise TypeError(
                f"ActivePassiveRouter(aliases=...): a list of DATABASES aliases, not {aliases!r}"
            )
        names = list(aliases)
        bad = [a for a in names if not isinstance(a, str) or not a]
        if not names or bad:
            raise ValueError(
                f"ActivePassiveRouter(aliases={names!r}): needs at least one alias, each a "
                f"non-empty string"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"ActivePassiveRouter(aliases={names!r}): an alias is repeated")
        self.aliases = tuple(names)
        self.probe_seconds = _seconds("probe_seconds", probe_seconds, 0.0, False)
        self.sticky_seconds = _seconds("sticky_seconds", sticky_seconds, 0.0, True)
        self.max_replica_lag_seconds = (
            None
            if max_replica_lag_seconds is None
            else _seconds("max_replica_lag_seconds", max_replica_lag_seconds, 0.0, True)
        )
        self.probe_timeout = _seconds("probe_timeout", probe_timeout, 0.0, False)
        self._view: tuple[str | None, tuple[str, ...]] | None = None
        self._monitor: Monitor | None = None
        self._start_lock = threading.Lock()
        self._turn = itertools.count()
        self._wrote: ContextVar[float] = ContextVar(f"dorm_active_passive_{id(self)}", default=0.0)
        _routers.add(self)

    def __repr__(self) -> str:
        return f"ActivePassiveRouter(aliases={list(self.aliases)!r})"

    # -- DATABASE_ROUTERS interface ----------------------------------------------------------

    def db_for_read(self, model: type, **hints: Any) -> str:
        view = self._view or self._start()
        primary, replicas = view
        if (
            self.sticky_seconds
            and primary is not None
            and time.monotonic() - self._wrote.get() < self.sticky_seconds
        ):
            return primary
        in_block = self._transaction_alias(primary)
        if in_block is not None:
            return in_block
        if replicas:
            return replicas[next(self._turn) % len(replicas)]
        if primary is not None:
            return primary
        return self._wait_for(lambda: self._view_alias(reads=True), "reads")

    def db_for_write(self, model: type, **hints: Any) -> str:
        if self.sticky_seconds:
            self._wrote.set(time.monotonic())
        primary = (self._view or self._start())[0]
        if primary is not None:
            return primary
        return self._wait_for(lambda: self._view_alias(reads=False), "writes")

    # -- public helpers ----------------------------------------------------------------------

    @property
    def primary(self) -> str:
        """The primary's alias, for ``transaction.atomic(using=router.primary)``.

        :raises NoPrimaryError: no primary was found (after waiting for a re-probe).
        """
        primary = (self._view or self._start())[0]
        return primary or self._wait_for(lambda: self._view_alias(reads=False), "writes")

    def status(self) -> list[AliasStatus]:
        """What the last probe of each alias found (probing first if never done)."""
        if self._view is None:
            self._start()
        assert self._monitor is not None
        statuses = self._monitor.statuses
        return [statuses[a] for a in self.aliases]

    def refresh(self) -> list[AliasStatus]:
        """Probe every alias now and return the statuses once all probes finished."""
        monitor = self._started_monitor()
        monitor.request()
        self._block_until(lambda: not monitor.pending(), self.probe_timeout + 5.0)
        return self.status()

    def close(self) -> None:
        """Stop the probe threads; the next routing call starts them again, reading the
        settings anew (call it after ``dorm.configure()`` changed these aliases)."""
        with self._start_lock:
            monitor, self._monitor, self._view = self._monitor, None, None
        for alias in self.aliases:
            signals.query_failed.disconnect(self._query_failed, sender=alias)
        if monitor is not None:
            monitor.close()

    # -- internals ---------------------------------------------------------------------------

    def _transaction_alias(self, primary: str | None) -> str | None:
        """The alias whose ``atomic()`` block the caller is in: the primary's first."""
        # The async twins keep their blocks per task (bridge_local.states); sync code per
        # thread on the sync wrapper. Read directly: this runs on every read.
        states = bridge_local.states
        found = None
        for alias in self.aliases:
            if states is not None:
                state = states.get(alias)
                open_block = state is not None and bool(state.blocks)
            else:
                open_block = bool(connections.sync_wrapper(alias).state.blocks)
            if open_block:
                if alias == primary:
                    return alias
                found = found or alias
        return found

    def _view_alias(self, reads: bool) -> str | None:
        view = self._view
        if view is None:
            return None
        primary, replicas = view
        return primary or (replicas[0] if reads and replicas else None)

    def _publish(self, statuses: Statuses) -> None:
        """Recompute ``(primary, replicas)`` from the statuses (called by the monitor)."""
        limit = self.max_replica_lag_seconds
        primary = None
        replicas = []
        for alias in self.aliases:
            status = statuses[alias]
            if status.stale:
                continue
            if status.role == PRIMARY and primary is None:
                primary = alias
            elif status.role in (REPLICA, READ_ONLY) and (
                limit is None or (status.lag is not None and status.lag <= limit)
            ):
                replicas.append(alias)
        self._view = (primary, tuple(replicas))

    def _started_monitor(self) -> Monitor:
        monitor = self._monitor
        if monitor is not None:
            return monitor
        with self._start_lock:
            if self._monitor is None:
                conninfo = {alias: _conninfo(alias) for alias in self.aliases}
                self._monitor = Monitor(
                    self.aliases, conninfo, self.probe_seconds, self.probe_timeout, self._publish
                )
                for alias in self.aliases:
                    signals.query_failed.connect(self._query_failed, sender=alias)
            return self._monitor

    def _start(self) -> tuple[str | None, tuple[str, ...]]:
        """Start probing on first use and wait for the first round of probes."""
        monitor = self._started_monitor()
        self._block_until(monitor.all_probed, self.probe_timeout + 5.0)
        view = self._view
        if view is None:
            raise self._no_alias("routing")
        return view

    def _wait_for(self, chosen: Callable[[], str | None], purpose: str) -> str:
        """Nothing to route to: wait for the probes under way (a failover), then fail."""
        self._block_until(lambda: chosen() is not None, self.probe_timeout + 1.0)
        alias = chosen()
        if alias is None:
            raise self._no_alias(purpose)
        return alias

    def _block_until(self, done: Callable[[], bool], timeout: float) -> None:
        monitor = self._started_monitor()
        if in_bridge():
            # Called from an async twin: wait in a worker thread, the event loop runs on.
            await_(asyncio.to_thread(monitor.wait, done, timeout))
        else:
            monitor.wait(done, timeout)

    def _no_alias(self, purpose: str) -> NoPrimaryError:
        monitor = self._monitor
        statuses = monitor.statuses if monitor is not None else {}
        parts = []
        for alias in self.aliases:
            status = statuses.get(alias, AliasStatus(alias))
            stale = " (stale)" if status.stale else ""
            error = f" ({status.error})" if status.error else ""
            parts.append(f"{alias}: {status.role}{stale}{error}")
        found = "; ".join(parts)
        wanted = "primary" if purpose == "writes" else "primary or healthy replica"
        return NoPrimaryError(
            f"ActivePassiveRouter found no {wanted} for {purpose} among "
            f"{', '.join(map(repr, self.aliases))} ({found}); a primary is a server with "
            f"pg_is_in_recovery() false and transaction_read_only off: check the servers "
            f"(`dorm routing status`), or retry once a standby was promoted"
        )

    def _query_failed(
        self, alias: str, error: BaseException, sqlstate: str | None, **_kw: Any
    ) -> None:
        monitor = self._monitor
        if monitor is None:
            return
        if sqlstate in _ROLE_CHANGED or (
            sqlstate is None and isinstance(error, OperationalError | InterfaceError)
        ):
            monitor.mark_stale(alias, f"{sqlstate or type(error).__name__}: {error}")


def _conninfo(alias: str) -> str:
    try:
        wrapper = connections.sync_wrapper(alias)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"ActivePassiveRouter: {exc}") from exc
    if wrapper.vendor != "postgresql":
        raise ImproperlyConfigured(
            f"ActivePassiveRouter: DATABASES[{alias!r}] uses ENGINE {wrapper.vendor!r}; "
            f"only PostgreSQL aliases can be probed (pg_is_in_recovery())"
        )
    return str(wrapper.conninfo())  # type: ignore[attr-defined]


def _forget_after_fork() -> None:
    """A forked child has none of the parent's probe threads: start afresh on first use."""
    for router in list(_routers):
        router._monitor = None
        router._view = None
        router._start_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
