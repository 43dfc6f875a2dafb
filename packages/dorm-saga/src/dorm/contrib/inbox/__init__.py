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

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.inbox.records import (
        InboxRecord,
        idempotent,
        prune,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "InboxRecord": "dorm.contrib.inbox.records",
        "idempotent": "dorm.contrib.inbox.records",
        "prune": "dorm.contrib.inbox.records",
    },
)


__all__ = ["InboxRecord", "idempotent", "prune"]
