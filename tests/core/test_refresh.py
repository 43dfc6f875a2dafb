"""refresh_from_db() drops what the reload made stale, as Django does: a cached related
object whose foreign key changed, reverse relation caches, and prefetched results."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.test import CaptureQueriesContext


class Writer(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_refresh"


class Passport(dorm.Model):
    owner = dorm.OneToOneField(Writer, on_delete=dorm.CASCADE, related_name="passport")
    number = dorm.CharField(max_length=10)

    class Meta:
        app_label = "t_refresh"


class Story(dorm.Model):
    title = dorm.CharField(max_length=30)
    writer = dorm.ForeignKey(
        Writer, on_delete=dorm.CASCADE, related_name="stories", null=True, blank=True
    )

    class Meta:
        app_label = "t_refresh"


MODELS = [Writer, Passport, Story]
pytestmark = pytest.mark.usefixtures("clean_tables")


def _queries(fn: Any) -> tuple[Any, int]:
    with CaptureQueriesContext() as ctx:
        result = fn()
    return result, len(ctx.captured_queries)


def test_cached_related_object_is_dropped_when_its_foreign_key_changed(db: Any) -> None:
    ada, bob = Writer.objects.create(name="Ada"), Writer.objects.create(name="Bob")
    Story.objects.create(title="t", writer=ada)
    story = Story.objects.select_related("writer").get()
    assert _queries(lambda: story.writer.name) == ("Ada", 0)  # cached
    Story.objects.update(writer=bob)
    story.refresh_from_db()
    assert story.writer_id == bob.pk
    assert _queries(lambda: story.writer.name) == ("Bob", 1)  # the stale Ada is gone


def test_cached_related_object_is_kept_when_its_foreign_key_did_not_change(db: Any) -> None:
    ada = Writer.objects.create(name="Ada")
    Story.objects.create(title="t", writer=ada)
    story = Story.objects.select_related("writer").get()
    Story.objects.update(title="new")
    story.refresh_from_db()
    assert story.title == "new"
    assert _queries(lambda: story.writer.name) == ("Ada", 0)


def test_known_empty_relation_is_dropped_when_the_key_is_set(db: Any) -> None:
    ada = Writer.objects.create(name="Ada")
    Story.objects.create(title="t")
    story = Story.objects.get()
    assert story.writer is None  # cached as "no writer"
    Story.objects.update(writer=ada)
    story.refresh_from_db()
    assert story.writer is not None and story.writer.name == "Ada"


def test_reverse_one_to_one_cache_is_dropped(db: Any) -> None:
    ada, bob = Writer.objects.create(name="Ada"), Writer.objects.create(name="Bob")
    Passport.objects.create(owner=ada, number="P1")
    writer = Writer.objects.get(pk=ada.pk)
    assert writer.passport.number == "P1"  # cached on the writer
    Passport.objects.update(owner=bob)
    writer.refresh_from_db()
    with pytest.raises(Passport.DoesNotExist):
        writer.passport  # noqa: B018


def test_prefetched_results_are_dropped(db: Any) -> None:
    ada = Writer.objects.create(name="Ada")
    Story.objects.create(title="one", writer=ada)
    (writer,) = Writer.objects.prefetch_related("stories")
    assert _queries(lambda: len(writer.stories.all())) == (1, 0)
    Story.objects.create(title="two", writer=ada)
    writer.refresh_from_db(fields=["name"])  # names no prefetched relation: kept
    assert _queries(lambda: len(writer.stories.all())) == (1, 0)
    writer.refresh_from_db(fields=["stories"])  # only that prefetched relation
    assert _queries(lambda: len(writer.stories.all())) == (2, 1)
    (writer,) = Writer.objects.prefetch_related("stories")
    Story.objects.create(title="three", writer=ada)
    writer.refresh_from_db()  # all of them
    assert _queries(lambda: sorted(s.title for s in writer.stories.all()))[0] == [
        "one",
        "three",
        "two",
    ]
