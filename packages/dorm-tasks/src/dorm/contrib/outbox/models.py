"""``OutboxEvent``: the abstract model of an outbox / task-queue table, with its claim indexes."""

from __future__ import annotations

import datetime
from typing import Any

import dorm
from dorm.models.base import ModelBase

__all__ = ["STATUSES", "OutboxEvent", "utc_now"]

#: The life of a row: queued -> running -> done, or back to queued (retry), or dead.
STATUSES = ("queued", "running", "done", "dead")


def utc_now() -> datetime.datetime:
    """The current time, aware, in UTC (the default of ``eta`` and ``created_at``)."""
    return datetime.datetime.now(datetime.UTC)


def _queue_indexes() -> list[dorm.Index]:
    """The indexes a claim and a lease sweep need; unnamed, so each table gets its own names."""
    return [
        # The claim: WHERE status='queued' AND eta<=now ORDER BY priority, eta, id.
        dorm.Index(fields=["priority", "eta", "id"], condition=dorm.Q(status="queued")),
        # The sweep of expired leases: WHERE status='running' AND lease_until<now.
        dorm.Index(fields=["lease_until"], condition=dorm.Q(status="running")),
        # dead_letters(), `dorm tasks list|dead|purge`.
        dorm.Index(fields=["status", "name"]),
    ]


class _OutboxBase(ModelBase):
    """Gives every concrete subclass the queue indexes, whatever its own ``Meta`` says.

    A subclass with its own ``class Meta`` (``db_table = ...``) does not inherit the abstract
    parent's options, so the indexes are added here rather than in ``OutboxEvent.Meta``.
    """

    def __new__(
        mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any], **kwargs: Any
    ) -> Any:
        cls = super().__new__(mcs, name, bases, attrs, **kwargs)
        opts = getattr(cls, "_meta", None)
        if opts is not None and not opts.abstract:
            for index in _queue_indexes():
                if index not in opts.indexes:
                    opts.indexes.append(index)
        return cls


class OutboxEvent(dorm.Model, metaclass=_OutboxBase):
    """One queued unit of work: a task name, its JSON arguments and its delivery state.

    Subclass it once per queue (``class BackgroundTask(OutboxEvent)``). ``status`` is one of
    ``STATUSES``; ``attempts`` counts claims; ``lease_until`` / ``lease_token`` say which
    worker holds a running row and until when; ``last_error`` keeps the last failure;
    ``cron_key`` (unique) makes a cron slot enqueue at most once.
    """

    name = dorm.CharField(max_length=200)
    payload = dorm.JSONField(default=dict)
    status = dorm.CharField(max_length=16, default="queued")
    priority = dorm.IntegerField(default=0)
    eta = dorm.DateTimeField(default=utc_now)
    attempts = dorm.IntegerField(default=0)
    lease_until = dorm.DateTimeField(null=True, blank=True, default=None)
    lease_token = dorm.CharField(max_length=32, null=True, blank=True, default=None)
    last_error = dorm.TextField(null=True, blank=True, default=None)
    cron_key = dorm.CharField(max_length=255, null=True, blank=True, unique=True, default=None)
    created_at = dorm.DateTimeField(default=utc_now)
    finished_at = dorm.DateTimeField(null=True, blank=True, default=None)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name}#{self.pk} ({self.status})"
