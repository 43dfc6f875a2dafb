"""An exactly-once consumer: each (message id, handler) is handled once, however often
the message is delivered and however many consumers race for it.

Usage::

    from dorm.contrib.inbox import InboxRecord, idempotent

    class Inbox(InboxRecord):
        class Meta:
            db_table = "inbox"

    @idempotent(Inbox)
    def handle_payment(message_id: str, payload: dict) -> None: ...

    handle_payment("msg-1", {"amount": 10})    # runs the handler
    handle_payment("msg-1", {"amount": 10})    # a duplicate: skipped, returns None

The record and the handler's writes commit in one transaction; a handler that raises
rolls its record back, so a redelivery runs it again. ``Inbox.prune(older_than=...)`` and
``dorm inbox prune`` delete old records.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dorm.contrib.inbox.records import (
        InboxRecord,
        idempotent,
        prune,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
_EXPORTS = {
    "InboxRecord": "dorm.contrib.inbox.records",
    "idempotent": "dorm.contrib.inbox.records",
    "prune": "dorm.contrib.inbox.records",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = ["InboxRecord", "idempotent", "prune"]
