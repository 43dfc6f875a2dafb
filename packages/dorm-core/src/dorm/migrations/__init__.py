"""Schema changes: the SchemaEditor and migrations (``from dorm.migrations import Migration``)."""

from dorm.migrations.migration import Migration

__all__ = ["Migration"]
