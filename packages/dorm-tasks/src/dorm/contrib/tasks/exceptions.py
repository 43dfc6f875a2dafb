"""The errors of dorm-tasks."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["TaskArgumentError", "TaskError"]


class TaskError(DormError):
    """Base class of dorm-tasks' own errors."""


class TaskArgumentError(TaskError, TypeError):
    """``delay()`` got arguments the task cannot take or that are not JSON values."""
