"""The transactional outbox: an abstract model whose rows are written in the caller's transaction.

Usage::

    from dorm.contrib.outbox import OutboxEvent

    class BackgroundTask(OutboxEvent):
        class Meta:
            db_table = "background_task"

A row is visible to workers only once the transaction that wrote it commits; a rollback
leaves nothing behind. ``dorm.contrib.tasks`` builds its queue on this model.
"""

from __future__ import annotations

from dorm.contrib.outbox.models import STATUSES, OutboxEvent

__all__ = ["STATUSES", "OutboxEvent"]
