"""Fault drills for the PostgreSQL pools, on a cluster of this module's own: a burst of
threads on a new pool, the server down at first use, stopped and restarted under a live
pool, permanent refusals; sync and async. Only dorm exceptions may come out, and queries
must succeed again within one POOL_TIMEOUT of the server's return."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import dorm
from dorm.db.connection import get_async_connection, get_connection, reset_connections
from dorm.exceptions import DormError, OperationalError

pytestmark = pytest.mark.postgres

TIMEOUT = 1.0


@pytest.fixture
def cluster(private_pg_cluster: Any) -> Iterator[Any]:
    """The private cluster, running, with dorm configured on it (POOL_TIMEOUT=1)."""
    if not _is_up(private_pg_cluster):
        private_pg_cluster.resume()
    dorm.configure(
        DATABASES={"default": {**private_pg_cluster.settings("postgres"), "POOL_TIMEOUT": TIMEOUT}}
    )
    yield private_pg_cluster
    reset_connections()
    dorm.conf.settings._reset()
    if not _is_up(private_pg_cluster):
        private_pg_cluster.resume()


def _is_up(cluster: Any) -> bool:
    import psycopg

    try:
        psycopg.connect(cluster.dsn(), connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def _select_one() -> Any:
    return get_connection().fetchone("SELECT 1")


def test_burst_of_threads_on_a_new_pool(cluster: Any) -> None:
    """12 threads at once on a pool that is not open yet, each holding its connection for
    a while: the opening thread must not lose its MIN_POOL_SIZE connection to them (with
    more threads than MAX_POOL_SIZE=4 there are waiters for longer than POOL_TIMEOUT)."""
    settings = {**cluster.settings("postgres"), "POOL_TIMEOUT": TIMEOUT, "MAX_POOL_SIZE": 4}
    dorm.configure(DATABASES={"default": settings})
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []
    done: list[int] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            time.sleep(i * 0.002)  # arrivals spread over the pool's opening
            for _ in range(3):
                get_connection().fetchone("SELECT pg_sleep(0.2)")
            done.append(1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(done) == 12


def test_pool_is_published_only_once_open(
    cluster: Any, register_plugin: Callable[[Any, str], None]
) -> None:
    """A thread arriving while the pool opens must wait for the opening, not take its
    first connection: with MAX_POOL_SIZE=1 that made the opening time out."""
    settings = {**cluster.settings("postgres"), "POOL_TIMEOUT": TIMEOUT, "MAX_POOL_SIZE": 1}
    dorm.configure(DATABASES={"default": settings})
    made: list[int] = []

    class SlowFirstConnection:
        @dorm.plugins.hookimpl
        def dorm_connection_created(self, alias: str, is_async: bool) -> None:
            made.append(1)
            if len(made) == 1:
                time.sleep(0.4)  # the pool's first connection is slow to set up

    register_plugin(SlowFirstConnection(), "slow-first-connection")
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            assert _select_one() == (1,)
        except BaseException as exc:
            errors.append(exc)

    def latecomer() -> None:
        time.sleep(0.1)  # the opening is under way
        try:
            get_connection().fetchone("SELECT pg_sleep(0.75)")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener), threading.Thread(target=latecomer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_server_down_at_first_use_then_started(cluster: Any) -> None:
    cluster.pause()
    started = time.monotonic()
    with pytest.raises(OperationalError) as info:
        _select_one()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "cannot connect to 'default'" in message
    assert "Connection refused" in message  # the real cause, not a bare timeout
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.5  # retried for POOL_TIMEOUT, not longer
    # Again: the failed pool was not kept (no PoolClosed, the same clean error).
    with pytest.raises(OperationalError, match="Connection refused"):
        _select_one()
    cluster.resume()
    back = time.monotonic()
    assert _select_one() == (1,)
    assert time.monotonic() - back < TIMEOUT


def test_waiting_threads_share_a_failed_opening(cluster: Any) -> None:
    """Six threads asking while the server is down fail together, not one after another."""
    cluster.pause()
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        try:
            _select_one()
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 6
    assert all(type(e) is OperationalError for e in errors)
    assert time.monotonic() - started < 2 * TIMEOUT + 1.5


def test_server_stopped_under_a_live_pool_then_started(cluster: Any) -> None:
    dorm.warmup_pool(target=3)
    assert _select_one() == (1,)
    cluster.pause()
    for _ in range(3):
        with pytest.raises(DormError) as info:
            _select_one()
        assert isinstance(info.value, OperationalError), repr(info.value)
        assert "PoolClosed" not in repr(info.value)
    cluster.resume()
    back = time.monotonic()
    assert _select_one() == (1,)
    assert time.monotonic() - back < TIMEOUT
    # The pool serves several threads again.
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(_select_one())) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(1,)] * 5


def test_restart_under_a_live_pool(cluster: Any) -> None:
    """A fast restart cuts every pooled connection: the next statements reconnect."""
    dorm.warmup_pool(target=3)
    cluster.restart()
    for _ in range(5):
        assert _select_one() == (1,)
    with dorm.transaction.atomic():
        assert get_connection().fetchone("SELECT 2") == (2,)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"NAME": "no_such_database"}, 'database "no_such_database" does not exist'),
        ({"USER": "no_such_role"}, 'role "no_such_role" does not exist'),
    ],
)
def test_permanent_refusal_fails_at_once_with_the_server_message(
    cluster: Any, change: dict[str, str], reason: str
) -> None:
    dorm.configure(
        DATABASES={"default": {**cluster.settings("postgres"), "POOL_TIMEOUT": 10, **change}}
    )
    started = time.monotonic()
    with pytest.raises(OperationalError) as info:
        _select_one()
    assert reason in str(info.value)
    assert "cannot connect to 'default'" in str(info.value)
    assert time.monotonic() - started < 2.0  # not POOL_TIMEOUT=10 of retries


# -- async ------------------------------------------------------------------------------------


async def _aselect_one() -> Any:
    conn = get_async_connection()
    return await conn.fetchone("SELECT 1")


def test_async_restart_raises_only_dorm_errors_and_recovers(cluster: Any) -> None:
    async def main() -> list[str]:
        outcomes: list[str] = []
        await dorm.awarmup_pool(target=4)

        async def query() -> None:
            try:
                await _aselect_one()
                outcomes.append("ok")
            except OperationalError:
                outcomes.append("operational")

        # Statements in flight while the server restarts.
        tasks = [asyncio.create_task(query()) for _ in range(8)]
        await asyncio.to_thread(cluster.restart)
        await asyncio.gather(*tasks)
        # Afterwards every statement succeeds: no connection in an unknown state is
        # handed out again ("another operation is in progress").
        for _ in range(3):
            results = await asyncio.gather(*(_aselect_one() for _ in range(8)))
            assert [tuple(r) for r in results] == [(1,)] * 8
        return outcomes

    outcomes = asyncio.run(main())
    assert set(outcomes) <= {"ok", "operational"}


def test_async_server_down_then_back(cluster: Any) -> None:
    async def main() -> float:
        await dorm.awarmup_pool(target=2)
        await asyncio.to_thread(cluster.pause)
        for _ in range(3):
            with pytest.raises(DormError) as info:
                await _aselect_one()
            assert isinstance(info.value, OperationalError), repr(info.value)
        await asyncio.to_thread(cluster.resume)
        back = time.monotonic()
        assert tuple(await _aselect_one()) == (1,)
        return time.monotonic() - back

    assert asyncio.run(main()) < TIMEOUT


def test_async_permanent_refusal_fails_at_once_with_the_server_message(cluster: Any) -> None:
    dorm.configure(
        DATABASES={
            "default": {**cluster.settings("postgres"), "POOL_TIMEOUT": 10, "NAME": "no_such_db"}
        }
    )

    async def main() -> None:
        await _aselect_one()

    started = time.monotonic()
    with pytest.raises(OperationalError, match='database "no_such_db" does not exist'):
        asyncio.run(main())
    assert time.monotonic() - started < 2.0
