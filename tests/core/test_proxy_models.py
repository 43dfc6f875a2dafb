"""Proxy models (Meta.proxy = True) on both backends: same table, own managers, ordering
and methods, signals with the proxy class, no table of their own in migrations."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.exceptions import FieldError
from dorm.migrations.state import ProjectState


class Person(dorm.Model):
    name = dorm.CharField(max_length=30)
    retired = dorm.BooleanField(default=False)

    class Meta:
        app_label = "t_proxy"
        ordering = ["name"]


class RetiredManager(dorm.Manager):
    def get_queryset(self) -> Any:
        return super().get_queryset().filter(retired=True)


class Pensioner(Person):
    objects = RetiredManager()

    class Meta:
        proxy = True
        app_label = "t_proxy"
        ordering = ["-name"]

    def greeting(self) -> str:
        return f"Good day, {self.name}"


class Alias(Person):
    class Meta:
        proxy = True
        app_label = "t_proxy"


class Pet(dorm.Model):
    owner = dorm.ForeignKey(Person, on_delete=dorm.CASCADE, related_name="pets")

    class Meta:
        app_label = "t_proxy"


MODELS = [Person, Pet]
pytestmark = pytest.mark.usefixtures("clean_tables")


def test_a_proxy_reads_and_writes_the_concrete_table(db) -> None:
    Person.objects.create(name="Ann", retired=True)
    Person.objects.create(name="Bob")
    made = Pensioner.objects.create(name="Cid", retired=True)
    assert Pensioner._meta.db_table == Person._meta.db_table
    assert db.count_rows(Person._meta.db_table) == 3
    # Own manager and ordering; instances of the proxy class with its methods.
    assert [p.name for p in Pensioner.objects.all()] == ["Cid", "Ann"]
    assert all(type(p) is Pensioner for p in Pensioner.objects.all())
    assert Pensioner.objects.get(name="Ann").greeting() == "Good day, Ann"
    # Inherited: the parent's managers and ordering when the proxy sets none.
    assert [p.name for p in Alias.objects.all()] == ["Ann", "Bob", "Cid"]
    assert Person.objects.get(pk=made.pk).name == "Cid"
    with pytest.raises(Pensioner.DoesNotExist):
        Pensioner.objects.get(name="Bob")
    assert issubclass(Pensioner.DoesNotExist, Person.DoesNotExist)


def test_updates_deletes_and_reverse_relations_through_a_proxy(db) -> None:
    ann = Person.objects.create(name="Ann", retired=True)
    Pet.objects.create(owner=ann)
    proxy_ann = Pensioner.objects.get(pk=ann.pk)
    assert proxy_ann.pets.count() == 1
    assert Pensioner.objects.filter(pets__isnull=False).count() == 1
    proxy_ann.name = "Anne"
    proxy_ann.save()
    assert Person.objects.get(pk=ann.pk).name == "Anne"
    proxy_ann.delete()  # cascades to the pets of the concrete row
    assert db.count_rows(Person._meta.db_table) == 0
    assert db.count_rows(Pet._meta.db_table) == 0


def test_signals_are_sent_with_the_proxy_class(db) -> None:
    seen: list[tuple[str, Any]] = []

    def on_save(sender: Any, **kwargs: Any) -> None:
        seen.append(("save", sender))

    def on_delete(sender: Any, **kwargs: Any) -> None:
        seen.append(("delete", sender))

    dorm.signals.post_save.connect(on_save, sender=Pensioner, weak=False)
    dorm.signals.post_delete.connect(on_delete, weak=False)
    try:
        p = Pensioner.objects.create(name="Dee", retired=True)
        Person.objects.create(name="Eve")  # a save of the concrete model is not the proxy's
        p.delete()
    finally:
        dorm.signals.post_save.disconnect(on_save, sender=Pensioner)
        dorm.signals.post_delete.disconnect(on_delete)
    assert seen == [("save", Pensioner), ("delete", Pensioner)]


def test_a_proxy_has_no_table_and_is_in_the_migration_state_as_in_django(db) -> None:
    from dorm.migrations.schema import SchemaEditor

    state = ProjectState.from_apps(apps, ["t_proxy"])
    assert sorted(name for _app, name in state.models) == ["alias", "pensioner", "person", "pet"]
    pensioner = state.models["t_proxy", "pensioner"]
    assert pensioner.fields == {}
    assert pensioner.options == {"proxy": True, "ordering": ["-name"]}
    assert pensioner.bases == ("t_proxy.person",)
    historical = state.apps.get_model("t_proxy", "Pensioner")
    assert historical._meta.proxy and historical._meta.db_table == "t_proxy_person"
    with (
        pytest.raises(FieldError, match="Pensioner is a proxy of Person and has no table"),
        SchemaEditor() as editor,
    ):
        editor.create_model(Pensioner)


def test_a_proxy_cannot_add_fields_or_stand_alone() -> None:
    with pytest.raises(FieldError, match="proxy model Bad cannot add fields \\(age\\)"):

        class Bad(Person):
            age = dorm.IntegerField()

            class Meta:
                proxy = True
                app_label = "t_proxy_bad"

    with pytest.raises(TypeError, match="proxy model Lonely needs exactly one concrete model"):

        class Lonely(dorm.Model):
            class Meta:
                proxy = True
                app_label = "t_proxy_bad"
