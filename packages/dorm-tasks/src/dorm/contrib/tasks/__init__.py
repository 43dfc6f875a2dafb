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

from dorm.contrib.tasks.cron import run_cron_tick
from dorm.contrib.tasks.exceptions import TaskArgumentError, TaskError
from dorm.contrib.tasks.queue import TaskQueue
from dorm.contrib.tasks.retry import dead_letters, retry_with_backoff
from dorm.contrib.tasks.task import Task, task

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
