"""Blocking ORM calls from a running event loop raise SynchronousOnlyOperation (nothing is
written), work through asyncio.to_thread or with DORM_ALLOW_ASYNC_UNSAFE=1; warmup_pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import dorm
from dorm import plugins, transaction
from dorm.db.connection import get_connection, warmup_pool
from dorm.exceptions import DormError, SynchronousOnlyOperation
from dorm.plugins import hookimpl


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_async_guard"


class Review(dorm.Model):
    book = dorm.ForeignKey(Book, on_delete=dorm.CASCADE)

    class Meta:
        app_label = "t_async_guard"


MODELS = [Book, Review]
pytestmark = pytest.mark.usefixtures("clean_tables")


def _get(pk: int) -> Any:
    return Book.objects.get(pk=pk)


def _save() -> Any:
    book = Book(title="saved")
    book.save()
    return book


def _update() -> int:
    return Book.objects.filter(title="seed").update(title="updated")


def _atomic() -> None:
    with transaction.atomic():
        Book.objects.create(title="in atomic")


def _run_in_loop(func: Callable[[], Any]) -> Any:
    async def main() -> Any:
        return func()

    return asyncio.run(main())


def _run_in_thread(func: Callable[[], Any]) -> Any:
    async def main() -> Any:
        return await asyncio.to_thread(func)

    return asyncio.run(main())


def _titles() -> list[str]:
    return sorted(Book.objects.values_list("title", flat=True))


@pytest.fixture
def seed(db: Any) -> Book:
    return Book.objects.create(title="seed")


CALLS: list[tuple[str, Callable[[Book], Any], str]] = [
    (
        "get",
        lambda b: _get(b.pk),
        "Book.objects.get() was called from a running event loop: use `await Book.objects.aget()`",
    ),
    (
        "save",
        lambda b: _save(),
        "Book.save() was called from a running event loop: use `await book.asave()`",
    ),
    (
        "update",
        lambda b: _update(),
        "Book QuerySet.update() was called from a running event "
        "loop: use `await queryset.aupdate()`",
    ),
    (
        "atomic",
        lambda b: _atomic(),
        "transaction.atomic() was called from a running event "
        "loop: use `async with transaction.aatomic()`",
    ),
]


@pytest.mark.parametrize(("kind", "call", "message"), CALLS, ids=[c[0] for c in CALLS])
def test_sync_call_in_event_loop_raises_and_writes_nothing(
    seed: Book, kind: str, call: Callable[[Book], Any], message: str
) -> None:
    with pytest.raises(SynchronousOnlyOperation) as info:
        _run_in_loop(lambda: call(seed))
    assert isinstance(info.value, DormError)
    assert message in str(info.value)
    assert "asyncio.to_thread" in str(info.value)
    assert _titles() == ["seed"]
    assert not get_connection().in_atomic_block


def test_raw_statement_in_event_loop_names_the_query(seed: Book) -> None:
    with pytest.raises(SynchronousOnlyOperation, match=r"a database query \(SELECT 1"):
        _run_in_loop(lambda: get_connection().fetchone("SELECT 1"))


def test_iteration_in_event_loop_names_the_async_for(seed: Book) -> None:
    with pytest.raises(SynchronousOnlyOperation, match="async for obj in queryset"):
        _run_in_loop(lambda: list(Book.objects.all()))


@pytest.mark.parametrize(("kind", "call", "message"), CALLS, ids=[c[0] for c in CALLS])
def test_same_calls_work_through_to_thread(
    seed: Book, kind: str, call: Callable[[Book], Any], message: str
) -> None:
    result = _run_in_thread(lambda: call(seed))
    expected = {
        "get": ["seed"],
        "save": ["saved", "seed"],
        "update": ["updated"],
        "atomic": ["in atomic", "seed"],
    }[kind]
    assert _titles() == expected
    if kind == "get":
        assert result.pk == seed.pk


@pytest.mark.parametrize(("kind", "call", "message"), CALLS, ids=[c[0] for c in CALLS])
def test_allow_async_unsafe_lets_calls_through(
    seed: Book,
    kind: str,
    call: Callable[[Book], Any],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DORM_ALLOW_ASYNC_UNSAFE", "1")
    _run_in_loop(lambda: call(seed))
    assert len(_titles()) >= 1
    if kind == "update":
        assert _titles() == ["updated"]
    if kind in ("save", "atomic"):
        assert len(_titles()) == 2


def test_sync_calls_outside_a_loop_are_unaffected(seed: Book) -> None:
    assert _get(seed.pk).title == "seed"
    _atomic()
    assert _titles() == ["in atomic", "seed"]


# -- warmup_pool ---------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def dorm_pool_warmed(self, alias: str, seconds: float, size: int, is_async: bool) -> None:
        self.calls.append({"alias": alias, "seconds": seconds, "size": size, "is_async": is_async})


def _open_connections(db: Any) -> int:
    if db.vendor == "sqlite":
        return 1
    stats = get_connection().pool.get_stats()
    row = get_connection().fetchone(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    )
    assert row is not None
    return min(int(stats["pool_size"]), int(row[0]))


def test_warmup_pool_reaches_target_and_notifies(db: Any) -> None:
    recorder = Recorder()
    plugins.register(recorder, name="warm-recorder")
    try:
        target = 4 if db.vendor == "postgresql" else 1
        seconds = warmup_pool("default", target=target)
    finally:
        plugins.unregister("warm-recorder")
    assert seconds > 0
    assert _open_connections(db) >= target
    assert len(recorder.calls) == 1
    call = recorder.calls[0]
    assert call["alias"] == "default"
    assert call["seconds"] == seconds
    assert call["size"] >= target
    assert call["is_async"] is False


def test_warmup_pool_defaults_to_min_pool_size(db: Any) -> None:
    assert dorm.warmup_pool is warmup_pool
    assert warmup_pool() > 0
    assert _open_connections(db) >= get_connection().settings_dict["MIN_POOL_SIZE"]


def test_warmup_pool_rejects_target_above_max(db: Any) -> None:
    limit = get_connection().settings_dict["MAX_POOL_SIZE"]
    with pytest.raises(ValueError, match=rf"'default'.*MAX_POOL_SIZE={limit}"):
        warmup_pool(target=limit + 1)


def test_warmup_pool_in_event_loop_names_the_async_twin(db: Any) -> None:
    with pytest.raises(SynchronousOnlyOperation, match="await awarmup_pool"):
        _run_in_loop(warmup_pool)
    assert _run_in_thread(warmup_pool) > 0


def test_lazy_relation_in_event_loop_names_select_related_and_the_twin(seed: Book) -> None:
    Review.objects.create(book=seed)

    async def main() -> str:
        review = await Review.objects.aget()
        with pytest.raises(SynchronousOnlyOperation) as info:
            review.book  # noqa: B018 - a lazy load: a query
        loaded = await Review.objects.select_related("book").aget()
        assert loaded.book.title == "seed"  # no query: fetched with the review
        return str(info.value)

    message = asyncio.run(main())
    assert message.startswith("review.book (a relation not loaded yet, read lazily) was called")
    assert "select_related('book')" in message
    assert "`await Book.objects.aget(pk=review.book_id)`" in message
