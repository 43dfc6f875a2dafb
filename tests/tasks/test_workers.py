"""Worker processes against one database: exactly once, SIGKILL and leases, SIGTERM, LISTEN."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dorm import transaction
from dorm.contrib.listen_notify import Listener, notify

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("dorm_tasks_workerapp", HERE / "workerapp.py")
assert _spec is not None and _spec.loader is not None
app = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = app
_spec.loader.exec_module(app)

MODELS = app.MODELS
WorkJob, Effect, Ready = app.WorkJob, app.Effect, app.Ready


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def workers(clean_tables: Any, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python workerapp.py`` processes on the module's database; kill leftovers.
    ``start.marks`` is the folder where the slow task leaves its marks."""
    started: list[subprocess.Popen[str]] = []

    marks = tmp_path / "marks"
    marks.mkdir()

    def start(
        lease: float = 30.0, listen: bool = True, max_attempts: int = 5
    ) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "DORM_TASKS_TEST_DB": json.dumps(clean_tables.settings),
            "DORM_TASKS_TEST_LEASE": str(lease),
            "DORM_TASKS_TEST_LISTEN": "1" if listen else "0",
            "DORM_TASKS_TEST_MAX_ATTEMPTS": str(max_attempts),
            "DORM_TASKS_TEST_MARKS": str(marks),
            "DORM_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
        env.pop("DORM_SETTINGS", None)
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "workerapp.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    start.marks = marks  # type: ignore[attr-defined]
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_three_workers_run_a_thousand_tasks_exactly_once(db: Any, workers: Any) -> None:
    procs = [workers(listen=db.vendor == "postgresql") for _ in range(3)]
    _wait_for(lambda: Ready.objects.count() == 3, 20, "three workers to start")
    with transaction.atomic():
        app.record.delay_many([(n,) for n in range(1000)])
    _wait_for(lambda: WorkJob.objects.filter(status="done").count() == 1000, 30, "1,000 tasks done")
    for proc in procs:  # SIGTERM: each finishes its task and exits 0
        _stop(proc)
    keys = list(Effect.objects.values_list("key", flat=True))
    assert len(keys) == 1000 and set(keys) == set(range(1000))
    assert set(WorkJob.objects.values_list("attempts", flat=True)) == {1}
    if db.vendor == "postgresql":
        # (SQLite has one writer at a time: whoever commits a batch often claims the next.)
        pids = set(Effect.objects.values_list("pid", flat=True))
        assert len(pids) >= 2, "the work was not shared between the workers"


def test_killed_worker_task_is_taken_again_after_the_lease(db: Any, workers: Any) -> None:
    """A task killed mid-run runs again after its lease; the killed run's database writes
    are gone (exactly once), its effect outside the database stays (at least once)."""
    marks = workers.marks / "slow-7"
    first = workers(lease=1.0)
    _wait_for(lambda: Ready.objects.count() == 1, 20, "the first worker to start")
    app.slow.delay(7)
    _wait_for(marks.exists, 10, "the task to start")
    if db.vendor == "postgresql":
        # A second worker meanwhile: past the lease the task is still not taken (the live
        # worker renews it). SQLite: the running batch holds the database's write lock, so
        # the second worker starts after the kill.
        second = workers(lease=1.0)
        _wait_for(lambda: Ready.objects.count() == 2, 20, "the second worker to start")
        time.sleep(1.5)
        assert len(marks.read_text().split()) == 1
    assert not Effect.objects.exists()  # the running task's writes are not committed
    killed_at = time.monotonic()
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    if db.vendor == "sqlite":
        second = workers(lease=1.0)
    _wait_for(lambda: Effect.objects.filter(phase="done").exists(), 15, "the task to complete")
    assert time.monotonic() - killed_at >= 0.3  # the remaining lease had to run out first
    _stop(second)
    assert len(marks.read_text().split()) == 2  # it ran twice
    assert list(Effect.objects.order_by("id").values_list("phase", flat=True)) == [
        "start",
        "done",
    ]  # but only the second run's writes exist
    assert set(Effect.objects.values_list("pid", flat=True)) == {second.pid}
    row = WorkJob.objects.get()
    assert (row.status, row.attempts) == ("done", 2)
    assert "lease expired" in row.last_error


def test_sigkill_every_half_second_loses_nothing_and_duplicates_nothing(
    db: Any, workers: Any
) -> None:
    """3 workers x 3,000 jobs, one worker SIGKILLed every 0.5 s and replaced: every job
    runs, and each job's database effect exists exactly once."""
    total = 3000
    listen = db.vendor == "postgresql"

    def start() -> subprocess.Popen[str]:
        return workers(lease=1.0, listen=listen, max_attempts=1000)

    with transaction.atomic():
        app.record_slowly.delay_many([(n,) for n in range(total)])
    procs = [start() for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + 120
    victim = 0
    while WorkJob.objects.filter(status="done").count() < total:
        assert time.monotonic() < deadline, "the jobs did not finish within 120 s"
        time.sleep(0.5)
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(10)
        kills += 1
        procs[victim] = start()
        victim = (victim + 1) % 3
    for proc in procs:
        proc.kill()  # a replacement may not have installed its SIGTERM handler yet
        proc.wait(10)
    assert kills >= 4, "the drill killed too few workers to mean anything"
    assert not WorkJob.objects.exclude(status="done").exists()
    keys = list(Effect.objects.values_list("key", flat=True))
    assert len(keys) == total, f"{len(keys) - len(set(keys))} duplicate effects"
    assert set(keys) == set(range(total))
    retried = WorkJob.objects.filter(attempts__gt=1).count()
    assert retried > 0, "no job was ever interrupted: the kills came too late"


@pytest.mark.postgres
def test_rollback_sends_no_notification_and_commit_sends_one(db: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL only")
    with Listener("work") as listener:
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            app.record.delay(1)
            1 / 0  # noqa: B018
        assert listener.wait(0.3) == []
        assert WorkJob.objects.count() == 0
        with transaction.atomic():
            app.record.delay(2)
            app.record.delay(3)
            assert listener.wait(0.2) == []  # held until COMMIT
        notes = listener.wait(2)
        assert [n.channel for n in notes] == ["work"]  # one per transaction
        notify("work", "hello")
        assert [n.payload for n in listener.wait(2)] == ["hello"]


@pytest.mark.postgres
def test_listening_worker_picks_up_at_once(db: Any, workers: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL only")
    proc = workers()
    _wait_for(lambda: Ready.objects.count() == 1, 20, "the worker to start")
    time.sleep(0.3)
    delays = []
    for n in range(20):
        with transaction.atomic():
            app.record.delay(n)
        committed = time.monotonic()
        _wait_for(lambda n=n: Effect.objects.filter(key=n).exists(), 5, f"task {n}")
        delays.append(time.monotonic() - committed)
        time.sleep(0.06)  # longer than the worker's poll interval: LISTEN wakes it
    _stop(proc)
    delays.sort()
    assert delays[len(delays) // 2] < 0.05, delays


def test_cli_worker_and_tasks_commands(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from dorm.cli import main

    spec = f"{app.__name__}:queue"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "worker" in out and "tasks" in out
    app.record.delay_many([(1,), (2,)])
    app.slow.delay("not-an-int")  # fails: Effect.key must be an integer
    WorkJob.objects.filter(name="slow").update(attempts=app.queue.max_attempts - 1)
    assert main(["worker", spec, "--once", "--no-cron", "--no-listen"]) == 0
    assert "3 task(s) run" in capsys.readouterr().err
    assert main(["tasks", "list", spec, "--status", "done"]) == 0
    out = capsys.readouterr().out
    assert out.count(" done ") == 2 and "(2 shown)" in out
    assert main(["tasks", "dead", spec]) == 0
    out = capsys.readouterr().out
    assert "slow" in out and "(1 shown)" in out
    assert main(["tasks", "retry", spec]) == 1
    assert "pass --id ID" in capsys.readouterr().err
    assert main(["tasks", "retry", spec, "--all"]) == 0
    assert "1 task(s) queued again" in capsys.readouterr().out
    assert WorkJob.objects.get(name="slow").attempts == 0
    assert main(["tasks", "purge", spec]) == 0
    assert "2 task(s) deleted" in capsys.readouterr().out
    assert list(WorkJob.objects.values_list("name", "status")) == [("slow", "queued")]
    assert main(["worker", "no_such_module:queue", "--once"]) == 1
    assert "cannot import 'no_such_module'" in capsys.readouterr().err
    assert main(["worker", f"{app.__name__}:Effect", "--once"]) == 1
    assert "not a TaskQueue" in capsys.readouterr().err
    assert main(["tasks", "list"]) == 1
    assert "no queue given" in capsys.readouterr().err
    from dorm.conf import settings

    settings.TASK_QUEUES = [spec]
    try:
        assert main(["tasks", "list"]) == 0
        assert "(1 shown)" in capsys.readouterr().out
    finally:
        settings.TASK_QUEUES = []
