"""``temporal.context``: who and why on every version, per thread and per asyncio task."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import dorm
from dorm.contrib.temporal import current_context, temporal


@temporal
class Note(dorm.Model):
    body = dorm.CharField(max_length=50)
    n = dorm.IntegerField(default=0)

    class Meta:
        app_label = "temporal_context"


# The version table first: clean_tables empties it after the tracked table, whose
# deletions write versions.
MODELS = [Note._temporal_model, Note]

pytestmark = pytest.mark.usefixtures("clean_tables")


def ctx_of(body: str) -> list[tuple[str, str | None, str | None]]:
    pks = Note.history.filter(body=body).values_list("id", flat=True).distinct()
    return [
        (v.operation, v.user, v.reason)
        for v in Note.history.filter(pk__in=list(pks)).order_by("history_id")
    ]


def test_context_reaches_every_write_path(db: Any) -> None:
    with temporal.context(user="alice", reason="import"):
        note = Note.objects.create(body="a")
        Note.objects.bulk_create([Note(body="b")])
        Note.objects.filter(body="b").update(n=1)
        b = Note.objects.get(body="b")
        b.n = 2
        Note.objects.bulk_update([b], ["n"])
        with temporal.context(user="bob"):
            note.n = 5
            note.save()
        Note.objects.filter(body="b").delete()
    note.n = 6
    note.save()  # outside the block: no context
    assert ctx_of("a") == [
        ("insert", "alice", "import"),
        ("update", "bob", None),
        ("update", None, None),
    ]
    assert ctx_of("b") == [
        ("insert", "alice", "import"),
        ("update", "alice", "import"),
        ("update", "alice", "import"),
        ("delete", "alice", "import"),
    ]
    assert current_context() is None


def test_context_is_rolled_back_with_its_block(db: Any) -> None:
    with pytest.raises(KeyError), temporal.context(user="carol"):
        Note.objects.create(body="gone")
        raise KeyError
    assert Note.objects.count() == 0 and Note.history.count() == 0
    Note.objects.create(body="after")
    assert ctx_of("after") == [("insert", None, None)]


def test_two_threads_at_once(db: Any) -> None:
    barrier = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def worker(user: str) -> None:
        try:
            barrier.wait()
            for i in range(5):
                with temporal.context(user=user, reason=f"r-{user}"):
                    note = Note.objects.create(body=f"{user}-{i}")
                    note.n = i + 1
                    note.save()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(u,)) for u in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = list(Note.history.values_list("body", "user", "reason"))
    assert len(rows) == 20
    for body, user, reason in rows:
        owner = body.split("-")[0]
        assert (user, reason) == (owner, f"r-{owner}")


def test_two_asyncio_tasks_at_once(db: Any) -> None:
    async def writer(user: str) -> None:
        for i in range(3):
            async with temporal.context(user=user):
                await Note.objects.acreate(body=f"{user}-{i}")
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(writer("x"), writer("y"))

    asyncio.run(main())
    rows = list(Note.history.values_list("body", "user"))
    assert len(rows) == 6
    assert all(body.split("-")[0] == user for body, user in rows)


def test_context_arguments() -> None:
    with pytest.raises(TypeError, match="str or None"):
        temporal.context(user=42)  # type: ignore[arg-type]
