"""Relation traversal in select_related, filter, exclude, order_by and values across several
hops, on both backends."""

from __future__ import annotations

import pytest

import dorm
from dorm.exceptions import FieldError
from dorm.test import assertNumQueries


class Country(dorm.Model):
    code = dorm.CharField(max_length=2, unique=True)
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_relq"


class Publisher(dorm.Model):
    name = dorm.CharField(max_length=50)
    # A lazy "app.Model" reference whose foreign key targets a non-pk unique column.
    country = dorm.ForeignKey("t_relq.Country", on_delete=dorm.SET_NULL, null=True, to_field="code")

    class Meta:
        app_label = "t_relq"


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)
    # A lazy bare "Model" reference, resolved within the same app label.
    publisher = dorm.ForeignKey("Publisher", on_delete=dorm.SET_NULL, null=True)

    class Meta:
        app_label = "t_relq"


class Book(dorm.Model):
    title = dorm.CharField(max_length=100)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE)
    editor = dorm.ForeignKey(
        Author, on_delete=dorm.SET_NULL, null=True, related_name="edited_books"
    )
    pages = dorm.IntegerField(default=100)

    class Meta:
        app_label = "t_relq"


class Review(dorm.Model):
    book = dorm.ForeignKey(Book, on_delete=dorm.CASCADE, related_name="reviews")
    stars = dorm.IntegerField()

    class Meta:
        app_label = "t_relq"


MODELS = [Country, Publisher, Author, Book, Review]
pytestmark = pytest.mark.usefixtures("clean_tables")


@pytest.fixture
def library(db):
    """Two countries, two publishers, three authors, four books with reviews."""
    fr = Country.objects.create(code="FR", name="France")
    uk = Country.objects.create(code="UK", name="United Kingdom")
    gallimard = Publisher.objects.create(name="Gallimard", country=fr)
    penguin = Publisher.objects.create(name="Penguin", country=uk)
    camus = Author.objects.create(name="Camus", publisher=gallimard)
    orwell = Author.objects.create(name="Orwell", publisher=penguin)
    anon = Author.objects.create(name="Anon", publisher=None)
    stranger = Book.objects.create(title="The Stranger", author=camus, editor=orwell, pages=120)
    plague = Book.objects.create(title="The Plague", author=camus, pages=300)
    nineteen = Book.objects.create(title="1984", author=orwell, editor=camus, pages=330)
    farm = Book.objects.create(title="Animal Farm", author=orwell, pages=90)
    for book, stars in [(stranger, 5), (stranger, 4), (nineteen, 5), (farm, 3)]:
        Review.objects.create(book=book, stars=stars)
    return {
        "fr": fr,
        "uk": uk,
        "gallimard": gallimard,
        "penguin": penguin,
        "camus": camus,
        "orwell": orwell,
        "anon": anon,
        "stranger": stranger,
        "plague": plague,
        "nineteen": nineteen,
        "farm": farm,
    }


# -- select_related --------------------------------------------------------------------------------


def test_select_related_single_level(db, library) -> None:
    with assertNumQueries(1):
        books = list(Book.objects.select_related("author").order_by("title"))
        assert [(b.title, b.author.name) for b in books] == [
            ("1984", "Orwell"),
            ("Animal Farm", "Orwell"),
            ("The Plague", "Camus"),
            ("The Stranger", "Camus"),
        ]


def test_select_related_nested(db, library) -> None:
    with assertNumQueries(1):
        books = list(Book.objects.select_related("author__publisher__country").order_by("title"))
        assert [b.author.publisher.country.name for b in books] == [
            "United Kingdom",
            "United Kingdom",
            "France",
            "France",
        ]
    with assertNumQueries(1):
        review = Review.objects.select_related("book__author").get(stars=3)
        assert review.book.author.name == "Orwell"


def test_select_related_nullable_fk_keeps_rows_with_null(db, library) -> None:
    with assertNumQueries(1):
        books = list(Book.objects.select_related("editor").order_by("title"))
        assert [(b.title, b.editor.name if b.editor else None) for b in books] == [
            ("1984", "Camus"),
            ("Animal Farm", None),
            ("The Plague", None),
            ("The Stranger", "Orwell"),
        ]


def test_select_related_nested_through_null_link(db, library) -> None:
    Book.objects.create(title="Anonymous work", author=library["anon"])
    with assertNumQueries(1):
        books = list(Book.objects.select_related("author__publisher").filter(author__name="Anon"))
        assert len(books) == 1
        assert books[0].author.name == "Anon"
        assert books[0].author.publisher is None


def test_select_related_without_arguments_follows_non_null_fks(db, library) -> None:
    with assertNumQueries(1):
        reviews = list(Review.objects.select_related().order_by("stars", "book__title"))
        assert [(r.stars, r.book.title, r.book.author.name) for r in reviews] == [
            (3, "Animal Farm", "Orwell"),
            (4, "The Stranger", "Camus"),
            (5, "1984", "Orwell"),
            (5, "The Stranger", "Camus"),
        ]


def test_select_related_several_fields_and_none_resets(db, library) -> None:
    with assertNumQueries(1):
        book = Book.objects.select_related("author", "editor").get(title="1984")
        assert (book.author.name, book.editor.name) == ("Orwell", "Camus")
    qs = Book.objects.select_related("author").select_related(None)
    with assertNumQueries(2):
        assert qs.get(title="1984").author.name == "Orwell"


def test_select_related_unknown_field_raises(db, library) -> None:
    with pytest.raises(FieldError, match="nope"):
        list(Book.objects.select_related("nope"))


def test_select_related_with_filter_on_the_joined_table(db, library) -> None:
    with assertNumQueries(1):
        books = list(
            Book.objects.select_related("author")
            .filter(author__publisher__name="Penguin")
            .order_by("-pages")
        )
        assert [(b.title, b.author.name) for b in books] == [
            ("1984", "Orwell"),
            ("Animal Farm", "Orwell"),
        ]


# -- traversal in filter / exclude / order_by / values --------------------------------------------


def test_filter_across_several_hops(db, library) -> None:
    in_france = Book.objects.filter(author__publisher__country__code="FR").order_by("title")
    assert list(in_france.values_list("title", flat=True)) == ["The Plague", "The Stranger"]
    five_stars_uk = Review.objects.filter(
        stars=5, book__author__publisher__country__name="United Kingdom"
    )
    assert [r.book.title for r in five_stars_uk] == ["1984"]
    assert Country.objects.filter(publisher__author__book__pages__gt=300).get().code == "UK"


def test_reverse_filter_returns_duplicates_per_match_unless_distinct(db, library) -> None:
    qs = Author.objects.filter(book__pages__gte=100)
    assert sorted(qs.values_list("name", flat=True)) == ["Camus", "Camus", "Orwell"]
    assert sorted(qs.distinct().values_list("name", flat=True)) == ["Camus", "Orwell"]


def test_isnull_on_a_nullable_fk(db, library) -> None:
    no_editor = Book.objects.filter(editor__isnull=True).order_by("title")
    assert list(no_editor.values_list("title", flat=True)) == ["Animal Farm", "The Plague"]
    edited = Book.objects.filter(editor__isnull=False).order_by("title")
    assert list(edited.values_list("title", flat=True)) == ["1984", "The Stranger"]
    assert Book.objects.filter(editor=None).count() == 2
    no_country = Book.objects.filter(author__publisher__isnull=True)
    assert no_country.count() == 0
    assert list(Author.objects.filter(publisher__isnull=True).values_list("name", flat=True)) == [
        "Anon"
    ]
    # Reverse isnull: authors that wrote nothing.
    assert list(Author.objects.filter(book__isnull=True).values_list("name", flat=True)) == ["Anon"]


def test_isnull_across_a_null_hop(db, library) -> None:
    Book.objects.create(title="Anonymous work", author=library["anon"])
    titles = Book.objects.filter(author__publisher__country__isnull=True).values_list(
        "title", flat=True
    )
    assert list(titles) == ["Anonymous work"]


def test_exclude_across_a_relation(db, library) -> None:
    not_camus = Book.objects.exclude(author__name="Camus").order_by("title")
    assert list(not_camus.values_list("title", flat=True)) == ["1984", "Animal Farm"]
    # Books whose editor is not Camus, including those with no editor (SQL NULL semantics
    # must not drop them).
    not_edited_by_camus = Book.objects.exclude(editor__name="Camus").order_by("title")
    assert list(not_edited_by_camus.values_list("title", flat=True)) == [
        "Animal Farm",
        "The Plague",
        "The Stranger",
    ]
    # Authors with no 5-star review on any book.
    no_five = Author.objects.exclude(book__reviews__stars=5).order_by("name")
    assert list(no_five.values_list("name", flat=True)) == ["Anon"]


def test_order_by_across_relations(db, library) -> None:
    by_country = Book.objects.order_by("-author__publisher__country__name", "title")
    assert list(by_country.values_list("title", flat=True)) == [
        "1984",
        "Animal Farm",
        "The Plague",
        "The Stranger",
    ]
    by_editor = Book.objects.filter(editor__isnull=False).order_by("editor__name")
    assert list(by_editor.values_list("title", flat=True)) == ["1984", "The Stranger"]


def test_values_across_relations(db, library) -> None:
    rows = list(
        Book.objects.filter(pages__gte=300)
        .order_by("title")
        .values("title", "author__name", "author__publisher__country__code")
    )
    assert rows == [
        {
            "title": "1984",
            "author__name": "Orwell",
            "author__publisher__country__code": "UK",
        },
        {
            "title": "The Plague",
            "author__name": "Camus",
            "author__publisher__country__code": "FR",
        },
    ]
    pairs = Book.objects.order_by("title").values_list("title", "editor__name")
    assert list(pairs) == [
        ("1984", "Camus"),
        ("Animal Farm", None),
        ("The Plague", None),
        ("The Stranger", "Orwell"),
    ]
    assert list(Book.objects.order_by("title").values_list("author", flat=True)) == [
        library["orwell"].pk,
        library["orwell"].pk,
        library["camus"].pk,
        library["camus"].pk,
    ]


def test_values_over_a_reverse_relation(db, library) -> None:
    rows = (
        Author.objects.filter(name="Orwell")
        .order_by("book__title")
        .values_list("book__title", flat=True)
    )
    assert list(rows) == ["1984", "Animal Farm"]


def test_filter_with_f_across_relations(db, library) -> None:
    # Books edited by their own author's publisher colleague: compare across two joins.
    same = Book.objects.filter(author__publisher=dorm.F("editor__publisher"))
    assert same.count() == 0
    self_edit = Book.objects.create(
        title="Memoir", author=library["camus"], editor=library["camus"]
    )
    same = Book.objects.filter(author=dorm.F("editor"))
    assert list(same.values_list("pk", flat=True)) == [self_edit.pk]


def test_unknown_relation_path_raises_field_error(db, library) -> None:
    with pytest.raises(FieldError, match="nope"):
        list(Book.objects.filter(author__nope="x"))
    with pytest.raises(FieldError):
        list(Book.objects.order_by("author__publisher__nope"))


def test_or_across_a_nullable_fk_keeps_rows_without_the_relation(db, library) -> None:
    qs = Book.objects.filter(dorm.Q(editor__name="Camus") | dorm.Q(author__name="Camus"))
    assert sorted(qs.values_list("title", flat=True)) == ["1984", "The Plague", "The Stranger"]
    qs = Book.objects.filter(dorm.Q(editor__isnull=True) | dorm.Q(editor__name="Orwell"))
    assert sorted(qs.values_list("title", flat=True)) == [
        "Animal Farm",
        "The Plague",
        "The Stranger",
    ]


def test_exclude_across_a_null_hop_keeps_rows_with_null(db, library) -> None:
    Book.objects.create(title="Anonymous work", author=library["anon"])
    qs = Book.objects.exclude(author__publisher__name="Penguin")
    assert sorted(qs.values_list("title", flat=True)) == [
        "Anonymous work",
        "The Plague",
        "The Stranger",
    ]
    qs = Book.objects.exclude(editor__publisher__country__code="FR")
    assert sorted(qs.values_list("title", flat=True)) == [
        "Animal Farm",
        "Anonymous work",
        "The Plague",
        "The Stranger",
    ]


def test_filter_by_an_unsaved_or_wrong_instance_raises(db, library) -> None:
    with pytest.raises(ValueError, match="unsaved|saved"):
        list(Book.objects.filter(author=Author(name="ghost")))
    with pytest.raises((ValueError, TypeError), match="Author"):
        list(Book.objects.filter(author=library["gallimard"]))


def test_filter_fk_none_and_exclude_none(db, library) -> None:
    assert sorted(Book.objects.filter(editor=None).values_list("title", flat=True)) == [
        "Animal Farm",
        "The Plague",
    ]
    assert sorted(Book.objects.exclude(editor=None).values_list("title", flat=True)) == [
        "1984",
        "The Stranger",
    ]


def test_prefetch_forward_fk_and_to_field(db, library) -> None:
    with assertNumQueries(2):
        books = list(Book.objects.prefetch_related("author").order_by("title"))
        assert [b.author.name for b in books] == ["Orwell", "Orwell", "Camus", "Camus"]
    with assertNumQueries(2):
        countries = list(Country.objects.prefetch_related("publisher_set").order_by("code"))
        assert [[p.name for p in c.publisher_set.all()] for c in countries] == [
            ["Gallimard"],
            ["Penguin"],
        ]
    with assertNumQueries(2):
        pubs = list(Publisher.objects.prefetch_related("country").order_by("name"))
        assert [p.country.name for p in pubs] == ["France", "United Kingdom"]


def test_select_related_without_arguments_skips_nullable_fks(db, library) -> None:
    with assertNumQueries(1):
        book = Book.objects.select_related().get(title="1984")
        assert book.author.name == "Orwell"
    with assertNumQueries(1):
        assert book.editor.name == "Camus"
