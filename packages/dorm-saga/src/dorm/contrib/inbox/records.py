"""``InboxRecord`` and ``@idempotent``: the unique constraint decides, not a lookup.

The handler's call records ``(message_id, handler_name)`` with
``INSERT ... ON CONFLICT (message_id, handler_name) DO NOTHING`` inside the transaction
that then runs the handler. A second consumer of the same message blocks on the unique
index until the first commits (and then inserts nothing: a duplicate) or rolls back (and
then inserts: the handler runs again). No check-then-insert window exists.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import dorm
from dorm.models.base import ModelBase

__all__ = ["InboxRecord", "idempotent", "prune"]

F = TypeVar("F", bound=Callable[..., Any])

_FIELDS = ("message_id", "handler_name")


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _constraint_name(table: str) -> str:
    name = f"{table}_message_handler_uniq"
    if len(name) > 63:  # PostgreSQL's identifier limit
        name = f"{table[:36]}_{hashlib.sha1(table.encode()).hexdigest()[:8]}_message_handler_uniq"
    return name


class _InboxBase(ModelBase):
    """Gives every concrete subclass the unique constraint on (message_id, handler_name),
    whatever its own ``Meta`` says (a subclass's ``Meta`` replaces the abstract parent's)."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any], **kwargs: Any
    ) -> Any:
        cls = super().__new__(mcs, name, bases, attrs, **kwargs)
        opts = getattr(cls, "_meta", None)
        if opts is not None and not opts.abstract:
            covered = any(
                isinstance(c, dorm.UniqueConstraint)
                and tuple(c.fields) == _FIELDS
                and c.condition is None
                for c in opts.constraints
            ) or _FIELDS in [tuple(t) for t in opts.unique_together]
            if not covered:
                name = _constraint_name(opts.db_table)
                opts.constraints.append(dorm.UniqueConstraint(fields=list(_FIELDS), name=name))
        return cls


class InboxRecord(dorm.Model, metaclass=_InboxBase):
    """One handled message: ``(message_id, handler_name)`` is unique in every subclass."""

    message_id = dorm.CharField(max_length=255)
    handler_name = dorm.CharField(max_length=255)
    received_at = dorm.DateTimeField(default=_utc_now, db_index=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.handler_name}: {self.message_id}"

    @classmethod
    def prune(
        cls,
        older_than: datetime.timedelta,
        batch_size: int = 1000,
        using: str = "default",
    ) -> int:
        """Delete records received more than ``older_than`` ago, ``batch_size`` per
        transaction; return how many. A message redelivered after its record is pruned
        is handled again: keep records longer than your broker redelivers."""
        return prune(cls, older_than, batch_size, using)


def prune(
    model: type[InboxRecord],
    older_than: datetime.timedelta,
    batch_size: int = 1000,
    using: str = "default",
) -> int:
    """``model.prune(...)``: delete old inbox records in batches."""
    if not isinstance(older_than, datetime.timedelta):
        raise TypeError(f"older_than must be a datetime.timedelta, got {older_than!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    from dorm.transaction import atomic

    cutoff = _utc_now() - older_than
    records = model.objects.using(using)
    total = 0
    while True:
        with atomic(using=using):
            ids = list(
                records.filter(received_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return total
            records.filter(pk__in=ids).delete()
        total += len(ids)


def _insert_sql(model: type[InboxRecord], connection: Any) -> str:
    opts = model._meta
    qn, ph = connection.ops.quote_name, connection.ops.placeholder
    cols = [opts.get_field(n).column for n in ("message_id", "handler_name", "received_at")]
    target = ", ".join(qn(opts.get_field(n).column) for n in _FIELDS)
    return (
        f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(c) for c in cols)}) "
        f"VALUES ({ph}, {ph}, {ph}) ON CONFLICT ({target}) DO NOTHING"
    )


def _message_key(message_id: Any, handler: str) -> str:
    if message_id is None or message_id == "":
        raise ValueError(f"@idempotent handler {handler!r}: message_id must not be empty")
    key = str(message_id)
    if len(key) > 255:
        raise ValueError(
            f"@idempotent handler {handler!r}: message_id is {len(key)} characters; "
            f"InboxRecord.message_id holds 255"
        )
    return key


def idempotent(
    model: type[InboxRecord], handler_name: str | None = None, using: str = "default"
) -> Callable[[F], F]:
    """Run the decorated handler at most once per message id (its first argument).

    ``handler_name`` (default: the function's module and qualified name) keys the record,
    so several handlers may consume one message each once. A duplicate returns None
    without running the handler. Works on ``async def`` handlers too.
    """
    if not (isinstance(model, type) and issubclass(model, InboxRecord)) or model._meta.abstract:
        raise TypeError(f"@idempotent needs a concrete InboxRecord subclass, got {model!r}")

    def decorate(fn: F) -> F:
        name = handler_name or f"{fn.__module__}.{fn.__qualname__}"
        if len(name) > 255:
            raise ValueError(f"@idempotent: handler name {name[:40]!r}... exceeds 255 characters")
        field = model._meta.get_field("received_at")

        def params(message_id: Any) -> tuple[Any, ...]:
            stamp = field.get_db_prep_value(_utc_now())
            return (_message_key(message_id, name), name, stamp)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def arun(message_id: Any, *args: Any, **kwargs: Any) -> Any:
                from dorm.db.connection import connections, get_async_connection
                from dorm.transaction import aatomic

                sync = connections.sync_wrapper(using)
                async with aatomic(using=using):
                    inserted = await get_async_connection(using).execute(
                        _insert_sql(model, sync), params(message_id)
                    )
                    if not inserted:
                        return None
                    return await fn(message_id, *args, **kwargs)

            return arun  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(message_id: Any, *args: Any, **kwargs: Any) -> Any:
            from dorm.db.connection import connections
            from dorm.transaction import atomic

            connection = connections[using]
            with atomic(using=using):
                if not connection.execute(_insert_sql(model, connection), params(message_id)):
                    return None
                return fn(message_id, *args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
