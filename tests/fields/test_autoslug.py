"""``autoslug`` is its SlugField's own save-time default: no plugin hook, no cost elsewhere.

SQLite and PostgreSQL: filled on insert, update, ``bulk_create`` and ``bulk_update``; hand-set
slugs are checked when assigned; saving a model without extra fields runs no dorm-fields code.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
import dorm.contrib.extra_fields as extra_fields
from dorm import plugins
from dorm.contrib.extra_fields import autoslug
from dorm.contrib.extra_fields import plugin as extra_fields_plugin
from dorm.exceptions import IntegrityError, ValidationError


class Page(dorm.Model):
    title = dorm.CharField(max_length=40)
    slug = dorm.SlugField(default=autoslug("title"), unique=True, max_length=12)

    class Meta:
        app_label = "t_extra_autoslug"


class Plain(dorm.Model):
    """Core fields only, a SlugField among them."""

    name = dorm.CharField(max_length=40)
    slug = dorm.SlugField(blank=True)
    amount = dorm.DecimalField(max_digits=8, decimal_places=2, default=0)

    class Meta:
        app_label = "t_extra_autoslug"


MODELS = [Page, Plain]

_PACKAGE_DIR = str(Path(extra_fields.__file__).parent)


@contextlib.contextmanager
def _dorm_fields_calls() -> Iterator[list[str]]:
    """Record every call of a function defined in dorm.contrib.extra_fields."""
    calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            calls.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}")

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


def _slugs() -> list[str]:
    return sorted(Page.objects.values_list("slug", flat=True))


def test_dorm_fields_implements_no_save_hook() -> None:
    name = plugins.get_plugin_manager().get_name(extra_fields_plugin)
    assert name is not None
    assert plugins.hooks_of(name) == [
        "dorm_connection_created",
        "dorm_register_field_types",
        "dorm_register_lookups",
        "dorm_register_value_schemas",
    ]


def test_saving_a_model_without_extra_fields_runs_no_dorm_fields_code(clean_tables: Any) -> None:
    Plain.objects.exists()  # the connection is open (its dorm_connection_created has run)
    with _dorm_fields_calls() as calls:
        obj = Plain.objects.create(name="a", slug="a")
        obj.amount = decimal.Decimal("2.50")
        obj.save()
        obj.save(update_fields=["amount"])
        made = Plain.objects.bulk_create([Plain(name="b"), Plain(name="c", slug="c")])
        Plain.objects.bulk_update(made, ["name", "slug"])
        loaded = list(Plain.objects.all())
    assert calls == []
    assert len(loaded) == 3 and Plain.objects.get(name="a").amount == decimal.Decimal("2.50")
    with _dorm_fields_calls() as calls:  # the probe does see dorm-fields when it runs
        Page.objects.create(title="Probe")
    assert "slug.py:pre_save" in calls


def test_autoslug_fills_on_insert_and_update(clean_tables: Any) -> None:
    page = Page(title="Blue Mug")
    assert page.slug == ""  # made when the row is written, from the title it has then
    page.save()
    assert page.slug == "blue-mug"
    late = Page()
    late.title = "Late Title"
    late.save()
    assert late.slug == "late-title"
    Page.objects.filter(pk=page.pk).update(slug="")
    loaded = Page.objects.get(pk=page.pk)
    loaded.save()  # an UPDATE fills it too, without colliding with the row itself
    assert loaded.slug == "blue-mug" and Page.objects.get(pk=page.pk).slug == "blue-mug"
    assert _slugs() == ["blue-mug", "late-title"]


def test_autoslug_fills_in_bulk_create_and_bulk_update(clean_tables: Any) -> None:
    Page.objects.create(title="Blue Mug")
    made = Page.objects.bulk_create([Page(title="Red Cup"), Page(title="Blue Mug")])
    assert [p.slug for p in made] == ["red-cup", "blue-mug-2"]
    assert _slugs() == ["blue-mug", "blue-mug-2", "red-cup"]
    Page.objects.filter(title="Red Cup").update(slug="")
    emptied = list(Page.objects.filter(title="Red Cup"))
    assert emptied[0].slug == ""
    Page.objects.bulk_update(emptied, ["slug"])
    assert emptied[0].slug == "red-cup"
    assert Page.objects.get(title="Red Cup").slug == "red-cup"


def test_autoslug_fills_through_the_async_api(clean_tables: Any) -> None:
    async def write() -> tuple[Page, list[Page]]:
        page = Page(title="Blue Mug")
        await page.asave()
        made = await Page.objects.abulk_create([Page(title="Blue Mug")])
        return page, made

    page, made = asyncio.run(write())
    assert page.slug == "blue-mug" and made[0].slug == "blue-mug-2"
    assert _slugs() == ["blue-mug", "blue-mug-2"]


def test_one_bulk_create_does_not_see_its_own_new_slugs(clean_tables: Any) -> None:
    with pytest.raises(IntegrityError):  # unique=True refuses the duplicate
        Page.objects.bulk_create([Page(title="Twin"), Page(title="Twin")])
    assert not Page.objects.exists()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("Not a slug", "Page.slug: 'Not a slug' is not a slug (letters, digits, '-' and '_')"),
        ("a-very-long-slug", "Page.slug: 'a-very-long-slug' is not a slug of at most 12 "),
    ],
)
def test_hand_set_slugs_are_checked_when_assigned(
    clean_tables: Any, given: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Page(title="x", slug=given)
    assert message in str(info.value)
    page = Page(title="Own", slug="my-own")
    with pytest.raises(ValidationError) as info:
        page.slug = given
    assert message in str(info.value) and page.slug == "my-own"
    page.save()
    assert Page.objects.get().slug == "my-own"  # a hand-set slug is kept
    page.slug = ""  # empty is allowed: the next write makes it
    page.save()
    assert Page.objects.get().slug == "own"
