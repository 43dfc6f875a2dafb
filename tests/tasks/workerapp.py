"""A task application run by the multi-process tests, in worker subprocesses and in the test.

``python workerapp.py`` configures dorm from the JSON in ``DORM_TASKS_TEST_DB``, writes a
``Ready`` row and runs the worker until SIGTERM. Options come from the environment:
``DORM_TASKS_TEST_LEASE`` (seconds), ``DORM_TASKS_TEST_LISTEN`` ("0" to poll),
``DORM_TASKS_TEST_MAX_ATTEMPTS``, ``DORM_TASKS_TEST_MARKS`` (a folder for the slow task).
"""

from __future__ import annotations

import json
import os
import time

import dorm
from dorm.contrib.outbox import OutboxEvent
from dorm.contrib.tasks import TaskQueue, task


class WorkJob(OutboxEvent):
    class Meta:
        app_label = "tasks_workers"
        db_table = "tasks_work_job"


class Effect(dorm.Model):
    """One row per task run: the side effect the tests count."""

    key = dorm.IntegerField()
    pid = dorm.IntegerField()
    phase = dorm.CharField(max_length=10, default="done")

    class Meta:
        app_label = "tasks_workers"
        db_table = "tasks_work_effect"


class Ready(dorm.Model):
    pid = dorm.IntegerField()

    class Meta:
        app_label = "tasks_workers"
        db_table = "tasks_work_ready"


MODELS = [WorkJob, Effect, Ready]

queue = TaskQueue(
    model=WorkJob,
    channel="work",
    lease_seconds=float(os.environ.get("DORM_TASKS_TEST_LEASE", "30")),
    poll_interval=0.05,
    backoff_base=0.01,
    max_attempts=int(os.environ.get("DORM_TASKS_TEST_MAX_ATTEMPTS", "5")),
)


@task(queue, name="record")
def record(key: int) -> None:
    Effect.objects.create(key=key, pid=os.getpid())


@task(queue, name="record-slowly")
def record_slowly(key: int) -> None:
    """``record`` taking 3 ms: a batch is still running when the kill drill strikes."""
    time.sleep(0.003)
    Effect.objects.create(key=key, pid=os.getpid())


@task(queue, name="slow")
def slow(key: int) -> None:
    """The first run of a key hangs (to be killed); a later run completes at once.

    Each run appends a line to a file (an effect outside the database, which a killed run
    keeps) and writes a "start" row (a database effect, which a killed run must not keep).
    """
    marks = os.path.join(os.environ["DORM_TASKS_TEST_MARKS"], f"slow-{key}")
    first = not os.path.exists(marks)
    with open(marks, "a") as f:
        f.write(f"{os.getpid()}\n")
    Effect.objects.create(key=key, pid=os.getpid(), phase="start")
    if first:
        time.sleep(60)
    Effect.objects.create(key=key, pid=os.getpid())


def main() -> None:
    dorm.configure(DATABASES={"default": json.loads(os.environ["DORM_TASKS_TEST_DB"])})
    Ready.objects.create(pid=os.getpid())
    queue.run(listen=os.environ.get("DORM_TASKS_TEST_LISTEN", "1") != "0")


if __name__ == "__main__":
    main()
