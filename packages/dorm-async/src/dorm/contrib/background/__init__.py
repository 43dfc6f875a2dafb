"""Bounded background tasks: sync and async functions, at most N at once, every failure kept.

Usage::

    from dorm.contrib.background import BackgroundTasks

    bg = BackgroundTasks(concurrency=8)
    bg.add(send_email, user.email)      # a sync function: runs in a thread
    bg.add(warm_cache)                  # a coroutine function: runs on the loop
    await bg.run()                      # waits for all; ExceptionGroup of the failures

    try:
        await bg.run()
    except* SMTPError as group:         # handle one kind of failure, re-raise the rest
        ...

``BackgroundTasks(durable=True)`` hands each task (a dorm-tasks ``@task``) to its queue
instead of running it here; it needs the dorm-tasks distribution.
"""

from __future__ import annotations

from dorm.contrib.background.exceptions import BackgroundTasksError, DurableUnavailableError
from dorm.contrib.background.tasks import BackgroundTasks

__all__ = ["BackgroundTasks", "BackgroundTasksError", "DurableUnavailableError"]
