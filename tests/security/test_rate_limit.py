"""Token buckets: the in-process store under threads, the PostgreSQL store under processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm.contrib.rate_limit import (
    MemoryStore,
    PostgresStore,
    RateLimited,
    TokenBucket,
    rate_limited,
)
from dorm.exceptions import SynchronousOnlyOperation
from dorm.test import CaptureQueriesContext


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _hammer(take: Any, threads: int, until: float) -> int:
    """Call ``take()`` from ``threads`` threads until the monotonic time ``until``; return
    how many calls were allowed."""
    allowed = [0] * threads
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        barrier.wait()
        while time.monotonic() < until:
            allowed[i] += take().allowed
            time.sleep(0.0005)  # modest load: the machine is shared

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(allowed)


# -- in-process store ----------------------------------------------------------------------------


def test_memory_store_admits_exactly_burst_then_the_refill_under_8_threads() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=4, burst=10, store=MemoryStore(clock=clock))
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        for _ in range(50):
            decision = bucket.take("k")
            with lock:
                results.append(decision.allowed)

    def round_of_8() -> int:
        results.clear()
        workers = [threading.Thread(target=run) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sum(results)

    assert round_of_8() == 10  # 400 attempts, frozen clock: the burst exactly
    clock.now += 2.5
    assert round_of_8() == 10  # 2.5 s x 4/s
    clock.now += 100
    assert round_of_8() == 10  # capped at burst
    assert bucket.take("other").allowed  # keys have their own buckets


def test_memory_store_is_within_one_token_of_the_exact_figure_in_real_time() -> None:
    rate, burst = 40.0, 10.0
    start = time.monotonic() + 0.3
    store = MemoryStore(clock=lambda: max(time.monotonic(), start))  # refill starts at `start`
    bucket = TokenBucket(rate, burst, store=store, name="rt")
    allowed = _hammer(lambda: bucket.take("k"), 8, start + 0.8)
    state = store.state("rt:k")
    assert state is not None
    tokens, last = state
    exact = burst + rate * (last - start) - tokens
    assert abs(allowed - exact) <= 1, (allowed, exact)
    assert allowed <= burst + rate * (time.monotonic() - start) + 1  # never over the limit


def test_rate_limited_raises_with_retry_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=2, burst=1, store=MemoryStore(clock=clock), name="signup")

    class Request:
        def __init__(self, ip: str) -> None:
            self.ip = ip

    @rate_limited(bucket, key=lambda req: req.ip)
    def signup(req: Request) -> str:
        return f"welcome {req.ip}"

    assert signup(Request("10.0.0.1")) == "welcome 10.0.0.1"
    with pytest.raises(RateLimited) as info:
        signup(Request("10.0.0.1"))
    assert info.value.retry_after == pytest.approx(0.5)
    assert info.value.key == "10.0.0.1" and info.value.bucket == "signup"
    assert str(info.value) == (
        "rate limit of bucket 'signup' exceeded for key '10.0.0.1'; retry after 0.500 s"
    )
    assert signup(Request("10.0.0.2")) == "welcome 10.0.0.2"
    clock.now += 0.5
    assert signup(Request("10.0.0.1")) == "welcome 10.0.0.1"


def test_async_rate_limited() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 2, store=MemoryStore(clock=clock))

    @rate_limited(bucket)
    async def ping() -> str:
        return "pong"

    async def main() -> list[Any]:
        return await asyncio.gather(*(ping() for _ in range(3)), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert outcomes[:2] == ["pong", "pong"] and isinstance(outcomes[2], RateLimited)
    assert outcomes[2].retry_after == pytest.approx(1.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rate_per_second must be positive, got 0"):
        TokenBucket(0, 1)
    with pytest.raises(TypeError, match="burst must be a finite number, got 'x'"):
        TokenBucket(1, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost 5.0 exceeds the bucket's burst 2.0"):
        TokenBucket(1, 2).take("k", cost=5)
    with pytest.raises(TypeError, match="needs a TokenBucket"):
        rate_limited("bucket")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="table must be an identifier"):
        PostgresStore(table='x"; DROP TABLE y; --')


def test_postgres_store_refuses_sqlite(fresh_settings: None, tmp_path: Any) -> None:
    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "r.db")}})
    with pytest.raises(ValueError, match="PostgresStore needs a PostgreSQL database"):
        TokenBucket(1, 1, store=PostgresStore()).take("k")


# -- PostgreSQL store ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg(pg_database: Any) -> Iterator[Any]:
    from dorm.conf import settings
    from dorm.db.connection import reset_connections

    dorm.configure(DATABASES={"default": pg_database.settings})
    PostgresStore().create_table()
    yield pg_database
    reset_connections()
    settings._reset()


def _start_at(store: PostgresStore, key: str, burst: float, delay: float) -> float:
    """Set ``key``'s bucket full, with its refill starting ``delay`` s from now (epoch)."""
    from dorm.db.connection import get_connection

    start = time.time() + delay
    get_connection().execute(
        "INSERT INTO dorm_rate_limit (key, tokens, updated_at, allowed) "
        "VALUES (%s, %s, to_timestamp(%s), true) ON CONFLICT (key) DO UPDATE "
        "SET tokens = EXCLUDED.tokens, updated_at = EXCLUDED.updated_at",
        [key, burst, start],
    )
    return start


@pytest.mark.postgres
def test_one_take_is_one_statement(pg: Any) -> None:
    bucket = TokenBucket(1, 3, store=PostgresStore(), name="one")
    with CaptureQueriesContext() as ctx:
        decisions = [bucket.take("k") for _ in range(4)]
    assert len(ctx) == 4
    assert all("ON CONFLICT" in q["sql"] and "RETURNING" in q["sql"] for q in ctx)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0.9 < decisions[3].retry_after <= 1.0


@pytest.mark.postgres
def test_postgres_store_under_8_threads(pg: Any) -> None:
    store = PostgresStore()
    rate, burst = 40.0, 10.0
    bucket = TokenBucket(rate, burst, store=store, name="threads")
    start = _start_at(store, "threads:k", burst, 0.3)
    until = time.monotonic() + (start - time.time()) + 0.8
    allowed = _hammer(lambda: bucket.take("k"), 8, until)
    state = store.state("threads:k")
    assert state is not None
    tokens, last = state
    exact = burst + rate * (last.timestamp() - start) - tokens
    assert abs(allowed - exact) <= 1, (allowed, exact)
    assert allowed <= burst + rate * (time.time() - start) + 1


WORKER = """
import json, sys, time
import dorm
from dorm.contrib.rate_limit import PostgresStore, TokenBucket

settings, rate, burst, until = json.loads(sys.argv[1])
dorm.configure(DATABASES={"default": settings})
bucket = TokenBucket(rate, burst, store=PostgresStore(), name="procs")
allowed = attempts = 0
while time.time() < until:
    allowed += bucket.take("shared").allowed
    attempts += 1
    time.sleep(0.001)
print(allowed, attempts)
"""


@pytest.mark.postgres
def test_three_processes_share_one_postgres_bucket(pg: Any) -> None:
    store = PostgresStore()
    rate, burst = 30.0, 8.0
    start = _start_at(store, "procs:shared", burst, 2.5)  # time for the workers to import
    until = start + 1.5
    argv = json.dumps([pg.settings, rate, burst, until])
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    counts = []
    for w in workers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err.decode()[-2000:]
        allowed, attempts = map(int, out.split())
        assert attempts > allowed  # each process was refused too: the limit was shared
        counts.append(allowed)
    state = store.state("procs:shared")
    assert state is not None
    tokens, last = state
    exact = burst + rate * (last.timestamp() - start) - tokens
    assert abs(sum(counts) - exact) <= 1, (counts, exact)
    assert sum(counts) <= burst + rate * (time.time() - start) + 1
    assert sum(counts) >= burst + rate * 1.5 * 0.8  # and the refill was not lost either


@pytest.mark.postgres
def test_postgres_store_async_take(pg: Any) -> None:
    bucket = TokenBucket(1, 2, store=PostgresStore(), name="async")

    @rate_limited(bucket, key=lambda user: user)
    async def act(user: str) -> str:
        return user

    async def main() -> list[Any]:
        return [
            await act("ann"),
            await act("ann"),
            await asyncio.gather(act("ann"), return_exceptions=True),
        ]

    first, second, (third,) = asyncio.run(main())
    assert (first, second) == ("ann", "ann") and isinstance(third, RateLimited)

    async def blocking() -> Any:  # the sync take in a running loop: refused by dorm's guard
        return bucket.take("bob")

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(blocking())
    state = PostgresStore().state("async:ann")
    assert state is not None and state[0] < 1


def test_memory_store_forgets_only_full_buckets_each_by_its_own_limit() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, max_keys=3)
    small = TokenBucket(1, 2, store=store, name="small")
    large = TokenBucket(1, 100, store=store, name="large")
    for _ in range(50):
        large.take("k")  # 50 of 100 left
    small.take("a")
    small.take("b")
    clock.now += 5  # the small buckets are full again; the large one holds 55 of 100
    small.take("c")  # a 4th key: the full buckets are dropped, the large one is kept
    assert store.state("small:a") is None and store.state("small:b") is None
    assert store.state("large:k") == (50.0, clock.now - 5)  # stored level, refilled on take
    assert sum(large.take("k").allowed for _ in range(60)) == 55
