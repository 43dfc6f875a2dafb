"""Signals and their plugin hooks on real model saves, deletes and bulk operations, and the
error policy: what an exception from a receiver or hook leaves in the database."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import dorm
from dorm import plugins, signals, transaction
from dorm.plugins import hookimpl


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_sig"


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="books")
    pages = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_sig"


class Review(dorm.Model):
    book = dorm.ForeignKey(Book, on_delete=dorm.CASCADE, related_name="reviews")
    stars = dorm.IntegerField(default=3)

    class Meta:
        app_label = "t_sig"


MODELS = [Author, Book, Review]
pytestmark = pytest.mark.usefixtures("clean_tables")

Listen = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def listen() -> Iterator[Listen]:
    """``listen(signal, sender=None, action=None)`` connects a recording receiver."""
    connected: list[tuple[signals.Signal, Any, Any]] = []

    def connect(
        signal: signals.Signal, sender: Any = None, action: Callable[..., Any] | None = None
    ) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []

        def receiver(signal: signals.Signal, **kwargs: Any) -> None:
            got.append(kwargs)
            if action is not None:
                action(**kwargs)

        signal.connect(receiver, sender=sender, weak=False)
        connected.append((signal, receiver, sender))
        return got

    yield connect
    for signal, receiver, sender in connected:
        signal.disconnect(receiver, sender=sender)


@pytest.fixture
def register() -> Iterator[Callable[[object, str], None]]:
    names: list[str] = []

    def add(plugin: object, name: str) -> None:
        plugins.register(plugin, name=name)
        names.append(name)

    yield add
    for name in names:
        plugins.unregister(name)


def author_names() -> list[str]:
    return sorted(Author.objects.values_list("name", flat=True))


# --- pre_save / post_save ----------------------------------------------------------------------


def test_save_signals_created_then_updated(db, listen: Listen) -> None:
    row_seen: list[int] = []
    pre = listen(signals.pre_save, sender=Author)
    post = listen(
        signals.post_save,
        sender=Author,
        action=lambda instance, **_kw: row_seen.append(
            Author.objects.filter(pk=instance.pk).count()
        ),
    )
    ada = Author(name="Ada")
    ada.save()
    assert len(pre) == 1 and len(post) == 1
    assert pre[0] == {
        "sender": Author,
        "instance": ada,
        "raw": False,
        "using": "default",
        "update_fields": None,
    }
    assert post[0] == {
        "sender": Author,
        "instance": ada,
        "created": True,
        "raw": False,
        "using": "default",
        "update_fields": None,
    }
    assert row_seen == [1]  # post_save runs after the INSERT
    ada.name = "Ada L."
    ada.save()
    assert post[1]["created"] is False
    assert Author.objects.get(pk=ada.pk).name == "Ada L."


def test_pre_save_sees_unsaved_state(db, listen: Listen) -> None:
    states: list[tuple[Any, bool, int]] = []
    listen(
        signals.pre_save,
        sender=Author,
        action=lambda instance, **_kw: states.append(
            (instance.pk, instance._state.adding, Author.objects.count())
        ),
    )
    Author.objects.create(name="a")
    assert states == [(None, True, 0)]


def test_update_fields_passed_as_frozenset(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    pre = listen(signals.pre_save, sender=Author)
    post = listen(signals.post_save, sender=Author)
    ada.name = "Changed"
    ada.save(update_fields=["name", "name"])
    assert pre[0]["update_fields"] == frozenset({"name"})
    assert isinstance(pre[0]["update_fields"], frozenset)
    assert post[0]["update_fields"] == frozenset({"name"})
    assert isinstance(post[0]["update_fields"], frozenset)
    assert post[0]["created"] is False
    assert author_names() == ["Changed"]


def test_empty_update_fields_saves_nothing_and_sends_nothing(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    pre = listen(signals.pre_save, sender=Author)
    ada.name = "Changed"
    ada.save(update_fields=[])
    assert pre == []
    assert author_names() == ["Ada"]


def test_get_or_create_and_update_or_create_send_save_signals(db, listen: Listen) -> None:
    post = listen(signals.post_save, sender=Author)
    ada, created = Author.objects.get_or_create(name="Ada")
    assert created is True
    assert Author.objects.get_or_create(name="Ada") == (ada, False)
    Author.objects.update_or_create(name="Ada", defaults={"name": "Ada L."})
    assert [(e["instance"].name, e["created"]) for e in post] == [("Ada", True), ("Ada L.", False)]
    assert author_names() == ["Ada L."]


def test_sender_filtering(db, listen: Listen) -> None:
    authors = listen(signals.post_save, sender=Author)
    books = listen(signals.post_save, sender=Book)
    everything = listen(signals.post_save)
    ada = Author.objects.create(name="Ada")
    Book.objects.create(title="Notes", author=ada)
    assert [e["instance"].name for e in authors] == ["Ada"]
    assert [e["instance"].title for e in books] == ["Notes"]
    assert [e["sender"] for e in everything] == [Author, Book]


def test_plugin_post_save_sees_the_same_event_as_a_receiver(db, listen: Listen, register) -> None:
    events: list[dict[str, Any]] = []

    class Recorder:
        @hookimpl
        def dorm_post_save(
            self,
            sender: type,
            instance: Any,
            created: bool,
            raw: bool,
            using: str,
            update_fields: frozenset[str] | None,
        ) -> None:
            events.append(
                {
                    "sender": sender,
                    "instance": instance,
                    "created": created,
                    "raw": raw,
                    "using": using,
                    "update_fields": update_fields,
                }
            )

    register(Recorder(), "t-sig-post-save")
    received = listen(signals.post_save)
    ada = Author.objects.create(name="Ada")
    ada.save(update_fields=["name"])
    assert events == received
    assert [(e["sender"], e["created"], e["update_fields"]) for e in events] == [
        (Author, True, None),
        (Author, False, frozenset({"name"})),
    ]
    assert events[0]["instance"] is ada


def test_plugin_pre_save_only_is_enough_to_fire(db, register) -> None:
    seen: list[str] = []

    class PreOnly:
        @hookimpl
        def dorm_pre_save(self, instance: Any) -> None:
            seen.append(instance.name)

    register(PreOnly(), "t-sig-pre-only")
    Author.objects.create(name="Hooked")
    assert seen == ["Hooked"]


def test_save_hooks_registered_after_saves_fire_on_the_next_save(db) -> None:
    """Whether a plugin implements a save hook is remembered between saves; registering
    one after saves ran, or unregistering it, counts from the next save on."""
    seen: list[str] = []

    class Both:
        @hookimpl
        def dorm_pre_save(self, instance: Any) -> None:
            seen.append(f"pre {instance.name}")

        @hookimpl
        def dorm_post_save(self, instance: Any, created: bool) -> None:
            seen.append(f"post {instance.name} {created}")

    for name in ("a", "b"):
        Author.objects.create(name=name)
    assert seen == []
    plugins.register(Both(), name="t-sig-late")
    try:
        late = Author.objects.create(name="late")
        late.name = "later"
        late.save()
        assert seen == ["pre late", "post late True", "pre later", "post later False"]
    finally:
        plugins.unregister("t-sig-late")
    Author.objects.create(name="after")
    assert len(seen) == 4
    assert sorted(Author.objects.values_list("name", flat=True)) == ["a", "after", "b", "later"]


# --- error policy of save hooks ----------------------------------------------------------------


def _raise(**_kwargs: Any) -> None:
    raise RuntimeError("receiver refused")


def test_pre_save_receiver_raising_writes_nothing(db, listen: Listen) -> None:
    existing = Author.objects.create(name="Old")
    listen(signals.pre_save, sender=Author, action=_raise)
    with pytest.raises(RuntimeError, match="receiver refused"):
        Author.objects.create(name="New")
    existing.name = "Renamed"
    with pytest.raises(RuntimeError, match="receiver refused"):
        existing.save()
    assert author_names() == ["Old"]


def test_pre_save_plugin_raising_writes_nothing(db, register) -> None:
    class Refuse:
        @hookimpl
        def dorm_pre_save(self, instance: Any) -> None:
            raise PermissionError(f"no saving {instance.name}")

    register(Refuse(), "t-sig-refuse")
    with pytest.raises(PermissionError, match="no saving x"):
        Author.objects.create(name="x")
    assert Author.objects.count() == 0


def test_post_save_hook_raising_inside_atomic_rolls_back(db, register) -> None:
    class Fail:
        @hookimpl
        def dorm_post_save(self, instance: Any, created: bool) -> None:
            if created:
                raise ValueError("post_save failed")

    Author.objects.create(name="before")
    register(Fail(), "t-sig-post-fail")
    with pytest.raises(ValueError, match="post_save failed"), transaction.atomic():
        Author.objects.create(name="rolled-back")
    assert author_names() == ["before"]


def test_post_save_receiver_raising_in_autocommit_keeps_row(db, listen: Listen) -> None:
    listen(signals.post_save, sender=Author, action=_raise)
    with pytest.raises(RuntimeError, match="receiver refused"):
        Author.objects.create(name="stays")
    assert author_names() == ["stays"]


def test_observer_query_hook_raising_is_logged_and_query_succeeds(
    db, register, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenTracer:
        @hookimpl
        def dorm_post_query(self, sql: str) -> None:
            raise RuntimeError("tracer broke")

    register(BrokenTracer(), "t-sig-tracer")
    with caplog.at_level(logging.ERROR, logger="dorm.plugins"):
        Author.objects.create(name="traced")
        assert author_names() == ["traced"]
    records = [r for r in caplog.records if r.name == "dorm.plugins"]
    assert len(records) >= 2
    message = records[0].getMessage()
    assert "t-sig-tracer" in message and "dorm_post_query" in message
    assert records[0].exc_info is not None
    assert str(records[0].exc_info[1]) == "tracer broke"


def test_query_signal_receiver_raising_is_logged(
    db, listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    seen = listen(signals.pre_query, action=_raise)
    with caplog.at_level(logging.ERROR, logger="dorm.signals"):
        Author.objects.create(name="x")
    assert Author.objects.count() == 1
    assert seen and seen[0]["alias"] == "default" and "INSERT INTO" in seen[0]["sql"]
    assert any(r.name == "dorm.signals" for r in caplog.records)


# --- pre_delete / post_delete --------------------------------------------------------------------


def test_delete_signals_include_cascades_with_origin(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    b1 = Book.objects.create(title="b1", author=ada)
    b2 = Book.objects.create(title="b2", author=ada)
    Review.objects.create(book=b1, stars=5)
    remaining_at_pre: list[int] = []
    pre = listen(
        signals.pre_delete,
        action=lambda **_kw: remaining_at_pre.append(Book.objects.count()),
    )
    post = listen(signals.post_delete)
    total, per_model = ada.delete()
    assert total == 4
    assert per_model == {"t_sig.Author": 1, "t_sig.Book": 2, "t_sig.Review": 1}
    assert sorted(e["sender"].__name__ for e in pre) == ["Author", "Book", "Book", "Review"]
    assert sorted(e["sender"].__name__ for e in post) == ["Author", "Book", "Book", "Review"]
    assert all(e["origin"] is ada and e["using"] == "default" for e in pre + post)
    assert {e["instance"].title for e in pre if e["sender"] is Book} == {"b1", "b2"}
    assert remaining_at_pre == [2, 2, 2, 2]  # nothing deleted before the last pre_delete
    assert Author.objects.count() == Book.objects.count() == Review.objects.count() == 0
    assert b2.pk is not None  # only the collected copies lose their pk


def test_post_delete_runs_after_the_rows_are_gone(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    counts: list[int] = []
    listen(
        signals.post_delete,
        sender=Author,
        action=lambda instance, **_kw: counts.append(Author.objects.filter(name="Ada").count()),
    )
    ada.delete()
    assert counts == [0]
    assert ada.pk is None


def test_queryset_delete_origin_is_the_queryset(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    Book.objects.create(title="b1", author=ada)
    Author.objects.create(name="Bob")
    pre = listen(signals.pre_delete, sender=Book)
    post = listen(signals.post_delete, sender=Author)
    qs = Author.objects.filter(name="Ada")
    qs.delete()
    assert [e["instance"].title for e in pre] == ["b1"]
    assert pre[0]["origin"] is qs
    assert [e["origin"] for e in post] == [qs]
    assert author_names() == ["Bob"]


def test_pre_delete_raising_deletes_nothing(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    Book.objects.create(title="b1", author=ada)
    listen(signals.pre_delete, sender=Book, action=_raise)
    with pytest.raises(RuntimeError, match="receiver refused"):
        ada.delete()
    assert author_names() == ["Ada"]
    assert Book.objects.count() == 1
    assert ada.pk is not None


def test_post_delete_raising_rolls_the_deletion_back(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    Book.objects.create(title="b1", author=ada)
    listen(signals.post_delete, sender=Author, action=_raise)
    with pytest.raises(RuntimeError, match="receiver refused"):
        ada.delete()
    assert author_names() == ["Ada"]
    assert Book.objects.count() == 1


def test_fast_delete_without_listeners_sends_nothing(db, listen: Listen) -> None:
    Author.objects.create(name="a")
    Author.objects.create(name="b")
    # A receiver for another model does not force Author through the collector.
    other = listen(signals.pre_delete, sender=Review)
    assert Author.objects.all().delete() == (2, {"t_sig.Author": 2})
    assert other == []
    assert Author.objects.count() == 0


# --- class_prepared ------------------------------------------------------------------------------


def test_class_prepared_fires_for_new_model_classes(db, listen: Listen) -> None:
    prepared = listen(signals.class_prepared)
    name = f"Late{db.vendor.capitalize()}"
    meta = type("Meta", (), {"app_label": "t_sig_late"})
    late = type(
        name,
        (dorm.Model,),
        {"__module__": __name__, "Meta": meta, "label": dorm.CharField(max_length=10)},
    )
    assert [e["sender"] for e in prepared] == [late]
    assert prepared[0]["sender"]._meta.get_field("label").name == "label"


# --- bulk and queryset signals ----------------------------------------------------------------


def test_bulk_create_sends_bulk_created_not_save_signals(db, listen: Listen) -> None:
    created = listen(signals.bulk_created, sender=Author)
    saves = listen(signals.post_save, sender=Author)
    objs = Author.objects.bulk_create([Author(name="a"), Author(name="b")])
    assert saves == []
    assert len(created) == 1
    assert created[0]["objs"] == objs and created[0]["using"] == "default"
    assert all(o.pk is not None for o in created[0]["objs"])
    assert author_names() == ["a", "b"]


def test_bulk_created_raising_rolls_the_batch_back(db, listen: Listen) -> None:
    listen(signals.bulk_created, sender=Author, action=_raise)
    with pytest.raises(RuntimeError):
        Author.objects.bulk_create([Author(name="a"), Author(name="b")])
    assert Author.objects.count() == 0


def test_bulk_update_sends_bulk_updated(db, listen: Listen) -> None:
    objs = Author.objects.bulk_create([Author(name="a"), Author(name="b")])
    updated = listen(signals.bulk_updated, sender=Author)
    for obj in objs:
        obj.name = obj.name.upper()
    assert Author.objects.bulk_update(objs, ["name"]) == 2
    assert len(updated) == 1
    assert updated[0]["objs"] == objs
    assert list(updated[0]["fields"]) == ["name"]
    assert updated[0]["using"] == "default"
    assert author_names() == ["A", "B"]


def test_bulk_updated_raising_rolls_back(db, listen: Listen) -> None:
    objs = Author.objects.bulk_create([Author(name="a")])
    listen(signals.bulk_updated, sender=Author, action=_raise)
    objs[0].name = "changed"
    with pytest.raises(RuntimeError):
        Author.objects.bulk_update(objs, ["name"])
    assert author_names() == ["a"]


def test_queryset_update_sends_queryset_updated(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    Book.objects.create(title="b1", author=ada, pages=10)
    Book.objects.create(title="b2", author=ada, pages=20)
    Book.objects.create(title="b3", author=ada, pages=30)
    got = listen(signals.queryset_updated, sender=Book)
    saves = listen(signals.post_save)
    assert Book.objects.filter(pages__gte=20).update(pages=99) == 2
    assert saves == []
    assert len(got) == 1
    assert got[0]["values"] == {"pages": 99}
    assert got[0]["rows"] == 2 and got[0]["using"] == "default"
    assert sorted(b.title for b in got[0]["queryset"]) == ["b2", "b3"]
    assert sorted(Book.objects.values_list("pages", flat=True)) == [10, 99, 99]


def test_queryset_updated_raising_rolls_the_update_back(db, listen: Listen) -> None:
    Author.objects.create(name="a")
    listen(signals.queryset_updated, sender=Author, action=_raise)
    with pytest.raises(RuntimeError):
        Author.objects.update(name="changed")
    assert author_names() == ["a"]


def test_queryset_delete_sends_queryset_deleted(db, listen: Listen) -> None:
    ada = Author.objects.create(name="Ada")
    Book.objects.create(title="b1", author=ada)
    Author.objects.create(name="Bob")
    got = listen(signals.queryset_deleted, sender=Author)
    assert Author.objects.filter(name="Ada").delete() == (
        2,
        {"t_sig.Book": 1, "t_sig.Author": 1},
    )
    assert len(got) == 1
    assert got[0]["deleted"] == {"t_sig.Book": 1, "t_sig.Author": 1}
    assert got[0]["using"] == "default"
    assert author_names() == ["Bob"]


def test_queryset_deleted_raising_rolls_the_delete_back(db, listen: Listen) -> None:
    Author.objects.create(name="a")
    listen(signals.queryset_deleted, sender=Author, action=_raise)
    with pytest.raises(RuntimeError):
        Author.objects.all().delete()
    assert author_names() == ["a"]


def test_plugin_hooks_for_bulk_and_queryset_events(db, register) -> None:
    events: list[tuple[str, Any]] = []

    class Recorder:
        @hookimpl
        def dorm_bulk_created(self, sender: type, objs: Any) -> None:
            events.append(("bulk_created", (sender, len(objs))))

        @hookimpl
        def dorm_bulk_updated(self, sender: type, fields: Any) -> None:
            events.append(("bulk_updated", (sender, list(fields))))

        @hookimpl
        def dorm_queryset_updated(self, sender: type, rows: int) -> None:
            events.append(("queryset_updated", (sender, rows)))

        @hookimpl
        def dorm_queryset_deleted(self, sender: type, deleted: dict[str, int]) -> None:
            events.append(("queryset_deleted", (sender, deleted)))

    register(Recorder(), "t-sig-bulk")
    objs = Author.objects.bulk_create([Author(name="a"), Author(name="b")])
    objs[0].name = "z"
    Author.objects.bulk_update(objs, ["name"])
    Author.objects.filter(name="z").update(name="y")
    Author.objects.all().delete()
    assert events == [
        ("bulk_created", (Author, 2)),
        ("bulk_updated", (Author, ["name"])),
        ("queryset_updated", (Author, 1)),
        ("queryset_deleted", (Author, {"t_sig.Author": 2})),
    ]
    assert Author.objects.count() == 0
