"""Every extra field through a real database (SQLite and PostgreSQL): save, load, filter."""

from __future__ import annotations

import decimal
import ipaddress
import pathlib
import zoneinfo
from typing import Any

import pytest

import dorm
from dorm.contrib.extra_fields import (
    ColorField,
    CountryField,
    IPRangeField,
    JSONSchemaField,
    Money,
    MoneyField,
    PathField,
    PercentageField,
    PhoneField,
    SemverField,
    TimezoneField,
    autoslug,
)
from dorm.db.connection import get_connection
from dorm.exceptions import FieldError, IntegrityError, ValidationError

D = decimal.Decimal


class Item(dorm.Model):
    name = dorm.CharField(max_length=40)
    slug = dorm.SlugField(default=autoslug("name"), unique=True, max_length=12)
    price = MoneyField(currency="EUR", null=True)
    dinar = MoneyField(currency="KWD", null=True)
    version = SemverField(blank=True)
    phone = PhoneField(blank=True)
    color = ColorField(default="#000000")
    doc = JSONSchemaField(schema={"type": "object"}, default=dict)
    network = IPRangeField(null=True)
    tz = TimezoneField(default="UTC")
    path = PathField(blank=True)
    completion = PercentageField(null=True)
    country = CountryField(blank=True)

    class Meta:
        app_label = "t_extra_roundtrip"


class Orphan(dorm.Model):
    slug = dorm.SlugField(default=autoslug("title"))

    class Meta:
        app_label = "t_extra_roundtrip"


MODELS = [Item, Orphan]

VALUES: dict[str, Any] = {
    "price": Money("1234567.89", "EUR"),
    "dinar": Money("0.125", "KWD"),
    "version": "2.0.0-rc.1+build.7",
    "phone": "+442079460958",
    "color": "#1E90FFCC",
    "doc": {"a": [1, 2, {"b": None}], "unicode": "ñ"},
    "network": ipaddress.ip_network("2001:db8:1234::/48"),
    "tz": zoneinfo.ZoneInfo("America/New_York"),
    "path": pathlib.PurePosixPath("media/ü/avatar.png"),
    "completion": D("66.67"),
    "country": "JP",
}


def test_every_field_round_trips_with_its_type(clean_tables: Any) -> None:
    item = Item(name="Widget", **VALUES)
    item.save()
    loaded = Item.objects.get(pk=item.pk)
    for name, expected in VALUES.items():
        value = getattr(loaded, name)
        assert value == expected, name
        assert type(value) is type(Item._meta.get_field(name).to_python(expected)), name
    assert loaded.price.amount == D("1234567.89") and loaded.dinar.amount == D("0.125")
    assert loaded.country.name == "Japan"


def test_nulls_and_defaults_round_trip(clean_tables: Any) -> None:
    Item.objects.create(name="Plain")
    loaded = Item.objects.get()
    assert loaded.price is None and loaded.network is None and loaded.completion is None
    assert loaded.tz == zoneinfo.ZoneInfo("UTC") and loaded.color == "#000000"
    assert loaded.doc == {} and loaded.version == "" and loaded.slug == "plain"


def test_filters_bind_converted_values(clean_tables: Any) -> None:
    Item.objects.create(name="a", price=Money("5.00", "EUR"), network="10.0.0.0/8", country="ES")
    Item.objects.create(name="b", price=Money("50.00", "EUR"), network="10.1.0.0/16")
    Item.objects.create(name="c", price=D("500"), network="192.168.0.0/24")
    assert Item.objects.filter(price__gte=Money("50", "EUR")).count() == 2
    assert list(Item.objects.filter(price=D("5")).values_list("name", flat=True)) == ["a"]
    assert Item.objects.filter(country="es").count() == 1  # the lookup value is normalised
    by_ip = Item.objects.filter(network__net_contains="10.1.2.3").order_by("name")
    assert list(by_ip.values_list("name", flat=True)) == ["a", "b"]
    by_net = Item.objects.filter(network__net_contains="10.0.0.0/8")
    assert list(by_net.values_list("name", flat=True)) == ["a"]
    assert not Item.objects.filter(network__net_contains="2001:db8::1").exists()
    with pytest.raises(ValidationError, match="currency mismatch"):
        list(Item.objects.filter(price=Money(5, "USD")))


def test_constructor_values_are_converted_before_save(clean_tables: Any) -> None:
    item = Item(name="Mug", price=D("5.50"), phone="+44 20 7946 0958", tz="Asia/Tokyo")
    assert item.price == Money("5.50", "EUR") and item.phone == "+442079460958"
    assert item.tz == zoneinfo.ZoneInfo("Asia/Tokyo")  # held before anything is saved
    item.save()
    created = Item.objects.create(name="Cup", completion=12.5, network="10.0.0.0/8")
    assert created.completion == D("12.50")
    assert created.network == ipaddress.ip_network("10.0.0.0/8")
    loaded = Item.objects.get(pk=item.pk)
    assert loaded.price == Money("5.50", "EUR") and loaded.phone == "+442079460958"
    assert Item.objects.get(pk=created.pk).completion == D("12.50")


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("color", "red", "Item.color: 'red' is not a colour as '#RRGGBB'"),
        ("price", Money(5, "USD"), "currency mismatch: Item.price holds EUR, got 5 USD"),
        ("doc", [1], "Item.doc: [1] does not match the schema at $: [1] is not of type"),
        ("tz", "Mars/Olympus", "Item.tz: 'Mars/Olympus' is not an IANA time zone name"),
        ("country", "XX", "Item.country: 'XX' is not an ISO 3166-1 alpha-2 country code"),
    ],
)
def test_invalid_values_raise_at_once_and_never_reach_the_database(
    clean_tables: Any, name: str, bad: Any, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Item.objects.create(name="x", **{name: bad})
    assert message in str(info.value)
    item = Item.objects.create(name="y")
    with pytest.raises(ValidationError) as info:
        setattr(item, name, bad)
    assert message in str(info.value)
    item.__dict__[name] = bad  # past the descriptor: save() still refuses to bind it
    with pytest.raises(ValidationError) as info:
        item.save()
    assert message in str(info.value)
    assert list(Item.objects.values_list("name", flat=True)) == ["y"]
    assert getattr(Item.objects.get(), name) == getattr(Item(), name)  # the default, unchanged


def test_percentage_range_is_a_check_constraint(clean_tables: Any) -> None:
    Item.objects.create(name="x")
    table = get_connection().ops.quote_name(Item._meta.db_table)
    ph = get_connection().ops.placeholder
    with pytest.raises(IntegrityError):
        get_connection().execute(f'UPDATE {table} SET "completion" = {ph}', [101])


def test_autoslug_appends_a_counter_on_collision(clean_tables: Any) -> None:
    slugs = [Item.objects.create(name="Blue Mug").slug for _ in range(3)]
    assert slugs == ["blue-mug", "blue-mug-2", "blue-mug-3"]
    long = [Item.objects.create(name="A very long product name").slug for _ in range(2)]
    assert long == ["a-very-long", "a-very-lon-2"]  # cut to max_length=12
    kept = Item.objects.create(name="Blue Mug", slug="my-own")
    assert kept.slug == "my-own"
    item = Item.objects.get(slug="blue-mug")
    item.save()  # re-saving keeps the slug, and does not collide with itself
    assert Item.objects.get(pk=item.pk).slug == "blue-mug"


def test_autoslug_with_an_unknown_source_fails_at_save(clean_tables: Any) -> None:
    with pytest.raises(FieldError, match=r"Orphan.slug: autoslug\('title'\) names no field"):
        Orphan().save()
