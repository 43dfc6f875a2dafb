"""Serialise check-then-create on one (table, lookup) key: exists_or_create's race guard."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper

__all__ = ["lock_lookup", "lookup_lock_key"]


def lookup_lock_key(table: str, lookup: Mapping[str, Any]) -> int:
    """Return a signed 64-bit key for ``table`` and the sorted ``lookup`` items.

    Stable across processes and runs (sha256 of the reprs, never ``hash()``, which is
    salted per process), so every worker of an application agrees on it.
    """
    parts = [table]
    for name, value in sorted(lookup.items()):
        value = getattr(value, "pk", value) if hasattr(value, "_meta") else value
        parts.append(f"{name}={type(value).__name__}:{value!r}")
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_lookup(connection: BaseDatabaseWrapper, table: str, lookup: Mapping[str, Any]) -> None:
    """Block until no other transaction holds the lock of this (table, lookup) key.

    Call inside ``atomic()``: the lock lasts until that transaction ends. PostgreSQL takes
    a transaction-scoped advisory lock; SQLite needs nothing more, because dorm's
    ``atomic()`` opens with ``BEGIN IMMEDIATE``, which already holds the database's single
    write lock. Other vendors rely on their unique constraints.
    """
    if connection.vendor == "postgresql":
        key = lookup_lock_key(table, lookup)
        connection.fetchone(f"SELECT pg_advisory_xact_lock({connection.ops.placeholder})", [key])
