"""slow_tx: one WARNING per slow atomic() block with its duration and opening line, a span
event, and on PostgreSQL the sessions that blocked it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.contrib import slow_tx

HERE = Path(__file__).resolve()
LOGGER = "dorm.contrib.slow_tx"


class Ledger(dorm.Model):
    name = dorm.CharField(max_length=40)
    amount = dorm.IntegerField(default=0)

    class Meta:
        app_label = "obs_slow"


MODELS = [Ledger]


def _line_of(marker: str) -> int:
    for number, line in enumerate(HERE.read_text().splitlines(), 1):
        if line.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(marker)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_a_slow_block_logs_one_warning_naming_duration_and_location(
    clean_tables: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slow_tx.install(threshold_ms=100)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with transaction.atomic():  # tx:slow
        Ledger.objects.create(name="a")
        with transaction.atomic():  # a savepoint: part of the same transaction
            Ledger.objects.create(name="b")
            time.sleep(0.2)
    with transaction.atomic():  # fast: nothing
        Ledger.objects.create(name="c")
    (record,) = _warnings(caplog)
    message = record.getMessage()
    assert f"opened at {HERE}:{_line_of('tx:slow')} in " in message
    assert record.duration_ms >= 200 and "threshold 100 ms" in message  # type: ignore[attr-defined]
    assert f"{record.duration_ms:.1f} ms" in message  # type: ignore[attr-defined]
    assert "committed" in message
    assert Ledger.objects.count() == 3


def test_a_slow_rolled_back_block_is_reported_too(
    clean_tables: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slow_tx.install(threshold_ms=50)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with pytest.raises(ZeroDivisionError), transaction.atomic():  # tx:rollback
        Ledger.objects.create(name="gone")
        time.sleep(0.1)
        _ = 1 / 0
    (record,) = _warnings(caplog)
    assert "rolled back" in record.getMessage()
    assert f"{HERE}:{_line_of('tx:rollback')}" in record.getMessage()
    assert Ledger.objects.count() == 0


def test_the_event_goes_to_the_current_span(clean_tables: Any, spans: Any) -> None:
    slow_tx.install(threshold_ms=50)
    with spans.tracer.start_as_current_span("job"), transaction.atomic():  # tx:span
        Ledger.objects.create(name="x")
        time.sleep(0.1)
    (job,) = [s for s in spans.finished() if s.name == "job"]
    (event,) = [e for e in job.events if e.name == "dorm.slow_tx"]
    assert event.attributes["code.lineno"] == _line_of("tx:span")
    assert event.attributes["code.filepath"] == str(HERE)
    assert event.attributes["dorm.duration_ms"] >= 100
    assert event.attributes["dorm.outcome"] == "committed"


def test_concurrent_threads_each_get_exactly_their_own_warning(
    clean_tables: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slow_tx.install(threshold_ms=80)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(10)
            if i % 2:
                with transaction.atomic():  # tx:thread-slow
                    time.sleep(0.15)
                    Ledger.objects.filter(name="none").count()
            else:
                for _ in range(5):
                    with transaction.atomic():  # tx:thread-fast
                        Ledger.objects.filter(name="none").count()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    records = _warnings(caplog)
    assert len(records) == 2
    assert {r.threadName for r in records} == {threads[1].name, threads[3].name}
    for r in records:
        assert f"{HERE}:{_line_of('tx:thread-slow')}" in r.getMessage()


def test_async_blocks_name_the_coroutine_line(
    clean_tables: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slow_tx.install(threshold_ms=50)
    caplog.set_level(logging.WARNING, logger=LOGGER)

    async def main() -> None:
        async with transaction.aatomic():  # tx:async
            await Ledger.objects.acreate(name="async")
            await asyncio.sleep(0.1)
        async with transaction.aatomic():
            await Ledger.objects.acreate(name="fast")

    asyncio.run(main())
    (record,) = _warnings(caplog)
    assert f"{HERE}:{_line_of('tx:async')}" in record.getMessage()


def test_uninstall_and_reinstall(clean_tables: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    slow_tx.install(threshold_ms=10)
    slow_tx.install(threshold_ms=10_000)  # replaces the first
    with transaction.atomic():
        time.sleep(0.05)
        Ledger.objects.count()
    slow_tx.uninstall()
    assert slow_tx.installed() is None
    with transaction.atomic():
        time.sleep(0.05)
        Ledger.objects.count()
    assert _warnings(caplog) == []


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold_ms=...\\): must be >= 0, got -1"):
        slow_tx.install(threshold_ms=-1)
    with pytest.raises(TypeError, match="expected a number, got '500'"):
        slow_tx.install(threshold_ms="500")  # type: ignore[arg-type]


def test_postgresql_names_the_blocking_session(
    clean_tables: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if clean_tables.vendor != "postgresql":
        pytest.skip("lock waits between sessions are a PostgreSQL matter")
    import psycopg

    row = Ledger.objects.create(name="contended", amount=1)
    slow_tx.install(threshold_ms=150)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    blocker = psycopg.connect(clean_tables.pg.dsn, autocommit=False)
    try:
        blocker.execute("SET application_name = 'nightly-report'")
        blocker.execute('UPDATE "obs_slow_ledger" SET amount = amount + 1 WHERE id = %s', [row.pk])
        blocker_pid = blocker.info.backend_pid
        done = threading.Event()

        def victim() -> None:
            with transaction.atomic():  # tx:blocked
                Ledger.objects.filter(pk=row.pk).update(amount=100)
            done.set()

        thread = threading.Thread(target=victim)
        thread.start()
        time.sleep(0.6)  # the victim waits on the row lock, past the threshold
        assert not done.is_set()
        blocker.commit()
        thread.join(10)
        assert done.is_set()
    finally:
        blocker.close()
    (record,) = _warnings(caplog)
    message = record.getMessage()
    assert f"blocked by pid {blocker_pid} " in message and "'nightly-report'" in message
    assert record.blocker_pids == [blocker_pid]  # type: ignore[attr-defined]
    assert f"{HERE}:{_line_of('tx:blocked')}" in message
    assert Ledger.objects.get(pk=row.pk).amount == 100


def test_postgresql_slow_but_unblocked_names_no_blocker(
    clean_tables: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if clean_tables.vendor != "postgresql":
        pytest.skip("blocker detection is PostgreSQL only")
    slow_tx.install(threshold_ms=60)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with transaction.atomic():
        Ledger.objects.create(name="alone")
        time.sleep(0.2)
    (record,) = _warnings(caplog)
    assert "blocked by" not in record.getMessage()
    assert record.blocker_pids == []  # type: ignore[attr-defined]
