"""A task queue on the database you already have: transactional enqueue, retries, cron.

Usage::

    import dorm
    from dorm.contrib.outbox import OutboxEvent
    from dorm.contrib.tasks import TaskQueue, task

    class BackgroundTask(OutboxEvent):
        class Meta:
            db_table = "background_task"

    queue = TaskQueue(model=BackgroundTask, channel="tasks")

    @task(queue, name="send-welcome")
    def send_welcome(user_id: int) -> None: ...

    with dorm.transaction.atomic():
        send_welcome.delay(42)          # a row in this transaction; NOTIFY on commit

    queue.run()                         # the worker loop (or: dorm worker app.tasks:queue)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Not lazy: ``task`` is also a submodule's name, and importing that submodule (the worker
# does) would bind this package's ``task`` to the module if it were not already set.
from dorm.contrib.tasks.exceptions import TaskArgumentError, TaskError
from dorm.contrib.tasks.task import Task, task
from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.tasks.cron import run_cron_tick
    from dorm.contrib.tasks.queue import TaskQueue
    from dorm.contrib.tasks.retry import dead_letters, retry_with_backoff

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of ``dorm --help``) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "run_cron_tick": "dorm.contrib.tasks.cron",
        "TaskQueue": "dorm.contrib.tasks.queue",
        "dead_letters": "dorm.contrib.tasks.retry",
        "retry_with_backoff": "dorm.contrib.tasks.retry",
    },
)

__version__ = "1.0.0"

__all__ = [
    "Task",
    "TaskArgumentError",
    "TaskError",
    "TaskQueue",
    "__version__",
    "dead_letters",
    "retry_with_backoff",
    "run_cron_tick",
    "task",
]
