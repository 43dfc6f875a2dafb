"""ManyToManyField (automatic and explicit through tables), m2m_changed, and prefetch_related,
on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm.functions import Upper
from dorm.models.many_to_many import ManyRelatedManager
from dorm.models.related import RelatedManager
from dorm.signals import m2m_changed
from dorm.test import assertNumQueries


class Tag(dorm.Model):
    name = dorm.CharField(max_length=20, unique=True)

    class Meta:
        app_label = "t_m2m"


class Writer(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_m2m"


class Book(dorm.Model):
    title = dorm.CharField(max_length=50)
    writer = dorm.ForeignKey(Writer, on_delete=dorm.CASCADE, related_name="books")
    tags = dorm.ManyToManyField(Tag, related_name="books")

    class Meta:
        app_label = "t_m2m"


class Shelf(dorm.Model):
    """An m2m without related_name: the reverse accessor is ``shelf_set``."""

    label = dorm.CharField(max_length=20)
    books = dorm.ManyToManyField(Book)

    class Meta:
        app_label = "t_m2m"


class Person(dorm.Model):
    name = dorm.CharField(max_length=30)
    following = dorm.ManyToManyField("self", related_name="followers")

    class Meta:
        app_label = "t_m2m"


class Club(dorm.Model):
    name = dorm.CharField(max_length=30)
    # "Membership" is defined below: the through model is a lazy reference too.
    members = dorm.ManyToManyField(Person, through="Membership", related_name="clubs")

    class Meta:
        app_label = "t_m2m"


class Membership(dorm.Model):
    person = dorm.ForeignKey(Person, on_delete=dorm.CASCADE)
    club = dorm.ForeignKey(Club, on_delete=dorm.CASCADE)
    role = dorm.CharField(max_length=20, default="member")

    class Meta:
        app_label = "t_m2m"


class Label(dorm.Model):
    """A UUID key: on SQLite it is read back as text and converted, owner keys too."""

    id = dorm.UUIDField(primary_key=True, default=uuid.uuid4)
    name = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_m2m"


class Parcel(dorm.Model):
    id = dorm.UUIDField(primary_key=True, default=uuid.uuid4)
    code = dorm.CharField(max_length=20)
    labels = dorm.ManyToManyField(Label, related_name="parcels")

    class Meta:
        app_label = "t_m2m"


MODELS = [Tag, Writer, Book, Shelf, Person, Club, Membership, Label, Parcel]
pytestmark = pytest.mark.usefixtures("clean_tables")


def _names(qs: Any, field: str = "name") -> list[str]:
    return sorted(qs.values_list(field, flat=True))


def _through_rows() -> list[tuple[str, str]]:
    through = Book._meta.get_field("tags").through
    rows = through.objects.values_list("book__title", "tag__name")
    return sorted(rows)


@pytest.fixture
def shop(db) -> dict[str, Any]:
    """Two writers, four books, four tags: each book has the tags listed below."""
    ann, bob = Writer.objects.create(name="ann"), Writer.objects.create(name="bob")
    tags = {n: Tag.objects.create(name=n) for n in ("sf", "classic", "short", "unused")}
    layout = {
        "Dune": (ann, ["sf", "classic"]),
        "Hyperion": (ann, ["sf"]),
        "Emma": (bob, ["classic"]),
        "Blank": (bob, []),
    }
    books = {}
    for title, (writer, names) in layout.items():
        book = Book.objects.create(title=title, writer=writer)
        book.tags.add(*(tags[n] for n in names))
        books[title] = book
    return {"ann": ann, "bob": bob, **tags, **books}


@pytest.fixture
def m2m_events() -> Iterator[list[tuple[str, Any, bool, set[Any] | None]]]:
    events: list[tuple[str, Any, bool, set[Any] | None]] = []

    def receiver(signal: Any, sender: Any, **kw: Any) -> None:
        events.append((kw["action"], kw["instance"], kw["reverse"], kw["pk_set"]))

    through = Book._meta.get_field("tags").through
    m2m_changed.connect(receiver, sender=through)
    yield events
    m2m_changed.disconnect(receiver, sender=through)


# -- the automatic through table -------------------------------------------------------------------


def test_automatic_through_model_and_table(db) -> None:
    through = Book._meta.get_field("tags").through
    assert through._meta.auto_created
    assert through._meta.db_table == "t_m2m_book_tags"
    assert {f.name for f in through._meta.concrete_fields} == {"id", "book", "tag"}
    book = Book.objects.create(title="Dune", writer=Writer.objects.create(name="ann"))
    book.tags.add(Tag.objects.create(name="sf"))
    assert through.objects.count() == 1
    assert _through_rows() == [("Dune", "sf")]


def test_add_instances_and_pks_and_ignores_duplicates(db, shop) -> None:
    emma = shop["Emma"]
    emma.tags.add(shop["short"], shop["sf"].pk)
    emma.tags.add(shop["short"], shop["classic"])
    assert _names(emma.tags.all()) == ["classic", "sf", "short"]
    assert _through_rows().count(("Emma", "short")) == 1


def test_add_rejects_wrong_type_and_unsaved_objects(db, shop) -> None:
    dune = shop["Dune"]
    with pytest.raises(TypeError, match="tags takes Tag objects"):
        dune.tags.add(shop["ann"])
    with pytest.raises(ValueError, match="unsaved"):
        dune.tags.add(Tag(name="new"))
    assert _names(dune.tags.all()) == ["classic", "sf"]


def test_manager_of_unsaved_instance_raises(db) -> None:
    with pytest.raises(ValueError, match="must be saved before its many-to-many 'tags'"):
        Book(title="x").tags.all()


def test_remove_with_instances_and_pks(db, shop) -> None:
    dune = shop["Dune"]
    dune.tags.remove(shop["sf"])
    assert _names(dune.tags.all()) == ["classic"]
    dune.tags.remove(shop["classic"].pk, shop["unused"].pk)
    assert dune.tags.count() == 0
    # Removing from one book leaves the other books' links and the tags themselves.
    assert _names(shop["Hyperion"].tags.all()) == ["sf"]
    assert Tag.objects.count() == 4


def test_set_replaces_the_related_set(db, shop) -> None:
    dune = shop["Dune"]
    dune.tags.set([shop["classic"], shop["short"].pk])
    assert _names(dune.tags.all()) == ["classic", "short"]
    dune.tags.set([shop["sf"]], clear=True)
    assert _names(dune.tags.all()) == ["sf"]
    dune.tags.set([])
    assert dune.tags.count() == 0
    assert _through_rows() == [("Emma", "classic"), ("Hyperion", "sf")]


def test_clear_removes_only_this_objects_links(db, shop) -> None:
    shop["Dune"].tags.clear()
    assert shop["Dune"].tags.count() == 0
    assert _through_rows() == [("Emma", "classic"), ("Hyperion", "sf")]


def test_create_makes_the_object_and_the_link(db, shop) -> None:
    tag = shop["Emma"].tags.create(name="romance")
    assert Tag.objects.get(name="romance").pk == tag.pk
    assert _names(shop["Emma"].tags.all()) == ["classic", "romance"]
    book = shop["sf"].books.create(title="Solaris", writer=shop["bob"])
    assert _names(Book.objects.get(pk=book.pk).tags.all()) == ["sf"]


def test_direct_assignment_is_refused(db, shop) -> None:
    with pytest.raises(TypeError, match=r"use tags\.set\(\.\.\.\)"):
        shop["Dune"].tags = [shop["sf"]]
    with pytest.raises(TypeError, match=r"use books\.set\(\.\.\.\)"):
        shop["sf"].books = []


def test_reverse_manager(db, shop) -> None:
    sf = shop["sf"]
    assert _names(sf.books.all(), "title") == ["Dune", "Hyperion"]
    sf.books.add(shop["Emma"])
    sf.books.remove(shop["Dune"].pk)
    assert _names(sf.books.all(), "title") == ["Emma", "Hyperion"]
    assert _names(shop["Emma"].tags.all()) == ["classic", "sf"]
    sf.books.set([shop["Blank"]])
    assert _names(Tag.objects.get(name="sf").books.all(), "title") == ["Blank"]
    sf.books.clear()
    assert Book.objects.filter(tags__name="sf").count() == 0
    assert _names(shop["Dune"].tags.all()) == ["classic"]


def test_default_reverse_accessor_name(db, shop) -> None:
    shelf = Shelf.objects.create(label="top")
    shelf.books.add(shop["Dune"], shop["Emma"])
    assert _names(shop["Dune"].shelf_set.all(), "label") == ["top"]
    assert _names(Book.objects.filter(shelf__label="top"), "title") == ["Dune", "Emma"]
    assert _names(Shelf.objects.filter(books__title="Emma"), "label") == ["top"]


def test_related_manager_filters_and_counts(db, shop) -> None:
    dune = shop["Dune"]
    assert dune.tags.filter(name__startswith="s").get().name == "sf"
    assert dune.tags.exclude(name="sf").get().name == "classic"
    assert shop["classic"].books.filter(writer__name="bob").get().title == "Emma"
    assert shop["unused"].books.exists() is False


def test_deleting_either_side_removes_the_links(db, shop) -> None:
    total, per_model = shop["sf"].delete()
    assert per_model == {"t_m2m.Book_tags": 2, "t_m2m.Tag": 1}
    assert total == 3
    assert _through_rows() == [("Dune", "classic"), ("Emma", "classic")]
    shop["Dune"].delete()
    assert _through_rows() == [("Emma", "classic")]
    assert Tag.objects.count() == 3


def test_cascade_through_fk_removes_m2m_links(db, shop) -> None:
    total, per_model = shop["ann"].delete()
    assert per_model == {"t_m2m.Book_tags": 3, "t_m2m.Book": 2, "t_m2m.Writer": 1}
    assert total == 6
    assert _through_rows() == [("Emma", "classic")]


# -- self-referencing m2m --------------------------------------------------------------------------


def test_self_m2m_is_not_symmetrical_with_related_name(db) -> None:
    ann, bob, cid = (Person.objects.create(name=n) for n in ("ann", "bob", "cid"))
    ann.following.add(bob, cid)
    bob.following.add(cid)
    assert _names(ann.following.all()) == ["bob", "cid"]
    assert _names(cid.followers.all()) == ["ann", "bob"]
    assert ann.followers.count() == 0
    assert _names(Person.objects.filter(followers__name="ann")) == ["bob", "cid"]
    assert _names(Person.objects.filter(following__name="cid")) == ["ann", "bob"]
    through = Person._meta.get_field("following").through
    assert {f.name for f in through._meta.concrete_fields} == {"id", "from_person", "to_person"}


# -- explicit through model ------------------------------------------------------------------------


def test_explicit_through_model(db) -> None:
    assert Club._meta.get_field("members").through is Membership
    ann, bob = Person.objects.create(name="ann"), Person.objects.create(name="bob")
    chess = Club.objects.create(name="chess")
    Membership.objects.create(person=ann, club=chess, role="captain")
    chess.members.add(bob)

    assert _names(chess.members.all()) == ["ann", "bob"]
    assert _names(ann.clubs.all()) == ["chess"]
    assert Membership.objects.get(person=bob).role == "member"
    assert Person.objects.get(membership__role="captain").name == "ann"
    assert _names(Club.objects.filter(members__name="bob")) == ["chess"]
    assert _names(Person.objects.filter(clubs__name="chess")) == ["ann", "bob"]

    chess.members.remove(ann)
    assert list(Membership.objects.values_list("person__name", flat=True)) == ["bob"]
    assert ann.delete()[1] == {"t_m2m.Person": 1}
    bob.delete()
    assert Membership.objects.count() == 0
    assert Club.objects.count() == 1


# -- filtering across m2m --------------------------------------------------------------------------


def test_filter_across_m2m_both_directions(db, shop) -> None:
    assert _names(Book.objects.filter(tags__name="sf"), "title") == ["Dune", "Hyperion"]
    assert _names(Tag.objects.filter(books__title="Dune")) == ["classic", "sf"]
    assert _names(Book.objects.filter(tags=shop["classic"]), "title") == ["Dune", "Emma"]
    assert _names(Book.objects.filter(tags__in=[shop["short"]]), "title") == []
    assert _names(Tag.objects.filter(books__writer__name="bob")) == ["classic"]
    assert _names(Writer.objects.filter(books__tags__name="sf").distinct()) == ["ann"]


def test_filter_across_m2m_duplicates_unless_distinct(db, shop) -> None:
    qs = Book.objects.filter(tags__name__in=["sf", "classic"])
    assert sorted(qs.values_list("title", flat=True)) == ["Dune", "Dune", "Emma", "Hyperion"]
    assert _names(qs.distinct(), "title") == ["Dune", "Emma", "Hyperion"]
    assert qs.distinct().count() == 3


def test_chained_filters_on_m2m_may_match_different_rows(db, shop) -> None:
    both = Book.objects.filter(tags__name="sf").filter(tags__name="classic")
    assert _names(both, "title") == ["Dune"]
    same_row = Book.objects.filter(tags__name="sf", tags__name__startswith="c")
    assert same_row.count() == 0


def test_m2m_isnull(db, shop) -> None:
    assert _names(Book.objects.filter(tags__isnull=True), "title") == ["Blank"]
    assert _names(Tag.objects.filter(books__isnull=True)) == ["short", "unused"]
    assert _names(Book.objects.filter(tags__isnull=False).distinct(), "title") == [
        "Dune",
        "Emma",
        "Hyperion",
    ]


def test_exclude_across_m2m_excludes_objects_with_any_match(db, shop) -> None:
    # Dune has sf and classic: it is excluded though its 'classic' row does not match.
    assert _names(Book.objects.exclude(tags__name="sf"), "title") == ["Blank", "Emma"]
    assert _names(Tag.objects.exclude(books__title="Dune")) == ["short", "unused"]
    assert _names(Book.objects.exclude(tags__name__in=["sf", "classic"]), "title") == ["Blank"]
    assert _names(Book.objects.exclude(tags__isnull=True), "title") == [
        "Dune",
        "Emma",
        "Hyperion",
    ]
    assert _names(Writer.objects.exclude(books__tags__name="sf")) == ["bob"]


def test_exclude_across_m2m_with_q_and_negated_q(db, shop) -> None:
    qs = Book.objects.filter(~dorm.Q(tags__name="classic"))
    assert _names(qs, "title") == ["Blank", "Hyperion"]
    qs = Book.objects.exclude(dorm.Q(tags__name="sf") | dorm.Q(writer__name="bob"))
    assert _names(qs, "title") == []
    qs = Book.objects.exclude(tags__name="sf").exclude(tags__name="classic")
    assert _names(qs, "title") == ["Blank"]


def test_exclude_m2m_combined_with_a_plain_condition(db, shop) -> None:
    qs = Book.objects.exclude(tags__name="sf", writer__name="ann")
    assert _names(qs, "title") == ["Blank", "Emma"]
    qs = Book.objects.exclude(tags__name="classic", writer__name="bob")
    assert _names(qs, "title") == ["Blank", "Dune", "Hyperion"]
    qs = Book.objects.filter(writer__name="ann").exclude(tags__name="classic")
    assert _names(qs, "title") == ["Hyperion"]


def test_filter_m2m_none_and_values_of_pks(db, shop) -> None:
    assert _names(Book.objects.filter(tags=None), "title") == ["Blank"]
    pks = Book.objects.filter(title="Dune").values_list("tags", flat=True)
    assert sorted(pks) == sorted([shop["sf"].pk, shop["classic"].pk])


def test_order_by_and_values_across_m2m(db, shop) -> None:
    rows = (
        Book.objects.filter(writer__name="ann")
        .order_by("title", "tags__name")
        .values_list("title", "tags__name")
    )
    assert list(rows) == [("Dune", "classic"), ("Dune", "sf"), ("Hyperion", "sf")]
    rows = Tag.objects.filter(name="classic").order_by("books__title").values("books__title")
    assert list(rows) == [{"books__title": "Dune"}, {"books__title": "Emma"}]


def test_annotate_count_over_m2m(db, shop) -> None:
    counts = dict(Tag.objects.annotate(n=dorm.Count("books")).values_list("name", "n"))
    assert counts == {"sf": 2, "classic": 2, "short": 0, "unused": 0}


# -- m2m_changed -----------------------------------------------------------------------------------


def test_m2m_changed_on_add_reports_only_new_pks(db, shop, m2m_events) -> None:
    emma = shop["Emma"]
    emma.tags.add(shop["classic"], shop["sf"], shop["short"].pk)
    sf, short = shop["sf"].pk, shop["short"].pk
    assert m2m_events == [
        ("pre_add", emma, False, {sf, short}),
        ("post_add", emma, False, {sf, short}),
    ]


def test_m2m_changed_sender_and_model(db, shop) -> None:
    seen: list[dict[str, Any]] = []

    def receiver(signal: Any, sender: Any, **kw: Any) -> None:
        seen.append({"sender": sender, "signal": signal, **kw})

    m2m_changed.connect(receiver)
    try:
        shop["Blank"].tags.add(shop["unused"])
    finally:
        m2m_changed.disconnect(receiver)
    assert [s["action"] for s in seen] == ["pre_add", "post_add"]
    assert seen[0]["sender"] is Book._meta.get_field("tags").through
    assert seen[0]["signal"] is m2m_changed
    assert seen[0]["model"] is Tag
    assert seen[0]["using"] == "default"


def test_m2m_changed_on_remove_and_clear(db, shop, m2m_events) -> None:
    dune = shop["Dune"]
    dune.tags.remove(shop["sf"].pk)
    dune.tags.clear()
    assert m2m_events == [
        ("pre_remove", dune, False, {shop["sf"].pk}),
        ("post_remove", dune, False, {shop["sf"].pk}),
        ("pre_clear", dune, False, None),
        ("post_clear", dune, False, None),
    ]


def test_m2m_changed_on_set(db, shop, m2m_events) -> None:
    dune = shop["Dune"]
    dune.tags.set([shop["classic"], shop["short"]])
    assert m2m_events == [
        ("pre_remove", dune, False, {shop["sf"].pk}),
        ("post_remove", dune, False, {shop["sf"].pk}),
        ("pre_add", dune, False, {shop["short"].pk}),
        ("post_add", dune, False, {shop["short"].pk}),
    ]


def test_m2m_changed_from_the_reverse_side(db, shop, m2m_events) -> None:
    sf = shop["sf"]
    sf.books.add(shop["Emma"], shop["Blank"])
    assert m2m_events == [
        ("pre_add", sf, True, {shop["Emma"].pk, shop["Blank"].pk}),
        ("post_add", sf, True, {shop["Emma"].pk, shop["Blank"].pk}),
    ]
    assert _names(shop["Blank"].tags.all()) == ["sf"]


def test_m2m_changed_receiver_error_rolls_back_the_add(db, shop) -> None:
    def receiver(signal: Any, sender: Any, **kw: Any) -> None:
        if kw["action"] == "post_add":
            raise RuntimeError("veto")

    through = Book._meta.get_field("tags").through
    m2m_changed.connect(receiver, sender=through)
    try:
        with pytest.raises(RuntimeError, match="veto"):
            shop["Blank"].tags.add(shop["sf"])
    finally:
        m2m_changed.disconnect(receiver, sender=through)
    assert shop["Blank"].tags.count() == 0


# -- prefetch_related ------------------------------------------------------------------------------


def test_prefetch_reverse_fk(db, shop) -> None:
    with assertNumQueries(2):
        writers = list(Writer.objects.order_by("name").prefetch_related("books"))
        assert [sorted(b.title for b in w.books.all()) for w in writers] == [
            ["Dune", "Hyperion"],
            ["Blank", "Emma"],
        ]
        assert [w.books.count() for w in writers] == [2, 2]
    with assertNumQueries(0):
        assert writers[0].books.all()[0].writer is writers[0]


def test_prefetch_m2m_forward_and_reverse(db, shop) -> None:
    with assertNumQueries(2):
        books = list(Book.objects.order_by("title").prefetch_related("tags"))
        assert {b.title: sorted(t.name for t in b.tags.all()) for b in books} == {
            "Blank": [],
            "Dune": ["classic", "sf"],
            "Emma": ["classic"],
            "Hyperion": ["sf"],
        }
    with assertNumQueries(2):
        tags = list(Tag.objects.order_by("name").prefetch_related("books"))
        assert {t.name: sorted(b.title for b in t.books.all()) for t in tags} == {
            "classic": ["Dune", "Emma"],
            "sf": ["Dune", "Hyperion"],
            "short": [],
            "unused": [],
        }


def test_prefetch_nested(db, shop) -> None:
    with assertNumQueries(3):
        writers = list(Writer.objects.order_by("name").prefetch_related("books__tags"))
        result = {
            w.name: {b.title: sorted(t.name for t in b.tags.all()) for b in w.books.all()}
            for w in writers
        }
    assert result == {
        "ann": {"Dune": ["classic", "sf"], "Hyperion": ["sf"]},
        "bob": {"Emma": ["classic"], "Blank": []},
    }


def test_prefetch_nested_through_forward_fk(db, shop) -> None:
    with assertNumQueries(3):
        tags = list(Tag.objects.filter(name="sf").prefetch_related("books__writer"))
        assert sorted((b.title, b.writer.name) for b in tags[0].books.all()) == [
            ("Dune", "ann"),
            ("Hyperion", "ann"),
        ]


def test_prefetch_repeated_lookup_is_not_refetched(db, shop) -> None:
    with assertNumQueries(3):
        writers = list(
            Writer.objects.order_by("name").prefetch_related("books__tags", "books", "books")
        )
    with assertNumQueries(0):
        dune = next(b for b in writers[0].books.all() if b.title == "Dune")
        assert sorted(t.name for t in dune.tags.all()) == ["classic", "sf"]
    with assertNumQueries(2):
        (book,) = Book.objects.filter(title="Dune").prefetch_related("tags", "tags")
        assert sorted(t.name for t in book.tags.all()) == ["classic", "sf"]


def test_prefetch_with_a_custom_queryset(db, shop) -> None:
    qs = Tag.objects.filter(name__startswith="s").order_by("name")
    with assertNumQueries(2):
        books = list(Book.objects.order_by("title").prefetch_related(dorm.Prefetch("tags", qs)))
        assert {b.title: [t.name for t in b.tags.all()] for b in books} == {
            "Blank": [],
            "Dune": ["sf"],
            "Emma": [],
            "Hyperion": ["sf"],
        }


def test_prefetch_to_attr(db, shop) -> None:
    ordered = Book.objects.order_by("-title")
    with assertNumQueries(2):
        writers = list(
            Writer.objects.order_by("name").prefetch_related(
                dorm.Prefetch("books", queryset=ordered, to_attr="latest_books")
            )
        )
        assert [[b.title for b in w.latest_books] for w in writers] == [
            ["Hyperion", "Dune"],
            ["Emma", "Blank"],
        ]
    assert isinstance(writers[0].latest_books, list)
    # The to_attr list does not replace the manager.
    with assertNumQueries(1):
        assert writers[0].books.count() == 2


def test_prefetch_to_attr_then_nested_lookup(db, shop) -> None:
    with assertNumQueries(3):
        writers = list(
            Writer.objects.filter(name="ann").prefetch_related(
                dorm.Prefetch("books", to_attr="all_books"), "all_books__tags"
            )
        )
        assert sorted(
            (b.title, sorted(t.name for t in b.tags.all())) for b in writers[0].all_books
        ) == [("Dune", ["classic", "sf"]), ("Hyperion", ["sf"])]


def test_prefetch_combined_with_select_related(db, shop) -> None:
    with assertNumQueries(2):
        books = list(
            Book.objects.select_related("writer").prefetch_related("tags").order_by("title")
        )
        assert [(b.title, b.writer.name, len(b.tags.all())) for b in books] == [
            ("Blank", "bob", 0),
            ("Dune", "ann", 2),
            ("Emma", "bob", 1),
            ("Hyperion", "ann", 1),
        ]


def test_prefetch_cache_is_dropped_after_a_change(db, shop) -> None:
    book = Book.objects.prefetch_related("tags").get(title="Emma")
    with assertNumQueries(0):
        assert [t.name for t in book.tags.all()] == ["classic"]
    book.tags.add(shop["sf"])
    assert _names(book.tags.all()) == ["classic", "sf"]


def test_filter_on_a_prefetched_manager_queries_the_database(db, shop) -> None:
    (book,) = Book.objects.filter(title="Dune").prefetch_related("tags")
    with assertNumQueries(1):
        assert [t.name for t in book.tags.filter(name="sf")] == ["sf"]
    (writer,) = Writer.objects.filter(name="ann").prefetch_related("books")
    with assertNumQueries(1):
        assert [b.title for b in writer.books.filter(title="Dune")] == ["Dune"]


def test_reverse_fk_changes_drop_the_prefetch_cache(db, shop) -> None:
    (writer,) = Writer.objects.filter(name="ann").prefetch_related("books")
    writer.books.create(title="Ilium")
    assert sorted(b.title for b in writer.books.all()) == ["Dune", "Hyperion", "Ilium"]
    (writer,) = Writer.objects.filter(name="ann").prefetch_related("books")
    writer.books.add(shop["Emma"])
    assert sorted(b.title for b in writer.books.all()) == ["Dune", "Emma", "Hyperion", "Ilium"]
    (shelf,) = Writer.objects.filter(name="bob").prefetch_related("books")
    shelf.books.get_or_create(title="Persuasion")
    assert sorted(b.title for b in shelf.books.all()) == ["Blank", "Persuasion"]


def test_prefetch_nested_with_a_queryset_on_the_last_level(db, shop) -> None:
    only_sf = Tag.objects.filter(name="sf")
    with assertNumQueries(3):
        writers = list(
            Writer.objects.order_by("name").prefetch_related(
                dorm.Prefetch("books__tags", queryset=only_sf, to_attr="sf_tags")
            )
        )
        result = {b.title: [t.name for t in b.sf_tags] for w in writers for b in w.books.all()}
    assert result == {"Dune": ["sf"], "Hyperion": ["sf"], "Emma": [], "Blank": []}


def test_prefetch_explicit_through_and_self_m2m(db) -> None:
    ann, bob = Person.objects.create(name="ann"), Person.objects.create(name="bob")
    ann.following.add(bob)
    chess = Club.objects.create(name="chess")
    chess.members.add(ann, bob)
    with assertNumQueries(2):
        (club,) = Club.objects.prefetch_related("members")
        assert sorted(p.name for p in club.members.all()) == ["ann", "bob"]
    with assertNumQueries(3):
        people = list(Person.objects.order_by("name").prefetch_related("following", "followers"))
        assert [[p.name for p in x.following.all()] for x in people] == [["bob"], []]
        assert [[p.name for p in x.followers.all()] for x in people] == [[], ["ann"]]


def test_prefetch_unknown_lookup_raises(db, shop) -> None:
    with pytest.raises(AttributeError, match="'nope' is not a relation"):
        list(Book.objects.prefetch_related("nope"))


def test_prefetch_on_an_empty_queryset_runs_one_query(db) -> None:
    with assertNumQueries(1):
        assert list(Book.objects.prefetch_related("tags", "writer")) == []


def test_queryset_delete_filtered_across_m2m(db, shop) -> None:
    total, per_model = Tag.objects.filter(books__title__in=["Dune", "Emma"]).delete()
    assert per_model == {"t_m2m.Book_tags": 4, "t_m2m.Tag": 2}
    assert total == 6
    assert _names(Tag.objects.all()) == ["short", "unused"]
    assert _through_rows() == []
    assert Book.objects.count() == 4


def test_m2m_get_or_create_finds_among_the_related_or_creates_and_links(db, shop) -> None:
    hyperion = shop["Hyperion"]
    found, created = hyperion.tags.get_or_create(name="sf")
    assert (found.pk, created) == (shop["sf"].pk, False)
    new, created = hyperion.tags.get_or_create(name="space opera")
    assert created is True
    assert sorted(t.name for t in Book.objects.get(pk=hyperion.pk).tags.all()) == [
        "sf",
        "space opera",
    ]
    again, created = hyperion.tags.get_or_create(name="space opera")
    assert (again.pk, created) == (new.pk, False)
    assert Tag.objects.filter(name="space opera").count() == 1


def test_a_prefetched_reverse_manager_stays_scoped_when_refined(db, shop) -> None:
    ann, bob = (
        Writer.objects.filter(name__in=["ann", "bob"]).order_by("name").prefetch_related("books")
    )
    with assertNumQueries(0):
        assert sorted(b.title for b in ann.books.all()) == ["Dune", "Hyperion"]
    # Refining the prefetched queryset queries again, still within ann's books only.
    assert [b.title for b in ann.books.filter(title__startswith="D")] == ["Dune"]
    assert ann.books.get(title="Hyperion").writer_id == ann.pk
    with pytest.raises(Book.DoesNotExist):
        ann.books.get(title="Emma")  # bob's book
    assert ann.books.count() == 2 and bob.books.exclude(title="Emma").count() == 1


def test_prefetched_rows_point_back_to_their_owner_until_the_key_changes(db, shop) -> None:
    ann, bob = Writer.objects.order_by("name").prefetch_related("books")
    dune = next(b for b in ann.books.all() if b.title == "Dune")
    with assertNumQueries(0):
        assert dune.writer is ann  # the prefetch set the back-reference
    hyperion = next(b for b in ann.books.all() if b.title == "Hyperion")
    hyperion.writer_id = bob.pk  # before anything read its state
    with assertNumQueries(1):
        assert hyperion.writer.name == "bob"  # the stale back-reference was dropped


def test_rows_of_one_owner_do_not_share_their_relation_cache(db, shop) -> None:
    ann, bob = Writer.objects.order_by("name").prefetch_related("books")
    dune, hyperion = sorted(ann.books.all(), key=lambda b: b.title)
    dune.writer = bob  # changes dune's cache only
    dune._state.fields_cache["extra"] = "x"
    with assertNumQueries(0):
        assert dune.writer is bob
        assert hyperion.writer is ann
    assert "extra" not in hyperion._state.fields_cache
    hyperion.save()
    assert Book.objects.get(pk=hyperion.pk).writer_id == ann.pk


# -- related managers: a class per relation, the prefetched list served as it is ------------------


def test_prefetched_querysets_serve_the_list_without_queries(db, shop) -> None:
    (dune,) = Book.objects.filter(title="Dune").prefetch_related("tags")
    (ann,) = Writer.objects.filter(name="ann").prefetch_related("books")
    for manager, lookup in ((dune.tags, "name"), (ann.books, "title")):
        with assertNumQueries(0):
            first, second = manager.all(), manager.get_queryset()
            assert first is not second
            assert list(first) == list(second) and len(first) == 2
            assert first.count() == 2 and first.exists() and bool(second)
            assert first[0] == list(first)[0]
            taken = list(first)
            taken.clear()  # a list of the caller's own
            assert len(manager.all()) == 2
        with assertNumQueries(1):
            assert len(manager.all().filter(**{f"{lookup}__in": ["sf", "Dune"]})) == 1


def test_related_manager_classes_are_made_once_per_relation(db, shop) -> None:
    dune, emma, sf = shop["Dune"], shop["Emma"], shop["sf"]
    assert type(dune.tags) is type(emma.tags)
    assert type(dune.tags) is not type(sf.books)
    assert isinstance(dune.tags, ManyRelatedManager) and isinstance(sf.books, ManyRelatedManager)
    assert type(shop["ann"].books) is type(shop["bob"].books)
    assert isinstance(shop["ann"].books, RelatedManager)
    assert (dune.tags.instance, dune.tags.name, dune.tags.model) == (dune, "tags", Tag)
    assert (sf.books.name, sf.books.query_name, sf.books.model) == ("books", "tags", Book)
    assert repr(dune.tags) == "<ManyRelatedManager t_m2m.Tag.tags>"
    with pytest.raises(ValueError, match="Book must be saved before its many-to-many 'tags'"):
        _ = Book(title="new", writer=shop["ann"]).tags


def test_related_managers_made_by_hand_behave_as_the_attribute_ones(db, shop) -> None:
    dune, ann = shop["Dune"], shop["ann"]
    tags = ManyRelatedManager(dune, Book._meta.get_field("tags"), False)
    books = ManyRelatedManager(shop["sf"], Book._meta.get_field("tags"), True)
    written = RelatedManager(ann, Book._meta.get_field("writer").remote_field)
    assert _names(tags.all()) == ["classic", "sf"]
    assert _names(books.all(), "title") == ["Dune", "Hyperion"]
    assert _names(written.all(), "title") == ["Dune", "Hyperion"]
    tags.add(shop["short"])
    assert _names(dune.tags.all()) == ["classic", "sf", "short"]
    with pytest.raises(ValueError, match="must be saved"):
        ManyRelatedManager(Book(title="new"), Book._meta.get_field("tags"), False)


# -- how prefetched rows reach their owners --------------------------------------------------------


class CountingQuerySet(dorm.QuerySet):
    """A queryset class that overrides iteration: a prefetch must iterate it as such."""

    iterations = 0

    def __iter__(self) -> Any:
        CountingQuerySet.iterations += 1
        return super().__iter__()


def _tag_names(books: list[Any]) -> dict[str, list[str]]:
    return {b.title: sorted(t.name for t in b.tags.all()) for b in books}


SHOP_TAGS = {"Blank": [], "Dune": ["classic", "sf"], "Emma": ["classic"], "Hyperion": ["sf"]}


def test_prefetched_m2m_rows_do_not_keep_the_owner_key(db, shop) -> None:
    books = list(Book.objects.order_by("title").prefetch_related("tags"))
    tags = list(Tag.objects.order_by("name").prefetch_related("books"))
    for row in [t for b in books for t in b.tags.all()] + [b for t in tags for b in t.books.all()]:
        assert not any(key.startswith("_dorm_prefetch") for key in vars(row)), vars(row)
    assert _tag_names(books) == SHOP_TAGS
    # The rows are whole objects of their own: saving one writes its own row.
    dune = next(b for b in books if b.title == "Dune")
    sf = next(t for t in dune.tags.all() if t.name == "sf")
    sf.name = "science fiction"
    sf.save()
    assert _names(Tag.objects.all()) == ["classic", "science fiction", "short", "unused"]


def test_prefetch_with_annotations_and_select_related_on_its_queryset(db, shop) -> None:
    books = Book.objects.select_related("writer").annotate(shout=Upper("title"))
    with assertNumQueries(2):
        tags = list(
            Tag.objects.order_by("name").prefetch_related(dorm.Prefetch("books", queryset=books))
        )
    with assertNumQueries(0):
        got = {t.name: sorted((b.shout, b.writer.name) for b in t.books.all()) for t in tags}
    assert got == {
        "classic": [("DUNE", "ann"), ("EMMA", "bob")],
        "sf": [("DUNE", "ann"), ("HYPERION", "ann")],
        "short": [],
        "unused": [],
    }
    assert all("_dorm_prefetch_owner" not in vars(b) for t in tags for b in t.books.all())


def test_prefetch_iterates_a_queryset_class_that_overrides_iteration(db, shop) -> None:
    CountingQuerySet.iterations = 0
    custom = CountingQuerySet(Tag).filter(name__in=["sf", "classic"])
    with assertNumQueries(2):
        books = list(Book.objects.order_by("title").prefetch_related(dorm.Prefetch("tags", custom)))
    assert CountingQuerySet.iterations == 1
    assert _tag_names(books) == SHOP_TAGS
    assert all("_dorm_prefetch_owner" not in vars(t) for b in books for t in b.tags.all())


def test_prefetch_with_a_nested_lookup_on_its_queryset(db, shop) -> None:
    nested = Book.objects.prefetch_related("tags")
    with assertNumQueries(3):
        (ann,) = Writer.objects.filter(name="ann").prefetch_related(
            dorm.Prefetch("books", queryset=nested)
        )
    with assertNumQueries(0):
        assert _tag_names(list(ann.books.all())) == {"Dune": ["classic", "sf"], "Hyperion": ["sf"]}


def test_objects_with_the_same_key_get_lists_of_their_own(db, shop) -> None:
    twins = [Book.objects.get(title="Dune"), Book.objects.get(title="Dune")]
    writers = [Writer.objects.get(name="ann"), Writer.objects.get(name="ann")]
    with assertNumQueries(2):
        dorm.prefetch_related_objects(twins, "tags")
        dorm.prefetch_related_objects(writers, "books")
    for first, second, name in ((*twins, "tags"), (*writers, "books")):
        mine = first._prefetched_objects_cache[name]
        theirs = second._prefetched_objects_cache[name]
        assert mine is not theirs and [o.pk for o in mine] == [o.pk for o in theirs]
    with assertNumQueries(0):
        assert _tag_names(twins) == {"Dune": ["classic", "sf"]}
        assert sorted(b.title for b in writers[1].books.all()) == ["Dune", "Hyperion"]


def test_prefetch_m2m_with_uuid_keys_on_both_sides(db) -> None:
    red, blue, grey = (Label.objects.create(name=n) for n in ("red", "blue", "grey"))
    p1, p2, p3 = (Parcel.objects.create(code=c) for c in ("p1", "p2", "p3"))
    p1.labels.add(red, blue)
    p2.labels.add(blue)
    with assertNumQueries(2):
        parcels = list(Parcel.objects.order_by("code").prefetch_related("labels"))
        assert {p.code: sorted(x.name for x in p.labels.all()) for p in parcels} == {
            "p1": ["blue", "red"],
            "p2": ["blue"],
            "p3": [],
        }
    with assertNumQueries(2):
        labels = list(Label.objects.order_by("name").prefetch_related("parcels"))
        assert {x.name: sorted(p.code for p in x.parcels.all()) for x in labels} == {
            "blue": ["p1", "p2"],
            "grey": [],
            "red": ["p1"],
        }
    assert all(isinstance(x.pk, uuid.UUID) for p in parcels for x in p.labels.all())
    assert {p3.pk, grey.pk} <= {*(p.pk for p in parcels), *(x.pk for x in labels)}


def test_async_prefetch_with_an_annotated_queryset(db, shop) -> None:
    shouted = Tag.objects.annotate(shout=Upper("name"))

    async def main() -> dict[str, list[str]]:
        books = [b async for b in Book.objects.order_by("title")]
        await dorm.aprefetch_related_objects(books, dorm.Prefetch("tags", queryset=shouted))
        return {b.title: sorted(t.shout for t in b.tags.all()) for b in books}

    assert asyncio.run(main()) == {
        "Blank": [],
        "Dune": ["CLASSIC", "SF"],
        "Emma": ["CLASSIC"],
        "Hyperion": ["SF"],
    }
