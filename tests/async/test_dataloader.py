"""The async DataLoader on SQLite and PostgreSQL: one query per tick, errors per key and per
batch, concurrent tasks, cancellation, and one loader per event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import dorm
from dorm.contrib.dataloader import DataLoader, DataLoaderError
from dorm.test import CaptureQueriesContext, assert_num_queries

T = TypeVar("T")


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "async_dataloader"


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="books")

    class Meta:
        app_label = "async_dataloader"


MODELS = [Author, Book]
pytestmark = pytest.mark.usefixtures("clean_tables")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


def seed(authors: int = 20, books: int = 200) -> tuple[list[Any], list[Any]]:
    made = Author.objects.bulk_create([Author(name=f"a{i}") for i in range(authors)])
    Book.objects.bulk_create(
        [Book(title=f"b{i}", author=made[(i * 7) % authors]) for i in range(books)]
    )
    return list(Author.objects.order_by("pk")), list(Book.objects.order_by("pk"))


class Recorder:
    """An async batch function over the Author table that records each call's keys."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    async def __call__(self, ids: list[Any]) -> dict[Any, Any]:
        self.calls.append(list(ids))
        found: dict[Any, Any] = await Author.objects.ain_bulk(ids)
        return found


def test_a_loop_over_200_books_runs_one_author_query(db: Any) -> None:
    _, books = seed()
    expected = {a.pk: a.name for a in Author.objects.all()}

    async def main() -> tuple[list[str], list[Any]]:
        loader = DataLoader(lambda ids: Author.objects.ain_bulk(ids))

        async def resolve(book: Any) -> str:
            author = await loader.load(book.author_id)
            return str(author.name)

        with assert_num_queries(1) as queries:
            names = await asyncio.gather(*(resolve(book) for book in books))
        many = await loader.load_many([b.author_id for b in books[:5]])  # cached: no query
        return names, [queries[0]["sql"], many]

    names, (sql, many) = run(main)
    assert names == [expected[b.author_id] for b in books]
    assert "IN" in sql.upper()
    assert [a.name for a in many] == [expected[b.author_id] for b in books[:5]]


def test_50_concurrent_tasks_in_one_tick_make_one_batch_call(db: Any) -> None:
    authors, _ = seed(authors=10, books=0)
    pks = [a.pk for a in authors]

    async def main() -> tuple[Recorder, list[str]]:
        batch = Recorder()
        loader = DataLoader(batch)

        async def worker(i: int) -> str:
            return str((await loader.load(pks[i % 10])).name)

        tasks = [asyncio.create_task(worker(i)) for i in range(50)]
        return batch, list(await asyncio.gather(*tasks))

    batch, names = run(main)
    assert batch.calls == [pks]  # one call; each key once, in first-asked order
    assert names == [f"a{i % 10}" for i in range(50)]


def test_loads_while_a_batch_is_in_flight_join_it_or_start_the_next(db: Any) -> None:
    authors, _ = seed(authors=12, books=0)
    pks = [a.pk for a in authors]

    async def main() -> tuple[list[list[Any]], list[list[str]]]:
        calls: list[list[Any]] = []
        gate = asyncio.Event()

        async def slow(ids: list[Any]) -> dict[Any, Any]:
            calls.append(list(ids))
            await gate.wait()
            found: dict[Any, Any] = await Author.objects.ain_bulk(ids)
            return found

        loader = DataLoader(slow)

        async def wave(keys: list[Any]) -> list[str]:
            found = await asyncio.gather(*(loader.load(k) for k in keys))
            return [a.name for a in found]

        first = asyncio.create_task(wave(pks[:8]))
        while not calls:
            await asyncio.sleep(0)
        # The first batch is running: these tasks share its keys and add four new ones.
        second = [asyncio.create_task(wave(pks[4:12])) for _ in range(20)]
        await asyncio.sleep(0)
        gate.set()
        return calls, [await first, *[await t for t in second]]

    calls, results = run(main)
    assert calls == [pks[:8], pks[8:12]]
    assert results[0] == [f"a{i}" for i in range(8)]
    assert all(r == [f"a{i}" for i in range(4, 12)] for r in results[1:])


def test_max_batch_size_splits_one_tick(db: Any) -> None:
    authors, _ = seed(authors=10, books=0)
    pks = [a.pk for a in authors]

    async def main() -> tuple[Recorder, list[Any]]:
        batch = Recorder()
        loader = DataLoader(batch, max_batch_size=4)
        with assert_num_queries(3):
            found = await loader.load_many(pks)
        return batch, found

    batch, found = run(main)
    assert batch.calls == [pks[:4], pks[4:8], pks[8:]]
    assert [a.name for a in found] == [f"a{i}" for i in range(10)]


def test_a_key_error_goes_to_that_keys_callers_only(db: Any) -> None:
    authors, _ = seed(authors=4, books=0)
    pks = [a.pk for a in authors]
    bad = pks[2]

    async def main() -> list[Any]:
        calls = 0

        async def batch(ids: list[Any]) -> list[Any]:
            nonlocal calls
            calls += 1
            found = await Author.objects.ain_bulk(ids)
            return [
                PermissionError(f"author {i} is private") if i == bad else found[i] for i in ids
            ]

        loader = DataLoader(batch)
        outcomes = await asyncio.gather(
            *(loader.load(k) for k in [*pks, bad, pks[0]]), return_exceptions=True
        )
        # The failed key is not cached: asking again calls the batch function again.
        again = await asyncio.gather(loader.load(bad), return_exceptions=True)
        return [calls, *outcomes, *again]

    calls, *outcomes = run(main)
    assert calls == 2
    names = [o.name if isinstance(o, Author) else o for o in outcomes]
    assert names[:2] == ["a0", "a1"] and names[3] == "a3" and names[5] == "a0"
    for index in (2, 4, 6):
        assert isinstance(outcomes[index], PermissionError)
        assert str(outcomes[index]) == f"author {bad} is private"


def test_a_batch_error_goes_to_every_caller_of_that_batch_only(db: Any) -> None:
    authors, _ = seed(authors=6, books=0)
    pks = [a.pk for a in authors]

    async def main() -> tuple[list[Any], list[str]]:
        async def batch(ids: list[Any]) -> dict[Any, Any]:
            if pks[3] in ids:
                raise ConnectionError(f"lost the server while loading {len(ids)} keys")
            found: dict[Any, Any] = await Author.objects.ain_bulk(ids)
            return found

        loader = DataLoader(batch, max_batch_size=3)
        outcomes = await asyncio.gather(*(loader.load(k) for k in pks), return_exceptions=True)
        # The failed keys were not cached: with a working source they load.
        loader.batch_fn = Recorder()
        retried = await loader.load_many(pks)
        return list(outcomes), [a.name for a in retried]

    outcomes, retried = run(main)
    assert [a.name for a in outcomes[:3]] == ["a0", "a1", "a2"]
    for failure in outcomes[3:]:
        assert isinstance(failure, ConnectionError)
        assert str(failure) == "lost the server while loading 3 keys"
    assert retried == [f"a{i}" for i in range(6)]


def test_missing_keys_load_as_none_or_raise_key_error(db: Any) -> None:
    authors, _ = seed(authors=2, books=0)
    gone = authors[1].pk
    Author.objects.filter(pk=gone).delete()

    async def main() -> list[Any]:
        lenient = DataLoader(lambda ids: Author.objects.ain_bulk(ids))
        strict = DataLoader(lambda ids: Author.objects.ain_bulk(ids), raise_missing=True)
        found = await lenient.load_many([authors[0].pk, gone])
        try:
            await strict.load_many([authors[0].pk, gone])
        except KeyError as exc:
            return [*found, exc]
        raise AssertionError("no KeyError")

    present, missing, error = run(main)
    assert present.name == "a0" and missing is None
    assert error.args == (f"DataLoader: key {gone} is not in the answer of its batch function",)


def test_a_cancelled_caller_leaves_the_other_callers_their_value(db: Any) -> None:
    authors, _ = seed(authors=1, books=0)
    pk = authors[0].pk

    async def main() -> tuple[bool, str, int]:
        gate = asyncio.Event()
        calls = 0

        async def batch(ids: list[Any]) -> dict[Any, Any]:
            nonlocal calls
            calls += 1
            await gate.wait()
            found: dict[Any, Any] = await Author.objects.ain_bulk(ids)
            return found

        loader = DataLoader(batch)
        doomed = asyncio.create_task(loader.load(pk))
        survivor = asyncio.create_task(loader.load(pk))
        await asyncio.sleep(0.01)
        doomed.cancel()
        gate.set()
        author = await survivor
        await asyncio.gather(doomed, return_exceptions=True)
        again = await loader.load(pk)
        return doomed.cancelled(), author.name if author is again else "not cached", calls

    assert run(main) == (True, "a0", 1)


def test_prime_clear_and_cache_false(db: Any) -> None:
    authors, _ = seed(authors=2, books=0)
    a0, a1 = authors

    async def main() -> list[Any]:
        batch = Recorder()
        loader = DataLoader(batch)
        loader.prime(a0.pk, a0)
        first = await loader.load_many([a0.pk, a1.pk])
        await Author.objects.filter(pk=a1.pk).aupdate(name="renamed")
        cached = await loader.load(a1.pk)
        loader.clear(a1.pk)
        fresh = await loader.load(a1.pk)
        loader.clear_all()
        uncached = DataLoader(Recorder(), cache=False)
        with CaptureQueriesContext() as queries:
            await uncached.load(a0.pk)
            await uncached.load(a0.pk)
        return [batch.calls, first[0] is a0, cached.name, fresh.name, len(queries)]

    calls, primed, cached, fresh, queries = run(main)
    assert calls == [[a1.pk], [a1.pk]]
    assert primed and cached == "a1" and fresh == "renamed"
    assert queries == 2


def test_contract_and_argument_errors(db: Any) -> None:
    authors, _ = seed(authors=2, books=0)
    pk = authors[0].pk

    def sync_batch(ids: list[Any]) -> dict[Any, Any]:
        return {i: None for i in ids}

    async def main() -> list[BaseException]:
        errors: list[BaseException] = []
        for loader in (
            DataLoader(sync_batch),  # type: ignore[arg-type]
            DataLoader(lambda ids: Author.objects.filter(pk__in=ids).acount()),
        ):
            try:
                await loader.load(pk)
            except DataLoaderError as exc:
                errors.append(exc)
        try:
            await DataLoader(Recorder()).load({"not": "hashable"})  # type: ignore[arg-type]
        except TypeError as exc:
            errors.append(exc)
        return errors

    not_async, not_answer, unhashable = run(main)
    assert "sync_batch returned an object of type dict, not an awaitable" in str(not_async)
    assert "use SyncDataLoader for a sync one" in str(not_async)
    assert "returned an object of type int; expected a dict keyed by the keys" in str(not_answer)
    assert "key {'not': 'hashable'} (dict) is not hashable" in str(unhashable)
    with pytest.raises(ValueError, match=r"DataLoader\(max_batch_size=-1\)"):
        DataLoader(Recorder(), max_batch_size=-1)


def test_a_loader_belongs_to_one_event_loop(db: Any) -> None:
    authors, _ = seed(authors=1, books=0)
    loader = DataLoader(Recorder())

    async def load() -> Any:
        return await loader.load(authors[0].pk)

    assert run(load).name == "a0"
    with pytest.raises(DataLoaderError, match=r"make a new DataLoader for each request"):
        run(load)


@pytest.mark.parametrize("max_batch_size", [None, 7])
def test_300_tasks_with_random_timing_each_get_their_value_and_each_key_is_fetched_once(
    db: Any, max_batch_size: int | None
) -> None:
    """Tasks ask for overlapping keys at random moments while batches are in flight."""
    import random

    authors, _ = seed(authors=60, books=0)
    names = {a.pk: a.name for a in authors}
    rng = random.Random(21)
    plans = [[rng.choice(list(names)) for _ in range(rng.randint(1, 4))] for _ in range(300)]
    delays = [rng.choice([0, 0, 0.001, 0.003]) for _ in range(300)]

    async def main() -> tuple[list[list[Any]], list[list[str]], int]:
        fetched: list[list[Any]] = []

        async def batch(ids: list[Any]) -> dict[Any, Any]:
            fetched.append(list(ids))
            await asyncio.sleep(rng.choice([0, 0.002]))
            found: dict[Any, Any] = await Author.objects.ain_bulk(ids)
            return found

        loader = DataLoader(batch, max_batch_size=max_batch_size)

        async def client(i: int) -> list[str]:
            await asyncio.sleep(delays[i])
            keys = plans[i]
            if i % 3 == 0:
                found = await loader.load_many(keys)
            else:
                found = [await loader.load(k) for k in keys]
            return [a.name for a in found]

        with CaptureQueriesContext() as queries:
            results = await asyncio.gather(*(client(i) for i in range(300)))
        return fetched, list(results), len(queries)

    fetched, results, queries = run(main)
    assert results == [[names[k] for k in plan] for plan in plans]
    flat = [k for call in fetched for k in call]
    assert sorted(flat) == sorted({k for plan in plans for k in plan})  # each key once
    assert queries == len(fetched) < 60  # batched: fewer calls than keys
    if max_batch_size:
        assert max(len(call) for call in fetched) <= max_batch_size


def test_clear_during_a_fetch_answers_its_callers_and_caches_nothing(db: Any) -> None:
    authors, _ = seed(authors=1, books=0)
    pk = authors[0].pk

    async def main() -> tuple[str, str, int]:
        gate = asyncio.Event()
        calls = 0

        async def batch(ids: list[Any]) -> dict[Any, Any]:
            nonlocal calls
            calls += 1
            await gate.wait()
            found: dict[Any, Any] = await Author.objects.ain_bulk(ids)
            return found

        loader = DataLoader(batch)
        first = asyncio.create_task(loader.load(pk))
        await asyncio.sleep(0.01)
        loader.clear(pk)
        await Author.objects.filter(pk=pk).aupdate(name="after clear")
        gate.set()
        before = (await first).name
        after = (await loader.load(pk)).name  # not cached: fetched again
        return before, after, calls

    assert run(main) == ("after clear", "after clear", 2)
