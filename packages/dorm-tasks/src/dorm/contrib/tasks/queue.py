"""``TaskQueue``: the task registry of one outbox model, and the enqueue path."""

from __future__ import annotations

import datetime
import threading
from typing import TYPE_CHECKING, Any

from dorm import transaction
from dorm.contrib.listen_notify.listener import _check_channel
from dorm.contrib.outbox.models import OutboxEvent
from dorm.contrib.tasks.sql import Statements
from dorm.db.connection import get_connection

if TYPE_CHECKING:
    from dorm.contrib.tasks.task import Task
    from dorm.db.backends.base import BaseDatabaseWrapper

__all__ = ["TaskQueue"]

UTC = datetime.UTC


class _Wakeup:
    """Commit-to-worker wake-up inside one process, shared by every queue over one model."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.workers = 0


_wakeups: dict[type[OutboxEvent], _Wakeup] = {}
_wakeups_lock = threading.Lock()


def _wakeup_for(model: type[OutboxEvent]) -> _Wakeup:
    with _wakeups_lock:
        return _wakeups.setdefault(model, _Wakeup())


class TaskQueue:
    """The tasks of one ``OutboxEvent`` subclass, and how its workers behave.

    ``channel`` is the PostgreSQL NOTIFY channel (None: workers poll). A task that raises
    is retried ``max_attempts - 1`` times, ``backoff_base * 2 ** (attempt - 1)`` seconds
    apart (at most ``backoff_max``), then marked ``dead``. A worker holds each claimed row
    for ``lease_seconds`` and renews the lease while it is alive; a row whose lease ran out
    is taken again. Workers claim up to ``batch_size`` rows at a time (starting at 10 and
    adapting to how long the tasks take) and, when idle, wait for a NOTIFY or
    ``poll_interval`` seconds.
    """

    def __init__(
        self,
        model: type[OutboxEvent],
        channel: str | None = "tasks",
        max_attempts: int = 5,
        *,
        using: str = "default",
        lease_seconds: float = 30.0,
        backoff_base: float = 2.0,
        backoff_max: float = 3600.0,
        batch_size: int = 100,
        poll_interval: float = 1.0,
    ) -> None:
        if not (isinstance(model, type) and issubclass(model, OutboxEvent)):
            raise TypeError(f"TaskQueue(model={model!r}): expected a subclass of OutboxEvent")
        if model._meta.abstract:
            raise TypeError(
                f"TaskQueue(model={model.__name__}): the model is abstract; subclass it "
                f"(class BackgroundTask({model.__name__}): ...)"
            )
        if channel is not None:
            _check_channel(channel)
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"TaskQueue: max_attempts must be an int >= 1, got {max_attempts!r}")
        for label, number in (
            ("lease_seconds", lease_seconds),
            ("poll_interval", poll_interval),
            ("backoff_max", backoff_max),
        ):
            if not number > 0:
                raise ValueError(f"TaskQueue: {label} must be > 0, got {number!r}")
        if backoff_base < 0:
            raise ValueError(f"TaskQueue: backoff_base must be >= 0, got {backoff_base!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"TaskQueue: batch_size must be an int >= 1, got {batch_size!r}")
        self.model = model
        self.channel = channel
        self.max_attempts = max_attempts
        self.using = using
        self.lease_seconds = float(lease_seconds)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.batch_size = batch_size
        self.poll_interval = float(poll_interval)
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._statements: dict[str, Statements] = {}
        # Set after a commit that queued work, for workers running in this process.
        self._wake = _wakeup_for(model)

    def __repr__(self) -> str:
        return f"<TaskQueue {self.model.__name__} channel={self.channel!r}>"

    # -- registry -----------------------------------------------------------------------------

    def _register(self, task: Task[Any, Any]) -> None:
        existing = self.tasks.get(task.name)
        if existing is not None:
            where = f"{existing.func.__module__}.{existing.func.__qualname__}"
            raise RuntimeError(
                f"task {task.name!r} is already registered on {self!r} (by {where}); "
                f"give @task(..., name=...) a unique name"
            )
        self.tasks[task.name] = task

    def backoff(self, attempts: int) -> float:
        """Seconds to wait before the next try, after ``attempts`` tries."""
        exponent = min(max(attempts - 1, 0), 62)
        return min(self.backoff_max, self.backoff_base * 2.0**exponent)

    # -- SQL ----------------------------------------------------------------------------------

    def connection(self) -> BaseDatabaseWrapper:
        return get_connection(self.using)

    def statements(self, db: BaseDatabaseWrapper | None = None) -> Statements:
        """The queue's SQL for its database (built once per vendor)."""
        db = db or self.connection()
        found = self._statements.get(db.vendor)
        if found is None:
            found = self._statements[db.vendor] = Statements(self.model, db)
        return found

    def _insert(self, name: str, payload: str, priority: int, eta: datetime.datetime) -> int:
        db = self.connection()
        st = self.statements(db)
        now = datetime.datetime.now(UTC)
        params: list[object] = [name, payload, priority, st.ts(eta), st.ts(now)]
        if st.pg and self.channel is not None:
            row = db.fetchone(st.insert_notify, [*params, self.channel])
        else:
            row = db.fetchone(st.insert, params)
        self._queued()
        assert row is not None
        return int(row[0])

    def _insert_many(
        self, name: str, payloads: str, count: int, priority: int, eta: datetime.datetime
    ) -> int:
        """Insert ``count`` rows whose payloads are the elements of the JSON array ``payloads``."""
        if not count:
            return 0
        db = self.connection()
        st = self.statements(db)
        params: list[object] = [name, priority, st.ts(eta), st.ts(datetime.datetime.now(UTC))]
        params.append(payloads)
        if st.pg and self.channel is not None:
            row = db.fetchone(st.insert_many_notify, [*params, self.channel])
            inserted = int(row[0]) if row else 0
        else:
            inserted = db.execute(st.insert_many, params)
        self._queued()
        return inserted

    def _queued(self) -> None:
        if self._wake.workers:
            # Wake this process's idle workers once the rows are visible.
            transaction.on_commit(self._wake.event.set, using=self.using)

    # -- worker -------------------------------------------------------------------------------

    def run(
        self,
        *,
        once: bool = False,
        max_tasks: int | None = None,
        stop_event: threading.Event | None = None,
        listen: bool = True,
        cron: bool = False,
        handle_signals: bool = True,
    ) -> int:
        """Run the worker loop; return the number of tasks it ran.

        ``once=True`` runs every task due now and returns; ``max_tasks`` and ``stop_event``
        bound the loop otherwise. On PostgreSQL with a channel the idle worker waits on
        LISTEN; elsewhere (or with ``listen=False``) it polls. ``cron=True`` also calls
        ``run_cron_tick`` once a minute. SIGTERM / SIGINT (main thread only, with
        ``handle_signals``) let the current task finish, then stop the loop.
        """
        from dorm.contrib.tasks.worker import Worker

        worker = Worker(
            self,
            once=once,
            max_tasks=max_tasks,
            stop_event=stop_event,
            listen=listen,
            cron=cron,
            handle_signals=handle_signals,
        )
        return worker.run()
