"""BackgroundTasks(durable=True) hands its tasks to dorm-tasks' queue, on SQLite and
PostgreSQL; without dorm-tasks it says which distribution is missing."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.contrib.background import BackgroundTasks, DurableUnavailableError
from dorm.exceptions import DatabaseError

pytest.importorskip("dorm.contrib.tasks", reason="durable=True needs dorm-tasks")

from dorm.contrib.outbox import OutboxEvent
from dorm.contrib.tasks import TaskArgumentError, TaskQueue, task


class DurableJob(OutboxEvent):
    class Meta:
        app_label = "async_durable"
        db_table = "async_durable_job"


class Welcome(dorm.Model):
    """What the tasks write when a worker runs them."""

    user_id = dorm.IntegerField()
    via = dorm.CharField(max_length=10)

    class Meta:
        app_label = "async_durable"


class AbsentJob(OutboxEvent):
    """A queue whose table is never created: queueing on it fails."""

    class Meta:
        app_label = "async_durable"
        db_table = "async_durable_absent_job"


MODELS = [DurableJob, Welcome]
pytestmark = pytest.mark.usefixtures("clean_tables")

queue = TaskQueue(model=DurableJob, channel=None, max_attempts=2, backoff_base=0.01)


@task(queue, name="welcome-sync")
def welcome(user_id: int, via: str = "mail") -> None:
    Welcome.objects.create(user_id=user_id, via=via)


pushed: list[int] = []

broken_queue = TaskQueue(model=AbsentJob, channel=None)


@task(broken_queue, name="lost")
def lost(user_id: int) -> None: ...


@task(queue, name="welcome-async")
async def awelcome(user_id: int) -> None:
    # No database write here: on SQLite the worker's batch holds the write lock, and a
    # coroutine task writes through its own connection (see docs/tasks.md).
    await asyncio.sleep(0)
    pushed.append(user_id)


def test_run_queues_every_task_and_a_worker_runs_them(db: Any) -> None:
    async def main() -> list[Any]:
        bg = BackgroundTasks(durable=True)
        bg.add(welcome, 1)
        bg.add(welcome, 2, via="sms")
        bg.add(awelcome, user_id=3)
        bg.add(welcome, 4, priority=-1)  # delay()'s own option
        return await bg.run()

    pushed.clear()
    ids = run_main(main)
    rows = list(DurableJob.objects.order_by("pk"))
    assert [r.pk for r in rows] == ids
    assert [(r.name, r.status, r.priority) for r in rows] == [
        ("welcome-sync", "queued", 0),
        ("welcome-sync", "queued", 0),
        ("welcome-async", "queued", 0),
        ("welcome-sync", "queued", -1),
    ]
    payloads = [r.payload if isinstance(r.payload, dict) else json.loads(r.payload) for r in rows]
    assert payloads[1] == {"args": [2], "kwargs": {"via": "sms"}}
    assert payloads[2] == {"args": [], "kwargs": {"user_id": 3}}
    # Nothing ran in the process that queued them.
    assert Welcome.objects.count() == 0 and pushed == []
    assert queue.run(once=True) == 4
    assert sorted(Welcome.objects.values_list("user_id", "via")) == [
        (1, "mail"),
        (2, "sms"),
        (4, "mail"),
    ]
    assert pushed == [3]
    assert set(DurableJob.objects.values_list("status", flat=True)) == {"done"}


def test_the_hand_off_joins_the_callers_transaction(db: Any) -> None:
    async def main() -> None:
        bg = BackgroundTasks(durable=True)
        bg.add(welcome, 1)
        bg.add(awelcome, 2)
        try:
            async with transaction.aatomic():
                await Welcome.objects.acreate(user_id=99, via="signup")
                await bg.run()
                raise RuntimeError("signup failed")
        except RuntimeError:
            pass

    run_main(main)
    assert db.count_rows(DurableJob._meta.db_table) == 0
    assert db.count_rows(Welcome._meta.db_table) == 0


def test_when_one_hand_off_fails_none_is_queued(db: Any) -> None:
    async def main() -> BaseException:
        bg = BackgroundTasks(durable=True)
        bg.add(welcome, 1)
        bg.add(awelcome, 2)
        bg.add(lost, 3)  # its table does not exist
        try:
            await bg.run()
        except DatabaseError as exc:
            return exc
        raise AssertionError("run() did not raise")

    error = run_main(main)
    assert "async_durable_absent_job" in str(error)
    assert db.count_rows(DurableJob._meta.db_table) == 0


def test_add_checks_the_task_and_its_arguments_at_once(db: Any) -> None:
    bg = BackgroundTasks(durable=True)

    def plain(user_id: int) -> None: ...

    with pytest.raises(TypeError, match=r"add\(.*plain\): not a dorm-tasks task.*@task\(queue"):
        bg.add(plain, 1)
    with pytest.raises(TaskArgumentError, match=r"task 'welcome-sync': argument 'user_id'"):
        bg.add(welcome, object())
    with pytest.raises(TaskArgumentError, match=r"cannot take these arguments"):
        bg.add(welcome, 1, unknown=True)
    assert len(bg) == 0
    assert asyncio.run(bg.run()) == []
    assert DurableJob.objects.count() == 0


def test_without_dorm_tasks_durable_names_the_missing_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An import of dorm.contrib.tasks now fails as it does where dorm-tasks is not
    # installed (tests/async/test_isolated_install.py checks that venv for real).
    monkeypatch.setitem(sys.modules, "dorm.contrib.tasks", None)
    with pytest.raises(DurableUnavailableError) as info:
        BackgroundTasks(durable=True)
    assert isinstance(info.value, ImportError)
    assert info.value.name == "dorm.contrib.tasks"
    assert "the dorm-tasks distribution is not installed: pip install dorm-tasks" in str(info.value)
    assert BackgroundTasks(durable=False).durable is False  # the in-process mode still works


def run_main(main: Any) -> Any:
    return asyncio.run(main())
