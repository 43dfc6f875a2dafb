"""Model(**kwargs) through the constructor compiled per model: what it sets, the
defaults it calls, and the ways back to the generic path (positional arguments, a
relation and its id together, a subclass, an ``__init__`` of the user's own)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import dorm
from dorm.exceptions import ValidationError
from dorm.models.fields import ValidatedAttribute


class _Converting(ValidatedAttribute):
    converts_on_init = True


class Percent(dorm.IntegerField):
    """Converts (and checks) on assignment, constructor included."""

    descriptor_class = _Converting

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        if value is not None and not 0 <= value <= 100:
            raise ValidationError(f"{self.name}: {value} is not a percentage")
        return value


class Owner(dorm.Model):
    name = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_model_init"


class Thing(dorm.Model):
    # Names the compiled constructor must not confuse with its own locals or builtins.
    type = dorm.CharField(max_length=10, default="plain")
    d = dorm.IntegerField(null=True)
    self_note = dorm.TextField(default="")
    tags = dorm.JSONField(default=list)
    token = dorm.UUIDField(default=uuid.uuid4)
    owner = dorm.ForeignKey(Owner, on_delete=dorm.CASCADE, null=True)

    class Meta:
        app_label = "t_model_init"

    @property
    def shout(self) -> str:
        return self.type.upper()

    @shout.setter
    def shout(self, value: str) -> None:
        self.type = value.lower()


class Odd(dorm.Model):
    """A field named like a parameter of the constructor: the generic path serves it."""

    kwargs = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_model_init"


class Custom(Thing):
    class Meta:
        proxy = True
        app_label = "t_model_init"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("self_note", "made by Custom")
        super().__init__(*args, **kwargs)


class Gauge(dorm.Model):
    level = Percent(default=0)

    class Meta:
        app_label = "t_model_init"


MODELS = [Owner, Thing, Gauge]
pytestmark = pytest.mark.usefixtures("clean_tables")


def test_values_defaults_and_names_that_shadow_builtins(db) -> None:
    a = Thing(type="x", d=4)
    b = Thing()
    assert (a.type, a.d, a.self_note, a.owner_id) == ("x", 4, "", None)
    assert (b.type, b.d) == ("plain", None)
    assert a.tags == [] and b.tags == [] and a.tags is not b.tags  # called per instance
    assert isinstance(a.token, uuid.UUID) and a.token != b.token
    assert type(Thing.__dict__["__init__"]).__name__ == "function"  # installed on the class
    a.save()
    assert Thing.objects.values_list("type", "d").get(pk=a.pk) == ("x", 4)


def test_relations_properties_and_unknown_names(db) -> None:
    owner = Owner.objects.create(name="o")
    assert Thing(owner=owner).owner_id == owner.pk
    assert Thing(owner_id=owner.pk).owner == owner
    with pytest.raises(TypeError, match="owner_id"):
        Thing(owner=owner, owner_id=owner.pk)
    assert Thing(shout="LOUD").type == "loud"
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'tpye'"):
        Thing(tpye="x")


def test_positional_arguments_and_a_field_named_kwargs(db) -> None:
    t = Thing(None, "pos", 7)
    assert (t.type, t.d, t.self_note) == ("pos", 7, "")
    owner = Owner.objects.create(name="o")
    token = uuid.uuid4()
    # As Django: a relation's positional value is its key.
    full = Thing(None, "all", 1, "n", ["x"], token, owner.pk)
    assert (full.owner_id, full.owner, full.token, full.tags) == (owner.pk, owner, token, ["x"])
    with pytest.raises(TypeError, match="both positional and keyword 'owner'"):
        Thing(None, "all", 1, "n", ["x"], token, owner.pk, owner_id=owner.pk)
    assert Odd(kwargs=3).kwargs == 3 and Odd().kwargs == 0


def test_a_subclass_with_its_own_init_keeps_it(db) -> None:
    Thing(type="warm")  # the parent's compiled constructor is installed first
    c = Custom(type="c")
    assert (type(c), c.type, c.self_note) == (Custom, "c", "made by Custom")
    assert "__init__" in Custom.__dict__ and Custom.__dict__["__init__"].__module__ == __name__


def test_a_field_that_converts_on_assignment_still_validates(db) -> None:
    assert Gauge(level="42").level == 42
    assert Gauge().level == 0
    with pytest.raises(ValidationError, match="level: 140 is not a percentage"):
        Gauge(level=140)


def test_a_field_added_later_reaches_new_instances(db) -> None:
    Owner(name="before")
    extra = dorm.IntegerField(default=5)
    extra.contribute_to_class(Owner, "extra")
    try:
        assert Owner(name="after").extra == 5
    finally:
        Owner._meta.local_fields.remove(extra)
        Owner._meta._expire_cache()
        delattr(Owner, "extra")
    assert not hasattr(Owner(name="again"), "extra")
