"""The worker loop: claim a batch, run it, record the results; wait on LISTEN or poll when idle."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
import logging
import signal
import threading
import time
import traceback
import uuid
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

from dorm import transaction
from dorm.exceptions import DormError

if TYPE_CHECKING:
    from dorm.contrib.listen_notify.listener import Listener
    from dorm.contrib.tasks.queue import TaskQueue

__all__ = ["Job", "Worker"]

logger = logging.getLogger("dorm.contrib.tasks")

UTC = datetime.UTC
_MAX_ERROR = 8000
# How often an idle worker looks at its stop flags while it waits.
_SLICE = 0.1
# A transaction runs a batch's tasks until this many seconds have passed, then commits:
# fast tasks share a commit, a slow one does not hold the rows (or, on SQLite, the
# database) of the tasks after it.
_GROUP_SECONDS = 0.1
_FIRST_CLAIM = 10


class _LeaseLost(Exception):
    """A done or failed mark found a row another worker holds now: roll the group back."""


class Job(NamedTuple):
    """One claimed row."""

    id: int
    name: str
    payload: str
    attempts: int
    priority: int
    eta: Any


def _now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


class Worker:
    """One worker loop over a ``TaskQueue``; ``TaskQueue.run()`` builds and runs it."""

    def __init__(
        self,
        queue: TaskQueue,
        *,
        once: bool = False,
        max_tasks: int | None = None,
        stop_event: threading.Event | None = None,
        listen: bool = True,
        cron: bool = False,
        handle_signals: bool = True,
    ) -> None:
        if max_tasks is not None and (not isinstance(max_tasks, int) or max_tasks < 1):
            raise ValueError(f"run(max_tasks=...) must be an int >= 1 or None, got {max_tasks!r}")
        self.queue = queue
        self.once = once
        self.max_tasks = max_tasks
        self.stop_event = stop_event
        self.listen = listen
        self.cron = cron
        self.handle_signals = handle_signals
        self.processed = 0
        self._signalled = False
        self._lock = threading.Lock()
        self._held: list[int] = []
        self._token = ""
        self._beat_stop = threading.Event()
        self._listener: Listener | None = None
        self._listen_retry_at = 0.0
        self._next_sweep = 0.0
        self._sweep_every = max(0.2, min(queue.lease_seconds / 4, 15.0))
        self._cron_minute: int | None = None
        self._grouping = False
        # Rows claimed per round: grows while batches finish quickly, shrinks with slow tasks.
        self._claim_size = min(queue.batch_size, _FIRST_CLAIM)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        previous = self._install_signals()
        queue = self.queue
        queue._wake.workers += 1
        beat = threading.Thread(target=self._heartbeat, name="dorm-tasks-lease", daemon=True)
        beat.start()
        try:
            if not self.once:
                self._open_listener()
            while not self._stopping():
                try:
                    if not self._step():
                        break
                except DormError as exc:
                    if self.once:
                        raise
                    # The database went away or is locked: the batch rolled back (its rows
                    # are taken again after their lease), so wait and go on.
                    logger.warning("%s: %s; retrying in %gs", queue, exc, queue.poll_interval)
                    self._pause(queue.poll_interval)
        finally:
            self._beat_stop.set()
            beat.join()
            if self._listener is not None:
                self._listener.close()
            queue._wake.workers -= 1
            self._restore_signals(previous)
        return self.processed

    def _step(self) -> bool:
        """Claim and run one batch, or wait when there is none; False ends the loop."""
        queue = self.queue
        self._maintain()
        limit = self._claim_size
        if self.max_tasks is not None:
            limit = min(limit, self.max_tasks - self.processed)
        queue._wake.event.clear()
        jobs = self._claim(limit)
        if not jobs:
            if self.once:
                return False
            self._idle()
            return True
        self._run_batch(jobs)
        return self.max_tasks is None or self.processed < self.max_tasks

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping() and time.monotonic() < deadline:
            time.sleep(min(_SLICE, max(0.0, deadline - time.monotonic())))

    def _stopping(self) -> bool:
        return self._signalled or (self.stop_event is not None and self.stop_event.is_set())

    def _maintain(self) -> None:
        """Sweep expired leases and tick cron when due (cheap when not due)."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_every
            self.sweep()
        if self.cron:
            minute = int(time.time() // 60)
            if minute != self._cron_minute:
                self._cron_minute = minute
                from dorm.contrib.tasks.cron import run_cron_tick

                run_cron_tick(self.queue)

    # -- claim, run, finish ---------------------------------------------------------------------

    def _claim(self, limit: int) -> list[Job]:
        queue = self.queue
        db = queue.connection()
        st = queue.statements(db)
        now = _now()
        token = uuid.uuid4().hex
        lease_until = now + datetime.timedelta(seconds=queue.lease_seconds)
        rows = db.fetchall(st.claim, st.claim_params(lease_until, token, now, limit))
        if not rows:
            return []
        jobs = sorted((Job(*row[:6]) for row in rows), key=lambda j: (j.priority, j.eta, j.id))
        with self._lock:
            self._token = token
            self._held = [j.id for j in jobs]
        return jobs

    def _run_batch(self, jobs: list[Job]) -> None:
        """Run a claimed batch in groups (see ``_run_group``) and adapt the next claim:
        a batch done within one group doubles it (up to ``batch_size``); slow tasks halve
        it and give the rows not started back, for idle workers to take."""
        token = self._token
        rest = jobs
        try:
            rest = self._run_group(rest, token)
            if not rest:
                self._claim_size = min(self.queue.batch_size, self._claim_size * 2)
            elif not self._stopping():
                self._claim_size = max(1, self._claim_size // 2)
            if rest:
                self._release([j.id for j in rest], token)
        finally:
            with self._lock:
                self._held = []

    def _run_group(self, jobs: list[Job], token: str) -> list[Job]:
        """Run ``jobs`` in one transaction until ``_GROUP_SECONDS`` have passed; return the
        ones still to run.

        Each task runs in a savepoint of that transaction, and its done (or failed) mark is
        written in the same transaction, where the token is still this worker's: a task's
        database effects and its mark commit together or not at all, whenever the worker
        dies. Should a mark find a row this worker no longer owns (its lease ran out and
        another worker claimed it), the whole transaction is rolled back and the tasks
        still owned run again.
        """
        queue = self.queue
        using = queue.using
        ran: list[Job] = []
        self._grouping = True
        try:
            with transaction.atomic(using=using):
                done: list[int] = []
                failed: list[tuple[Job, str]] = []
                began = time.monotonic()
                for job in jobs:
                    ran.append(job)
                    error = self._execute_in_savepoint(job, using)
                    self.processed += 1
                    if error is None:
                        done.append(job.id)
                    else:
                        failed.append((job, error))
                    if self._stopping() or time.monotonic() - began >= _GROUP_SECONDS:
                        break
                marked = self._finish(done, token) if done else 0
                marked += sum(self._fail(job, token, error) for job, error in failed)
                if marked != len(ran):
                    raise _LeaseLost
        except _LeaseLost:
            return self._after_lost_lease(ran, token) + jobs[len(ran) :]
        finally:
            self._grouping = False
            gone = {j.id for j in ran}
            with self._lock:
                self._held = [i for i in self._held if i not in gone]
        return jobs[len(ran) :]

    def _after_lost_lease(self, ran: list[Job], token: str) -> list[Job]:
        """The jobs of a rolled-back group that this worker still owns (to run again)."""
        db = self.queue.connection()
        st = self.queue.statements(db)
        owned = {row[0] for row in db.fetchall(st.owned, [st.ids([j.id for j in ran]), token])}
        self.processed -= len(ran)  # none of them completed
        for job in ran:
            if job.id not in owned:
                logger.warning(
                    "%s: task %s#%s lost its lease to another worker while it ran; its "
                    "changes were rolled back",
                    self.queue,
                    job.name,
                    job.id,
                )
        return [j for j in ran if j.id in owned]

    def _execute_in_savepoint(self, job: Job, using: str) -> str | None:
        """``_execute`` inside a savepoint that is rolled back when the task fails."""
        with transaction.atomic(using=using):
            error = self._execute(job)
            if error is not None:
                transaction.set_rollback(True, using=using)
            elif transaction.get_rollback(using=using):
                # The task caught a database error without its own atomic() block: its
                # changes are rolled back, so it did not run.
                error = (
                    "a database error inside the task was caught and not re-raised; its "
                    "changes were rolled back (wrap the statement that may fail in its own "
                    "transaction.atomic() block)"
                )
        return error

    def _execute(self, job: Job) -> str | None:
        """Run one job; return None on success, else the error text to store."""
        task = self.queue.tasks.get(job.name)
        if task is None:
            return (
                f"no task named {job.name!r} is registered on {self.queue!r} in this worker "
                f"(import the module that defines it before starting the worker)"
            )
        try:
            data = json.loads(job.payload)
            result = task.func(*data.get("args", ()), **data.get("kwargs", {}))
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except Exception as exc:
            logger.warning(
                "task %s#%s failed (attempt %s): %r", job.name, job.id, job.attempts, exc
            )
            text = "".join(traceback.format_exception(exc))
            return text[-_MAX_ERROR:]
        return None

    def _finish(self, ids: list[int], token: str) -> int:
        """Mark ``ids`` done where this worker still holds them; return how many."""
        db = self.queue.connection()
        st = self.queue.statements(db)
        return db.execute(st.finish, [st.ts(_now()), st.ids(ids), token])

    def _fail(self, job: Job, token: str, error: str) -> int:
        queue = self.queue
        db = queue.connection()
        st = queue.statements(db)
        now = _now()
        if job.attempts >= queue.max_attempts:
            status, eta, finished = "dead", now, st.ts(now)
        else:
            status, finished = "queued", None
            eta = now + datetime.timedelta(seconds=queue.backoff(job.attempts))
        return db.execute(st.fail, [status, st.ts(eta), error, finished, job.id, token])

    def _release(self, ids: list[int], token: str) -> None:
        """Give back claimed rows that did not start (stopping): queued, attempt not counted."""
        if ids:
            db = self.queue.connection()
            st = self.queue.statements(db)
            db.execute(st.release, [st.ids(ids), token])
            gone = set(ids)
            with self._lock:
                self._held = [i for i in self._held if i not in gone]

    def sweep(self) -> int:
        """Requeue (or bury, past ``max_attempts``) running rows whose lease has expired."""
        queue = self.queue
        db = queue.connection()
        st = queue.statements(db)
        message = "lease expired: the worker running it stopped or was killed"
        count = db.execute(st.sweep, [queue.max_attempts, message, st.ts(_now())])
        if count:
            logger.warning("%s: %d task(s) with an expired lease taken back", queue, count)
        return count

    # -- lease heartbeat -----------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Renew the lease of the held batch every third of the lease while the worker lives."""
        queue = self.queue
        while not self._beat_stop.wait(queue.lease_seconds / 3):
            with self._lock:
                ids, token = list(self._held), self._token
            if not ids or (self._grouping and queue.connection().vendor == "sqlite"):
                # On SQLite the running batch holds the write lock: the renewal would only
                # wait for it, and the batch's rows cannot be taken meanwhile anyway.
                continue
            try:
                db = queue.connection()
                st = queue.statements(db)
                until = _now() + datetime.timedelta(seconds=queue.lease_seconds)
                db.execute(st.renew, [st.ts(until), st.ids(ids), token])
            except DormError:
                logger.exception("%s: could not renew the lease of %d task(s)", queue, len(ids))

    # -- waiting ------------------------------------------------------------------------------

    def _open_listener(self) -> None:
        queue = self.queue
        if not self.listen or queue.channel is None:
            return
        if queue.connection().vendor != "postgresql":
            return
        from dorm.contrib.listen_notify.listener import Listener

        self._listen_retry_at = time.monotonic() + 5.0
        try:
            self._listener = Listener(queue.channel, using=queue.using)
        except DormError as exc:
            logger.warning("%s: LISTEN unavailable, polling instead: %s", queue, exc)

    def _idle(self) -> None:
        """Wait for a NOTIFY, a commit in this process, a stop, or ``poll_interval``."""
        deadline = time.monotonic() + self.queue.poll_interval
        if self._listener is None and self.listen and time.monotonic() >= self._listen_retry_at:
            self._open_listener()
        while not self._stopping():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            wait = min(remaining, _SLICE)
            listener = self._listener
            if listener is not None:
                try:
                    if listener.wait(wait):
                        return
                except DormError as exc:
                    logger.warning("%s: LISTEN connection lost, polling: %s", self.queue, exc)
                    listener.close()
                    self._listener = None
                if self.queue._wake.event.is_set():
                    return
            elif self.queue._wake.event.wait(wait):
                return

    # -- signals ------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info(
            "%s: %s received, stopping after the current task",
            self.queue,
            signal.Signals(signum).name,
        )
        self._signalled = True

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return previous
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
