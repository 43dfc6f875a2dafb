"""Errors raised while loading, planning and applying migrations."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = [
    "BadMigrationError",
    "CircularDependencyError",
    "InvalidStateError",
    "IrreversibleError",
    "MigrationConflictError",
    "MigrationError",
    "NodeNotFoundError",
]


class MigrationError(DormError):
    """Base class of the migration errors."""


class BadMigrationError(MigrationError):
    """A migration module cannot be used (no ``Migration`` class, bad name, ...)."""


class NodeNotFoundError(MigrationError):
    """A migration depends on (or a target names) a migration that does not exist."""


class CircularDependencyError(MigrationError):
    """The migrations' dependencies form a cycle."""


class MigrationConflictError(MigrationError):
    """An app has more than one leaf migration (two branches made in parallel)."""


class IrreversibleError(MigrationError):
    """An operation cannot be unapplied (RunSQL without reverse_sql, ...)."""


class InvalidStateError(MigrationError):
    """The project state is inconsistent (unknown model, dangling relation, ...)."""
