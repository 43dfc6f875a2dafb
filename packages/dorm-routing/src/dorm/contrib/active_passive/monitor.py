"""The probe threads of one router: one per alias, on a schedule, or at once on request.

Each alias has its own daemon thread, so a server that hangs delays only its own probe.
Query threads never probe: they read the statuses the probe threads publish (a dict
replaced, never mutated) and wait only when there is nothing to route to yet (before the
first probe, or while a re-probe is looking for a primary). A thread waiting from an
async twin waits in a worker thread, awaited on the event loop, so the loop never blocks.

Requests are counted per alias (``requested``) against the probes finished
(``served``): a request made while a probe runs is served by the next probe, never by
the running one, and any number of requests made meanwhile is served by that one probe.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from dorm.contrib.active_passive.probe import AliasStatus, probe

__all__ = ["Monitor"]

logger = logging.getLogger("dorm.contrib.active_passive")

Statuses = Mapping[str, AliasStatus]


def _work(
    ref: weakref.ref[Monitor], alias: str, wake: threading.Event, stop: threading.Event
) -> None:
    """A probe thread: probe, sleep ``probe_seconds`` or until woken, again; it ends with
    its monitor (only a weak reference is held between probes)."""
    while not stop.is_set():
        monitor = ref()
        if monitor is None:
            return
        monitor._probe(alias)
        interval = monitor.probe_seconds
        del monitor
        wake.wait(interval)
        # Cleared before the next probe starts: a request made from here on is served by it.
        wake.clear()


def _shutdown(stop: threading.Event, wakes: Sequence[threading.Event]) -> None:
    stop.set()
    for event in wakes:
        event.set()


class Monitor:
    """The statuses of ``aliases``, kept current by one probe thread per alias."""

    def __init__(
        self,
        aliases: Sequence[str],
        conninfo: Mapping[str, str],
        probe_seconds: float,
        timeout: float,
        on_change: Callable[[Statuses], None],
    ) -> None:
        self.aliases = tuple(aliases)
        self.probe_seconds = probe_seconds
        self.timeout = timeout
        self._conninfo = dict(conninfo)
        self._on_change = on_change
        self._cond = threading.Condition()
        self.statuses: Statuses = {a: AliasStatus(a) for a in self.aliases}
        self._requested = dict.fromkeys(self.aliases, 1)  # the first probe
        self._served = dict.fromkeys(self.aliases, 0)
        self._stale_at = dict.fromkeys(self.aliases, 0)
        self._stop = threading.Event()
        self._wake = {a: threading.Event() for a in self.aliases}
        self._finalizer = weakref.finalize(self, _shutdown, self._stop, list(self._wake.values()))
        ref = weakref.ref(self)
        for alias in self.aliases:
            threading.Thread(
                target=_work,
                args=(ref, alias, self._wake[alias], self._stop),
                name=f"dorm-active-passive-{alias}",
                daemon=True,
            ).start()

    def close(self) -> None:
        """Stop the probe threads (a probe under way finishes on its own)."""
        self._finalizer()

    # -- probing (probe threads) -------------------------------------------------------------

    def _probe(self, alias: str) -> None:
        with self._cond:
            serving = self._requested[alias]
        start = time.monotonic()
        role, lag, error = probe(self._conninfo[alias], self.timeout)
        duration = time.monotonic() - start
        if self._stop.is_set():
            return
        with self._cond:
            before = self.statuses[alias]
            status = AliasStatus(
                alias,
                role,
                lag,
                time.time(),
                duration,
                error,
                before.probes + 1,
                stale=self._stale_at[alias] > serving,
            )
            self.statuses = {**self.statuses, alias: status}
            self._served[alias] = max(self._served[alias], serving)
            self._on_change(self.statuses)
            self._cond.notify_all()
        logger.debug("probed %r: %s, lag %s (%.1f ms)", alias, role, lag, duration * 1000)
        if before.role != role and before.probes:
            log = logger.warning if role == "down" else logger.info
            log("%r is now %s (was %s)%s", alias, role, before.role, f": {error}" if error else "")

    # -- requests (query threads) ------------------------------------------------------------

    def request(self, aliases: Sequence[str] | None = None) -> None:
        """Probe ``aliases`` (default: all) at once, without waiting for the schedule."""
        chosen = self.aliases if aliases is None else tuple(aliases)
        with self._cond:
            for alias in chosen:
                self._requested[alias] += 1
        for alias in chosen:
            self._wake[alias].set()

    def mark_stale(self, alias: str, reason: str) -> bool:
        """Stop routing to ``alias`` until it is probed again, and probe every alias now
        (the primary may have moved). False when it is stale already, its re-probe
        pending: a burst of failures costs one round of probes."""
        with self._cond:
            if self._stale_at[alias] > self._served[alias]:
                return False
            for name in self.aliases:
                self._requested[name] += 1
            self._stale_at[alias] = self._requested[alias]
            self.statuses = {**self.statuses, alias: replace(self.statuses[alias], stale=True)}
            self._on_change(self.statuses)
        for event in self._wake.values():
            event.set()
        logger.warning("%r marked stale after a failed statement (%s); probing now", alias, reason)
        return True

    def pending(self) -> bool:
        """True while a requested probe has not finished."""
        with self._cond:
            return any(self._served[a] < self._requested[a] for a in self.aliases)

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Block until ``done()`` or no requested probe is left, at most ``timeout`` s;
        return ``done()``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                pending = any(self._served[a] < self._requested[a] for a in self.aliases)
                remaining = deadline - time.monotonic()
                if not pending or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def all_probed(self) -> bool:
        return all(s.probes for s in self.statuses.values())
