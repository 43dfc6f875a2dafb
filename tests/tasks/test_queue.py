"""dorm-tasks in one process, on SQLite and PostgreSQL: enqueue, run, retry, cron, ordering."""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.contrib.outbox import OutboxEvent
from dorm.contrib.tasks import (
    TaskArgumentError,
    TaskQueue,
    dead_letters,
    retry_with_backoff,
    run_cron_tick,
    task,
)
from dorm.contrib.tasks.worker import Worker
from dorm.db.connection import get_connection

UTC = datetime.UTC


class BackgroundTask(OutboxEvent):
    class Meta:
        app_label = "tasks_tests"
        db_table = "background_task"


class Note(dorm.Model):
    """A database effect of a task."""

    text = dorm.CharField(max_length=20)

    class Meta:
        app_label = "tasks_tests"
        db_table = "tasks_note"


MODELS = [BackgroundTask, Note]

queue = TaskQueue(model=BackgroundTask, channel="tasks", max_attempts=3, backoff_base=0.2)
ran: list[Any] = []


@task(queue, name="send-welcome")
def send_welcome(user_id: int, greeting: str = "hi") -> str:
    ran.append(("send-welcome", user_id, greeting))
    return f"{greeting} {user_id}"


@task(queue, name="reindex", priority=5)
def reindex(tag: str = "") -> None:
    ran.append(("reindex", tag))


@task(queue, name="flaky")
def flaky(label: str) -> None:
    ran.append(("flaky", label))
    raise RuntimeError(f"flaky {label} failed")


@task(queue, name="nightly", cron="0 3 * * *")
def nightly_job() -> None:
    ran.append(("nightly",))


@pytest.fixture(autouse=True)
def _clean(clean_tables: Any) -> Any:
    ran.clear()
    yield clean_tables
    ran.clear()


def _statuses() -> list[tuple[str, str]]:
    return list(BackgroundTask.objects.order_by("id").values_list("name", "status"))


def test_delay_writes_in_the_callers_transaction(db: Any) -> None:
    with transaction.atomic():
        send_welcome.delay(1)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        send_welcome.delay(2)
        1 / 0  # noqa: B018
    rows = list(BackgroundTask.objects.values_list("payload", "status", "priority"))
    assert rows == [({"args": [1], "kwargs": {}}, "queued", 0)]
    assert queue.run(once=True) == 1
    assert ran == [("send-welcome", 1, "hi")]
    assert _statuses() == [("send-welcome", "done")]


def test_inline_call_runs_the_function_and_queues_nothing(db: Any) -> None:
    assert send_welcome(7, greeting="hello") == "hello 7"
    assert ran == [("send-welcome", 7, "hello")]
    assert BackgroundTask.objects.count() == 0
    assert send_welcome.__name__ == "send_welcome"


def test_bad_arguments_fail_at_delay_and_name_the_argument(db: Any) -> None:
    with pytest.raises(TaskArgumentError, match=r"'send-welcome': argument 'user_id' = "):
        send_welcome.delay(object())
    with pytest.raises(TypeError, match=r"argument 'greeting' .*set.* not a JSON value"):
        send_welcome.delay(1, greeting={1, 2})
    with pytest.raises(TaskArgumentError, match="cannot take these arguments"):
        send_welcome.delay(1, 2, 3)
    with pytest.raises(TaskArgumentError, match=r"delay_many\(\) item 1"):
        send_welcome.delay_many([(1,), (datetime.date.today(),)])
    with pytest.raises(ValueError, match="not both"):
        send_welcome.delay(1, eta=datetime.datetime.now(UTC), delay_seconds=3)
    with pytest.raises(TypeError, match="priority must be an int"):
        send_welcome.delay(1, priority="high")
    assert BackgroundTask.objects.count() == 0


def test_duplicate_task_name_is_refused(db: Any) -> None:
    with pytest.raises(RuntimeError, match="'reindex' is already registered"):

        @task(queue, name="reindex")
        def other() -> None: ...

    with pytest.raises(ValueError, match="not a valid cron expression"):
        task(queue, name="bad-cron", cron="every day")(lambda: None)
    assert "bad-cron" not in queue.tasks


def test_priority_then_eta_then_id(db: Any) -> None:
    now = datetime.datetime.now(UTC)
    reindex.delay("p5-late", eta=now - datetime.timedelta(seconds=1))
    reindex.delay("p5-early", eta=now - datetime.timedelta(seconds=5))
    reindex.delay("p1", priority=1)
    reindex.delay("p-2", priority=-2)
    reindex.delay("p1-second", priority=1)
    reindex.delay("future", eta=(now + datetime.timedelta(hours=1)).replace(tzinfo=None))
    reindex.delay("later", delay_seconds=60, priority=-10)
    small = TaskQueue(model=BackgroundTask, channel=None, batch_size=2)
    small.tasks = queue.tasks
    assert small.run(once=True) == 5
    assert [r[1] for r in ran] == ["p-2", "p1", "p1-second", "p5-early", "p5-late"]
    waiting = BackgroundTask.objects.filter(status="queued").order_by("eta")
    assert [(r.payload["args"], r.priority) for r in waiting] == [
        (["later"], -10),
        (["future"], 5),
    ]


def test_delay_many_one_statement(db: Any) -> None:
    conn = get_connection()
    before = len(conn.fetchall(f"SELECT 1 FROM {conn.ops.quote_name('background_task')}", ()))
    assert before == 0
    count = send_welcome.delay_many([(1,), [2, "yo"], {"user_id": 3}], priority=2)
    assert count == 3
    assert send_welcome.delay_many([]) == 0
    assert queue.run(once=True) == 3
    assert ran == [
        ("send-welcome", 1, "hi"),
        ("send-welcome", 2, "yo"),
        ("send-welcome", 3, "hi"),
    ]
    assert set(BackgroundTask.objects.values_list("priority", flat=True)) == {2}


def test_failures_back_off_exponentially_then_go_dead(db: Any) -> None:
    flaky.delay("x")
    backoffs = []
    for attempt in (1, 2):
        started = datetime.datetime.now(UTC)
        assert queue.run(once=True) == 1
        row = BackgroundTask.objects.get()
        assert (row.status, row.attempts) == ("queued", attempt)
        assert "RuntimeError: flaky x failed" in row.last_error
        backoffs.append((row.eta - started).total_seconds())
        assert queue.run(once=True) == 0  # not due yet
        time.sleep(max(0.0, (row.eta - datetime.datetime.now(UTC)).total_seconds()) + 0.02)
    # 0.2 s then 0.4 s (backoff_base * 2 ** (attempt - 1)).
    assert 0.2 <= backoffs[0] < 0.35, backoffs
    assert 0.4 <= backoffs[1] < 0.55, backoffs
    assert queue.run(once=True) == 1
    row = BackgroundTask.objects.get()
    assert (row.status, row.attempts) == ("dead", 3)
    assert list(dead_letters(queue)) == [row]
    assert ran == [("flaky", "x")] * 3


def test_retry_with_backoff_for_relays(db: Any) -> None:
    pk = reindex.delay("r")
    event = BackgroundTask.objects.get(pk=pk)
    event.attempts = 2
    before = datetime.datetime.now(UTC)
    eta = retry_with_backoff(queue, event, error="boom")
    assert eta is not None and 0.4 <= (eta - before).total_seconds() < 0.6
    event.refresh_from_db()
    assert (event.status, event.last_error) == ("queued", "boom")
    event.attempts = 3
    assert retry_with_backoff(queue, event) is None
    assert dead_letters(queue).count() == 1


def test_unknown_task_name_is_retried_then_dead(db: Any) -> None:
    BackgroundTask.objects.create(name="gone", payload={"args": [], "kwargs": {}})
    for _ in range(3):
        BackgroundTask.objects.update(eta=datetime.datetime.now(UTC))
        queue.run(once=True)
    row = BackgroundTask.objects.get()
    assert row.status == "dead"
    assert "no task named 'gone' is registered" in row.last_error


def test_expired_lease_is_taken_again_and_the_old_lease_cannot_finish(db: Any) -> None:
    short = TaskQueue(model=BackgroundTask, channel=None, lease_seconds=0.3)
    short.tasks = queue.tasks
    reindex.delay("leased")
    dead_worker = Worker(short, once=True)
    jobs = dead_worker._claim(10)  # claimed, then the "worker" dies without finishing
    assert [j.name for j in jobs] == ["reindex"]
    old_token = dead_worker._token
    assert short.run(once=True) == 0  # lease alive: nobody else takes it
    time.sleep(0.35)
    assert short.run(once=True) == 1  # swept, claimed again, done
    row = BackgroundTask.objects.get()
    assert (row.status, row.attempts) == ("done", 2)
    dead_worker._finish([row.pk], old_token)  # a stale lease changes nothing
    BackgroundTask.objects.update(status="running")
    dead_worker._finish([row.pk], old_token)
    assert BackgroundTask.objects.get().status == "running"
    assert ran == [("reindex", "leased")]


def test_a_running_task_is_not_taken_by_another_worker(db: Any) -> None:
    """Past several leases, a running task stays with its live worker (PostgreSQL: its row
    is locked by the running batch; SQLite: the batch holds the write lock)."""
    short = TaskQueue(model=BackgroundTask, channel=None, lease_seconds=0.3)
    started = threading.Event()
    release = threading.Event()

    @task(short, name="long")
    def long_task() -> None:
        started.set()
        release.wait(5)

    long_task.delay()
    worker = threading.Thread(target=short.run, kwargs={"max_tasks": 1})
    worker.start()
    assert started.wait(5)
    time.sleep(0.7)  # more than two leases
    other = TaskQueue(model=BackgroundTask, channel=None, lease_seconds=0.3)
    other.tasks = short.tasks
    took: list[int] = []
    second = threading.Thread(target=lambda: took.append(other.run(once=True)))
    second.start()
    time.sleep(0.2)
    release.set()
    worker.join(5)
    second.join(5)
    assert took == [0]
    row = BackgroundTask.objects.get()
    assert (row.status, row.attempts) == ("done", 1)


def test_a_failed_task_rolls_back_only_its_own_writes(db: Any) -> None:
    """Three tasks in one batch: the failing one's writes are undone, the others' kept."""
    outcome = TaskQueue(model=BackgroundTask, channel=None, max_attempts=3, backoff_base=60)

    @task(outcome, name="note")
    def note(text: str, fail: bool = False) -> None:
        Note.objects.create(text=text)
        if fail:
            raise ValueError(f"{text} failed")

    note.delay_many([("a",), {"text": "b", "fail": True}, ("c",)])
    assert outcome.run(once=True) == 3
    assert sorted(Note.objects.values_list("text", flat=True)) == ["a", "c"]
    rows = {(r.payload["args"] or ["b"])[0]: r for r in BackgroundTask.objects.all()}
    assert (rows["a"].status, rows["c"].status) == ("done", "done")
    assert rows["b"].status == "queued" and "ValueError: b failed" in rows["b"].last_error


def test_a_swallowed_database_error_fails_the_task(db: Any) -> None:
    """A task that catches a database error without its own atomic() did not complete: its
    writes are rolled back and it is retried with the reason."""
    outcome = TaskQueue(model=BackgroundTask, channel=None, backoff_base=60)

    @task(outcome, name="swallow")
    def swallow() -> None:
        Note.objects.create(text="before")
        with contextlib.suppress(dorm.exceptions.IntegrityError):
            Note.objects.create(text=None)  # NOT NULL

    swallow.delay()
    assert outcome.run(once=True) == 1
    assert not Note.objects.exists()
    row = BackgroundTask.objects.get()
    assert row.status == "queued"
    assert "a database error inside the task was caught" in row.last_error


def test_on_commit_of_a_task_runs_after_its_batch_commits(db: Any) -> None:
    outcome = TaskQueue(model=BackgroundTask, channel=None, backoff_base=60)
    seen: list[tuple[str, int]] = []

    @task(outcome, name="hooked")
    def hooked(text: str, fail: bool = False) -> None:
        Note.objects.create(text=text)
        transaction.on_commit(lambda: seen.append((text, Note.objects.filter(text=text).count())))
        if fail:
            raise RuntimeError("no")

    hooked.delay_many([("x",), {"text": "y", "fail": True}])
    outcome.run(once=True)
    assert seen == [("x", 1)]  # after the commit (visible), and not for the failed task


def test_stop_event_and_max_tasks_bound_the_loop(db: Any) -> None:
    reindex.delay_many([("a",), ("b",), ("c",)])
    assert queue.run(max_tasks=2) == 2
    stop = threading.Event()
    stop.set()
    assert queue.run(stop_event=stop) == 0
    assert queue.run(once=True) == 1


def test_idle_worker_wakes_on_commit(db: Any) -> None:
    slow_poll = TaskQueue(model=BackgroundTask, channel="tasks", poll_interval=30)
    slow_poll.tasks = queue.tasks
    stop = threading.Event()
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(slow_poll.run(max_tasks=1, stop_event=stop))
    )
    worker.start()
    time.sleep(0.3)  # the worker is idle, waiting
    committed = time.perf_counter()
    with transaction.atomic():
        reindex.delay("wake")
    worker.join(5)
    stop.set()
    assert done == [1]
    assert time.perf_counter() - committed < 2.0
    assert ran == [("reindex", "wake")]


def test_cron_tick_queues_each_slot_once_with_concurrent_tickers(db: Any) -> None:
    now = datetime.datetime(2026, 3, 1, 3, 0, 30, tzinfo=UTC)
    barrier = threading.Barrier(4)
    counts: list[int] = []

    def tick() -> None:
        barrier.wait()
        counts.append(run_cron_tick(queue, now=now))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0, 0, 0, 1]
    row = BackgroundTask.objects.get()
    assert (row.name, row.eta, row.cron_key) == (
        "nightly",
        datetime.datetime(2026, 3, 1, 3, 0, tzinfo=UTC),
        "nightly@2026-03-01T03:00:00+00:00",
    )
    assert run_cron_tick(queue, now=now + datetime.timedelta(minutes=4)) == 0
    assert run_cron_tick(queue, now=now + datetime.timedelta(hours=1)) == 0  # past catch-up
    assert run_cron_tick(queue, now=now + datetime.timedelta(days=1)) == 1
    assert queue.run(once=True) == 2
    assert ran == [("nightly",), ("nightly",)]


def test_cron_first_tick_queues_only_the_latest_slot_then_catches_up(db: Any) -> None:
    minutely = TaskQueue(model=BackgroundTask, channel=None)

    @task(minutely, name="every-minute", cron="* * * * *")
    def every_minute() -> None:
        ran.append(("every-minute",))

    def etas() -> list[str]:
        rows = BackgroundTask.objects.order_by("eta").values_list("eta", flat=True)
        return [eta.strftime("%H:%M") for eta in rows]

    start = datetime.datetime(2026, 3, 1, 10, 3, 30, tzinfo=UTC)
    # A new deployment: one run now, not one per minute of the last five.
    assert run_cron_tick(minutely, now=start) == 1
    assert etas() == ["10:03"]
    assert run_cron_tick(minutely, now=start + datetime.timedelta(seconds=20)) == 0
    # Ticks missed for three minutes: each missed time is queued once.
    assert run_cron_tick(minutely, now=start + datetime.timedelta(minutes=3)) == 3
    assert etas() == ["10:03", "10:04", "10:05", "10:06"]
    # A long outage: only the catch-up window (five minutes) is replayed.
    assert run_cron_tick(minutely, now=start + datetime.timedelta(minutes=60)) == 5
    assert etas()[-5:] == ["10:59", "11:00", "11:01", "11:02", "11:03"]
    assert len(set(BackgroundTask.objects.values_list("cron_key", flat=True))) == 9


def test_cron_task_must_take_no_arguments(db: Any) -> None:
    with pytest.raises(ValueError, match="called with no arguments"):
        task(queue, name="cron-args", cron="* * * * *")(lambda x: x)


def test_snippets_of_the_release_note(db: Any) -> None:
    """The Tier 1 and Tier 2 snippets, as written (datetime.utcnow() is deprecated: same value)."""
    from datetime import timedelta

    utcnow = datetime.datetime.now(UTC).replace(tzinfo=None)
    with dorm.transaction.atomic():
        send_welcome.delay(5)
    reindex.delay(eta=utcnow + timedelta(minutes=10))
    reindex.delay(delay_seconds=30, priority=1)
    run_cron_tick(queue)
    # "0 3 * * *" is queued only when the test runs within catch_up (5 min) after 03:00 UTC.
    nightly = BackgroundTask.objects.filter(name="nightly").count()
    assert queue.run(once=True) == 1 + nightly
    assert BackgroundTask.objects.filter(status="queued").count() == 2


def test_coroutine_task_runs_on_its_own_event_loop(db: Any) -> None:
    async_queue = TaskQueue(model=BackgroundTask, channel=None)

    @task(async_queue, name="async-job")
    async def async_job(n: int) -> None:
        ran.append(("async", n))

    async_job.delay(4)
    assert async_queue.run(once=True) == 1
    assert ran == [("async", 4)]
    assert BackgroundTask.objects.get().status == "done"


def test_worker_polls_when_listen_is_unavailable(
    db: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dorm.contrib.listen_notify import listener
    from dorm.exceptions import OperationalError

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("LISTEN refused by the server")

    monkeypatch.setattr(listener.Listener, "__init__", refuse)
    polling = TaskQueue(model=BackgroundTask, channel="tasks", poll_interval=0.05)
    polling.tasks = queue.tasks
    stop = threading.Event()
    worker = threading.Thread(target=polling.run, kwargs={"max_tasks": 1, "stop_event": stop})
    worker.start()
    time.sleep(0.2)
    reindex.delay("polled")
    worker.join(5)
    stop.set()
    assert ran == [("reindex", "polled")]
    if db.vendor == "postgresql":
        assert "LISTEN unavailable, polling instead" in caplog.text


def test_async_twins_join_the_async_transaction(db: Any) -> None:
    import asyncio

    async def scenario() -> None:
        async with transaction.aatomic():
            await send_welcome.adelay(11)
            await reindex.adelay_many([("a",), ("b",)], priority=3)
        with pytest.raises(ZeroDivisionError):
            async with transaction.aatomic():
                await send_welcome.adelay(12)
                1 / 0  # noqa: B018

    asyncio.run(scenario())
    rows = BackgroundTask.objects.order_by("id").values_list("name", "priority", "payload")
    assert [(n, p, d["args"]) for n, p, d in rows] == [
        ("send-welcome", 0, [11]),
        ("reindex", 3, ["a"]),
        ("reindex", 3, ["b"]),
    ]
    assert queue.run(once=True) == 3


def test_a_lost_lease_rolls_back_the_tasks_writes(
    db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Another worker took the row while this one ran it: this run's writes are undone."""
    outcome = TaskQueue(model=BackgroundTask, channel=None)

    @task(outcome, name="note-once")
    def note_once(text: str) -> None:
        Note.objects.create(text=text)

    note_once.delay("mine")
    worker = Worker(outcome, once=True)
    jobs = worker._claim(10)
    # The lease ran out and another worker claimed the row (a new token, committed).
    BackgroundTask.objects.update(lease_token="other-worker")
    worker._run_batch(jobs)
    assert not Note.objects.exists()
    row = BackgroundTask.objects.get()
    assert (row.status, row.lease_token) == ("running", "other-worker")
    assert "lost its lease to another worker" in caplog.text


def test_slow_tasks_give_the_rest_of_their_batch_back(db: Any) -> None:
    """A batch whose tasks outlast a group's time gives its unstarted rows back (for idle
    workers) and the next claim is smaller; fast batches make it grow again."""
    outcome = TaskQueue(model=BackgroundTask, channel=None, batch_size=8)

    @task(outcome, name="sleepy")
    def sleepy(n: int) -> None:
        time.sleep(0.15)
        Note.objects.create(text=str(n))

    sleepy.delay_many([(n,) for n in range(4)])
    worker = Worker(outcome, once=True)
    assert worker._claim_size == 8
    jobs = worker._claim(worker._claim_size)
    assert len(jobs) == 4
    worker._run_batch(jobs)
    assert list(Note.objects.values_list("text", flat=True)) == ["0"]
    rest = list(BackgroundTask.objects.exclude(status="done").values_list("status", "attempts"))
    assert rest == [("queued", 0)] * 3  # given back, the attempt not counted
    assert worker._claim_size == 4
    assert outcome.run(once=True) == 3
    assert sorted(Note.objects.values_list("text", flat=True)) == ["0", "1", "2", "3"]
