"""The errors of ``dorm.contrib.background``."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["BackgroundTasksError", "DurableUnavailableError"]


class BackgroundTasksError(DormError):
    """A ``BackgroundTasks`` used out of turn (``add()`` or ``run()`` while it runs)."""


class DurableUnavailableError(BackgroundTasksError, ImportError):
    """``BackgroundTasks(durable=True)`` without the dorm-tasks distribution installed."""
