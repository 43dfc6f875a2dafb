"""``Field.descriptor_class``: a field can opt in to conversion on assignment."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.exceptions import ValidationError
from dorm.models.fields import DeferredAttribute, ValidatedAttribute


class UpperField(dorm.CharField):
    """A field of this test: upper-cases on assignment, rejects digits."""

    descriptor_class = ValidatedAttribute

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and any(c.isdigit() for c in value):
            raise ValidationError(f"{self.name}: {value!r} is not digit-free")
        return value.upper() if isinstance(value, str) else value


class Shout(dorm.Model):
    word = UpperField(max_length=20)
    plain = dorm.CharField(max_length=20, default="")

    class Meta:
        app_label = "t_descriptors"


def test_core_fields_keep_the_non_data_descriptor() -> None:
    assert type(Shout.__dict__["plain"]) is DeferredAttribute
    assert isinstance(Shout.__dict__["word"], ValidatedAttribute)


def test_assignment_converts_at_once() -> None:
    obj = Shout()
    obj.word = "hey"
    assert obj.word == "HEY" and obj.__dict__["word"] == "HEY"


def test_invalid_assignment_raises_and_keeps_the_old_value() -> None:
    obj = Shout(word="ok")
    with pytest.raises(ValidationError, match="word: 'h1' is not digit-free"):
        obj.word = "h1"
    assert obj.word == "ok"


def test_constructor_values_are_checked_by_full_clean() -> None:
    obj = Shout(word="b4d")
    with pytest.raises(ValidationError, match="digit-free"):
        obj.full_clean(validate_unique=False, validate_constraints=False)


def test_deferred_values_still_load_through_the_data_descriptor() -> None:
    obj = Shout.from_db("default", ["id", "word"], [1, "LOADED"])
    assert obj.word == "LOADED"
