"""``retry_with_backoff`` and ``dead_letters``: failure handling over the ORM."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dorm.contrib.outbox.models import OutboxEvent
    from dorm.contrib.tasks.queue import TaskQueue

__all__ = ["dead_letters", "retry_with_backoff"]

UTC = datetime.UTC


def retry_with_backoff(
    queue: TaskQueue, event: OutboxEvent, error: str | None = None
) -> datetime.datetime | None:
    """Schedule ``event`` again after a failed attempt; return its new ETA, or None if dead.

    ``event.attempts`` counts the tries made so far (the worker counts a try when it
    claims the row; a relay that does not should add one first). Below the queue's
    ``max_attempts`` the row goes back to ``queued`` with ``eta = now + backoff``
    (``backoff_base * 2 ** (attempts - 1)`` seconds, at most ``backoff_max``); at the limit
    it becomes ``dead``. ``error``, when given, is stored in ``last_error``.
    """
    if not isinstance(event, queue.model):
        raise TypeError(
            f"retry_with_backoff({queue!r}, {event!r}): expected a {queue.model.__name__} row"
        )
    now = datetime.datetime.now(UTC)
    row: Any = event  # field attributes hold values on instances; mypy sees the Field classes
    row.lease_until = None
    if error is not None:
        row.last_error = error
    fields = ["status", "eta", "lease_until", "last_error", "finished_at"]
    if row.attempts >= queue.max_attempts:
        row.status = "dead"
        row.finished_at = now
        row.save(update_fields=fields)
        return None
    row.status = "queued"
    row.eta = now + datetime.timedelta(seconds=queue.backoff(row.attempts))
    row.finished_at = None
    row.save(update_fields=fields)
    eta: datetime.datetime = row.eta
    return eta


def dead_letters(queue: TaskQueue) -> Any:
    """A QuerySet of the queue's rows with ``status="dead"``, oldest first."""
    return queue.model.objects.filter(status="dead").order_by("id")
