"""stream_msgpack runs in constant memory: the peak (tracemalloc) of streaming 100k rows
stays under twice that of 10k rows, on SQLite and on PostgreSQL (server-side cursor)."""

from __future__ import annotations

import datetime
import decimal
import gc
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest

import dorm
from dorm.contrib.serializers import stream_msgpack


class Reading(dorm.Model):
    value = dorm.IntegerField()
    label = dorm.CharField(max_length=20)
    amount = dorm.DecimalField(max_digits=10, decimal_places=2)
    taken = dorm.DateTimeField()

    class Meta:
        app_label = "ser_memory"


MODELS = [Reading]
ROWS = 100_000
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def rows(db: Any) -> Iterator[int]:
    Reading.objects.all().delete()
    if db.vendor == "postgresql":  # one statement: the fixture is not what is measured
        from dorm.db.connection import get_connection

        conn = get_connection()
        conn.execute(
            f"INSERT INTO {conn.ops.quote_name(Reading._meta.db_table)} "
            "(value, label, amount, taken) SELECT i, 'reading-' || i, i / 100.0, "
            "TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL '1 second' "
            f"FROM generate_series(0, {ROWS - 1}) AS i",
            (),
        )
    else:
        Reading.objects.bulk_create(
            [
                Reading(
                    value=i,
                    label=f"reading-{i}",
                    amount=decimal.Decimal(i) / 100,
                    taken=START + datetime.timedelta(seconds=i),
                )
                for i in range(ROWS)
            ],
            batch_size=10_000,
        )
    assert Reading.objects.count() == ROWS
    yield ROWS
    Reading.objects.all().delete()


def _peak(consume: Callable[[], int]) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    try:
        seen = consume()
        return seen, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _rows_in(chunks: list[bytes] | Iterator[bytes]) -> int:
    unpacker = msgpack.Unpacker(raw=False, ext_hook=lambda code, data: None)
    count = -1  # the header
    for chunk in chunks:
        unpacker.feed(chunk)
        count += sum(1 for _ in unpacker)
    return count


def _queryset(limit: int) -> Callable[[], int]:
    return lambda: _rows_in(stream_msgpack(Reading.objects.filter(value__lt=limit)))


def _instances(limit: int) -> Callable[[], int]:
    def consume() -> int:
        source = Reading.objects.filter(value__lt=limit).iterator(chunk_size=1000)
        return _rows_in(stream_msgpack(source))

    return consume


def _check_flat(api: Callable[[int], Callable[[], int]], rows: int) -> None:
    api(2000)()  # warm caches (plans, registry, pools) outside the measurement
    small_count, small_peak = _peak(api(10_000))
    large_count, large_peak = _peak(api(rows))
    assert (small_count, large_count) == (10_000, rows)
    assert large_peak < 2 * small_peak, (small_peak, large_peak)


def test_a_stream_runs_in_constant_memory(rows: int, db: Any) -> None:
    """Fed from ``Model.objects.iterator()`` on both backends; on PostgreSQL also from the
    QuerySet itself, which goes through values_list().iterator(): the same server-side
    cursor."""
    _check_flat(_instances, rows)
    if db.vendor == "postgresql":
        _check_flat(_queryset, rows)
