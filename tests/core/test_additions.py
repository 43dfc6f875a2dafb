"""The 4.3 query additions: upsert, exists_or_create, F().coalesce/between and UUIDv7 keys.

Every test runs on SQLite and PostgreSQL and reads its results back from the database.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldError
from dorm.functions import Coalesce
from dorm.models.data_fields import uuid7
from dorm.test import CaptureQueriesContext

REPO = Path(__file__).resolve().parents[2]


class Tag(dorm.Model):
    name = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_additions"


class Score(dorm.Model):
    slug = dorm.SlugField(unique=True)
    score = dorm.IntegerField(default=0)
    label = dorm.CharField(max_length=40, default="")
    tags = dorm.ManyToManyField(Tag, related_name="scores")

    class Meta:
        app_label = "t_additions"


class Reading(dorm.Model):
    sensor = dorm.CharField(max_length=20)
    day = dorm.IntegerField()
    value = dorm.IntegerField(default=0)
    note = dorm.CharField(max_length=40, default="")

    class Meta:
        app_label = "t_additions"
        unique_together = [("sensor", "day")]


class Slot(dorm.Model):
    room = dorm.CharField(max_length=20)
    hour = dorm.IntegerField()
    booked_by = dorm.CharField(max_length=40, default="")

    class Meta:
        app_label = "t_additions"
        constraints = [dorm.UniqueConstraint(fields=["room", "hour"], name="uniq_slot")]


class Keyed(dorm.Model):
    """A UUID primary key generated client-side: conflicts must keep the stored key."""

    id = dorm.UUIDField(primary_key=True, version=7)
    code = dorm.CharField(max_length=20, unique=True)
    qty = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_additions"


class Visitor(dorm.Model):
    """No unique constraint on ``email``: exists_or_create must still not duplicate."""

    email = dorm.CharField(max_length=60)
    name = dorm.CharField(max_length=40, default="")

    class Meta:
        app_label = "t_additions"


class Person(dorm.Model):
    name = dorm.CharField(max_length=40)
    nick = dorm.CharField(max_length=40, null=True)
    alias = dorm.CharField(max_length=40, null=True)
    age = dorm.IntegerField()

    class Meta:
        app_label = "t_additions"


class Event(dorm.Model):
    id = dorm.UUIDField(primary_key=True, version=7)
    n = dorm.IntegerField()

    class Meta:
        app_label = "t_additions"


class Ticket(dorm.Model):
    id = dorm.UUIDField(primary_key=True)
    n = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_additions"


MODELS = [Tag, Score, Reading, Slot, Keyed, Visitor, Person, Event, Ticket]
pytestmark = pytest.mark.usefixtures("clean_tables")


def inserts(ctx: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")
    ]


# --- upsert ------------------------------------------------------------------------------------


def test_upsert_release_note_example_runs_as_written(db) -> None:
    Score.objects.upsert(
        [Score(slug="a", score=1), Score(slug="b", score=2)],
        unique_fields=["slug"],
    )
    Score.objects.upsert([Score(slug="a", score=10)], unique_fields=["slug"])
    assert list(Score.objects.order_by("slug").values_list("slug", "score")) == [
        ("a", 10),
        ("b", 2),
    ]


def test_upsert_is_one_insert_and_updates_every_non_unique_column(db) -> None:
    Score.objects.create(slug="a", score=1, label="old")
    with CaptureQueriesContext() as ctx:
        Score.objects.upsert(
            [Score(slug="a", score=5, label="new"), Score(slug="c", score=3, label="c")],
            unique_fields=["slug"],
        )
    statements = inserts(ctx)
    assert len(statements) == 1, ctx.captured_queries
    assert "ON CONFLICT" in statements[0].upper()
    assert not any("tags" in q["sql"] for q in ctx.captured_queries)
    rows = list(Score.objects.order_by("slug").values_list("slug", "score", "label"))
    assert rows == [("a", 5, "new"), ("c", 3, "c")]


def test_upsert_explicit_update_fields_leave_other_columns(db) -> None:
    Score.objects.create(slug="a", score=1, label="keep")
    Score.objects.upsert(
        [Score(slug="a", score=9, label="ignored")], unique_fields=["slug"], update_fields=["score"]
    )
    assert Score.objects.values_list("score", "label").get(slug="a") == (9, "keep")


def test_upsert_skips_many_to_many_names_in_update_fields(db) -> None:
    Score.objects.create(slug="a", score=1)
    Score.objects.upsert(
        [Score(slug="a", score=2)], unique_fields=["slug"], update_fields=["score", "tags"]
    )
    assert Score.objects.get(slug="a").score == 2


def test_upsert_returning_gives_existing_and_new_pks_from_one_statement(db) -> None:
    old = Score.objects.create(slug="a", score=1)
    objs = [Score(slug="b", score=2), Score(slug="a", score=7), Score(slug="c", score=3)]
    with CaptureQueriesContext() as ctx:
        saved = Score.objects.upsert(objs, unique_fields=["slug"], returning=True)
    assert len(ctx) == 1 or len(inserts(ctx)) == 1
    assert not any(q["sql"].lstrip().upper().startswith("SELECT") for q in ctx.captured_queries)
    assert [o.slug for o in saved] == ["b", "a", "c"]
    assert saved[1].pk == old.pk
    in_db = dict(Score.objects.values_list("slug", "pk"))
    assert {o.slug: o.pk for o in saved} == in_db
    assert len(set(in_db.values())) == 3
    assert Score.objects.get(pk=saved[1].pk).score == 7


def test_upsert_returning_with_a_client_side_uuid_pk_keeps_the_stored_key(db) -> None:
    first = Keyed.objects.create(code="x", qty=1)
    saved = Keyed.objects.upsert(
        [Keyed(code="x", qty=5), Keyed(code="y", qty=2)], unique_fields=["code"], returning=True
    )
    assert saved[0].pk == first.pk
    assert dict(Keyed.objects.values_list("code", "pk")) == {o.code: o.pk for o in saved}
    assert Keyed.objects.get(pk=first.pk).qty == 5
    assert Keyed.objects.count() == 2


def test_upsert_on_unique_together_columns(db) -> None:
    Reading.objects.create(sensor="s1", day=1, value=10, note="first")
    Reading.objects.create(sensor="s1", day=2, value=20)
    Reading.objects.create(sensor="s2", day=1, value=30)
    objs = [
        Reading(sensor="s2", day=1, value=31),
        Reading(sensor="s1", day=1, value=11),
        Reading(sensor="s2", day=2, value=40),
    ]
    with CaptureQueriesContext() as ctx:
        saved = Reading.objects.upsert(objs, unique_fields=["sensor", "day"], returning=True)
    assert len(inserts(ctx)) == 1
    in_db = {(s, d): pk for s, d, pk in Reading.objects.values_list("sensor", "day", "pk")}
    assert [(o.sensor, o.day) for o in saved] == [("s2", 1), ("s1", 1), ("s2", 2)]
    assert all(in_db[(o.sensor, o.day)] == o.pk for o in saved)
    rows = sorted(Reading.objects.values_list("sensor", "day", "value", "note"))
    assert rows == [("s1", 1, 11, ""), ("s1", 2, 20, ""), ("s2", 1, 31, ""), ("s2", 2, 40, "")]


def test_upsert_on_a_unique_constraint(db) -> None:
    Slot.objects.create(room="A", hour=9, booked_by="ann")
    saved = Slot.objects.upsert(
        [Slot(room="A", hour=9, booked_by="bob"), Slot(room="A", hour=10, booked_by="cy")],
        unique_fields=["room", "hour"],
        returning=True,
    )
    assert sorted(Slot.objects.values_list("hour", "booked_by")) == [(9, "bob"), (10, "cy")]
    assert {o.hour: o.pk for o in saved} == dict(Slot.objects.values_list("hour", "pk"))


def test_upsert_duplicate_keys_in_one_call_raise_before_sql(db) -> None:
    with CaptureQueriesContext() as ctx, pytest.raises(ValueError, match=r"'s1', 1"):
        Reading.objects.upsert(
            [Reading(sensor="s1", day=1), Reading(sensor="s1", day=1, value=3)],
            unique_fields=["sensor", "day"],
        )
    assert len(ctx) == 0
    with pytest.raises(ValueError, match="slug"):
        Score.objects.upsert([Score(slug="a"), Score(slug="a")], unique_fields=["slug"])
    assert Score.objects.count() == 0


def test_upsert_argument_errors_run_no_sql(db) -> None:
    with CaptureQueriesContext() as ctx:
        with pytest.raises(ValueError, match="unique_fields is required"):
            Score.objects.upsert([Score(slug="a")], unique_fields=[])
        with pytest.raises(ValueError, match="unique_fields is required"):
            Score.objects.upsert([Score(slug="a")])
        assert Score.objects.upsert([], unique_fields=["slug"]) == []
        assert Score.objects.upsert([], unique_fields=[]) == []
        with pytest.raises(FieldError, match=r"Score.*nope"):
            Score.objects.upsert([Score(slug="a")], unique_fields=["nope"])
        with pytest.raises(ValueError, match=r"Score.*score"):
            Score.objects.upsert([Score(slug="a")], unique_fields=["score"])
        with pytest.raises(ValueError, match=r"Reading.*sensor"):
            Reading.objects.upsert([Reading(sensor="a", day=1)], unique_fields=["sensor"])
        with pytest.raises(FieldError, match=r"Score.*bogus"):
            Score.objects.upsert([Score(slug="a")], unique_fields=["slug"], update_fields=["bogus"])
    assert len(ctx) == 0, ctx.captured_queries
    assert Score.objects.count() == 0


def test_upsert_batches_large_inputs(db) -> None:
    objs = [Reading(sensor="s", day=i, value=i) for i in range(50)]
    with CaptureQueriesContext() as ctx:
        saved = Reading.objects.upsert(
            objs, unique_fields=["sensor", "day"], batch_size=20, returning=True
        )
    assert len(inserts(ctx)) == 3
    assert dict(Reading.objects.values_list("day", "pk")) == {o.day: o.pk for o in saved}


# --- exists_or_create --------------------------------------------------------------------------


def test_exists_or_create_looks_up_first_then_creates(db) -> None:
    with CaptureQueriesContext() as ctx:
        existed, obj = Visitor.objects.exists_or_create(email="a@x", defaults={"name": "A"})
    assert existed is False and len(inserts(ctx)) == 1
    assert Visitor.objects.get(pk=obj.pk).name == "A"
    with CaptureQueriesContext() as ctx:
        existed, again = Visitor.objects.exists_or_create(email="a@x", defaults={"name": "B"})
    assert existed is True and again.pk == obj.pk and again.name == "A"
    assert len(ctx) == 1 and ctx[0]["sql"].lstrip().upper().startswith("SELECT")
    assert Visitor.objects.count() == 1


def test_get_or_create_keeps_django_semantics(db) -> None:
    obj, created = Visitor.objects.get_or_create(email="g@x", defaults={"name": "G"})
    assert created is True
    same, created = Visitor.objects.get_or_create(email="g@x")
    assert created is False and same.pk == obj.pk
    Visitor.objects.create(email="g@x")
    with pytest.raises(Visitor.MultipleObjectsReturned):
        Visitor.objects.get_or_create(email="g@x")
    with pytest.raises(Visitor.MultipleObjectsReturned):
        Visitor.objects.exists_or_create(email="g@x")


def _race(fn: Any, n: int = 8) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            Visitor.objects.exists()  # open this thread's connection before the race
            barrier.wait(timeout=10)
            value = fn()
            with lock:
                results.append(value)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors
    return results


@pytest.mark.parametrize("rounds", [3])
def test_exists_or_create_is_race_safe_without_a_unique_constraint(db, rounds: int) -> None:
    for i in range(rounds):
        email = f"race{i}@x"
        results = _race(
            lambda email=email: Visitor.objects.exists_or_create(
                email=email, defaults={"name": "R"}
            )
        )
        assert len(results) == 8
        assert Visitor.objects.filter(email=email).count() == 1
        (pk,) = Visitor.objects.filter(email=email).values_list("pk", flat=True)
        assert {obj.pk for _existed, obj in results} == {pk}
        assert sum(1 for existed, _obj in results if not existed) == 1


def test_exists_or_create_lock_key_is_stable_and_lookup_specific() -> None:
    from dorm.models.lookup_lock import lookup_lock_key as _lookup_lock_key

    a = _lookup_lock_key("t", {"email": "a", "name": "b"})
    assert a == _lookup_lock_key("t", {"name": "b", "email": "a"})
    assert a != _lookup_lock_key("t", {"email": "b", "name": "b"})
    assert a != _lookup_lock_key("u", {"email": "a", "name": "b"})
    assert -(2**63) <= a < 2**63


# --- F().coalesce() / F().between() ------------------------------------------------------------


@pytest.fixture
def people(db) -> None:
    Person.objects.create(name="kid", nick=None, alias="k", age=10)
    Person.objects.create(name="ann", nick="annie", alias=None, age=18)
    Person.objects.create(name="bob", nick=None, alias=None, age=40)
    Person.objects.create(name="old", nick="gramps", alias="g", age=65)
    Person.objects.create(name="ancient", nick=None, alias=None, age=90)


def test_f_coalesce_is_the_coalesce_function(db, people) -> None:
    sugar = Person.objects.annotate(shown=dorm.F("nick").coalesce("anon"))
    plain = Person.objects.annotate(shown=Coalesce(dorm.F("nick"), dorm.Value("anon")))
    assert str(sugar.query) == str(plain.query)
    assert dict(sugar.values_list("name", "shown")) == {
        "kid": "anon",
        "ann": "annie",
        "bob": "anon",
        "old": "gramps",
        "ancient": "anon",
    }
    many = Person.objects.annotate(shown=dorm.F("nick").coalesce(dorm.F("alias"), "anon"))
    assert dict(many.values_list("name", "shown"))["kid"] == "k"
    two = Person.objects.annotate(s=dorm.F("nick").coalesce("a", "b"))
    assert str(two.query) == str(
        Person.objects.annotate(s=Coalesce(dorm.F("nick"), dorm.Value("a"), dorm.Value("b"))).query
    )
    assert set(two.values_list("s", flat=True)) == {"a", "annie", "gramps"}
    filtered = Person.objects.filter(nick__isnull=False).exclude(nick="x")
    assert filtered.count() == 2
    assert list(
        Person.objects.filter(alias__isnull=True)
        .order_by(dorm.F("nick").coalesce("zzz"), "name")
        .values_list("name", flat=True)
    ) == ["ann", "ancient", "bob"]


def test_f_between_in_filter_exclude_annotate_and_order_by(db, people) -> None:
    def names(qs: Any) -> list[str]:
        return list(qs.order_by("name").values_list("name", flat=True))

    assert names(Person.objects.filter(dorm.F("age").between(18, 65))) == ["ann", "bob", "old"]
    assert names(Person.objects.exclude(dorm.F("age").between(18, 65))) == ["ancient", "kid"]
    adult = Person.objects.annotate(adult=dorm.F("age").between(18, 65))
    assert dict(adult.values_list("name", "adult")) == {
        "kid": False,
        "ann": True,
        "bob": True,
        "old": True,
        "ancient": False,
    }
    ordered = Person.objects.order_by(dorm.F("age").between(18, 65), "name")
    assert list(ordered.values_list("name", flat=True)) == ["ancient", "kid", "ann", "bob", "old"]
    assert names(Person.objects.filter(dorm.F("age").between(dorm.F("age"), 20))) == ["ann", "kid"]


# --- UUIDv7 primary keys -----------------------------------------------------------------------


def _check_v7(value: uuid.UUID) -> None:
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert (value.int >> 76) & 0xF == 7 and (value.int >> 62) & 0b11 == 0b10


def test_uuid7_layout_and_timestamp() -> None:
    value = uuid7()
    _check_v7(value)
    assert abs((value.int >> 80) / 1000 - time.time()) < 1


def test_uuid7_is_strictly_increasing_in_a_tight_loop_and_across_threads() -> None:
    values = [uuid7() for _ in range(20000)]
    assert values == sorted(values) and len(set(values)) == len(values)
    for value in values[::997]:
        _check_v7(value)
    assert abs((values[-1].int >> 80) / 1000 - time.time()) < 1

    per_thread: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def worker(out: list[uuid.UUID]) -> None:
        for _ in range(5000):
            out.append(uuid7())

    threads = [threading.Thread(target=worker, args=(out,)) for out in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    everything = [v for out in per_thread for v in out]
    assert len(set(everything)) == 20000
    for out in per_thread:
        assert all(a < b for a, b in zip(out, out[1:], strict=False))


def test_uuid7_primary_key_orders_rows_by_creation(db) -> None:
    created = [Event.objects.create(n=i) for i in range(30)]
    for obj in created:
        _check_v7(obj.pk)
    stored = list(Event.objects.order_by("pk").values_list("pk", "n"))
    assert [n for _pk, n in stored] == list(range(30))
    assert all(isinstance(pk, uuid.UUID) for pk, _n in stored)
    assert [pk for pk, _n in stored] == [o.pk for o in created]
    _check_v7(Event.objects.get(n=0).pk)


def test_default_uuid_primary_key_stays_version_4(db) -> None:
    ticket = Ticket.objects.create()
    assert ticket.pk.version == 4
    assert Ticket.objects.get().pk == ticket.pk


def test_uuid_columns_are_native_on_postgresql(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("information_schema data types are PostgreSQL's")
    from dorm.db.connection import get_connection

    row = get_connection().fetchone(
        "SELECT data_type FROM information_schema.columns WHERE table_name = %s "
        "AND column_name = %s",
        [Event._meta.db_table, "id"],
    )
    assert row is not None and row[0] == "uuid"


# --- docs/queries.md ---------------------------------------------------------------------------

SECTIONS = [
    "## Upsert",
    "## exists_or_create",
    "## F().coalesce() and F().between()",
    "## UUIDv7 primary keys",
]


def _section_blocks(markdown: str, heading: str) -> list[str]:
    start = markdown.index(f"\n{heading}\n")
    rest = markdown[start + len(heading) + 2 :]
    end = re.search(r"^## ", rest, flags=re.M)
    body = rest[: end.start()] if end else rest
    return re.findall(r"^```python\n(.*?)^```$", body, flags=re.M | re.S)


def test_docs_sections_run_in_order(db, tmp_path, monkeypatch) -> None:
    if db.vendor != "sqlite":
        pytest.skip("docs/queries.md runs against SQLite")
    from dorm.apps import apps
    from dorm.conf import settings
    from dorm.db.connection import reset_connections

    markdown = (REPO / "docs" / "queries.md").read_text()
    preamble = re.findall(r"^```python\n(.*?)^```$", markdown.split("\n## ")[0], flags=re.M | re.S)
    blocks = preamble + [b for heading in SECTIONS for b in _section_blocks(markdown, heading)]
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_queries_additions"}
    try:
        for block in blocks:
            exec(compile(block, "docs/queries.md", "exec"), namespace)
    finally:
        reset_connections()
        settings._reset()
        apps.clear("docs_additions")
        dorm.configure(DATABASES={"default": db.settings})


def test_race_harness_catches_an_unguarded_check_then_create(db) -> None:
    """Without the lock the same race duplicates rows: the test above can fail."""

    def unguarded() -> Any:
        found = list(Visitor.objects.filter(email="dup@x"))
        time.sleep(0.05)
        return found[0] if found else Visitor.objects.create(email="dup@x")

    _race(unguarded)
    assert Visitor.objects.filter(email="dup@x").count() > 1


def test_upsert_with_nothing_to_update_still_returns_the_stored_pk(db) -> None:
    old = Score.objects.create(slug="a", score=1)
    (saved,) = Score.objects.upsert(
        [Score(slug="a", score=9)], unique_fields=["slug"], update_fields=[], returning=True
    )
    assert saved.pk == old.pk
    assert Score.objects.get(pk=old.pk).score == 1
