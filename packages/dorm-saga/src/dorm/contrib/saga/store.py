"""Where durable sagas record their progress: the table ``dorm_saga_run``.

One row per run. A step's action and the row's update (the step appended to ``completed``,
the context saved) commit in one transaction, so after a crash the row says exactly which
steps took effect. Every update is conditional on ``owner``: a run taken over by
``dorm saga resume`` makes the old owner's next update match nothing, and that step rolls
back instead of running twice.

The table is created on first use (``ensure_table``) or by ``install()`` (say, in a
deployment step); ``makemigrations`` does not manage it.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import uuid
import weakref
from typing import Any

import dorm
from dorm.contrib.saga.exceptions import SagaOwnershipError
from dorm.exceptions import DatabaseError

__all__ = ["SagaRunRecord", "UNFINISHED", "ensure_table", "install", "new_owner"]

#: States of a run that ``dorm saga resume`` picks up (``failed``: a compensation raised).
UNFINISHED = ("running", "compensating", "failed")


class SagaRunRecord(dorm.Model):
    """The progress of one durable saga run."""

    run_id = dorm.CharField(max_length=36, primary_key=True)
    name = dorm.CharField(max_length=200, db_index=True)
    # running, compensating, done, compensated, failed
    state = dorm.CharField(max_length=20, db_index=True)
    completed = dorm.JSONField(default=list)
    compensated = dorm.JSONField(default=list)
    ctx = dorm.JSONField(default=dict)
    error = dorm.TextField(default="")
    owner = dorm.CharField(max_length=200)
    created_at = dorm.DateTimeField()
    updated_at = dorm.DateTimeField()

    class Meta:
        app_label = "dorm_saga"
        db_table = "dorm_saga_run"

    def __str__(self) -> str:
        return f"{self.name} {self.run_id} ({self.state})"


_READY: weakref.WeakSet[Any] = weakref.WeakSet()


def install(using: str = "default") -> None:
    """Create the ``dorm_saga_run`` table on ``using`` if it is missing."""
    from dorm.db.connection import connections
    from dorm.migrations.schema import SchemaEditor

    connection = connections[using]
    table = SagaRunRecord._meta.db_table
    if table not in connection.table_names():
        try:
            with SchemaEditor(connection=connection) as editor:
                editor.create_model(SagaRunRecord)
        except DatabaseError:
            # Another process created it first.
            if table not in connection.table_names():
                raise
    _READY.add(connection)


def ensure_table(using: str) -> None:
    """``install(using)`` once per connection wrapper."""
    from dorm.db.connection import connections

    if connections[using] not in _READY:
        install(using)


def new_owner() -> str:
    """A name for this execution of a run: host, process and a random suffix."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def json_ctx(ctx: dict[str, Any], saga: str) -> dict[str, Any]:
    """``ctx`` as stored: a JSON round trip, so that a resumed run sees what a fresh one
    would have stored.

    :raises TypeError: a value is not JSON-serializable; names the key.
    """
    try:
        return json.loads(json.dumps(ctx))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        bad = [k for k, v in ctx.items() if not _serializable(v)]
        raise TypeError(
            f"durable saga {saga!r}: the context must be JSON-serializable; "
            f"key(s) {', '.join(map(repr, bad)) or '?'} are not ({exc})"
        ) from None


def _serializable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def update(run_id: str, owner: str, using: str, **values: Any) -> None:
    """Update the run's row if ``owner`` still owns it.

    :raises SagaOwnershipError: another process took the run over.
    """
    values["updated_at"] = now()
    changed = SagaRunRecord.objects.using(using).filter(run_id=run_id, owner=owner).update(**values)
    if changed != 1:
        raise SagaOwnershipError(
            f"saga run {run_id}: taken over by another process (dorm saga resume); "
            f"this process stops running it"
        )


async def aupdate(run_id: str, owner: str, using: str, **values: Any) -> None:
    values["updated_at"] = now()
    changed = (
        await SagaRunRecord.objects.using(using)
        .filter(run_id=run_id, owner=owner)
        .aupdate(**values)
    )
    if changed != 1:
        raise SagaOwnershipError(
            f"saga run {run_id}: taken over by another process (dorm saga resume); "
            f"this process stops running it"
        )


def claim(run_id: str, using: str) -> tuple[SagaRunRecord, str] | None:
    """Take the run over: a new owner, set only if the row is unchanged since it was read
    (two resumers cannot both win). None when the run is finished or another won."""
    record = SagaRunRecord.objects.using(using).filter(run_id=run_id).first()
    if record is None or record.state not in UNFINISHED:
        return None
    owner = new_owner()
    changed = (
        SagaRunRecord.objects.using(using)
        .filter(run_id=run_id, owner=record.owner, updated_at=record.updated_at)
        .update(owner=owner, updated_at=now())
    )
    if changed != 1:
        return None
    record.owner = owner
    return record, owner
