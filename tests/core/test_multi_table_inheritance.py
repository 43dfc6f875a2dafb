"""Multi-table inheritance on both backends, as Django does it: a child of a concrete model
has its own table joined to its parent's by ``<parent>_ptr``; reads join the parents,
writes reach every table in one transaction, deletes take the parents' rows along."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldError, IntegrityError, NotSupportedError, ValidationError
from dorm.test import assert_num_queries


class Owner(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_mti"


class Place(dorm.Model):
    name = dorm.CharField(max_length=30)
    rating = dorm.IntegerField(default=0)
    owner = dorm.ForeignKey(Owner, on_delete=dorm.SET_NULL, null=True, related_name="places")
    code = dorm.CharField(max_length=10, null=True, unique=True)

    class Meta:
        app_label = "t_mti"
        ordering = ["name"]


class Restaurant(Place):
    serves_pizza = dorm.BooleanField(default=False)
    licence = dorm.CharField(max_length=10, null=True, unique=True)

    class Meta:
        app_label = "t_mti"


class Pizzeria(Restaurant):
    ovens = dorm.IntegerField(default=1)

    class Meta:
        app_label = "t_mti"


class Bar(Place):
    place = dorm.OneToOneField(
        Place, on_delete=dorm.CASCADE, parent_link=True, related_name="bar_link"
    )
    taps = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_mti"


class Review(dorm.Model):
    place = dorm.ForeignKey(Place, on_delete=dorm.CASCADE, related_name="reviews")
    stars = dorm.IntegerField()

    class Meta:
        app_label = "t_mti"


MODELS = [Owner, Place, Restaurant, Pizzeria, Bar, Review]
pytestmark = pytest.mark.usefixtures("clean_tables")


def test_the_child_has_its_own_table_and_a_parent_link(db) -> None:
    link = Restaurant._meta.pk
    assert link is not None
    assert (link.name, link.column, link.primary_key) == ("place_ptr", "place_ptr_id", True)
    assert link.parent_link and link.auto_created and link.related_model is Place
    assert Restaurant._meta.parents == {Place: link}
    assert [f.name for f in Restaurant._meta.local_concrete_fields] == [
        "place_ptr",
        "serves_pizza",
        "licence",
    ]
    assert [f.name for f in Restaurant._meta.concrete_fields] == [
        "id",
        "name",
        "rating",
        "owner",
        "code",
        "place_ptr",
        "serves_pizza",
        "licence",
    ]
    assert Restaurant._meta.ordering == ["name"]  # inherited, as in Django
    assert issubclass(Restaurant.DoesNotExist, Place.DoesNotExist)
    r = Restaurant.objects.create(name="Luigi", rating=4, serves_pizza=True)
    assert r.pk == r.id == r.place_ptr_id is not None
    assert db.count_rows("t_mti_place") == 1
    assert db.count_rows("t_mti_restaurant") == 1


def test_reads_join_the_parent_table(db) -> None:
    owner = Owner.objects.create(name="Olga")
    Restaurant.objects.create(name="Luigi", rating=4, serves_pizza=True, owner=owner)
    Restaurant.objects.create(name="Anna", rating=2)
    Place.objects.create(name="Park", rating=5)
    got = Restaurant.objects.get(name="Luigi")
    assert (type(got), got.name, got.rating, got.serves_pizza) == (Restaurant, "Luigi", 4, True)
    assert got.owner == owner
    assert Restaurant.objects.get(pk=got.pk).name == "Luigi"
    assert Restaurant.objects.get(id=got.pk).name == "Luigi"
    assert [r.name for r in Restaurant.objects.all()] == ["Anna", "Luigi"]
    assert [r.name for r in Restaurant.objects.filter(rating__gte=3)] == ["Luigi"]
    assert [r.name for r in Restaurant.objects.exclude(name="Luigi")] == ["Anna"]
    assert [r.name for r in Restaurant.objects.order_by("-rating")] == ["Luigi", "Anna"]
    assert list(Restaurant.objects.filter(owner__name="Olga").values("name", "serves_pizza")) == [
        {"name": "Luigi", "serves_pizza": True}
    ]
    assert list(Restaurant.objects.values_list("name", flat=True)) == ["Anna", "Luigi"]
    assert Restaurant.objects.aggregate(total=dorm.Sum("rating"))["total"] == 6
    assert Restaurant.objects.count() == 2
    assert Place.objects.count() == 3
    assert list(Restaurant.objects.values("name").annotate(n=dorm.Count("id"))) == [
        {"name": "Anna", "n": 1},
        {"name": "Luigi", "n": 1},
    ]
    anna = Restaurant.objects.only("name").get(name="Anna")
    assert anna.rating == 2  # a deferred inherited field loads on access


def test_parent_to_child_and_select_related_both_ways(db) -> None:
    owner = Owner.objects.create(name="Olga")
    r = Restaurant.objects.create(name="Luigi", serves_pizza=True, owner=owner)
    park = Place.objects.create(name="Park")
    place = Place.objects.get(pk=r.pk)
    assert type(place) is Place
    assert place.restaurant == r and place.restaurant.serves_pizza is True
    with pytest.raises(Restaurant.DoesNotExist, match="Place has no restaurant"):
        park.restaurant  # noqa: B018
    assert not hasattr(Place.objects.get(pk=park.pk), "restaurant")
    with assert_num_queries(1):
        rows = list(Place.objects.select_related("restaurant"))
        assert [p.name for p in rows] == ["Luigi", "Park"]
        assert rows[0].restaurant.serves_pizza is True
        assert rows[0].restaurant.name == "Luigi"
    with assert_num_queries(1):
        got = Restaurant.objects.select_related("owner").get(name="Luigi")
        assert got.owner.name == "Olga"
    assert [p.name for p in Place.objects.filter(restaurant__serves_pizza=True)] == ["Luigi"]


def test_save_writes_both_tables_in_one_transaction(db) -> None:
    r = Restaurant(name="Luigi", rating=1)
    r.save()
    r.name, r.serves_pizza = "Luigi's", True
    r.save()
    fresh = Restaurant.objects.get(pk=r.pk)
    assert (fresh.name, fresh.serves_pizza) == ("Luigi's", True)
    assert Place.objects.get(pk=r.pk).name == "Luigi's"
    r.rating = 5
    r.save(update_fields=["rating"])
    assert Place.objects.get(pk=r.pk).rating == 5
    r.licence = "L1"
    r.save(update_fields=["licence"])
    assert Restaurant.objects.get(pk=r.pk).licence == "L1"
    # The child's row fails (duplicate licence): the parent's row is rolled back with it.
    with pytest.raises(IntegrityError):
        Restaurant.objects.create(name="Copy", licence="L1")
    assert db.count_rows("t_mti_place") == 1
    assert Place.objects.filter(name="Copy").count() == 0


def test_update_runs_one_update_per_table(db) -> None:
    a = Restaurant.objects.create(name="A", rating=1)
    b = Restaurant.objects.create(name="B", rating=1)
    park = Place.objects.create(name="A", rating=1)
    # The filter reads a field the update changes: each table still gets the same rows.
    assert Restaurant.objects.filter(name="A").update(name="AA", serves_pizza=True) == 1
    assert (Restaurant.objects.get(pk=a.pk).name, Restaurant.objects.get(pk=a.pk).serves_pizza) == (
        "AA",
        True,
    )
    assert Restaurant.objects.get(pk=b.pk).name == "B"
    assert Place.objects.get(pk=park.pk).name == "A"  # a plain place of the same name
    assert Restaurant.objects.update(rating=dorm.F("rating") + 2) == 2
    assert sorted(Place.objects.values_list("rating", flat=True)) == [1, 3, 3]
    assert Restaurant.objects.filter(serves_pizza=False).update(rating=9) == 1
    assert Place.objects.get(pk=b.pk).rating == 9
    with pytest.raises(FieldError, match="reads 'serves_pizza', which is not a field of Place"):
        Restaurant.objects.update(rating=dorm.F("serves_pizza"))
    assert Restaurant.objects.filter(name="nobody").update(name="x") == 0


def test_delete_removes_the_parent_rows_and_parents_cascade(db) -> None:
    r = Restaurant.objects.create(name="Luigi")
    Review.objects.create(place=r, stars=5)
    Place.objects.create(name="Park")
    assert r.delete() == (
        3,
        {"t_mti.Review": 1, "t_mti.Restaurant": 1, "t_mti.Place": 1},
    )
    assert r.pk is None
    assert [p.name for p in Place.objects.all()] == ["Park"]
    assert db.count_rows("t_mti_restaurant") == 0
    # Deleting the parent row deletes the child's.
    r2 = Restaurant.objects.create(name="Mario")
    Place.objects.get(pk=r2.pk).delete()
    assert db.count_rows("t_mti_restaurant") == 0
    # A queryset delete of children.
    Restaurant.objects.create(name="X")
    Restaurant.objects.create(name="Y")
    deleted, per_model = Restaurant.objects.filter(name__in=["X", "Y"]).delete()
    assert per_model == {"t_mti.Restaurant": 2, "t_mti.Place": 2}
    assert [p.name for p in Place.objects.all()] == ["Park"]


def test_bulk_create_is_refused(db) -> None:
    with pytest.raises(ValueError, match="Can't bulk create a multi-table inherited model"):
        Restaurant.objects.bulk_create([Restaurant(name="A")])
    with pytest.raises(ValueError, match="Restaurant stores its fields in the tables of Place"):
        Restaurant.objects.bulk_create([])
    assert db.count_rows("t_mti_place") == 0


def test_three_levels(db) -> None:
    p = Pizzeria.objects.create(name="Mario", rating=3, serves_pizza=True, ovens=2)
    assert p.pk == p.restaurant_ptr_id == p.place_ptr_id == p.id
    got = Pizzeria.objects.get(name="Mario")
    assert (got.name, got.rating, got.serves_pizza, got.ovens) == ("Mario", 3, True, 2)
    assert Place.objects.get(pk=p.pk).restaurant.pizzeria.ovens == 2
    assert list(Pizzeria.objects.filter(rating=3, ovens=2).values_list("name", "ovens")) == [
        ("Mario", 2)
    ]
    assert Pizzeria.objects.filter(name="Mario").update(name="M", ovens=4, serves_pizza=False) == 1
    got = Pizzeria.objects.get(pk=p.pk)
    assert (got.name, got.ovens, got.serves_pizza) == ("M", 4, False)
    assert p.delete() == (
        3,
        {"t_mti.Pizzeria": 1, "t_mti.Restaurant": 1, "t_mti.Place": 1},
    )
    for table in ("t_mti_place", "t_mti_restaurant", "t_mti_pizzeria"):
        assert db.count_rows(table) == 0
    q = Pizzeria.objects.create(name="Q")
    Place.objects.filter(pk=q.pk).delete()  # the cascade reaches the grandchild
    assert db.count_rows("t_mti_pizzeria") == 0


def test_an_explicit_parent_link(db) -> None:
    assert Bar._meta.pk is Bar._meta.parents[Place]
    assert (Bar._meta.pk.name, Bar._meta.pk.column) == ("place", "place_id")
    bar = Bar.objects.create(name="Moe's", taps=4)
    assert bar.place_id == bar.id
    got = Bar.objects.get(name="Moe's")
    assert (got.taps, got.place.name) == (4, "Moe's")
    assert Place.objects.get(pk=bar.pk).bar_link.taps == 4


def test_async_twins(db) -> None:
    async def main() -> list[Any]:
        r = await Restaurant.objects.acreate(name="Luigi", serves_pizza=True)
        got = await Restaurant.objects.aget(name="Luigi")
        got.rating = 7
        await got.asave()
        names = [x.name async for x in Restaurant.objects.filter(rating=7)]
        count = await Place.objects.acount()
        deleted = await r.adelete()
        return [got.serves_pizza, names, count, deleted]

    assert asyncio.run(main()) == [
        True,
        ["Luigi"],
        1,
        (2, {"t_mti.Restaurant": 1, "t_mti.Place": 1}),
    ]
    assert db.count_rows("t_mti_place") == 0


def test_definition_errors() -> None:
    with pytest.raises(
        FieldError,
        match="Local field 'rating' in class 'Shop' clashes with field of the same name "
        "from base class 'Place'",
    ):

        class Shop(Place):
            rating = dorm.IntegerField()

            class Meta:
                app_label = "t_mti_bad"

    with pytest.raises(
        FieldError,
        match="Cafe.Meta.indexes names 'name', which is not local to Cafe: it lives in the "
        "table of Place",
    ):

        class Cafe(Place):
            seats = dorm.IntegerField()

            class Meta:
                app_label = "t_mti_bad"
                indexes = [dorm.Index(fields=["name", "seats"])]

    with pytest.raises(NotSupportedError, match="Twice subclasses several concrete models"):

        class Twice(Restaurant, Bar):
            class Meta:
                app_label = "t_mti_bad"


def test_a_child_reads_its_parents_reverse_relations_and_reloads(db) -> None:
    r = Restaurant.objects.create(name="Luigi")
    Restaurant.objects.create(name="Anna")
    Review.objects.create(place=r, stars=5)
    assert [x.name for x in Restaurant.objects.filter(reviews__stars=5)] == ["Luigi"]
    assert [x.reviews.count() for x in Restaurant.objects.prefetch_related("reviews")] == [0, 1]
    # A child-only update whose filter reads a parent's column.
    assert Restaurant.objects.filter(name="Anna").update(serves_pizza=True) == 1
    assert [x.name for x in Restaurant.objects.filter(serves_pizza=True)] == ["Anna"]
    Place.objects.filter(pk=r.pk).update(name="Luigi's")
    r.refresh_from_db()
    assert r.name == "Luigi's"
    loaded = Restaurant.objects.only("serves_pizza").get(pk=r.pk)
    loaded.serves_pizza = True
    loaded.save()  # writes only what was loaded: the name stays
    fresh = Restaurant.objects.get(pk=r.pk)
    assert (fresh.name, fresh.serves_pizza) == ("Luigi's", True)
    got, created = Restaurant.objects.get_or_create(name="Luigi's")
    assert (got.pk, created) == (r.pk, False)
    assert Place.objects.filter(restaurant__isnull=True).count() == 0


def test_select_related_reaches_a_grandparents_foreign_key(db) -> None:
    owner = Owner.objects.create(name="Olga")
    Pizzeria.objects.create(name="Mario", owner=owner)
    with assert_num_queries(1):
        (got,) = Pizzeria.objects.select_related("owner").filter(owner__name="Olga")
        assert (got.name, got.owner.name) == ("Mario", "Olga")
    with assert_num_queries(1):
        place = Place.objects.select_related("restaurant__pizzeria").get(name="Mario")
        assert place.restaurant.pizzeria.ovens == 1


def test_full_clean_checks_a_parents_unique_field_among_all_its_rows(db) -> None:
    Place.objects.create(name="Park", code="P1")
    r = Restaurant(name="Luigi", code="P1")
    with pytest.raises(ValidationError) as caught:
        r.full_clean()
    assert caught.value.message_dict["code"] == ["Restaurant with this code already exists"]
    r.code = "R1"
    r.full_clean(exclude=["owner", "licence"])
    r.save()
    r.full_clean(exclude=["owner", "licence"])  # its own row does not count
