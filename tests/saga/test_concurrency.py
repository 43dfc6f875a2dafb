"""named_lock, SerializableSnapshot and optimistic locking, raced for real."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lockapp import LockCounter  # noqa: E402

import dorm  # noqa: E402
from dorm.contrib.concurrency import (  # noqa: E402
    LockTimeout,
    OptimisticLockError,
    SerializableSnapshot,
    SerializationRetryError,
    anamed_lock,
    lock_key,
    named_lock,
    with_optimistic_lock,
)
from dorm.db.connection import get_connection  # noqa: E402
from dorm.transaction import atomic, on_commit  # noqa: E402


class Account(dorm.Model):
    balance = dorm.DecimalField(max_digits=12, decimal_places=2)
    version = dorm.IntegerField(default=0)

    class Meta:
        app_label = "concurrency_tests"


class Plain(dorm.Model):
    n = dorm.IntegerField(default=0)

    class Meta:
        app_label = "concurrency_tests"


class Doctor(dorm.Model):
    name = dorm.CharField(max_length=20)
    on_call = dorm.BooleanField(default=True)

    class Meta:
        app_label = "concurrency_tests"


MODELS = [Account, Plain, Doctor, LockCounter]

pytestmark = pytest.mark.usefixtures("clean_tables")


# -- named_lock ----------------------------------------------------------------------------


def test_lock_key_is_the_documented_hash() -> None:
    digest = hashlib.sha256(b"nightly-report").digest()[:8]
    assert lock_key("nightly-report") == int.from_bytes(digest, "big", signed=True)
    with pytest.raises(ValueError, match="non-empty string"):
        lock_key("")


def run_lock_processes(db: Any, rounds: int, unlocked: bool = False) -> int:
    LockCounter.objects.create(pk=1, value=0)
    env = {
        **os.environ,
        "DORM_LOCK_TEST_DB": json.dumps(db.settings),
        "DORM_LOCK_BARRIER": tempfile.mkdtemp(prefix="dorm-lock-"),
        "DORM_LOCK_PARTIES": "3",
        "DORM_LOCK_OFF": "1" if unlocked else "0",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "lockapp.py"), str(rounds)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    return LockCounter.objects.get(pk=1).value


@pytest.mark.postgres
def test_named_lock_excludes_across_three_processes(db: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("elsewhere named_lock is in-process (tested with threads below)")
    assert run_lock_processes(db, rounds=25) == 75
    LockCounter.objects.all().delete()
    # The control: the same work without the lock loses updates.
    assert run_lock_processes(db, rounds=25, unlocked=True) < 75


def test_named_lock_excludes_threads(db: Any) -> None:
    LockCounter.objects.create(pk=1, value=0)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                with named_lock("thread-counter"):
                    counter = LockCounter.objects.get(pk=1)
                    time.sleep(0.002)
                    LockCounter.objects.filter(pk=1).update(value=counter.value + 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert LockCounter.objects.get(pk=1).value == 40


def hold(name: str, ready: threading.Event, release: threading.Event) -> threading.Thread:
    def run() -> None:
        with named_lock(name):
            ready.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(10)
    return thread


def test_named_lock_timeout_names_the_lock(db: Any) -> None:
    ready, release = threading.Event(), threading.Event()
    holder = hold("report", ready, release)
    try:
        started = time.monotonic()
        with (
            pytest.raises(
                LockTimeout, match="named_lock 'report' on 'default': not acquired within 0.3 s"
            ),
            named_lock("report", timeout=0.3),
        ):
            pytest.fail("acquired a held lock")
        waited = time.monotonic() - started
        assert 0.25 <= waited < 5
        with named_lock("other-name", timeout=0.3):  # another name is free
            pass
    finally:
        release.set()
        holder.join()
    with named_lock("report", timeout=2):
        if db.vendor == "postgresql":
            # The lock's wait applied to the lock statement only.
            assert get_connection().fetchone("SHOW lock_timeout", ()) == ("0",)
    with pytest.raises(ValueError, match="timeout must be a number"), named_lock("r", timeout=-1):
        pass


@pytest.mark.postgres
def test_named_lock_is_a_transaction_advisory_lock(db: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL's advisory locks")
    key = lock_key("nightly-report")
    query = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid::bigint = %s AND objid::bigint = %s"
    )
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    with named_lock("nightly-report"):
        assert get_connection().fetchone(query, (high, low)) == (1,)
        assert get_connection().in_atomic_block
    assert get_connection().fetchone(query, (high, low)) == (0,)


def test_anamed_lock(db: Any) -> None:
    order: list[str] = []

    async def task(name: str) -> None:
        async with anamed_lock("async-lock"):
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            order.append(f"{name} out")

    async def contended_timeout() -> float:
        async with anamed_lock("async-held"):
            started = time.monotonic()
            other = asyncio.create_task(_try_async("async-held", 0.2))
            with pytest.raises(LockTimeout, match="'async-held'"):
                await other
            return time.monotonic() - started

    async def main() -> float:
        await asyncio.gather(task("a"), task("b"))
        return await contended_timeout()

    waited = asyncio.run(main())
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    assert 0.15 <= waited < 5


async def _try_async(name: str, timeout: float) -> None:
    async with anamed_lock(name, timeout=timeout):
        pytest.fail("acquired a held lock")


# -- SerializableSnapshot ------------------------------------------------------------------


@pytest.mark.postgres
def test_write_skew_is_retried_and_both_effects_are_correct(db: Any) -> None:
    """Two doctors go off call at once; each checks that another stays. Under SERIALIZABLE
    one transaction fails with 40001, is retried, sees the other's change and stays."""
    if db.vendor != "postgresql":
        pytest.skip("SQLite serializes writers: no write skew to provoke")
    Doctor.objects.bulk_create([Doctor(name="alice"), Doctor(name="bob")])
    barrier = threading.Barrier(2, timeout=10)
    committed: list[tuple[str, int]] = []
    snapshots = {"alice": SerializableSnapshot(max_attempts=5), "bob": SerializableSnapshot()}

    def go_off_call(name: str) -> str:
        attempt = snapshots[name].attempts
        on_call = Doctor.objects.filter(on_call=True).count()
        if attempt == 1:
            barrier.wait()  # both have read before either writes
        on_commit(lambda: committed.append((name, attempt)))
        if on_call >= 2:
            Doctor.objects.filter(name=name).update(on_call=False)
            return "off"
        return "stays"

    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            results[name] = snapshots[name].run(go_off_call, name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results.values()) == ["off", "stays"]
    assert Doctor.objects.filter(on_call=True).count() == 1
    attempts = sorted(s.attempts for s in snapshots.values())
    assert attempts == [1, 2]
    # Only committed attempts ran their on_commit callbacks: one per doctor, and the
    # retried doctor's from its second attempt.
    assert sorted(a for _n, a in committed) == [1, 2]


@pytest.mark.postgres
def test_the_last_attempt_raises_with_its_count(db: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("needs a real 40001")
    from dorm.db.connection import connections

    calls: list[int] = []

    def always_conflicts() -> None:
        calls.append(1)
        # A real serialization failure, reported by the server for this transaction.
        connections["default"].execute(
            "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$", ()
        )

    with pytest.raises(SerializationRetryError, match="failed after 3 attempt\\(s\\)"):
        SerializableSnapshot(max_attempts=3, base_delay=0.001).run(always_conflicts)
    assert len(calls) == 3


def test_serializable_runs_in_its_own_transaction(db: Any) -> None:
    def add() -> int:
        Plain.objects.create(n=1)
        if db.vendor == "postgresql":
            row = get_connection().fetchone("SHOW transaction_isolation", ())
            assert row == ("serializable",)
        return Plain.objects.count()

    assert SerializableSnapshot().run(add) == 1
    with atomic(), pytest.raises(RuntimeError, match="cannot run inside an atomic"):
        SerializableSnapshot().run(add)

    def fails() -> None:
        Plain.objects.create(n=2)
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        SerializableSnapshot().run(fails)
    assert list(Plain.objects.values_list("n", flat=True)) == [1]
    with pytest.raises(ValueError, match="max_attempts"):
        SerializableSnapshot(max_attempts=0)


# -- optimistic locking --------------------------------------------------------------------


def test_the_release_note_snippet(db: Any) -> None:
    account = Account.objects.create(balance=Decimal("10.00"))
    account.balance += 5
    with_optimistic_lock(account)  # raises OptimisticLockError if stale
    assert account.version == 1
    fresh = Account.objects.get(pk=account.pk)
    assert (fresh.balance, fresh.version) == (Decimal("15.00"), 1)


def test_two_threads_save_one_row_one_loses_nothing_lost(db: Any) -> None:
    account = Account.objects.create(balance=Decimal("100.00"))
    barrier = threading.Barrier(2, timeout=10)
    outcomes: dict[str, Any] = {}

    def save(name: str, amount: str) -> None:
        mine = Account.objects.get(pk=account.pk)
        barrier.wait()  # both read version 0
        mine.balance += Decimal(amount)
        try:
            with_optimistic_lock(mine)
            outcomes[name] = "saved"
        except OptimisticLockError as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=save, args=("a", "1")),
        threading.Thread(target=save, args=("b", "2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [winner] = [n for n, o in outcomes.items() if o == "saved"]
    [error] = [o for o in outcomes.values() if isinstance(o, OptimisticLockError)]
    assert f"Account pk={account.pk}" in str(error) and "version 0 is stale" in str(error)
    fresh = Account.objects.get(pk=account.pk)
    assert fresh.version == 1
    assert fresh.balance == (Decimal("101.00") if winner == "a" else Decimal("102.00"))


def test_queryset_update_bumps_the_version(db: Any) -> None:
    account = Account.objects.create(balance=Decimal("1.00"))
    assert Account.objects.filter(pk=account.pk).update(balance=Decimal("2.00")) == 1
    assert Account.objects.get(pk=account.pk).version == 1
    account.balance = Decimal("3.00")
    with pytest.raises(OptimisticLockError):
        with_optimistic_lock(account)  # read at version 0: stale after the bulk update
    assert Account.objects.get(pk=account.pk).balance == Decimal("2.00")
    # An update that sets the version itself is left alone.
    Account.objects.filter(pk=account.pk).update(version=10)
    assert Account.objects.get(pk=account.pk).version == 10
    # Models without a version column are untouched.
    Plain.objects.create(n=1)
    Plain.objects.update(n=2)
    assert list(Plain.objects.values_list("n", flat=True)) == [2]


def test_optimistic_lock_errors(db: Any) -> None:
    with pytest.raises(TypeError, match="Plain has no integer 'version' field"):
        with_optimistic_lock(Plain.objects.create(n=1))
    with pytest.raises(TypeError, match="not saved yet"):
        with_optimistic_lock(Account(balance=Decimal("1")))
    gone = Account.objects.create(balance=Decimal("1"))
    Account.objects.filter(pk=gone.pk).delete()
    with pytest.raises(OptimisticLockError, match="or the row was deleted"):
        with_optimistic_lock(gone)


@pytest.mark.postgres
def test_deadlocks_are_retried_with_growing_jittered_waits(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.vendor != "postgresql":
        pytest.skip("needs a real 40P01")
    from dorm.contrib.concurrency import serializable
    from dorm.db.connection import connections

    waits: list[float] = []
    monkeypatch.setattr(serializable.time, "sleep", waits.append)
    calls: list[int] = []

    def deadlocks_three_times() -> str:
        calls.append(1)
        Plain.objects.create(n=len(calls))
        if len(calls) <= 3:
            connections["default"].execute(
                "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$", ()
            )
        return "done"

    snapshot = SerializableSnapshot(max_attempts=5, base_delay=0.1, max_delay=0.25)
    assert snapshot.run(deadlocks_three_times) == "done"
    assert snapshot.attempts == 4 and len(waits) == 3
    # Full jitter: each wait lies in [0, min(max_delay, base_delay * 2 ** (attempt - 1))].
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(0.25, 0.1 * 2 ** (attempt - 1))
    # Only the committed attempt's row is there.
    assert list(Plain.objects.values_list("n", flat=True)) == [4]
