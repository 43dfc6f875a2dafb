"""Regression tests for bugs found by probing realistic query chains, on both backends."""

from __future__ import annotations

import uuid

import pytest

import dorm


class RAuthor(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_regr"


class RBook(dorm.Model):
    title = dorm.CharField(max_length=100)
    author = dorm.ForeignKey(RAuthor, on_delete=dorm.CASCADE, related_name="books")

    class Meta:
        app_label = "t_regr"


class RParent(dorm.Model):
    id = dorm.UUIDField(primary_key=True, default=uuid.uuid4)
    name = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_regr"


class RChild(dorm.Model):
    parent = dorm.ForeignKey(RParent, on_delete=dorm.CASCADE, related_name="kids")

    class Meta:
        app_label = "t_regr"


MODELS = [RAuthor, RBook, RParent, RChild]
pytestmark = pytest.mark.usefixtures("clean_tables")


def test_values_list_after_union_selects_the_named_columns(db) -> None:
    # values_list() on a union used to keep every model column (and order by position
    # in the wrong list): the ids came back instead of the titles.
    ada = RAuthor.objects.create(name="Ada")
    for title in ("b", "a", "c"):
        RBook.objects.create(title=title, author=ada)
    union = RBook.objects.filter(title="b").union(RBook.objects.filter(title__in=["a", "c"]))
    assert list(union.order_by("title").values_list("title", flat=True)) == ["a", "b", "c"]
    assert list(union.values("title").order_by("-title")) == [
        {"title": "c"},
        {"title": "b"},
        {"title": "a"},
    ]
    assert sorted(union.values_list("title", "author__name")) == [
        ("a", "Ada"),
        ("b", "Ada"),
        ("c", "Ada"),
    ]
    assert union.count() == 3


def test_foreign_key_to_uuid_primary_key_round_trips(db) -> None:
    # SQLite could not bind a UUID given to a foreign key (adapters looked at the FK's own
    # type, not the UUID column it stores), and read the key back as text.
    parent = RParent.objects.create(name="p")
    child = RChild.objects.create(parent=parent)
    fetched = RChild.objects.get(pk=child.pk)
    assert isinstance(fetched.parent_id, uuid.UUID) and fetched.parent_id == parent.pk
    assert list(RChild.objects.values_list("parent", flat=True)) == [parent.pk]
    assert RChild.objects.filter(parent=str(parent.pk)).count() == 1
    assert RChild.objects.filter(parent__in=[parent.pk]).count() == 1
    assert RChild.objects.select_related("parent").get().parent.name == "p"
    RChild.objects.bulk_create([RChild(parent=parent)])
    RChild.objects.filter(pk=child.pk).update(parent=parent)
    assert parent.kids.count() == 2
    assert RParent.objects.annotate(n=dorm.Count("kids")).get().n == 2
