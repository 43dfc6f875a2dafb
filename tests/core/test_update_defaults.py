"""``Options.update_defaults``: values every ``QuerySet.update()`` sets unless given."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import dorm


class Stamped(dorm.Model):
    name = dorm.CharField(max_length=20)
    touched = dorm.IntegerField(default=0)

    class Meta:
        app_label = "update_defaults"


MODELS = [Stamped]

pytestmark = pytest.mark.usefixtures("clean_tables")


@pytest.fixture
def bumping() -> Iterator[None]:
    Stamped._meta.update_defaults["touched"] = lambda: dorm.F("touched") + 1
    yield
    Stamped._meta.update_defaults.clear()


def test_update_sets_the_default_unless_the_call_sets_it(db: Any, bumping: None) -> None:
    Stamped.objects.bulk_create([Stamped(name="a"), Stamped(name="b")])
    assert Stamped.objects.filter(name="a").update(name="c") == 1
    assert dict(Stamped.objects.values_list("name", "touched")) == {"c": 1, "b": 0}
    Stamped.objects.update(name="d", touched=7)
    assert set(Stamped.objects.values_list("touched", flat=True)) == {7}


def test_no_defaults_no_change(db: Any) -> None:
    Stamped.objects.create(name="a")
    Stamped.objects.update(name="b")
    assert list(Stamped.objects.values_list("name", "touched")) == [("b", 0)]
