"""MessagePack streams of every core field type, on SQLite and PostgreSQL.

Only dorm-core and dorm-serializers are needed here: the isolated-install test runs this
file in a venv that holds nothing else.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

import dorm
from dorm.contrib.serializers import (
    RecordError,
    SerializerError,
    StreamFormatError,
    astream_msgpack,
    iter_jsonl,
    iter_msgpack,
    stream_jsonl,
    stream_msgpack,
)

UTC = datetime.UTC


class Owner(dorm.Model):
    id = dorm.UUIDField(primary_key=True)
    name = dorm.CharField(max_length=40)

    class Meta:
        app_label = "ser_streams"


class Item(dorm.Model):
    title = dorm.CharField(max_length=80, choices=[("a", "A"), ("b", "B")], default="a")
    body = dorm.TextField(default="")
    count = dorm.IntegerField(null=True)
    big = dorm.BigIntegerField(null=True)
    small = dorm.SmallIntegerField(null=True)
    positive = dorm.PositiveIntegerField(null=True)
    ratio = dorm.FloatField(null=True)
    price = dorm.DecimalField(max_digits=12, decimal_places=4, null=True)
    flag = dorm.BooleanField(default=False)
    day = dorm.DateField(null=True)
    moment = dorm.DateTimeField(null=True)
    clock = dorm.TimeField(null=True)
    span = dorm.DurationField(null=True)
    email = dorm.EmailField(null=True)
    url = dorm.URLField(null=True)
    slug = dorm.SlugField(null=True)
    token = dorm.UUIDField(null=True)
    doc = dorm.JSONField(null=True)
    blob = dorm.BinaryField(null=True)
    ip = dorm.GenericIPAddressField(null=True)
    owner = dorm.ForeignKey(Owner, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "ser_streams"
        ordering = ["id"]


class Solo(dorm.Model):
    id = dorm.AutoField(primary_key=True)
    item = dorm.OneToOneField(Item, on_delete=dorm.CASCADE)

    class Meta:
        app_label = "ser_streams"


MODELS = [Owner, Item, Solo]

pytestmark = pytest.mark.usefixtures("clean_tables")

FULL: dict[str, Any] = dict(
    title="b",
    body="línea 1\nline 2 ✓",
    count=-2_147_483_648,
    big=9_223_372_036_854_775_807,
    small=-32768,
    positive=2_147_483_647,
    ratio=0.1,
    price=decimal.Decimal("-12345678.1234"),
    flag=True,
    day=datetime.date(1999, 12, 31),
    moment=datetime.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
    clock=datetime.time(23, 59, 58, 123456),
    span=datetime.timedelta(days=-3, seconds=7, microseconds=5),
    email="ann@example.com",
    url="https://example.com/a?b=c",
    slug="a-slug_1",
    token=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    doc={"k": [1, 2.5, None, True, "x"], "nested": {"deep": {}}},
    blob=b"\x00\xff\x10binary",
    ip="2001:db8::1",
)


def _values(obj: Any, model: Any = Item) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


def _make_rows() -> list[Any]:
    owner = Owner.objects.create(name="ann")
    full = Item.objects.create(**FULL, owner=owner)
    empty = Item.objects.create()
    Solo.objects.create(item=full)
    return [full, empty]


def test_every_core_field_type_round_trips_through_a_stream(clean_tables: Any) -> None:
    _make_rows()
    stored = [_values(o) for o in Item.objects.all()]
    assert stored[0]["price"] == FULL["price"] and stored[0]["doc"] == FULL["doc"]
    data = b"".join(stream_msgpack(Item.objects.all()))
    copies = list(iter_msgpack(data, Item))
    assert [_values(c) for c in copies] == stored
    assert all(c._state.adding for c in copies)  # unsaved instances
    # The dump loads back: delete everything, insert the copies, read the table again.
    solo_data = b"".join(stream_msgpack(Solo.objects.all()))
    Solo.objects.all().delete()
    Item.objects.all().delete()
    Item.objects.bulk_create(copies)
    Solo.objects.bulk_create(list(iter_msgpack(solo_data, Solo)))
    assert [_values(o) for o in Item.objects.all()] == stored
    assert Solo.objects.get().item.title == "b"


def test_wire_types_are_the_documented_ones(clean_tables: Any) -> None:
    _make_rows()
    objects = list(msgpack.Unpacker(_bytes_io(_stream_bytes(Item.objects.all())), raw=False))
    header, full, empty = objects
    assert header == {
        "format": "dorm-msgpack",
        "version": 1,
        "model": "ser_streams.Item",
        "fields": [f.name for f in Item._meta.concrete_fields],
    }
    row = dict(zip(header["fields"], full, strict=True))
    assert isinstance(row["moment"], msgpack.Timestamp)
    assert row["moment"].to_datetime() == FULL["moment"]
    assert row["price"] == msgpack.ExtType(1, b"-12345678.1234")
    assert row["token"] == msgpack.ExtType(2, FULL["token"].bytes)
    assert row["day"] == msgpack.ExtType(3, b"1999-12-31")
    assert row["clock"] == msgpack.ExtType(4, b"23:59:58.123456")
    micro = FULL["span"] // datetime.timedelta(microseconds=1)
    assert row["span"] == msgpack.ExtType(5, micro.to_bytes(8, "big", signed=True))
    assert row["doc"] == FULL["doc"]  # a map, not JSON text
    assert row["blob"] == FULL["blob"] and row["flag"] is True
    assert row["owner"] == msgpack.ExtType(2, Owner.objects.get().pk.bytes)  # the key
    assert dict(zip(header["fields"], empty, strict=True))["price"] is None


def _stream_bytes(source: Any, **kwargs: Any) -> bytes:
    return b"".join(stream_msgpack(source, **kwargs))


def test_instances_queryset_and_manager_give_the_same_stream(clean_tables: Any) -> None:
    _make_rows()
    from_queryset = _stream_bytes(Item.objects.all())
    assert _stream_bytes(Item.objects.iterator(chunk_size=1)) == from_queryset
    assert _stream_bytes(list(Item.objects.all())) == from_queryset
    assert _stream_bytes(Item.objects) == from_queryset


def test_chunks_hold_chunk_rows_whole_rows_each(clean_tables: Any) -> None:
    Item.objects.bulk_create([Item(count=i) for i in range(5)])
    chunks = list(stream_msgpack(Item.objects.all(), fields=["count"], chunk_rows=2))
    decoded = [list(msgpack.Unpacker(_bytes_io(c), raw=False)) for c in chunks]
    assert [len(d) for d in decoded] == [3, 2, 1]  # the header rides in the first chunk
    assert [r for d in decoded for r in d if isinstance(r, list)] == [[i] for i in range(5)]


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def test_fields_pick_and_order_the_columns(clean_tables: Any) -> None:
    _make_rows()
    data = _stream_bytes(Item.objects.filter(flag=True), fields=["owner_id", "title"])
    header = next(iter(msgpack.Unpacker(_bytes_io(data), raw=False)))
    assert header["fields"] == ["owner", "title"]
    (copy,) = iter_msgpack([data[:7], data[7:]], Item)  # chunks split anywhere
    assert (copy.owner_id, copy.title, copy.count) == (Owner.objects.get().pk, "b", None)


def test_jsonl_round_trip_of_every_core_field(clean_tables: Any) -> None:
    _make_rows()
    stored = [_values(o) for o in Item.objects.all()]
    lines = b"".join(stream_jsonl(Item.objects.all())).splitlines()
    assert len(lines) == 2 and b'"price":"-12345678.1234"' in lines[0]
    assert [_values(c) for c in iter_jsonl(lines, Item)] == stored


def test_an_empty_result_is_a_header_only_stream(clean_tables: Any) -> None:
    data = _stream_bytes(Item.objects.all())
    assert list(iter_msgpack(data, Item)) == []
    assert list(iter_msgpack(_stream_bytes([]), Item)) == []


def test_astream_msgpack_matches_the_sync_stream(clean_tables: Any) -> None:
    _make_rows()
    expected = _stream_bytes(Item.objects.all())

    async def collect(source: Any) -> bytes:
        return b"".join([chunk async for chunk in astream_msgpack(source, chunk_rows=1)])

    assert asyncio.run(collect(Item.objects.all())) == expected
    assert asyncio.run(collect(Item.objects.order_by("id").aiterator())) == expected
    assert asyncio.run(collect(list(Item.objects.all()))) == expected

    async def empty() -> AsyncIterator[Any]:
        return
        yield

    assert list(iter_msgpack(asyncio.run(collect(empty())), Item)) == []


def test_astream_refuses_a_blocking_iterable(db: Any) -> None:
    async def first() -> None:
        async for _chunk in astream_msgpack(Item.objects.iterator()):
            pass

    with pytest.raises(TypeError, match=r"synchronous iterable.*qs\.aiterator\(\)"):
        asyncio.run(first())


def test_bad_arguments_and_streams_raise_clear_errors(clean_tables: Any) -> None:
    _make_rows()
    with pytest.raises(ValueError, match=r"chunk_rows must be a positive integer, got 0"):
        list(stream_msgpack(Item.objects.all(), chunk_rows=0))
    with pytest.raises(ValueError, match=r"Item has no concrete field 'nope'; known: id, title"):
        list(stream_msgpack(Item.objects.all(), fields=["title", "nope"]))
    with pytest.raises(SerializerError, match=r"got a Owner among Item rows"):
        list(stream_msgpack([*Item.objects.all(), Owner.objects.get()]))
    data = _stream_bytes(Item.objects.all())
    with pytest.raises(StreamFormatError, match=r"holds ser_streams.Item rows, not ser_streams"):
        list(iter_msgpack(data, Owner))
    with pytest.raises(StreamFormatError, match=r"does not start with a dorm-msgpack header"):
        list(iter_msgpack(msgpack.packb([1, 2]), Item))
    with pytest.raises(StreamFormatError, match=r"the stream is empty"):
        list(iter_msgpack(b"", Item))
    header = {"format": "dorm-msgpack", "version": 1, "model": "ser_streams.Item"}
    bad = msgpack.packb({**header, "fields": ["title", "count"]})
    bad += msgpack.packb(["a", 1]) + msgpack.packb(["b"])
    with pytest.raises(RecordError, match=r"record 2: expected an array of 2 values") as info:
        list(iter_msgpack(bad, Item))
    assert info.value.row == 2
    future = msgpack.packb({**header, "version": 9, "fields": []})
    with pytest.raises(StreamFormatError, match=r"version 9; this dorm-serializers reads"):
        list(iter_msgpack(future, Item))


def test_astream_reads_off_the_event_loop(clean_tables: Any) -> None:
    """Other tasks run while the rows are read: the reads are awaited, not run on the loop."""
    Item.objects.bulk_create([Item(count=i) for i in range(3000)])

    async def main() -> tuple[int, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        rows = -1  # the header
        unpacker = msgpack.Unpacker(raw=False)
        async for chunk in astream_msgpack(Item.objects.all(), fields=["count"], chunk_rows=500):
            unpacker.feed(chunk)
            rows += sum(1 for _ in unpacker)
        done.set()
        await task
        return rows, ticks

    rows, ticks = asyncio.run(main())
    assert rows == 3000 and ticks > 0
