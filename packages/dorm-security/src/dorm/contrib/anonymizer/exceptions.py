"""The errors of dorm.contrib.anonymizer."""

from __future__ import annotations

from typing import Any

from dorm.exceptions import DormError

__all__ = ["AnonymizationError"]


class AnonymizationError(DormError):
    """A batch failed; the batches before it are committed.

    ``last_pk`` is the primary key of the last row done (None: nothing was committed), to
    pass as ``start_after=`` (``--after``) to resume; ``rows_done`` is how many rows the
    committed batches changed.
    """

    def __init__(self, message: str, last_pk: Any = None, rows_done: int = 0) -> None:
        super().__init__(message)
        self.last_pk = last_pk
        self.rows_done = rows_done
