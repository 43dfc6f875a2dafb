"""SyncDataLoader on SQLite and PostgreSQL: one query for a loop, batches, misses, errors."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.contrib.sync_dataloader import DataLoaderError, SyncDataLoader
from dorm.test import CaptureQueriesContext, assert_num_queries


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "async_sync_loader"


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="books")

    class Meta:
        app_label = "async_sync_loader"


MODELS = [Author, Book]
pytestmark = pytest.mark.usefixtures("clean_tables")


def seed(authors: int = 20, books: int = 200) -> tuple[list[Any], list[Any]]:
    made = Author.objects.bulk_create([Author(name=f"a{i}") for i in range(authors)])
    Book.objects.bulk_create(
        [Book(title=f"b{i}", author=made[(i * 7) % authors]) for i in range(books)]
    )
    return list(Author.objects.order_by("pk")), list(Book.objects.order_by("pk"))


class Recorder:
    """A batch function over the Author table that records the keys of each call."""

    def __init__(self, answer: str = "dict") -> None:
        self.calls: list[list[Any]] = []
        self.answer = answer

    def __call__(self, ids: list[Any]) -> Any:
        self.calls.append(list(ids))
        found = Author.objects.in_bulk(ids)
        if self.answer == "dict":
            return found
        return [found.get(i) for i in ids]


def test_release_note_snippet_loops_over_200_books_with_one_author_query(db: Any) -> None:
    _, books = seed()
    assert len(books) == 200
    namespace: dict[str, Any] = {"SyncDataLoader": SyncDataLoader, "Author": Author}
    namespace["books"] = books
    with assert_num_queries(1) as queries:
        exec(
            "loader = SyncDataLoader(lambda ids: Author.objects.in_bulk(ids))\n"
            "for book in books:\n"
            "    loader.load(book.author_id)\n"
            "loader.flush()\n"
            "for book in books:\n"
            "    author = loader.load(book.author_id)\n",
            namespace,
        )
    assert "IN" in queries[0]["sql"].upper()
    loader = namespace["loader"]
    for book in books:
        assert loader.load(book.author_id) == Author.objects.get(pk=book.author_id)
    # The N+1 loop it replaces: one query per book.
    with CaptureQueriesContext() as naive:
        for book in Book.objects.all():
            assert book.author.name
    assert len(naive) == 201


@pytest.mark.parametrize("answer", ["dict", "list"])
def test_flush_sends_each_key_once_in_first_seen_order(db: Any, answer: str) -> None:
    authors, _ = seed(authors=5, books=0)
    pks = [a.pk for a in authors]
    batch = Recorder(answer)
    loader: SyncDataLoader[int, Any] = SyncDataLoader(batch)
    for key in [pks[3], pks[1], pks[3], pks[0], pks[1], pks[3]]:
        assert loader.load(key) is None  # queued, not loaded yet
    loader.flush()
    assert batch.calls == [[pks[3], pks[1], pks[0]]]
    assert [loader.load(k).name for k in (pks[0], pks[1], pks[3])] == ["a0", "a1", "a3"]
    loader.flush()  # nothing queued: no call
    assert len(batch.calls) == 1


def test_max_batch_size_splits_the_queue(db: Any) -> None:
    authors, _ = seed(authors=10, books=0)
    batch = Recorder()
    loader = SyncDataLoader(batch, max_batch_size=4)
    for author in authors:
        loader.load(author.pk)
    with assert_num_queries(3):
        loader.flush()
    assert [len(keys) for keys in batch.calls] == [4, 4, 2]
    assert sum(batch.calls, []) == [a.pk for a in authors]
    assert [loader.load(a.pk).name for a in authors] == [a.name for a in authors]


@pytest.mark.parametrize("answer", ["dict", "list"])
def test_a_missing_key_loads_as_none_or_raises_key_error_naming_it(db: Any, answer: str) -> None:
    authors, _ = seed(authors=2, books=0)
    gone = authors[1].pk
    Author.objects.filter(pk=gone).delete()
    lenient = SyncDataLoader(Recorder(answer))
    strict = SyncDataLoader(Recorder(answer), raise_missing=True)
    for loader in (lenient, strict):
        loader.load(authors[0].pk)
        loader.load(gone)
        loader.flush()
        assert loader.load(authors[0].pk).name == "a0"
    assert lenient.load(gone) is None
    with pytest.raises(
        KeyError, match=rf"SyncDataLoader: key {gone} is not in the answer of its batch function"
    ):
        strict.load(gone)


def test_a_failing_batch_raises_to_flush_and_its_keys_stay_unloaded(db: Any) -> None:
    authors, _ = seed(authors=6, books=0)
    pks = [a.pk for a in authors]
    calls: list[list[int]] = []
    fail = {"on": 2}

    def batch(ids: list[int]) -> dict[int, Any]:
        calls.append(ids)
        if len(calls) == fail["on"]:
            raise ConnectionError(f"batch {ids} failed")
        return Author.objects.in_bulk(ids)

    loader = SyncDataLoader(batch, max_batch_size=2)
    for pk in pks:
        loader.load(pk)
    with pytest.raises(ConnectionError, match=r"batch \[.*\] failed"):
        loader.flush()
    assert loader.load(pks[0]).name == "a0" and loader.load(pks[1]).name == "a1"
    for pk in pks[2:]:
        assert loader.load(pk) is None  # still queued, not loaded
    fail["on"] = 0
    loader.flush()  # the failed batch and the ones after it, again
    assert calls[2:] == [pks[2:4], pks[4:6]]
    assert [loader.load(pk).name for pk in pks] == [f"a{i}" for i in range(6)]


def test_an_exception_value_is_raised_for_its_key_only(db: Any) -> None:
    authors, _ = seed(authors=3, books=0)
    bad = authors[1].pk

    def batch(ids: list[int]) -> dict[int, Any]:
        found: dict[int, Any] = Author.objects.in_bulk(ids)
        found[bad] = PermissionError(f"author {bad} is private")
        return found

    loader = SyncDataLoader(batch)
    for a in authors:
        loader.load(a.pk)
    loader.flush()
    assert loader.load(authors[0].pk).name == "a0"
    assert loader.load(authors[2].pk).name == "a2"
    with pytest.raises(PermissionError, match=f"author {bad} is private"):
        loader.load(bad)


def test_clear_and_prime(db: Any) -> None:
    authors, _ = seed(authors=3, books=0)
    a0, a1, a2 = authors
    batch = Recorder()
    loader = SyncDataLoader(batch)
    loader.prime(a0.pk, a0)
    loader.load(a0.pk)
    loader.load(a1.pk)
    loader.flush()
    assert batch.calls == [[a1.pk]]  # a0 was primed: not fetched
    Author.objects.filter(pk=a1.pk).update(name="renamed")
    assert loader.load(a1.pk).name == "a1"  # cached
    loader.clear(a1.pk)
    assert loader.load(a1.pk) is None  # queued again
    loader.flush()
    assert loader.load(a1.pk).name == "renamed"
    loader.prime(a1.pk, "not stored")  # a loaded key is not replaced
    assert loader.load(a1.pk).name == "renamed"
    loader.load(a2.pk)
    loader.prime(a2.pk, a2)  # priming a queued key drops it from the queue
    loader.flush()
    assert batch.calls[-1] == [a1.pk]
    assert loader.load(a2.pk) is a2
    loader.clear_all()
    assert loader.load(a0.pk) is None and loader.load(a2.pk) is None


def test_cache_false_refetches_on_every_flush(db: Any) -> None:
    authors, _ = seed(authors=2, books=0)
    pk = authors[0].pk
    loader = SyncDataLoader(lambda ids: Author.objects.in_bulk(ids), cache=False)
    loader.load(pk)
    loader.flush()
    assert loader.load(pk).name == "a0"
    Author.objects.filter(pk=pk).update(name="changed")
    assert loader.load(pk).name == "a0"  # until the next flush
    loader.flush()
    assert loader.load(pk) is None  # forgotten by that flush, queued again
    with assert_num_queries(1):
        loader.flush()
    assert loader.load(pk).name == "changed"


def test_batch_function_contract_errors_name_the_function(db: Any) -> None:
    authors, _ = seed(authors=2, books=0)
    pks = [a.pk for a in authors]

    def short_list(ids: list[int]) -> list[Any]:
        return list(Author.objects.filter(pk__in=ids))[:1]

    loader = SyncDataLoader(short_list)
    loader.load(pks[0])
    loader.load(pks[1])
    with pytest.raises(DataLoaderError, match=r"short_list returned 1 values for 2 keys"):
        loader.flush()
    qs_loader = SyncDataLoader(lambda ids: Author.objects.filter(pk__in=ids))
    qs_loader.load(pks[0])
    with pytest.raises(
        DataLoaderError, match=r"returned an object of type QuerySet.*in_bulk\(keys\)"
    ):
        qs_loader.flush()
    assert qs_loader.load(pks[0]) is None  # still queued


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"SyncDataLoader\(batch_fn\): expected a callable"):
        SyncDataLoader(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"max_batch_size=0"):
        SyncDataLoader(dict, max_batch_size=0)
    with pytest.raises(TypeError, match=r"max_batch_size=True"):
        SyncDataLoader(dict, max_batch_size=True)
    with pytest.raises(TypeError, match=r"cache='yes'"):
        SyncDataLoader(dict, cache="yes")  # type: ignore[arg-type]
    loader: SyncDataLoader[Any, Any] = SyncDataLoader(dict)
    with pytest.raises(TypeError, match=r"key \[1, 2\] \(list\) is not hashable"):
        loader.load([1, 2])
