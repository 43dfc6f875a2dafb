"""iterator(chunk_size=...) streams: the peak memory of iterating 100k rows stays within
twice that of 10k rows (a server-side cursor on PostgreSQL, fetchmany on SQLite)."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable

import pytest

import dorm


class Reading(dorm.Model):
    value = dorm.IntegerField()
    label = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_iter_memory"


MODELS = [Reading]


@pytest.fixture(scope="module")
def rows(db) -> int:
    Reading.objects.all().delete()
    Reading.objects.bulk_create(
        [Reading(value=i, label=f"reading-{i}") for i in range(100_000)], batch_size=20_000
    )
    yield 100_000
    Reading.objects.all().delete()


def _peak(consume: Callable[[], int]) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    try:
        seen = consume()
        return seen, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _sync(limit: int) -> Callable[[], int]:
    def consume() -> int:
        total = 0
        for obj in Reading.objects.filter(value__lt=limit).iterator(chunk_size=2000):
            total += obj.value >= 0
        return total

    return consume


def _async(limit: int) -> Callable[[], int]:
    async def main() -> int:
        total = 0
        async for obj in Reading.objects.filter(value__lt=limit).aiterator(chunk_size=2000):
            total += obj.value >= 0
        return total

    return lambda: asyncio.run(main())


@pytest.mark.parametrize("api", [_sync, _async], ids=["sync", "async"])
def test_peak_memory_is_flat_in_the_number_of_rows(rows: int, api: Callable) -> None:
    api(2000)()  # warm caches (plans, constructors, pools) outside the measurement
    small_count, small_peak = _peak(api(10_000))
    large_count, large_peak = _peak(api(rows))
    assert (small_count, large_count) == (10_000, 100_000)
    assert large_peak < 2 * small_peak, (small_peak, large_peak)
