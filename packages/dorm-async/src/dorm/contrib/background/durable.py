"""``BackgroundTasks(durable=True)``: each task handed to the queue of dorm-tasks.

A durable task is a dorm-tasks ``Task`` (a function decorated with ``@task(queue, ...)``);
``run()`` queues every added call with ``adelay()`` in one transaction per database the
queues use (nested in the caller's ``aatomic()`` block, if any), so either all of them are
queued or, when one fails, none. Workers (``queue.run()`` / ``dorm worker``) run them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dorm.contrib.background.exceptions import DurableUnavailableError
from dorm.contrib.sync_dataloader.batches import describe

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dorm.contrib.background.tasks import Job

__all__ = ["check_durable", "hand_off", "task_class"]

_DISTRIBUTION = "dorm-tasks"
_MODULE = "dorm.contrib.tasks"
# delay()'s own options: not arguments of the task function.
_DELAY_OPTIONS = ("eta", "delay_seconds", "priority")


def task_class() -> type[Any]:
    """dorm-tasks' ``Task`` class.

    :raises DurableUnavailableError: dorm-tasks is not installed.
    """
    try:
        from dorm.contrib.tasks import Task
    except ModuleNotFoundError as exc:
        if exc.name != _MODULE:
            raise  # dorm-tasks is there but broken: its own error says more
        raise DurableUnavailableError(
            f"BackgroundTasks(durable=True) hands each task to the queue of "
            f"{_DISTRIBUTION}, and the {_DISTRIBUTION} distribution is not installed: "
            f"pip install {_DISTRIBUTION} (or dorm-async[durable]), or pass durable=False "
            f"to run the tasks in this process",
            name=_MODULE,
        ) from exc
    return Task


def check_durable(
    task_type: type[Any], fn: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    """Raise TypeError unless ``fn`` is a dorm-tasks task that can take these arguments."""
    if not isinstance(fn, task_type):
        raise TypeError(
            f"BackgroundTasks(durable=True).add({describe(fn)}): not a {_DISTRIBUTION} "
            f"task; a durable task runs in a worker, which finds it by name: decorate the "
            f"function with @task(queue, name=...) from {_MODULE}"
        )
    call_kwargs = {k: v for k, v in kwargs.items() if k not in _DELAY_OPTIONS}
    fn.encode(args, call_kwargs)  # TaskArgumentError (a TypeError) names the argument


async def hand_off(jobs: Sequence[Job]) -> list[Any]:
    """Queue every job with ``adelay()``, all in one transaction per database alias."""
    from dorm import transaction

    tasks: list[Any] = [job.fn for job in jobs]  # dorm-tasks Task objects (check_durable)
    aliases = sorted({task.queue.using for task in tasks})
    async with contextlib.AsyncExitStack() as stack:
        for alias in aliases:
            await stack.enter_async_context(transaction.aatomic(using=alias))
        return [
            await task.adelay(*job.args, **job.kwargs)
            for task, job in zip(tasks, jobs, strict=True)
        ]
