"""``Saga`` and ``Step``: steps that commit one by one, undone in reverse when one fails."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dorm.contrib.saga import store
from dorm.contrib.saga.exceptions import SagaOwnershipError, UnknownSagaError

__all__ = ["Saga", "SagaRun", "Step", "registered_saga"]

logger = logging.getLogger("dorm.contrib.saga")

Action = Callable[[dict[str, Any]], Any]

_REGISTRY: dict[str, Saga] = {}


@dataclass(frozen=True)
class Step:
    """One step: ``action(ctx)`` does the work, ``compensation(ctx)`` undoes it."""

    name: str
    action: Action
    compensation: Action | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Step name must be a non-empty string, got {self.name!r}")
        if not callable(self.action):
            raise TypeError(f"Step {self.name!r}: action must be callable, got {self.action!r}")
        if self.compensation is not None and not callable(self.compensation):
            raise TypeError(
                f"Step {self.name!r}: compensation must be callable or None, "
                f"got {self.compensation!r}"
            )


@dataclass
class SagaRun:
    """What a run did. ``failure`` is ``(step_name, exception)`` of the step that raised."""

    ok: bool
    failure: tuple[str, BaseException] | None = None
    completed: list[str] = field(default_factory=list)
    compensated: list[str] = field(default_factory=list)
    compensation_errors: list[tuple[str, BaseException]] = field(default_factory=list)
    run_id: str | None = None
    ctx: dict[str, Any] = field(default_factory=dict)


def registered_saga(name: str) -> Saga:
    """The durable saga called ``name`` (defined in a module imported so far).

    :raises UnknownSagaError: no such saga.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UnknownSagaError(
            f"no durable saga named {name!r} is defined (known: {known}); import the module "
            f"that defines it (dorm saga resume --import package.module)"
        ) from None


class Saga:
    """Steps run in order, each in its own ``atomic()`` block that commits; when one
    raises, the compensations of the completed steps run in reverse order, each in its own
    transaction.

    ``durable=True`` (with a ``name``) records each run in the table ``dorm_saga_run``,
    committed with every step, so that ``dorm saga resume`` can finish or compensate a run
    whose process died. Actions and compensations must then be idempotent for any effect
    outside ``using``'s database (an e-mail, an HTTP call): a process may die after such an
    effect and before its step commits.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        name: str | None = None,
        durable: bool = False,
        using: str = "default",
    ) -> None:
        steps = list(steps)
        if not steps:
            raise ValueError("Saga needs at least one Step")
        seen: set[str] = set()
        for step in steps:
            if not isinstance(step, Step):
                raise TypeError(f"Saga steps must be Step instances, got {step!r}")
            if step.name in seen:
                raise ValueError(f"Saga: duplicate step name {step.name!r}")
            seen.add(step.name)
        if durable and not name:
            raise ValueError("Saga(durable=True) needs a name= to be resumed by")
        self.steps = steps
        self.name = name
        self.durable = durable
        self.using = using
        self._by_name = {s.name: s for s in steps}
        if durable:
            assert name is not None
            _REGISTRY[name] = self

    def __repr__(self) -> str:
        return f"Saga(name={self.name!r}, steps={[s.name for s in self.steps]!r})"

    # -- sync -----------------------------------------------------------------------------

    def run(self, ctx: dict[str, Any] | None = None) -> SagaRun:
        """Run the steps with ``ctx`` (a dict every action and compensation receives)."""
        from dorm.db.connection import connections

        ctx = {} if ctx is None else ctx
        if connections[self.using].in_atomic_block:
            self._warn_nested()
        run = SagaRun(ok=False, ctx=ctx)
        owner = None
        if self.durable:
            store.ensure_table(self.using)
            run.run_id, owner = self._create_record(ctx)
        return self._forward(run, owner, 0)

    def _create_record(self, ctx: dict[str, Any]) -> tuple[str, str]:
        import uuid

        assert self.name is not None
        run_id, owner, stamp = str(uuid.uuid4()), store.new_owner(), store.now()
        store.SagaRunRecord.objects.using(self.using).create(
            run_id=run_id,
            name=self.name,
            state="running",
            ctx=store.json_ctx(ctx, self.name),
            owner=owner,
            created_at=stamp,
            updated_at=stamp,
        )
        return run_id, owner

    def _warn_nested(self) -> None:
        logger.warning(
            "saga %r runs inside an outer atomic() block on %r: its steps become savepoints "
            "and lose their durability if the outer transaction rolls back",
            self.name or "<unnamed>",
            self.using,
        )

    def _forward(self, run: SagaRun, owner: str | None, start: int) -> SagaRun:
        from dorm.transaction import atomic

        for step in self.steps[start:]:
            try:
                with atomic(using=self.using):
                    step.action(run.ctx)
                    if owner is not None:
                        self._mark(run, owner, completed=[*run.completed, step.name])
            except SagaOwnershipError:
                raise
            except Exception as exc:
                return self._failed(run, owner, step.name, exc)
            run.completed.append(step.name)
        if owner is not None:
            self._mark(run, owner, state="done")
        run.ok = True
        return run

    def _mark(self, run: SagaRun, owner: str, **values: Any) -> None:
        assert run.run_id is not None and self.name is not None
        store.update(
            run.run_id, owner, self.using, ctx=store.json_ctx(run.ctx, self.name), **values
        )

    def _failed(self, run: SagaRun, owner: str | None, name: str, exc: Exception) -> SagaRun:
        run.failure = (name, exc)
        logger.warning(
            "saga %r failed at step %r (%r); compensating %s",
            self.name or "<unnamed>",
            name,
            exc,
            list(reversed(run.completed)),
        )
        if owner is not None:
            self._mark(run, owner, state="compensating", error=f"{name}: {exc!r}"[:2000])
        return self._compensate(run, owner)

    def _compensate(self, run: SagaRun, owner: str | None) -> SagaRun:
        from dorm.transaction import atomic

        for name in reversed(run.completed):
            step = self._by_name[name]
            if name in run.compensated or step.compensation is None:
                continue
            try:
                with atomic(using=self.using):
                    step.compensation(run.ctx)
                    if owner is not None:
                        self._mark(run, owner, compensated=[*run.compensated, name])
            except SagaOwnershipError:
                raise
            except Exception as exc:
                self._compensation_failed(run, name, exc)
                continue
            run.compensated.append(name)
        if owner is not None:
            self._mark(run, owner, state="failed" if run.compensation_errors else "compensated")
        return run

    def _compensation_failed(self, run: SagaRun, name: str, exc: Exception) -> None:
        run.compensation_errors.append((name, exc))
        logger.error(
            "saga %r: the compensation of step %r raised %r; the other compensations still run",
            self.name or "<unnamed>",
            name,
            exc,
            exc_info=exc,
        )

    def resume(self, run_id: str, compensate: bool = False) -> SagaRun | None:
        """Continue (or, with ``compensate``, undo) the durable run ``run_id``; None when
        it is finished or another process took it first. Steps recorded as completed and
        compensations recorded as done never run again."""
        store.ensure_table(self.using)
        claimed = store.claim(run_id, self.using)
        if claimed is None:
            return None
        record, owner = claimed
        if str(record.name) != self.name:
            raise UnknownSagaError(
                f"saga run {run_id} belongs to {record.name!r}, not {self.name!r}"
            )
        stored: Any = record  # JSON columns, read back as lists and a dict
        run = SagaRun(
            ok=False,
            completed=list(stored.completed),
            compensated=list(stored.compensated),
            run_id=run_id,
            ctx=dict(stored.ctx),
        )
        unknown = [n for n in run.completed if n not in self._by_name]
        if unknown:
            raise UnknownSagaError(
                f"saga run {run_id}: completed step(s) {unknown} are not steps of {self!r}"
            )
        state = str(record.state)
        if compensate or state != "running":
            if state == "running":
                self._mark(run, owner, state="compensating")
            return self._compensate(run, owner)
        return self._forward(run, owner, len(run.completed))

    # -- async ----------------------------------------------------------------------------

    async def arun(self, ctx: dict[str, Any] | None = None) -> SagaRun:
        """``run()`` for async code: coroutine actions are awaited inside ``aatomic()``;
        plain functions run in a worker thread, in a sync ``atomic()`` there."""
        from dorm.db.bridge import task_state

        ctx = {} if ctx is None else ctx
        state = task_state(self.using)
        if state is not None and state.blocks:
            self._warn_nested()
        run = SagaRun(ok=False, ctx=ctx)
        owner = None
        if self.durable:
            await asyncio.to_thread(store.ensure_table, self.using)
            run.run_id, owner = await asyncio.to_thread(self._create_record, ctx)
        for step in self.steps:
            try:
                await self._astep(step.action, run, owner, completed=[*run.completed, step.name])
            except SagaOwnershipError:
                raise
            except Exception as exc:
                run.failure = (step.name, exc)
                logger.warning(
                    "saga %r failed at step %r (%r); compensating %s",
                    self.name or "<unnamed>",
                    step.name,
                    exc,
                    list(reversed(run.completed)),
                )
                if owner is not None:
                    await asyncio.to_thread(
                        self._mark, run, owner, state="compensating", error=f"{step.name}: {exc!r}"
                    )
                return await self._acompensate(run, owner)
            run.completed.append(step.name)
        if owner is not None:
            await asyncio.to_thread(self._mark, run, owner, state="done")
        run.ok = True
        return run

    async def _astep(self, fn: Action, run: SagaRun, owner: str | None, **values: Any) -> None:
        if inspect.iscoroutinefunction(fn):
            from dorm.transaction import aatomic

            async with aatomic(using=self.using):
                await fn(run.ctx)
                if owner is not None:
                    assert run.run_id is not None and self.name is not None
                    await store.aupdate(
                        run.run_id,
                        owner,
                        self.using,
                        ctx=store.json_ctx(run.ctx, self.name),
                        **values,
                    )
            return

        def in_thread() -> None:
            from dorm.transaction import atomic

            with atomic(using=self.using):
                result = fn(run.ctx)
                if inspect.isawaitable(result):
                    raise TypeError(f"{fn!r} returned an awaitable: declare it 'async def'")
                if owner is not None:
                    self._mark(run, owner, **values)

        await asyncio.to_thread(in_thread)

    async def _acompensate(self, run: SagaRun, owner: str | None) -> SagaRun:
        for name in reversed(run.completed):
            step = self._by_name[name]
            if name in run.compensated or step.compensation is None:
                continue
            try:
                await self._astep(
                    step.compensation, run, owner, compensated=[*run.compensated, name]
                )
            except SagaOwnershipError:
                raise
            except Exception as exc:
                self._compensation_failed(run, name, exc)
                continue
            run.compensated.append(name)
        if owner is not None:
            state = "failed" if run.compensation_errors else "compensated"
            await asyncio.to_thread(self._mark, run, owner, state=state)
        return run
