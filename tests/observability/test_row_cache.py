"""RowCache: an LRU by primary key, dropped by every write path, safe across threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.contrib.row_cache import RowCache
from dorm.test.queries import CaptureQueriesContext


class Shelf(dorm.Model):
    label = dorm.CharField(max_length=40)

    class Meta:
        app_label = "obs_cache"


class Volume(dorm.Model):
    code = dorm.CharField(max_length=40, unique=True)
    title = dorm.CharField(max_length=80)
    shelf = dorm.ForeignKey(Shelf, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "obs_cache"


MODELS = [Shelf, Volume]


@pytest.fixture
def cache() -> Any:
    found: RowCache[Volume] = RowCache(Volume, maxsize=8)
    yield found
    found.close()


def _queries(fn: Callable[[], Any]) -> tuple[Any, int]:
    with CaptureQueriesContext() as captured:
        result = fn()
    return result, len(captured)


def test_get_reads_once_then_hits(clean_tables: Any, cache: Any) -> None:
    vol = Volume.objects.create(code="a", title="Alpha")
    first, n1 = _queries(lambda: cache.get(vol.pk))
    second, n2 = _queries(lambda: cache.get(str(vol.pk)))  # converted like a filter value
    assert (first.title, second.title, n1, n2) == ("Alpha", "Alpha", 1, 0)
    assert first is not second  # a fresh instance each time: callers cannot corrupt it
    second.title = "changed in memory only"
    assert cache.get(vol.pk).title == "Alpha"
    assert cache.info()[:2] == (2, 1) and (cache.hits, cache.misses) == (2, 1)
    with pytest.raises(Volume.DoesNotExist):
        cache.get(vol.pk + 1000)
    assert len(cache) == 1


def test_lru_keeps_maxsize_most_recent(clean_tables: Any, cache: Any) -> None:
    vols = [Volume.objects.create(code=f"c{i}", title=str(i)) for i in range(10)]
    for v in vols:
        cache.get(v.pk)
    assert len(cache) == 8
    _, hit = _queries(lambda: cache.get(vols[9].pk))
    _, evicted = _queries(lambda: cache.get(vols[0].pk))  # pushed out by 8 and 9
    _, lru = _queries(lambda: cache.get(vols[2].pk))  # the least recent when 0 came back
    assert (hit, evicted, lru, len(cache)) == (0, 1, 1, 8)


WRITES: dict[str, Callable[[Any], None]] = {
    "save": lambda v: (setattr(v, "title", "new"), v.save()),
    "delete": lambda v: v.delete(),
    "bulk_update": lambda v: (
        setattr(v, "title", "new"),
        Volume.objects.bulk_update([v], ["title"]),
    ),
    "queryset.update": lambda v: Volume.objects.filter(code=v.code).update(title="new"),
    "queryset.delete": lambda v: Volume.objects.filter(code=v.code).delete(),
    "upsert": lambda v: Volume.objects.upsert(
        [Volume(code=v.code, title="new")], unique_fields=["code"]
    ),
    "bulk_create update_conflicts": lambda v: Volume.objects.bulk_create(
        [Volume(code=v.code, title="new")],
        update_conflicts=True,
        unique_fields=["code"],
        update_fields=["title"],
    ),
    "cascade from the parent": lambda v: Shelf.objects.filter(pk=v.shelf_id).delete(),
    "parent instance delete": lambda v: Shelf.objects.get(pk=v.shelf_id).delete(),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_every_write_path_invalidates(clean_tables: Any, cache: Any, write: str) -> None:
    shelf = Shelf.objects.create(label="s")
    vol = Volume.objects.create(code="w", title="old", shelf=shelf)
    other = Volume.objects.create(code="other", title="kept", shelf=None)
    assert cache.get(vol.pk).title == "old"
    cache.get(other.pk)
    WRITES[write](Volume.objects.get(pk=vol.pk))
    fresh = Volume.objects.filter(pk=vol.pk).first()
    if fresh is None:
        with pytest.raises(Volume.DoesNotExist):
            cache.get(vol.pk)
    else:
        assert fresh.title == "new"
        assert cache.get(vol.pk).title == "new"
    assert cache.get(other.pk).title == "kept"


def test_bulk_create_of_new_rows_drops_nothing_it_does_not_need_to(
    clean_tables: Any, cache: Any
) -> None:
    vol = Volume.objects.create(code="x", title="x")
    cache.get(vol.pk)
    Volume.objects.bulk_create([Volume(code="y", title="y")])
    assert cache.get(vol.pk).title == "x"
    assert cache.invalidations >= 1  # it was told about the write


def test_inside_atomic_the_cache_is_bypassed_and_a_rollback_leaves_no_trace(
    clean_tables: Any, cache: Any
) -> None:
    vol = Volume.objects.create(code="t", title="committed")
    cache.get(vol.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        Volume.objects.filter(pk=vol.pk).update(title="uncommitted")
        assert cache.get(vol.pk).title == "uncommitted"  # the transaction sees its write
        raise RuntimeError("roll back")
    assert cache.get(vol.pk).title == "committed"


def test_a_reader_between_write_and_commit_cannot_keep_the_old_row(
    clean_tables: Any, cache: Any
) -> None:
    vol = Volume.objects.create(code="r", title="v1")
    written, read = threading.Event(), threading.Event()
    seen: list[str] = []

    def reader() -> None:
        assert written.wait(10)
        seen.append(cache.get(vol.pk).title)  # the committed row: still v1, now cached
        read.set()

    thread = threading.Thread(target=reader)
    thread.start()
    with transaction.atomic():
        Volume.objects.filter(pk=vol.pk).update(title="v2")
        written.set()
        assert read.wait(10)
    thread.join(10)
    assert seen == ["v1"]
    assert cache.get(vol.pk).title == "v2"  # the commit dropped what the reader cached


def test_threads_never_see_a_stale_row_after_a_write_returns(clean_tables: Any) -> None:
    """Writers bump a counter; after each write returns, a get() in the same thread must
    see at least that value, whatever the readers cache meanwhile."""
    cache: RowCache[Volume] = RowCache(Volume, maxsize=4)
    vol = Volume.objects.create(code="race", title="0")
    errors: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        for i in range(1, 41):
            Volume.objects.filter(pk=vol.pk).update(title=str(i))
            got = int(cache.get(vol.pk).title)
            if got < i:
                errors.append(f"wrote {i}, cache gave {got}")
        stop.set()

    def reader() -> None:
        while not stop.is_set():
            cache.get(vol.pk)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert cache.get(vol.pk).title == Volume.objects.get(pk=vol.pk).title == "40"
        assert cache.hits > 0 and cache.misses >= 40
    finally:
        cache.close()


def test_aget_hits_without_io_and_misses_await(clean_tables: Any, cache: Any) -> None:
    vol = Volume.objects.create(code="as", title="async")

    async def main() -> tuple[str, str]:
        first = await cache.aget(vol.pk)
        await Volume.objects.filter(pk=vol.pk).aupdate(title="async 2")
        second = await cache.aget(vol.pk)
        return first.title, second.title

    assert asyncio.run(main()) == ("async", "async 2")
    assert (cache.hits, cache.misses) == (0, 2)
    _, n = _queries(lambda: cache.get(vol.pk))
    assert n == 0


def test_closed_cache_stops_listening(clean_tables: Any) -> None:
    from dorm import plugins

    cache: RowCache[Volume] = RowCache(Volume)
    assert plugins.get_plugin_manager().has_plugin("observability.row_cache")
    cache.close()
    assert not plugins.get_plugin_manager().has_plugin("observability.row_cache")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="concrete dorm model class"):
        RowCache(dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="maxsize must be an int >= 1, not 0"):
        RowCache(Volume, maxsize=0)
    cache: RowCache[Volume] = RowCache(Volume)
    try:
        with pytest.raises(ValueError, match="bad primary key 'abc'"):
            cache.get("abc")
    finally:
        cache.close()
