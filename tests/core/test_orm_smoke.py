"""End-to-end smoke test of the ORM on both backends: the example every other test extends."""

from __future__ import annotations

from decimal import Decimal

import pytest

import dorm
from dorm.test import assertNumQueries


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "smoke"


class Tag(dorm.Model):
    name = dorm.CharField(max_length=20, unique=True)

    class Meta:
        app_label = "smoke"


class Book(dorm.Model):
    title = dorm.CharField(max_length=100)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="books")
    tags = dorm.ManyToManyField(Tag, related_name="books")
    price = dorm.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))

    class Meta:
        app_label = "smoke"


MODELS = [Author, Tag, Book]
pytestmark = pytest.mark.usefixtures("clean_tables")


def test_create_query_relate_and_delete(db) -> None:
    ada = Author.objects.create(name="Ada")
    book = Book.objects.create(title="Notes", author=ada, price="9.50")
    math, cs = Tag.objects.create(name="math"), Tag.objects.create(name="cs")
    book.tags.add(math, cs)

    assert Book.objects.get(author__name="Ada").price == Decimal("9.50")
    assert list(Book.objects.filter(tags__name="cs").values_list("title", flat=True)) == ["Notes"]
    assert list(Author.objects.annotate(n=dorm.Count("books")).values("name", "n")) == [
        {"name": "Ada", "n": 1}
    ]
    with assertNumQueries(1):
        assert Book.objects.select_related("author").get(pk=book.pk).author.name == "Ada"
    with assertNumQueries(2):
        (fetched,) = Book.objects.prefetch_related("tags")
        assert sorted(t.name for t in fetched.tags.all()) == ["cs", "math"]
    assert Book.objects.exclude(tags__name="cs").count() == 0
    assert (
        Author.objects.filter(dorm.Exists(Book.objects.filter(author=dorm.OuterRef("pk")))).count()
        == 1
    )
    total, per_model = ada.delete()
    assert per_model == {"smoke.Book_tags": 2, "smoke.Book": 1, "smoke.Author": 1}
    assert Book.objects.count() == 0 and Tag.objects.count() == 2
