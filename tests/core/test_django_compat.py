"""Django-compatibility gaps: Meta.constraints in full_clean, ProtectedError listing every
protecting key, Meta.apps registries, first()/last() on a GROUP BY values() query."""

from __future__ import annotations

import pytest

import dorm
from dorm.apps import Apps, apps
from dorm.exceptions import ProtectedError, RestrictedError, ValidationError

APP = "t_compat"


class Account(dorm.Model):
    code = dorm.CharField(max_length=10)
    region = dorm.CharField(max_length=10, default="eu")
    balance = dorm.IntegerField(default=0)
    limit = dorm.IntegerField(null=True, blank=True)
    active = dorm.BooleanField(default=True)

    class Meta:
        app_label = APP
        constraints = [
            dorm.CheckConstraint(condition=dorm.Q(balance__gte=0), name="compat_balance_nonneg"),
            dorm.CheckConstraint(
                condition=dorm.Q(balance__lte=dorm.F("limit")), name="compat_under_limit"
            ),
            dorm.UniqueConstraint(
                fields=["code"], condition=dorm.Q(active=True), name="compat_active_code"
            ),
            dorm.UniqueConstraint(fields=["code", "region"], name="compat_code_region"),
        ]


class Owner(dorm.Model):
    name = dorm.CharField(max_length=20)

    class Meta:
        app_label = APP


class Pet(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.PROTECT, related_name="pets")

    class Meta:
        app_label = APP


class Car(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.PROTECT, related_name="cars")

    class Meta:
        app_label = APP


class House(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.CASCADE, related_name="houses")

    class Meta:
        app_label = APP


class Room(dorm.Model):
    house = dorm.ForeignKey(House, on_delete=dorm.PROTECT, related_name="rooms")

    class Meta:
        app_label = APP


class Album(dorm.Model):
    title = dorm.CharField(max_length=20)

    class Meta:
        app_label = APP


class Song(dorm.Model):
    album = dorm.ForeignKey(Album, on_delete=dorm.RESTRICT, related_name="songs")

    class Meta:
        app_label = APP


class Clip(dorm.Model):
    album = dorm.ForeignKey(Album, on_delete=dorm.RESTRICT, related_name="clips")

    class Meta:
        app_label = APP


class Sale(dorm.Model):
    shop = dorm.CharField(max_length=10)
    amount = dorm.IntegerField()

    class Meta:
        app_label = APP


MODELS = [Account, Owner, Pet, Car, House, Room, Album, Song, Clip, Sale]
pytestmark = pytest.mark.usefixtures("clean_tables")


# -- 1. Meta.constraints in full_clean / validate_constraints ------------------------------------


def test_check_constraint_is_validated(db) -> None:
    Account(code="a", balance=0).validate_constraints()
    Account(code="a", balance=5, limit=5).full_clean()
    with pytest.raises(ValidationError) as info:
        Account(code="a", balance=-1).full_clean()
    assert info.value.message_dict == {
        "__all__": ["Constraint \u201ccompat_balance_nonneg\u201d is violated."]
    }
    with pytest.raises(ValidationError, match="compat_under_limit"):
        Account(code="a", balance=6, limit=5).validate_constraints()
    # NULL makes the condition unknown, which a CHECK constraint accepts.
    Account(code="a", balance=6, limit=None).validate_constraints()
    assert Account.objects.count() == 0


def test_check_constraint_values_are_bound_parameters(db) -> None:
    class Named(dorm.Model):
        name = dorm.CharField(max_length=40)

        class Meta:
            app_label = "t_compat_named"
            constraints = [
                dorm.CheckConstraint(
                    condition=~dorm.Q(name__startswith="x'"), name="compat_no_quote_x"
                )
            ]

    Named(name="'; DROP TABLE t_compat_account; --").validate_constraints()
    with pytest.raises(ValidationError, match="compat_no_quote_x"):
        Named(name="x' OR 1=1").validate_constraints()
    assert Account.objects.count() == 0


def test_validate_constraints_skips_excluded_fields(db) -> None:
    bad = Account(code="a", balance=-1)
    bad.validate_constraints(exclude=["balance"])
    bad.full_clean(exclude=["balance"])
    bad.full_clean(validate_constraints=False)


def test_conditional_unique_constraint_counts_only_matching_rows(db) -> None:
    Account.objects.create(code="a", region="eu", active=True)
    Account.objects.create(code="b", region="eu", active=False)
    # Inactive rows are outside the partial index: they never collide.
    Account(code="a", region="us", active=False).full_clean()
    # An active "b" does not collide with the inactive "b".
    Account(code="b", region="us", active=True).full_clean()
    with pytest.raises(ValidationError) as info:
        Account(code="a", region="us", active=True).full_clean()
    assert info.value.message_dict == {
        "code": ["Constraint \u201ccompat_active_code\u201d is violated."]
    }
    # Saving an existing row again does not collide with itself.
    existing = Account.objects.get(code="a")
    existing.full_clean()
    with pytest.raises(dorm.exceptions.IntegrityError):
        Account.objects.create(code="a", region="us", active=True)
    assert Account.objects.count() == 2


def test_unique_constraint_reported_once_by_full_clean(db) -> None:
    Account.objects.create(code="a", region="eu", active=False)
    dup = Account(code="a", region="eu", active=False)
    dup.validate_unique()  # Meta.constraints belong to validate_constraints (Django 4.1+)
    with pytest.raises(ValidationError) as info:
        dup.full_clean()
    assert info.value.message_dict == {
        "__all__": ["Account with this code and region already exists"]
    }
    dup.full_clean(exclude=["region"])


# -- 2. ProtectedError / RestrictedError list every key ------------------------------------------


def test_protected_error_lists_every_protecting_key(db) -> None:
    ada = Owner.objects.create(name="Ada")
    pet = Pet.objects.create(owner=ada)
    car = Car.objects.create(owner=ada)
    house = House.objects.create(owner=ada)
    room = Room.objects.create(house=house)
    with pytest.raises(ProtectedError) as info:
        ada.delete()
    message = str(info.value)
    assert "'Pet.owner'" in message and "'Car.owner'" in message and "'Room.house'" in message
    assert info.value.protected_objects == {pet, car, room}
    assert Owner.objects.count() == 1 and House.objects.count() == 1
    assert Pet.objects.count() == Car.objects.count() == Room.objects.count() == 1
    with pytest.raises(ProtectedError) as info:
        Owner.objects.all().delete()
    assert info.value.protected_objects == {pet, car, room}
    assert Owner.objects.count() == 1 and House.objects.count() == 1


def test_restricted_error_lists_every_restricting_key(db) -> None:
    album = Album.objects.create(title="A")
    song = Song.objects.create(album=album)
    clip = Clip.objects.create(album=album)
    with pytest.raises(RestrictedError) as info:
        album.delete()
    assert "'Song.album'" in str(info.value) and "'Clip.album'" in str(info.value)
    assert info.value.restricted_objects == {song, clip}
    assert Album.objects.count() == Song.objects.count() == Clip.objects.count() == 1


# -- 3. Meta.apps ------------------------------------------------------------------------------


def _make_shop(registry: Apps) -> tuple[type[dorm.Model], type[dorm.Model]]:
    class Item(dorm.Model):
        parent = dorm.ForeignKey("self", on_delete=dorm.CASCADE, null=True)
        twin = dorm.ForeignKey("shop.Item", on_delete=dorm.CASCADE, null=True, related_name="+")
        tags = dorm.ManyToManyField("Tag", related_name="items")

        class Meta:
            app_label = "shop"
            apps = registry

    class Tag(dorm.Model):
        name = dorm.CharField(max_length=10)

        class Meta:
            app_label = "shop"
            apps = registry

    return Item, Tag


def test_meta_apps_registers_and_resolves_in_its_own_registry(db) -> None:
    before = apps.get_models()
    one, two = Apps(), Apps()
    item1, tag1 = _make_shop(one)
    item2, tag2 = _make_shop(two)
    assert item1 is not item2
    assert one.get_model("shop.Item") is item1 and two.get_model("shop.Item") is item2
    for item, tag, registry in ((item1, tag1, one), (item2, tag2, two)):
        assert item._meta.apps is registry
        assert item._meta.get_field("parent").related_model is item
        assert item._meta.get_field("twin").related_model is item
        tags = item._meta.get_field("tags")
        assert tags.related_model is tag
        assert tags.through._meta.apps is registry
        assert registry.get_model("shop.Item_tags") is tags.through
        assert registry.pending_references() == []
    assert apps.get_models() == before
    with pytest.raises(LookupError):
        apps.get_model("shop.Item")
    assert Account._meta.apps is apps


# -- 4. first() / last() on values().annotate() ----------------------------------------------


def test_first_last_on_unordered_grouped_values_raise_type_error(db) -> None:
    for shop, amount in [("b", 1), ("a", 2), ("b", 3)]:
        Sale.objects.create(shop=shop, amount=amount)
    grouped = Sale.objects.values("shop").annotate(n=dorm.Count("id"), total=dorm.Sum("amount"))
    for method in ("first", "last"):
        with pytest.raises(TypeError, match=rf"QuerySet\.{method}\(\) on an unordered"):
            getattr(grouped, method)()
    assert grouped.order_by("shop").first() == {"shop": "a", "n": 1, "total": 2}
    assert grouped.order_by("shop").last() == {"shop": "b", "n": 2, "total": 4}
    assert sorted(grouped, key=lambda r: r["shop"]) == [
        {"shop": "a", "n": 1, "total": 2},
        {"shop": "b", "n": 2, "total": 4},
    ]
    # Grouping by the primary key keeps one row per object: ordering by pk is fine.
    assert Sale.objects.values("id").annotate(n=dorm.Count("id")).first()["n"] == 1
    # annotate() before values() groups per object, as in Django.
    first = Sale.objects.annotate(n=dorm.Count("id")).values("shop", "n").first()
    assert first == {"shop": "b", "n": 1}


def test_grouped_values_as_subquery(db) -> None:
    for shop, amount in [("b", 1), ("a", 2), ("b", 3)]:
        Sale.objects.create(shop=shop, amount=amount)
    busy = (
        Sale.objects.values("shop")
        .annotate(n=dorm.Count("id"))
        .filter(n__gt=1)
        .values_list("shop", flat=True)
    )
    assert sorted(Sale.objects.filter(shop__in=busy).values_list("amount", flat=True)) == [1, 3]
