"""The errors of dorm-pgvector."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["PgvectorError", "VectorExtensionMissingError"]


class PgvectorError(DormError):
    """Base class of dorm-pgvector's own errors."""


class VectorExtensionMissingError(PgvectorError):
    """The PostgreSQL server has no ``vector`` extension to create; the message says what
    to install."""
