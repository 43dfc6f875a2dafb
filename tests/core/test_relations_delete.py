"""on_delete handled by the ORM's collector: CASCADE, SET_NULL, SET_DEFAULT, SET(), PROTECT,
RESTRICT, DO_NOTHING, read back from the database on both backends."""

from __future__ import annotations

import pytest

import dorm
from dorm.exceptions import IntegrityError, ProtectedError, RestrictedError
from dorm.test import CaptureQueriesContext

FALLBACK_PK = 1_000_000


def _fallback_owner() -> int:
    return FALLBACK_PK


class Owner(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_del"


class Pet(dorm.Model):
    """CASCADE, two levels deep (Pet -> Toy -> Part)."""

    owner = dorm.ForeignKey(Owner, on_delete=dorm.CASCADE, related_name="pets")
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_del"


class Toy(dorm.Model):
    pet = dorm.ForeignKey(Pet, on_delete=dorm.CASCADE, related_name="toys")
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_del"


class Part(dorm.Model):
    toy = dorm.ForeignKey(Toy, on_delete=dorm.CASCADE, related_name="parts")

    class Meta:
        app_label = "t_del"


class Walker(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.SET_NULL, null=True, related_name="walkers")

    class Meta:
        app_label = "t_del"


class Sitter(dorm.Model):
    owner = dorm.ForeignKey(
        Owner, on_delete=dorm.SET_DEFAULT, default=FALLBACK_PK, related_name="sitters"
    )

    class Meta:
        app_label = "t_del"


class Vet(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.SET(_fallback_owner), related_name="vets")

    class Meta:
        app_label = "t_del"


class Groomer(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.SET(None), null=True, related_name="groomers")

    class Meta:
        app_label = "t_del"


class Licence(dorm.Model):
    """Protects its pet: a pet with a licence cannot be deleted, not even by a cascade."""

    pet = dorm.ForeignKey(Pet, on_delete=dorm.PROTECT, related_name="licences")

    class Meta:
        app_label = "t_del"


class Ledger(dorm.Model):
    owner = dorm.ForeignKey(Owner, on_delete=dorm.DO_NOTHING, db_constraint=False)

    class Meta:
        app_label = "t_del"


class Artist(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_del"


class Album(dorm.Model):
    artist = dorm.ForeignKey(Artist, on_delete=dorm.CASCADE)
    title = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_del"


class Song(dorm.Model):
    """Django's RESTRICT example: a song blocks deleting its album alone, but not its artist."""

    artist = dorm.ForeignKey(Artist, on_delete=dorm.CASCADE)
    album = dorm.ForeignKey(Album, on_delete=dorm.RESTRICT)
    title = dorm.CharField(max_length=30)

    class Meta:
        app_label = "t_del"


MODELS = [
    Owner,
    Pet,
    Toy,
    Part,
    Walker,
    Sitter,
    Vet,
    Groomer,
    Licence,
    Ledger,
    Artist,
    Album,
    Song,
]
pytestmark = pytest.mark.usefixtures("clean_tables")


@pytest.fixture
def fallback(db) -> Owner:
    return Owner.objects.create(pk=FALLBACK_PK, name="fallback")


def _pet_tree(owner: Owner, pets: int = 2, toys: int = 2, parts: int = 2) -> None:
    for p in range(pets):
        pet = Pet.objects.create(owner=owner, name=f"{owner.name}-pet{p}")
        for t in range(toys):
            toy = Toy.objects.create(pet=pet, name=f"toy{t}")
            for _ in range(parts):
                Part.objects.create(toy=toy)


# -- CASCADE ---------------------------------------------------------------------------------------


def test_cascade_collects_every_level(db) -> None:
    ann, ben = Owner.objects.create(name="ann"), Owner.objects.create(name="ben")
    _pet_tree(ann)
    _pet_tree(ben, pets=1, toys=1, parts=1)

    total, per_model = ann.delete()

    assert per_model == {"t_del.Part": 8, "t_del.Toy": 4, "t_del.Pet": 2, "t_del.Owner": 1}
    assert total == 15
    assert list(Owner.objects.values_list("name", flat=True)) == ["ben"]
    assert list(Pet.objects.values_list("name", flat=True)) == ["ben-pet0"]
    assert Toy.objects.count() == 1 and Part.objects.count() == 1
    assert Part.objects.get().toy.pet.owner.name == "ben"


def test_delete_resets_the_pk_of_the_deleted_instance(db) -> None:
    ann = Owner.objects.create(name="ann")
    ann.delete()
    assert ann.pk is None
    ann.save()
    assert Owner.objects.get().pk == ann.pk


def test_cascade_from_a_middle_level(db) -> None:
    ann = Owner.objects.create(name="ann")
    _pet_tree(ann)
    pet = Pet.objects.get(name="ann-pet0")
    assert pet.delete() == (7, {"t_del.Part": 4, "t_del.Toy": 2, "t_del.Pet": 1})
    assert Owner.objects.count() == 1
    assert list(Pet.objects.values_list("name", flat=True)) == ["ann-pet1"]
    assert Part.objects.filter(toy__pet__name="ann-pet1").count() == 4
    assert Part.objects.count() == 4


def test_queryset_delete_cascades(db) -> None:
    ann, ben, cid = (Owner.objects.create(name=n) for n in ("ann", "ben", "cid"))
    for owner in (ann, ben, cid):
        _pet_tree(owner, pets=1, toys=1, parts=3)

    total, per_model = Owner.objects.filter(name__in=["ann", "ben"]).delete()

    assert per_model == {"t_del.Part": 6, "t_del.Toy": 2, "t_del.Pet": 2, "t_del.Owner": 2}
    assert total == 12
    assert list(Owner.objects.values_list("name", flat=True)) == ["cid"]
    assert list(Pet.objects.values_list("owner__name", flat=True)) == ["cid"]
    assert Part.objects.count() == 3


def test_queryset_delete_filtered_across_a_relation(db) -> None:
    ann, ben = Owner.objects.create(name="ann"), Owner.objects.create(name="ben")
    _pet_tree(ann, pets=2, toys=1, parts=1)
    _pet_tree(ben, pets=1, toys=1, parts=1)
    total, per_model = Toy.objects.filter(pet__owner__name="ann").delete()
    assert (total, per_model) == (4, {"t_del.Part": 2, "t_del.Toy": 2})
    assert list(Toy.objects.values_list("pet__owner__name", flat=True)) == ["ben"]
    assert Pet.objects.count() == 3


def test_delete_of_nothing_returns_zero(db) -> None:
    assert Owner.objects.filter(name="nobody").delete() == (0, {})


def test_delete_without_dependents_is_a_fast_single_statement(db) -> None:
    ann = Owner.objects.create(name="ann")
    _pet_tree(ann, pets=1, toys=1, parts=2)
    with CaptureQueriesContext() as ctx:
        assert Part.objects.all().delete() == (2, {"t_del.Part": 2})
    statements = [q["sql"] for q in ctx.captured_queries]
    assert not [sql for sql in statements if sql.startswith("SELECT")]
    assert [sql for sql in statements if sql.startswith("DELETE")] == ['DELETE FROM "t_del_part"']
    assert Part.objects.count() == 0 and Toy.objects.count() == 1


# -- SET_NULL / SET_DEFAULT / SET ----------------------------------------------------------------


def test_set_null(db) -> None:
    ann, ben = Owner.objects.create(name="ann"), Owner.objects.create(name="ben")
    w1 = Walker.objects.create(owner=ann)
    w2 = Walker.objects.create(owner=ann)
    w3 = Walker.objects.create(owner=ben)

    total, per_model = ann.delete()

    assert (total, per_model) == (1, {"t_del.Owner": 1})
    assert Walker.objects.get(pk=w1.pk).owner_id is None
    assert Walker.objects.get(pk=w2.pk).owner_id is None
    assert Walker.objects.get(pk=w3.pk).owner_id == ben.pk
    assert Walker.objects.count() == 3


def test_set_null_through_queryset_delete(db) -> None:
    ann, ben = Owner.objects.create(name="ann"), Owner.objects.create(name="ben")
    Walker.objects.create(owner=ann)
    Walker.objects.create(owner=ben)
    assert Owner.objects.all().delete() == (2, {"t_del.Owner": 2})
    assert list(Walker.objects.values_list("owner", flat=True)) == [None, None]


def test_set_default(db, fallback) -> None:
    ann = Owner.objects.create(name="ann")
    s1 = Sitter.objects.create(owner=ann)
    s2 = Sitter.objects.create(owner=fallback)

    assert ann.delete() == (1, {"t_del.Owner": 1})

    assert Sitter.objects.get(pk=s1.pk).owner_id == FALLBACK_PK
    assert Sitter.objects.get(pk=s1.pk).owner.name == "fallback"
    assert Sitter.objects.get(pk=s2.pk).owner_id == FALLBACK_PK
    assert fallback.sitters.count() == 2


def test_set_with_a_callable(db, fallback) -> None:
    ann = Owner.objects.create(name="ann")
    vet = Vet.objects.create(owner=ann)
    ann.delete()
    assert Vet.objects.get(pk=vet.pk).owner_id == FALLBACK_PK
    assert list(fallback.vets.values_list("pk", flat=True)) == [vet.pk]


def test_set_with_a_plain_value(db) -> None:
    ann = Owner.objects.create(name="ann")
    groomer = Groomer.objects.create(owner=ann)
    ann.delete()
    assert Groomer.objects.get(pk=groomer.pk).owner_id is None


def test_set_null_and_set_default_need_null_and_default() -> None:
    with pytest.raises(ValueError, match="SET_NULL needs null=True"):
        dorm.ForeignKey(Owner, on_delete=dorm.SET_NULL)
    with pytest.raises(ValueError, match="SET_DEFAULT needs a default"):
        dorm.ForeignKey(Owner, on_delete=dorm.SET_DEFAULT)
    with pytest.raises(TypeError, match="on_delete"):
        dorm.ForeignKey(Owner, on_delete=None)


def test_mixed_handlers_in_one_delete(db, fallback) -> None:
    ann = Owner.objects.create(name="ann")
    _pet_tree(ann, pets=1, toys=1, parts=1)
    walker = Walker.objects.create(owner=ann)
    sitter = Sitter.objects.create(owner=ann)

    total, per_model = ann.delete()

    assert per_model == {"t_del.Part": 1, "t_del.Toy": 1, "t_del.Pet": 1, "t_del.Owner": 1}
    assert total == 4
    assert Walker.objects.get(pk=walker.pk).owner_id is None
    assert Sitter.objects.get(pk=sitter.pk).owner_id == FALLBACK_PK


# -- PROTECT ---------------------------------------------------------------------------------------


def test_protect_raises_and_deletes_nothing(db) -> None:
    ann = Owner.objects.create(name="ann")
    _pet_tree(ann, pets=2, toys=1, parts=1)
    walker = Walker.objects.create(owner=ann)
    guarded = Pet.objects.get(name="ann-pet1")
    licence = Licence.objects.create(pet=guarded)

    with pytest.raises(ProtectedError, match=r"Licence\.pet") as info:
        ann.delete()

    assert info.value.protected_objects == {licence}
    assert isinstance(info.value, IntegrityError)
    assert ann.pk is not None
    assert Owner.objects.count() == 1
    assert Pet.objects.count() == 2 and Toy.objects.count() == 2 and Part.objects.count() == 2
    assert Licence.objects.count() == 1
    assert Walker.objects.get(pk=walker.pk).owner_id == ann.pk


def test_protect_on_the_direct_target(db) -> None:
    ann = Owner.objects.create(name="ann")
    pet = Pet.objects.create(owner=ann, name="rex")
    Licence.objects.create(pet=pet)
    Licence.objects.create(pet=pet)
    with pytest.raises(ProtectedError) as info:
        Pet.objects.filter(name="rex").delete()
    assert len(info.value.protected_objects) == 2
    assert {lic.pet_id for lic in info.value.protected_objects} == {pet.pk}
    assert Pet.objects.filter(name="rex").exists()

    Licence.objects.all().delete()
    assert pet.delete() == (1, {"t_del.Pet": 1})


def test_protect_inside_atomic_leaves_the_transaction_usable(db) -> None:
    ann = Owner.objects.create(name="ann")
    Licence.objects.create(pet=Pet.objects.create(owner=ann, name="rex"))
    with dorm.transaction.atomic():
        with pytest.raises(ProtectedError):
            ann.delete()
        Owner.objects.create(name="ben")
    assert sorted(Owner.objects.values_list("name", flat=True)) == ["ann", "ben"]


# -- RESTRICT --------------------------------------------------------------------------------------


def test_restrict_blocks_deleting_the_restricted_target(db) -> None:
    queen = Artist.objects.create(name="Queen")
    album = Album.objects.create(artist=queen, title="Jazz")
    song = Song.objects.create(artist=queen, album=album, title="Mustapha")

    with pytest.raises(RestrictedError, match=r"Song\.album") as info:
        album.delete()

    assert info.value.restricted_objects == {song}
    assert isinstance(info.value, IntegrityError)
    assert Album.objects.count() == 1 and Song.objects.count() == 1


def test_restrict_allows_delete_when_the_same_cascade_deletes_the_objects(db) -> None:
    queen = Artist.objects.create(name="Queen")
    abba = Artist.objects.create(name="ABBA")
    jazz = Album.objects.create(artist=queen, title="Jazz")
    Song.objects.create(artist=queen, album=jazz, title="Mustapha")
    Song.objects.create(artist=queen, album=jazz, title="Bicycle Race")
    arrival = Album.objects.create(artist=abba, title="Arrival")
    Song.objects.create(artist=abba, album=arrival, title="Dancing Queen")

    total, per_model = queen.delete()

    assert per_model == {"t_del.Song": 2, "t_del.Album": 1, "t_del.Artist": 1}
    assert total == 4
    assert list(Song.objects.values_list("title", flat=True)) == ["Dancing Queen"]
    assert list(Album.objects.values_list("title", flat=True)) == ["Arrival"]


def test_restrict_still_blocks_songs_of_another_artist(db) -> None:
    queen = Artist.objects.create(name="Queen")
    bowie = Artist.objects.create(name="Bowie")
    hot_space = Album.objects.create(artist=queen, title="Hot Space")
    Song.objects.create(artist=queen, album=hot_space, title="Staying Power")
    pressure = Song.objects.create(artist=bowie, album=hot_space, title="Under Pressure")

    with pytest.raises(RestrictedError) as info:
        queen.delete()

    assert info.value.restricted_objects == {pressure}
    assert Artist.objects.count() == 2 and Album.objects.count() == 1
    assert Song.objects.count() == 2

    assert Artist.objects.all().delete()[1] == {
        "t_del.Song": 2,
        "t_del.Album": 1,
        "t_del.Artist": 2,
    }
    assert Song.objects.count() == 0


# -- DO_NOTHING ------------------------------------------------------------------------------------


def test_do_nothing_leaves_the_referencing_rows(db) -> None:
    ann = Owner.objects.create(name="ann")
    ann_pk = ann.pk
    ledger = Ledger.objects.create(owner=ann)
    with CaptureQueriesContext() as ctx:
        assert ann.delete() == (1, {"t_del.Owner": 1})
    assert not any("t_del_ledger" in q["sql"] for q in ctx.captured_queries)
    assert Owner.objects.count() == 0
    row = Ledger.objects.get(pk=ledger.pk)
    assert row.owner_id == ann_pk
    with pytest.raises(Owner.DoesNotExist):
        _ = row.owner


def test_fast_delete_filtered_across_relations(db) -> None:
    ann, ben = Owner.objects.create(name="ann"), Owner.objects.create(name="ben")
    _pet_tree(ann, pets=2, toys=1, parts=2)
    _pet_tree(ben, pets=1, toys=1, parts=3)
    total, per_model = Part.objects.filter(toy__pet__owner__name="ann").delete()
    assert (total, per_model) == (4, {"t_del.Part": 4})
    assert list(Part.objects.values_list("toy__pet__owner__name", flat=True)) == ["ben"] * 3


def test_delete_of_an_unsaved_instance_raises(db) -> None:
    with pytest.raises(ValueError, match="Owner"):
        Owner(name="ghost").delete()


def test_delete_of_a_sliced_queryset_is_refused(db) -> None:
    Owner.objects.create(name="ann")
    with pytest.raises(TypeError):
        Owner.objects.all()[:1].delete()
    assert Owner.objects.count() == 1
