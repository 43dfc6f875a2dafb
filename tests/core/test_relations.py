"""ForeignKey and OneToOneField: descriptors, reverse accessors and managers, one-to-one both
ways, lazy and self references, to_field, on both backends."""

from __future__ import annotations

import re

import pytest

import dorm
from dorm.apps import apps
from dorm.exceptions import FieldError, IntegrityError
from dorm.test import assertNumQueries


class Country(dorm.Model):
    code = dorm.CharField(max_length=2, unique=True)
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_rel"


class Publisher(dorm.Model):
    name = dorm.CharField(max_length=50)
    # A lazy "app.Model" reference whose foreign key targets a non-pk unique column.
    country = dorm.ForeignKey("t_rel.Country", on_delete=dorm.SET_NULL, null=True, to_field="code")

    class Meta:
        app_label = "t_rel"


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)
    # A lazy bare "Model" reference, resolved within the same app label.
    publisher = dorm.ForeignKey("Publisher", on_delete=dorm.SET_NULL, null=True)

    class Meta:
        app_label = "t_rel"


class Book(dorm.Model):
    title = dorm.CharField(max_length=100)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE)
    editor = dorm.ForeignKey(
        Author, on_delete=dorm.SET_NULL, null=True, related_name="edited_books"
    )
    pages = dorm.IntegerField(default=100)

    class Meta:
        app_label = "t_rel"


class Review(dorm.Model):
    book = dorm.ForeignKey(Book, on_delete=dorm.CASCADE, related_name="reviews")
    stars = dorm.IntegerField()

    class Meta:
        app_label = "t_rel"


class Note(dorm.Model):
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="+")
    text = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_rel"


class User(dorm.Model):
    username = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_rel"


class Profile(dorm.Model):
    user = dorm.OneToOneField(User, on_delete=dorm.CASCADE)
    bio = dorm.CharField(max_length=100, default="")

    class Meta:
        app_label = "t_rel"


class Passport(dorm.Model):
    """A reverse one-to-one whose query name ("pp") differs from its accessor ("passport")."""

    user = dorm.OneToOneField(User, on_delete=dorm.CASCADE, related_query_name="pp")
    number = dorm.CharField(max_length=10)

    class Meta:
        app_label = "t_rel"


class Category(dorm.Model):
    name = dorm.CharField(max_length=50)
    parent = dorm.ForeignKey("self", on_delete=dorm.CASCADE, null=True, related_name="children")

    class Meta:
        app_label = "t_rel"


MODELS = [Country, Publisher, Author, Book, Review, Note, User, Profile, Passport, Category]
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


# -- forward descriptor ----------------------------------------------------------------------------


def test_forward_access_is_cached_after_the_first_query(db, library) -> None:
    book = Book.objects.get(pk=library["stranger"].pk)
    with assertNumQueries(1):
        assert book.author.name == "Camus"
    with assertNumQueries(0):
        assert book.author.name == "Camus"
        assert book.author is book.author


def test_forward_id_attribute_holds_the_target_pk(db, library) -> None:
    book = Book.objects.get(pk=library["stranger"].pk)
    with assertNumQueries(0):
        assert book.author_id == library["camus"].pk
        assert book.editor_id == library["orwell"].pk
    assert Book.objects.get(pk=library["plague"].pk).editor_id is None


def test_null_forward_relation_is_none_without_a_query(db, library) -> None:
    plague = Book.objects.get(pk=library["plague"].pk)
    with assertNumQueries(0):
        assert plague.editor is None


def test_assigning_the_id_drops_a_stale_cached_object(db, library) -> None:
    book = Book.objects.get(pk=library["stranger"].pk)
    assert book.author.name == "Camus"
    book.author_id = library["orwell"].pk
    with assertNumQueries(1):
        assert book.author.name == "Orwell"
    book.save()
    assert Book.objects.get(pk=book.pk).author_id == library["orwell"].pk


def test_assigning_the_same_id_keeps_the_cached_object(db, library) -> None:
    book = Book.objects.get(pk=library["stranger"].pk)
    author = book.author
    book.author_id = library["camus"].pk
    with assertNumQueries(0):
        assert book.author is author


def test_assigning_an_object_sets_the_id_and_is_saved(db, library) -> None:
    book = Book.objects.get(pk=library["plague"].pk)
    book.editor = library["anon"]
    assert book.editor_id == library["anon"].pk
    book.save()
    assert Book.objects.get(pk=book.pk).editor.name == "Anon"
    book.editor = None
    assert book.editor_id is None
    book.save()
    assert Book.objects.get(pk=book.pk).editor_id is None


def test_assigning_a_wrong_model_type_raises_value_error(db, library) -> None:
    book = Book.objects.get(pk=library["plague"].pk)
    with pytest.raises(ValueError, match=r"Book\.author must be a Author instance"):
        book.author = library["gallimard"]
    assert book.author_id == library["camus"].pk
    with pytest.raises(ValueError, match="Author"):
        Book(title="x", author=library["uk"])


def test_assigning_none_to_a_non_null_fk_is_refused_on_save(db, library) -> None:
    book = Book.objects.get(pk=library["plague"].pk)
    book.author = None  # accepted, as in Django: the NOT NULL column refuses it on save
    assert book.author_id is None
    with pytest.raises(IntegrityError):
        book.save()
    assert Book.objects.get(pk=library["plague"].pk).author_id == library["camus"].pk


def test_saving_with_an_unsaved_related_object_raises(db) -> None:
    ghost = Author(name="Ghost")
    book = Book(title="Unwritten", author=ghost)
    with pytest.raises(ValueError, match=r"related object 'author'.*is unsaved"):
        book.save()
    assert Book.objects.count() == 0
    with pytest.raises(ValueError, match="unsaved"):
        Book.objects.create(title="Also unwritten", author=Author(name="Nobody"))
    assert Book.objects.count() == 0 and Author.objects.count() == 0


def test_related_object_saved_after_assignment_gives_its_pk(db) -> None:
    ghost = Author(name="Ghost")
    book = Book(title="Late", author=ghost)
    ghost.save()
    book.save()
    assert Book.objects.get(pk=book.pk).author.name == "Ghost"


def test_missing_target_row_raises_does_not_exist(db, library) -> None:
    book = Book(title="Orphan", author_id=999_999)
    with pytest.raises(Author.DoesNotExist, match="999999"):
        _ = book.author


def test_filter_by_instance_and_by_id(db, library) -> None:
    camus = library["camus"]
    expected = ["The Plague", "The Stranger"]
    by_obj = Book.objects.filter(author=camus).order_by("title")
    assert list(by_obj.values_list("title", flat=True)) == expected
    by_id = Book.objects.filter(author_id=camus.pk).order_by("title")
    assert list(by_id.values_list("title", flat=True)) == expected
    by_pk = Book.objects.filter(author__pk=camus.pk).order_by("title")
    assert list(by_pk.values_list("title", flat=True)) == expected
    by_in = Book.objects.filter(author__in=[camus]).order_by("title")
    assert list(by_in.values_list("title", flat=True)) == expected


# -- reverse foreign key ---------------------------------------------------------------------------


def test_reverse_accessor_default_name(db, library) -> None:
    camus = Author.objects.get(name="Camus")
    titles = sorted(b.title for b in camus.book_set.all())
    assert titles == ["The Plague", "The Stranger"]
    assert camus.book_set.count() == 2
    assert camus.book_set.filter(pages__gt=200).get().title == "The Plague"


def test_reverse_accessor_with_related_name(db, library) -> None:
    orwell = Author.objects.get(name="Orwell")
    assert [b.title for b in orwell.edited_books.all()] == ["The Stranger"]
    assert not hasattr(orwell, "editor_set")
    stranger = Book.objects.get(title="The Stranger")
    assert sorted(r.stars for r in stranger.reviews.all()) == [4, 5]


def test_reverse_manager_create_add_remove_clear(db, library) -> None:
    anon = Author.objects.get(name="Anon")
    created = anon.book_set.create(title="Untitled")
    assert Book.objects.get(pk=created.pk).author_id == anon.pk

    plague = Book.objects.get(title="The Plague")
    anon.edited_books.add(plague)
    assert Book.objects.get(pk=plague.pk).editor_id == anon.pk
    anon.edited_books.remove(plague)
    assert Book.objects.get(pk=plague.pk).editor_id is None

    anon.edited_books.add(plague, Book.objects.get(title="1984"))
    assert anon.edited_books.count() == 2
    anon.edited_books.clear()
    assert Book.objects.filter(editor=anon).count() == 0
    assert Book.objects.filter(title="1984").get().editor_id is None


def test_reverse_remove_and_clear_drop_the_prefetch_cache(db, library) -> None:
    (orwell,) = Author.objects.filter(name="Orwell").prefetch_related("edited_books")
    orwell.edited_books.remove(library["stranger"])
    assert list(orwell.edited_books.all()) == []
    (camus,) = Author.objects.filter(name="Camus").prefetch_related("edited_books")
    camus.edited_books.clear()
    assert list(camus.edited_books.all()) == []
    assert Book.objects.filter(editor__isnull=False).count() == 0


def test_reverse_manager_set_replaces_the_members(db, library) -> None:
    anon = library["anon"]
    farm, plague = Book.objects.get(title="Animal Farm"), Book.objects.get(title="The Plague")
    anon.edited_books.set([farm])
    anon.edited_books.set([plague])
    assert list(Book.objects.filter(editor=anon).values_list("title", flat=True)) == ["The Plague"]
    assert Book.objects.get(pk=farm.pk).editor_id is None


def test_reverse_remove_on_non_null_fk_is_refused(db, library) -> None:
    camus = library["camus"]
    with pytest.raises(AttributeError, match=r"Book\.author to allow null"):
        camus.book_set.remove(library["plague"])
    assert Book.objects.filter(author=camus).count() == 2


def test_reverse_manager_of_unsaved_instance_raises(db) -> None:
    with pytest.raises(ValueError, match="must be saved"):
        Author(name="new").book_set.all()


def test_direct_assignment_to_reverse_set_is_refused(db, library) -> None:
    with pytest.raises(TypeError, match=r"book_set\.set\(\.\.\.\)"):
        library["camus"].book_set = []


def test_related_name_plus_hides_the_reverse_accessor(db, library) -> None:
    camus = library["camus"]
    Note.objects.create(author=camus, text="hello")
    assert not hasattr(camus, "note_set")
    assert not hasattr(Author, "+")
    assert Note.objects.get().author.name == "Camus"
    # The hidden relation still cascades.
    camus.delete()
    assert Note.objects.count() == 0


# -- one-to-one ------------------------------------------------------------------------------------


def test_one_to_one_forward_and_reverse(db) -> None:
    ada = User.objects.create(username="ada")
    Profile.objects.create(user=ada, bio="math")
    user = User.objects.get(username="ada")
    with assertNumQueries(1):
        assert user.profile.bio == "math"
    with assertNumQueries(0):
        assert user.profile.user is user
    profile = Profile.objects.get()
    with assertNumQueries(1):
        assert profile.user.username == "ada"
    with assertNumQueries(0):
        assert profile.user.profile is profile


def test_reverse_one_to_one_missing_raises_does_not_exist(db) -> None:
    bob = User.objects.create(username="bob")
    with pytest.raises(Profile.DoesNotExist, match="User has no profile"):
        _ = bob.profile
    with pytest.raises(dorm.exceptions.ObjectDoesNotExist):
        _ = User.objects.get(pk=bob.pk).profile
    # Also an AttributeError, as in Django: hasattr() answers instead of raising.
    assert hasattr(User.objects.get(pk=bob.pk), "profile") is False
    Profile.objects.create(user=bob, bio="hi")
    assert hasattr(User.objects.get(pk=bob.pk), "profile") is True


def test_one_to_one_is_unique(db) -> None:
    ada = User.objects.create(username="ada")
    Profile.objects.create(user=ada)
    with pytest.raises(dorm.exceptions.IntegrityError):
        Profile.objects.create(user=ada)
    assert Profile.objects.count() == 1


def test_one_to_one_filter_both_directions(db) -> None:
    ada = User.objects.create(username="ada")
    User.objects.create(username="bob")
    Profile.objects.create(user=ada, bio="math")
    assert User.objects.get(profile__bio="math").username == "ada"
    assert list(User.objects.filter(profile__isnull=True).values_list("username", flat=True)) == [
        "bob"
    ]
    assert Profile.objects.get(user__username="ada").bio == "math"


def test_one_to_one_select_related_forward_direction(db) -> None:
    ada = User.objects.create(username="ada")
    Profile.objects.create(user=ada, bio="math")
    with assertNumQueries(1):
        assert Profile.objects.select_related("user").get().user.username == "ada"


def test_deleting_user_cascades_to_profile(db) -> None:
    ada = User.objects.create(username="ada")
    Profile.objects.create(user=ada)
    total, per_model = ada.delete()
    assert (total, per_model) == (2, {"t_rel.Profile": 1, "t_rel.User": 1})
    assert Profile.objects.count() == 0


# -- lazy references, self-references, to_field --------------------------------------------------


def test_lazy_string_references_are_resolved() -> None:
    assert Author._meta.get_field("publisher").related_model is Publisher
    assert Publisher._meta.get_field("country").related_model is Country
    assert Category._meta.get_field("parent").related_model is Category


def test_lazy_reference_to_a_model_defined_later(request: pytest.FixtureRequest) -> None:
    # Unique names: the test runs once per backend and models register process-wide.
    suffix = re.sub(r"\W", "", request.node.callspec.id).capitalize()
    trunk_name = f"LaterTrunk{suffix}"
    meta = {"app_label": "t_rel_lazy"}
    leaf_model = type(
        f"Leaf{suffix}",
        (dorm.Model,),
        {
            "__module__": __name__,
            "Meta": type("Meta", (), meta),
            "trunk": dorm.ForeignKey(trunk_name, on_delete=dorm.CASCADE),
        },
    )
    field = leaf_model._meta.get_field("trunk")
    with pytest.raises(FieldError, match=rf"Leaf{suffix}\.trunk: the related model '{trunk_name}'"):
        _ = field.target_field
    assert f"t_rel_lazy.{trunk_name.lower()}" in apps.pending_references()

    trunk_model = type(
        trunk_name, (dorm.Model,), {"__module__": __name__, "Meta": type("Meta", (), meta)}
    )
    assert field.related_model is trunk_model
    assert field.target_field is trunk_model._meta.pk
    assert hasattr(trunk_model, f"leaf{suffix.lower()}_set")
    assert f"t_rel_lazy.{trunk_name.lower()}" not in apps.pending_references()


def test_self_referencing_tree(db) -> None:
    root = Category.objects.create(name="root")
    science = Category.objects.create(name="science", parent=root)
    Category.objects.create(name="physics", parent=science)
    Category.objects.create(name="biology", parent=science)
    Category.objects.create(name="art", parent=root)

    physics = Category.objects.get(name="physics")
    assert physics.parent.parent.name == "root"
    assert physics.parent.parent.parent is None
    assert sorted(c.name for c in root.children.all()) == ["art", "science"]
    grandchildren = Category.objects.filter(parent__parent__name="root").order_by("name")
    assert list(grandchildren.values_list("name", flat=True)) == ["biology", "physics"]
    assert Category.objects.get(parent__isnull=True).name == "root"

    total, per_model = science.delete()
    assert (total, per_model) == (3, {"t_rel.Category": 3})
    remaining = Category.objects.order_by("name").values_list("name", flat=True)
    assert list(remaining) == ["art", "root"]


def test_deleting_a_tree_root_collects_every_level(db) -> None:
    node = Category.objects.create(name="n0")
    for i in range(1, 6):
        node = Category.objects.create(name=f"n{i}", parent=node)
    total, per_model = Category.objects.get(name="n0").delete()
    assert (total, per_model) == (6, {"t_rel.Category": 6})
    assert Category.objects.count() == 0


def test_to_field_stores_the_target_column(db, library) -> None:
    pub = Publisher.objects.get(name="Gallimard")
    assert pub.country_id == "FR"
    with assertNumQueries(1):
        assert pub.country.name == "France"
    pub.country = library["uk"]
    assert pub.country_id == "UK"
    pub.save()
    assert Publisher.objects.get(pk=pub.pk).country_id == "UK"
    assert Publisher.objects.filter(country__name="United Kingdom").count() == 2
    assert Publisher.objects.filter(country="UK").count() == 2
    uk = Country.objects.get(code="UK")
    assert sorted(p.name for p in uk.publisher_set.all()) == ["Gallimard", "Penguin"]


def test_to_field_select_related_and_set_null(db, library) -> None:
    with assertNumQueries(1):
        pubs = list(Publisher.objects.select_related("country").order_by("name"))
        assert [p.country.code for p in pubs] == ["FR", "UK"]
    Country.objects.get(code="FR").delete()
    assert Publisher.objects.get(name="Gallimard").country_id is None
    assert Publisher.objects.get(name="Penguin").country_id == "UK"


def test_select_related_reverse_one_to_one(db) -> None:
    ada = User.objects.create(username="ada")
    User.objects.create(username="bob")
    Profile.objects.create(user=ada, bio="math")
    with assertNumQueries(1):
        users = list(User.objects.select_related("profile").order_by("username"))
        assert users[0].profile.bio == "math"
        assert users[0].profile.user is users[0]
        with pytest.raises(Profile.DoesNotExist):
            _ = users[1].profile


def test_prefetch_one_to_one_both_directions(db) -> None:
    ada = User.objects.create(username="ada")
    User.objects.create(username="bob")
    Profile.objects.create(user=ada, bio="math")
    with assertNumQueries(2):
        users = list(User.objects.prefetch_related("profile").order_by("username"))
        assert users[0].profile.bio == "math"
        with pytest.raises(Profile.DoesNotExist):
            _ = users[1].profile
    with assertNumQueries(2):
        (profile,) = Profile.objects.prefetch_related("user")
        assert profile.user.username == "ada"


def test_reverse_one_to_one_assignment(db) -> None:
    ada = User.objects.create(username="ada")
    profile = Profile(bio="new")
    ada.profile = profile
    assert profile.user_id == ada.pk
    profile.save()
    assert User.objects.get(profile__bio="new").pk == ada.pk


def test_reverse_one_to_one_with_a_related_query_name(db) -> None:
    ada = User.objects.create(username="ada")
    Passport.objects.create(user=ada, number="X1")
    assert User.objects.get(pp__number="X1").pk == ada.pk
    assert not hasattr(User, "pp")
    with assertNumQueries(1):
        user = User.objects.select_related("pp").get()
        assert user.passport.number == "X1"
        assert user.passport.user is user
    with assertNumQueries(2):
        (user,) = User.objects.prefetch_related("passport")
        assert user.passport.number == "X1"


def test_select_related_on_a_self_fk_tree(db) -> None:
    root = Category.objects.create(name="root")
    mid = Category.objects.create(name="mid", parent=root)
    Category.objects.create(name="leaf", parent=mid)
    with assertNumQueries(1):
        leaf = Category.objects.select_related("parent__parent").get(name="leaf")
        assert (leaf.parent.name, leaf.parent.parent.name) == ("mid", "root")
        assert leaf.parent.parent.parent_id is None
    with assertNumQueries(1):
        rows = list(Category.objects.select_related("parent").order_by("name"))
        assert [(c.name, c.parent.name if c.parent else None) for c in rows] == [
            ("leaf", "mid"),
            ("mid", "root"),
            ("root", None),
        ]
