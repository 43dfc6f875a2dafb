"""``@task(queue, ...)``: a function that runs inline when called and is queued by ``delay()``."""

from __future__ import annotations

import datetime
import functools
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from dorm.contrib.tasks.exceptions import TaskArgumentError

if TYPE_CHECKING:
    from dorm.contrib.tasks.queue import TaskQueue

__all__ = ["Task", "task"]

P = ParamSpec("P")
R = TypeVar("R")

UTC = datetime.UTC
_JSON_TYPES = "str, int, float, bool, None, list or dict"


def _type_name(value: object) -> str:
    return type(value).__qualname__


class Task(Generic[P, R]):
    """A registered task: call it to run inline, ``delay()`` / ``delay_many()`` to queue it."""

    def __init__(
        self,
        queue: TaskQueue,
        func: Callable[P, R],
        name: str,
        priority: int = 0,
        cron: str | None = None,
    ) -> None:
        _check_priority(name, priority)
        self.queue = queue
        self.func = func
        self.name = name
        self.priority = priority
        self.cron = cron
        self.signature = inspect.signature(func)
        self._arity = _positional_arity(self.signature)
        self.is_async = inspect.iscoroutinefunction(func)
        functools.update_wrapper(self, func)
        if cron is not None:
            from croniter import croniter  # imported on use: costly at startup

            if not isinstance(cron, str) or not croniter.is_valid(cron):
                raise ValueError(
                    f"task {name!r}: cron={cron!r} is not a valid cron expression "
                    f"(five fields, e.g. '0 3 * * *')"
                )
            try:
                self.signature.bind()
            except TypeError as exc:
                raise ValueError(
                    f"task {name!r}: a cron task is called with no arguments, but "
                    f"{func.__qualname__}{self.signature} needs some ({exc})"
                ) from None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name!r} on {self.queue!r}>"

    def check(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Raise TaskArgumentError unless the function can be called with these arguments."""
        arity = self._arity
        if not kwargs and arity is not None and arity[0] <= len(args) <= arity[1]:
            return  # the common case, without building a BoundArguments
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TaskArgumentError(
                f"task {self.name!r}: {self.func.__qualname__}{self.signature} cannot take "
                f"these arguments: {exc}"
            ) from None

    def encode(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """Check ``args`` / ``kwargs`` against the function and return the JSON payload.

        :raises TaskArgumentError: the function cannot take them, or one is not a JSON value.
        """
        self.check(args, kwargs)
        try:
            return json.dumps(
                {"args": list(args), "kwargs": dict(kwargs)},
                separators=(",", ":"),
                allow_nan=False,
            )
        except (TypeError, ValueError):
            raise self._argument_error(args, kwargs) from None

    def _argument_error(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> TaskArgumentError:
        bound = self.signature.bind(*args, **kwargs)
        for param, value in bound.arguments.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                return TaskArgumentError(
                    f"task {self.name!r}: argument {param!r} = {value!r:.80} "
                    f"({_type_name(value)}) is not a JSON value ({exc}); arguments are stored "
                    f"as JSON: pass a {_JSON_TYPES} (for a model instance, its primary key)"
                )
        return TaskArgumentError(f"task {self.name!r}: the arguments are not JSON values")

    def delay(
        self,
        *args: Any,
        eta: datetime.datetime | None = None,
        delay_seconds: float | None = None,
        priority: int | None = None,
        **kwargs: Any,
    ) -> int:
        """Queue one run in the caller's transaction and return the new row's primary key.

        ``eta`` (aware, or naive meaning UTC) or ``delay_seconds`` sets the earliest start;
        ``priority`` (lower runs first) defaults to the task's. The row is written inside the
        current ``atomic()`` block, if any: a rollback queues nothing. On PostgreSQL the
        queue's channel is notified when the transaction commits.
        """
        payload = self.encode(args, kwargs)
        when = _eta(self.name, eta, delay_seconds)
        prio = self.priority if priority is None else _check_priority(self.name, priority)
        return self.queue._insert(self.name, payload, prio, when)

    def delay_many(
        self,
        calls: Iterable[tuple[Any, ...] | list[Any] | Mapping[str, Any]],
        *,
        eta: datetime.datetime | None = None,
        delay_seconds: float | None = None,
        priority: int | None = None,
    ) -> int:
        """Queue one run per item of ``calls`` in one INSERT (and one NOTIFY); return the count.

        Each item is a tuple (or list) of positional arguments or a dict of keyword arguments.
        """
        items: list[dict[str, Any]] = []
        for i, call in enumerate(calls):
            if isinstance(call, tuple | list):
                args, kwargs = tuple(call), {}
            elif isinstance(call, Mapping):
                args, kwargs = (), dict(call)
            else:
                raise TaskArgumentError(
                    f"task {self.name!r}: delay_many() item {i} is a {_type_name(call)}; "
                    f"expected a tuple of positional arguments or a dict of keyword arguments"
                )
            try:
                self.check(args, kwargs)
            except TaskArgumentError as exc:
                raise TaskArgumentError(f"delay_many() item {i}: {exc}") from None
            items.append({"args": list(args), "kwargs": kwargs})
        try:
            payloads = json.dumps(items, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            for i, item in enumerate(items):
                try:
                    self.encode(tuple(item["args"]), item["kwargs"])
                except TaskArgumentError as exc:
                    raise TaskArgumentError(f"delay_many() item {i}: {exc}") from None
            raise
        when = _eta(self.name, eta, delay_seconds)
        prio = self.priority if priority is None else _check_priority(self.name, priority)
        return self.queue._insert_many(self.name, payloads, len(items), prio, when)

    async def adelay(
        self,
        *args: Any,
        eta: datetime.datetime | None = None,
        delay_seconds: float | None = None,
        priority: int | None = None,
        **kwargs: Any,
    ) -> int:
        """``delay()`` for async code: joins the current ``aatomic()`` block, if any."""
        from dorm.db.bridge import run_sync

        return await run_sync(
            self.delay, *args, eta=eta, delay_seconds=delay_seconds, priority=priority, **kwargs
        )

    async def adelay_many(
        self,
        calls: Iterable[tuple[Any, ...] | list[Any] | Mapping[str, Any]],
        *,
        eta: datetime.datetime | None = None,
        delay_seconds: float | None = None,
        priority: int | None = None,
    ) -> int:
        """``delay_many()`` for async code."""
        from dorm.db.bridge import run_sync

        return await run_sync(
            self.delay_many, calls, eta=eta, delay_seconds=delay_seconds, priority=priority
        )


def _positional_arity(signature: inspect.Signature) -> tuple[int, int] | None:
    """(required, total) positional parameters, when those are all the function takes."""
    required = total = 0
    for param in signature.parameters.values():
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            return None
        total += 1
        if param.default is param.empty:
            required += 1
    return required, total


def _check_priority(name: str, priority: object) -> int:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(
            f"task {name!r}: priority must be an int (lower runs first), got {priority!r}"
        )
    if not -(2**31) <= priority < 2**31:
        raise ValueError(f"task {name!r}: priority {priority} does not fit a 32-bit integer")
    return priority


def _eta(
    name: str, eta: datetime.datetime | None, delay_seconds: float | None
) -> datetime.datetime:
    now = datetime.datetime.now(UTC)
    if eta is not None and delay_seconds is not None:
        raise ValueError(f"task {name!r}: pass eta or delay_seconds, not both")
    if eta is not None:
        if not isinstance(eta, datetime.datetime):
            raise TypeError(f"task {name!r}: eta must be a datetime, got {eta!r}")
        return eta.replace(tzinfo=UTC) if eta.tzinfo is None else eta.astimezone(UTC)
    if delay_seconds is not None:
        if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int | float):
            raise TypeError(f"task {name!r}: delay_seconds must be a number, got {delay_seconds!r}")
        return now + datetime.timedelta(seconds=delay_seconds)
    return now


def task(
    queue: TaskQueue,
    name: str | None = None,
    priority: int = 0,
    cron: str | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Register the decorated function on ``queue`` as a task.

    ``name`` (default ``module.qualname``) is what the row stores and the worker looks up;
    ``priority`` is the default of ``delay()``; ``cron`` (five fields, UTC) makes
    ``run_cron_tick(queue)`` queue it on that schedule.

    :raises RuntimeError: another task has this name on ``queue``.
    """

    def register(func: Callable[P, R]) -> Task[P, R]:
        task_name = name if name is not None else f"{func.__module__}.{func.__qualname__}"
        if not isinstance(task_name, str) or not task_name or len(task_name) > 200:
            raise ValueError(f"task name {task_name!r}: expected 1 to 200 characters")
        wrapped = Task(queue, func, task_name, priority, cron)
        queue._register(wrapped)
        return wrapped

    return register
