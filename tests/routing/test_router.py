"""Routing on a real primary and streaming standby: writes, reads, transactions, lag,
sticky reads, the async API, and how often (and where) the probes run."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dorm import transaction
from dorm.contrib.active_passive import ActivePassiveRouter, NoPrimaryError
from dorm.exceptions import OperationalError

from .conftest import Item, Pair, wait_replicated

pytestmark = pytest.mark.postgres


@pytest.fixture
def replay_paused(pair: Pair) -> Iterator[Pair]:
    """The standby receives WAL but replays none of it until the test ends."""
    pair.sql(pair.standby, "SELECT pg_wal_replay_pause()")
    yield pair
    pair.sql(pair.standby, "SELECT pg_wal_replay_resume()")


def _on(alias: str, name: str) -> bool:
    return Item.objects.using(alias).filter(name=name).exists()


def test_writes_go_to_the_primary_and_reads_to_the_replica(
    replay_paused: Pair, configure: Any
) -> None:
    configure(replay_paused, ActivePassiveRouter(aliases=["node_b", "node_a"]))
    item = Item.objects.create(name="w1")
    assert item._state.db == "node_a"
    assert _on("node_a", "w1") and not _on("node_b", "w1")  # replay is paused
    # An unpinned read goes to the standby, which has not replayed the row.
    assert not Item.objects.filter(name="w1").exists()
    assert Item.objects.all().db == "node_b"
    Item.objects.filter(name="w1").update(name="w1b")
    Item.objects.filter(name="w1b").delete()
    assert not _on("node_a", "w1b") and not _on("node_a", "w1")


def test_reads_round_robin_over_healthy_replicas(pair: Pair, configure: Any) -> None:
    router = ActivePassiveRouter(aliases=["node_a", "node_b", "node_c"])
    # node_c: the standby under a second alias, so two replicas take turns.
    configure(pair, router, node_c=pair.databases()["node_b"])
    Item.objects.create(name="rr")
    wait_replicated(pair, "rr")
    chosen = [Item.objects.all().db for _ in range(6)]
    assert set(chosen) == {"node_b", "node_c"}
    assert all(a != b for a, b in zip(chosen, chosen[1:], strict=False))
    assert [Item.objects.get(name="rr").name for _ in range(4)] == ["rr"] * 4


def test_reads_inside_atomic_go_to_the_primary(replay_paused: Pair, configure: Any) -> None:
    router = configure(replay_paused, ActivePassiveRouter(aliases=["node_a", "node_b"]))
    with transaction.atomic(using=router.primary):
        Item.objects.create(name="tx")
        # Uncommitted: only the transaction itself can see it.
        assert Item.objects.filter(name="tx").exists()
        assert Item.objects.all().db == "node_a"
    assert not Item.objects.filter(name="tx").exists()  # the standby again, paused
    Item.objects.filter(name="tx").delete()


def test_lagging_replica_is_skipped_with_max_replica_lag_seconds(
    replay_paused: Pair, configure: Any
) -> None:
    strict = configure(
        replay_paused,
        ActivePassiveRouter(aliases=["node_a", "node_b"], max_replica_lag_seconds=0.2),
    )
    loose = ActivePassiveRouter(aliases=["node_a", "node_b"])
    try:
        Item.objects.create(name="lag")
        time.sleep(0.5)  # replay paused before the write: the lag is at least this
        statuses = {s.alias: s for s in strict.refresh()}
        assert statuses["node_b"].role == "replica"
        assert statuses["node_b"].lag is not None and statuses["node_b"].lag >= 0.5
        # No replica within the limit: reads go to the primary and see the write.
        assert Item.objects.all().db == "node_a"
        assert Item.objects.filter(name="lag").exists()
        # Without the limit the same read goes to the standby, which lacks the row.
        assert loose.db_for_read(Item) == "node_b"
        assert not Item.objects.using(loose.db_for_read(Item)).filter(name="lag").exists()
    finally:
        loose.close()
    Item.objects.filter(name="lag").delete()


def test_sticky_reads_see_their_own_write_in_this_thread_only(
    replay_paused: Pair, configure: Any
) -> None:
    configure(replay_paused, ActivePassiveRouter(aliases=["node_a", "node_b"], sticky_seconds=0.5))
    Item.objects.create(name="mine")
    assert Item.objects.filter(name="mine").exists()  # this thread just wrote: primary
    seen: list[bool] = []
    other = threading.Thread(target=lambda: seen.append(Item.objects.filter(name="mine").exists()))
    other.start()
    other.join()
    assert seen == [False]  # another thread has not written: the paused standby
    time.sleep(0.6)
    assert not Item.objects.filter(name="mine").exists()  # the window has passed
    Item.objects.filter(name="mine").delete()


def test_async_api_routes_alike_and_sticks_per_task(replay_paused: Pair, configure: Any) -> None:
    router = configure(
        replay_paused, ActivePassiveRouter(aliases=["node_a", "node_b"], sticky_seconds=30.0)
    )

    async def writer() -> tuple[str | None, bool]:
        item = await Item.objects.acreate(name="async")
        return item._state.db, await Item.objects.filter(name="async").aexists()

    async def reader() -> bool:
        return await Item.objects.filter(name="async").aexists()

    async def in_atomic() -> bool:
        async with transaction.aatomic(using=router.primary):
            return await Item.objects.filter(name="async").aexists()

    async def main() -> tuple[Any, ...]:
        wrote = await asyncio.create_task(writer())
        return wrote, await asyncio.create_task(reader()), await asyncio.create_task(in_atomic())

    wrote, read_elsewhere, read_in_atomic = asyncio.run(main())
    assert wrote == ("node_a", True)  # the writing task reads its own write
    assert read_elsewhere is False  # another task reads the paused standby
    assert read_in_atomic is True  # inside aatomic(): the primary
    assert _on("node_a", "async")
    Item.objects.using("node_a").filter(name="async").delete()


def test_async_first_use_waits_for_the_probes_without_blocking_the_loop(
    pair: Pair, configure: Any
) -> None:
    configure(pair, ActivePassiveRouter(aliases=["node_a", "node_b"]))
    ticks: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def main() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0)
        count = await Item.objects.acount()  # the first routing call starts the probes
        stop.set()
        await task
        return count

    assert asyncio.run(main()) >= 0
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) >= 2 and max(gaps) < 0.5


def test_no_primary_raises_naming_the_aliases(pair: Pair, configure: Any) -> None:
    configure(pair, ActivePassiveRouter(aliases=["node_b"], probe_timeout=1.0))
    assert Item.objects.all().db == "node_b"  # reads still work
    with pytest.raises(
        NoPrimaryError, match=r"no primary for writes among 'node_b' \(node_b: replica\)"
    ) as caught:
        Item.objects.create(name="nowhere")
    assert isinstance(caught.value, OperationalError)
    assert not _on("node_b", "nowhere")


def test_probes_run_on_their_schedule_not_per_query(
    pair: Pair, configure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dorm.contrib.active_passive")
    router = configure(pair, ActivePassiveRouter(aliases=["node_a", "node_b"], probe_seconds=0.5))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(60):
                Item.objects.filter(name="none").exists()
                if i % 20 == 0:
                    Item.objects.filter(name="none").update(name="none")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    start = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1.2)
    elapsed = time.monotonic() - start
    assert errors == []
    probes = {s.alias: s.probes for s in router.status()}
    logged = [r for r in caplog.records if r.getMessage().startswith("probed")]
    # 240 reads and 12 writes; probes: the first, then one per probe_seconds at most.
    for alias, count in probes.items():
        assert 2 <= count <= 1 + elapsed / 0.5 + 1, (alias, count, elapsed)
    assert len(logged) == sum(probes.values())


def _postmaster_pid(cluster: Any) -> int:
    return int((cluster.datadir / "postmaster.pid").read_text().split()[0])


def test_a_hanging_probe_blocks_no_query(pair: Pair, configure: Any) -> None:
    router = configure(pair, ActivePassiveRouter(aliases=["node_a", "node_b"], probe_timeout=2.0))
    Item.objects.filter(name="none").exists()  # pooled connections to both, probes done
    Item.objects.filter(name="none").update(name="none")
    pid = _postmaster_pid(pair.standby)
    os.kill(pid, signal.SIGSTOP)  # new connections to the standby hang; open ones work
    try:
        refresh = threading.Thread(target=router.refresh)
        refresh.start()
        started = time.monotonic()
        for _ in range(20):
            assert Item.objects.all().db == "node_b"
            Item.objects.filter(name="none").exists()
            Item.objects.filter(name="none").update(name="none")
        took = time.monotonic() - started
        assert refresh.is_alive(), "the probe of the stopped standby should still be waiting"
        assert took < 1.5, took
    finally:
        os.kill(pid, signal.SIGCONT)
    refresh.join()
    statuses = {s.alias: s for s in router.status()}
    # The probe answered only once the standby was resumed: it outlasted every query.
    assert statuses["node_b"].duration > took
    assert {s.role for s in statuses.values()} == {"primary", "replica"}


def test_bad_arguments_name_the_option() -> None:
    with pytest.raises(TypeError, match=r"aliases=\.\.\.\): a list of DATABASES aliases"):
        ActivePassiveRouter(aliases="node_a")
    with pytest.raises(ValueError, match="at least one alias"):
        ActivePassiveRouter(aliases=[])
    with pytest.raises(ValueError, match="an alias is repeated"):
        ActivePassiveRouter(aliases=["a", "a"])
    with pytest.raises(ValueError, match=r"probe_seconds=0\): must be > 0 seconds"):
        ActivePassiveRouter(aliases=["a"], probe_seconds=0)
    with pytest.raises(TypeError, match=r"sticky_seconds=\.\.\.\): a number of seconds"):
        ActivePassiveRouter(aliases=["a"], sticky_seconds=True)
    with pytest.raises(ValueError, match=r"max_replica_lag_seconds=-1\)"):
        ActivePassiveRouter(aliases=["a"], max_replica_lag_seconds=-1)
