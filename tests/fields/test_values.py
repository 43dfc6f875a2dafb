"""The table of valid and invalid inputs of every field, checked on assignment and in clean."""

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
    Country,
    CountryField,
    IPRangeField,
    JSONSchemaField,
    Money,
    MoneyField,
    PathField,
    PercentageField,
    PhoneField,
    SemVer,
    SemverField,
    TimezoneField,
)
from dorm.exceptions import ValidationError

D = decimal.Decimal


class Sample(dorm.Model):
    price = MoneyField(currency="EUR", null=True)
    yen = MoneyField(currency="JPY", null=True)
    version = SemverField(blank=True)
    phone = PhoneField(blank=True)
    local_phone = PhoneField(region="ES", blank=True)
    color = ColorField(blank=True)
    doc = JSONSchemaField(
        schema={
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        },
        null=True,
    )
    network = IPRangeField(null=True)
    tz = TimezoneField(default="UTC")
    path = PathField(blank=True)
    safe_path = PathField(allow_absolute=False, allow_parent=False, blank=True)
    completion = PercentageField(null=True)
    country = CountryField(blank=True)

    class Meta:
        app_label = "t_extra_values"


VALID: list[tuple[str, Any, Any]] = [
    ("price", Money("9.99", "EUR"), Money("9.99", "EUR")),
    ("price", D("10"), Money("10.00", "EUR")),
    ("price", 3, Money("3.00", "EUR")),
    ("price", "0.5", Money("0.50", "EUR")),
    ("price", 0.1, Money("0.10", "EUR")),
    ("price", -12, Money("-12.00", "EUR")),
    ("yen", 500, Money("500", "JPY")),
    ("version", "1.0.0", "1.0.0"),
    ("version", "0.0.0", "0.0.0"),
    ("version", "1.2.3-alpha.1+build.5", "1.2.3-alpha.1+build.5"),
    ("version", "1.0.0-0.3.7", "1.0.0-0.3.7"),
    ("version", "1.0.0-x-y-z.--", "1.0.0-x-y-z.--"),
    ("version", "1.0.0+0017", "1.0.0+0017"),  # leading zeros are fine in build metadata
    ("version", "10.20.30", "10.20.30"),
    ("phone", "+34 612 34 56 78", "+34612345678"),
    ("phone", "+1 (202) 456-1111", "+12024561111"),
    ("phone", "0044 20 7946 0958", "+442079460958"),
    ("local_phone", "612.34.56.78", "+34612345678"),
    ("color", "#1e90ff", "#1E90FF"),
    ("color", "#ABCDEF", "#ABCDEF"),
    ("color", "#11223344", "#11223344"),
    ("doc", {"name": "a"}, {"name": "a"}),
    ("doc", {"name": "a", "tags": ["x", "y"]}, {"name": "a", "tags": ["x", "y"]}),
    ("network", "10.0.0.0/24", ipaddress.ip_network("10.0.0.0/24")),
    ("network", "192.168.1.7", ipaddress.ip_network("192.168.1.7/32")),
    ("network", "2001:db8::/32", ipaddress.ip_network("2001:db8::/32")),
    ("network", ipaddress.ip_address("10.1.2.3"), ipaddress.ip_network("10.1.2.3/32")),
    ("tz", "Europe/Madrid", zoneinfo.ZoneInfo("Europe/Madrid")),
    ("tz", "UTC", zoneinfo.ZoneInfo("UTC")),
    ("tz", "America/Argentina/Buenos_Aires", zoneinfo.ZoneInfo("America/Argentina/Buenos_Aires")),
    ("path", "a//b/./c", pathlib.PurePosixPath("a/b/c")),
    ("path", "/etc/passwd", pathlib.PurePosixPath("/etc/passwd")),
    ("path", "../up", pathlib.PurePosixPath("../up")),
    ("safe_path", "media/avatar.png", pathlib.PurePosixPath("media/avatar.png")),
    ("completion", 0, D("0.00")),
    ("completion", 100, D("100.00")),
    ("completion", 12.5, D("12.50")),
    ("completion", "33.33", D("33.33")),
    ("completion", D("99.99"), D("99.99")),
    ("country", "ES", "ES"),
    ("country", "us", "US"),
    ("country", Country("DE"), "DE"),
]

INVALID: list[tuple[str, Any, str]] = [
    ("price", Money("1", "USD"), "currency mismatch"),
    ("price", "1.005", "at most 2 decimal places"),
    ("price", "abc", "an amount in EUR"),
    ("price", float("nan"), "an amount in EUR"),
    ("price", True, "an amount in EUR"),
    ("price", D("1e30"), "at most 19 digits"),
    ("yen", "1.5", "at most 0 decimal places"),
    ("version", "v1.0.0", "SemVer"),
    ("version", "1.0", "SemVer"),
    ("version", "01.0.0", "SemVer"),
    ("version", "1.02.0", "SemVer"),
    ("version", "1.0.0-01", "SemVer"),
    ("version", "1.0.0-", "SemVer"),
    ("version", "1.0.0+", "SemVer"),
    ("version", "1.0.0-alpha..1", "SemVer"),
    ("version", "1.0.0-al_pha", "SemVer"),
    ("version", "1.0.0 ", "SemVer"),
    ("version", "１.0.0", "SemVer"),  # a full-width digit
    ("version", 1, "SemVer"),
    ("phone", "612345678", "starting with '+'"),
    ("phone", "+34 000", "real numbering plan"),
    ("phone", "+1 555 0100 0000 0000", "real numbering plan"),
    ("phone", "+34 612 34 56 7a", "digits"),
    ("phone", 34612345678, "string"),
    ("color", "red", "#RRGGBB"),
    ("color", "#fff", "#RRGGBB"),
    ("color", "1e90ff", "#RRGGBB"),
    ("color", "#1e90fg", "#RRGGBB"),
    ("color", "#1e90ff0", "#RRGGBB"),
    ("doc", {"tags": ["x"]}, "at $: 'name' is a required property"),
    ("doc", {"name": "a", "tags": ["x", 2]}, "at $.tags[1]: 2 is not of type 'string'"),
    ("doc", [1], "at $: [1] is not of type 'object'"),
    ("network", "10.0.0.1/24", "host bits set"),
    ("network", "10.0.0.0/33", "CIDR"),
    ("network", "not-a-network", "CIDR"),
    ("network", 42, "CIDR"),
    ("tz", "Mars/Olympus", "IANA time zone"),
    ("tz", "../../etc/passwd", "IANA time zone"),
    ("tz", "/usr/share/zoneinfo/UTC", "IANA time zone"),
    ("tz", 3, "IANA time zone"),
    ("path", "a\x00b", "NUL"),
    ("safe_path", "/etc/passwd", "relative path"),
    ("safe_path", "media/../../secret", "'..'"),
    ("path", 5, "POSIX path"),
    ("completion", -1, "[0, 100]"),
    ("completion", 100.01, "[0, 100]"),
    ("completion", "12.345", "at most 2 decimals"),
    ("completion", "lots", "[0, 100]"),
    ("completion", float("inf"), "[0, 100]"),
    ("country", "XX", "ISO 3166-1 alpha-2"),
    ("country", "ESP", "ISO 3166-1 alpha-2"),
    ("country", "Spain", "ISO 3166-1 alpha-2"),
]


def _names_the_value(message: str, given: Any) -> bool:
    # Money is shown as "5 USD" (str); every other value as its repr.
    return (str(given) if isinstance(given, Money) else repr(given)) in message


@pytest.mark.parametrize(("name", "given", "expected"), VALID, ids=lambda v: repr(v)[:40])
def test_valid_input_is_normalised_on_assignment(name: str, given: Any, expected: Any) -> None:
    obj = Sample()
    setattr(obj, name, given)
    value = getattr(obj, name)
    assert value == expected
    assert type(value) is type(Sample._meta.get_field(name).to_python(expected))


@pytest.mark.parametrize(("name", "given", "expected"), VALID, ids=lambda v: repr(v)[:40])
def test_valid_input_is_normalised_by_the_constructor(name: str, given: Any, expected: Any) -> None:
    obj = Sample(**{name: given})
    value = getattr(obj, name)
    assert value == expected and obj.__dict__[name] == expected
    assert type(value) is type(Sample._meta.get_field(name).to_python(expected))


def test_constructor_holds_money_and_e164_phone_numbers() -> None:
    obj = Sample(price=D("5.50"), phone="+34 612 34 56 78", local_phone="612 34 56 78")
    assert obj.price == Money("5.50", "EUR") and type(obj.price) is Money
    assert obj.phone == "+34612345678" and obj.local_phone == "+34612345678"
    positional = Sample(None, D("5.5"))  # id, price
    assert positional.price == Money("5.50", "EUR")


@pytest.mark.parametrize(("name", "given", "message"), INVALID, ids=lambda v: repr(v)[:40])
def test_invalid_input_raises_on_assignment(name: str, given: Any, message: str) -> None:
    obj = Sample()
    before = getattr(obj, name)
    with pytest.raises(ValidationError) as info:
        setattr(obj, name, given)
    assert message in str(info.value)
    assert f"Sample.{name}" in str(info.value)  # the error names the field...
    assert _names_the_value(str(info.value), given)  # ...and the value
    assert getattr(obj, name) == before  # nothing was stored


@pytest.mark.parametrize(("name", "given", "message"), INVALID, ids=lambda v: repr(v)[:40])
def test_invalid_input_raises_in_the_constructor(name: str, given: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Sample(**{name: given})
    assert message in str(info.value)
    assert f"Sample.{name}" in str(info.value)
    assert _names_the_value(str(info.value), given)


def test_full_clean_checks_values_put_past_the_descriptor() -> None:
    obj = Sample()
    obj.__dict__.update(color="red", tz="Mars/Olympus")  # as a stale database row can hold
    with pytest.raises(ValidationError) as info:
        obj.full_clean(validate_unique=False, validate_constraints=False)
    assert "#RRGGBB" in " ".join(info.value.message_dict["color"])
    assert "'Mars/Olympus' is not an IANA" in " ".join(info.value.message_dict["tz"])


def test_values_have_useful_types() -> None:
    obj = Sample(tz="Asia/Tokyo")
    obj.clean_fields(exclude=["price", "yen", "doc", "network", "completion"])
    assert obj.tz == zoneinfo.ZoneInfo("Asia/Tokyo")
    assert Sample().tz == zoneinfo.ZoneInfo("UTC")  # the default is converted too
    obj.version = "1.0.0-rc.1"
    assert isinstance(obj.version, SemVer) and obj.version < "1.0.0"
    obj.country = "es"
    assert obj.country == "ES" and obj.country.name == "Spain" and obj.country.alpha_3 == "ESP"
    assert obj.get_country_display() == "Spain"
    obj.price = None
    assert obj.price is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MoneyField(currency="EURO"), "ISO 4217"),
        (lambda: MoneyField(currency="eur"), "ISO 4217"),
        (lambda: MoneyField(currency="XAU"), "no minor unit"),
        (lambda: MoneyField(currency="EUR", decimal_places=-1), "decimal_places"),
        (lambda: MoneyField(currency="EUR", max_digits=0), "max_digits"),
        (lambda: MoneyField(currency="EUR", max_digits=4, decimal_places=5), "decimal_places"),
        (lambda: PhoneField(region="ZZ"), "region"),
        (lambda: PhoneField(region="es"), "region"),
        (lambda: JSONSchemaField(schema={"type": "nonsense"}), "invalid schema"),
        (lambda: JSONSchemaField(schema={"minLength": "3"}), "invalid schema"),
        (lambda: JSONSchemaField(schema=[1]), "must be a JSON Schema dict"),
        (lambda: TimezoneField(default="Nowhere/Land"), "IANA"),
        (lambda: PathField(allow_absolute="no"), "allow_absolute"),
        (lambda: PercentageField(decimal_places=11), "decimal_places"),
    ],
)
def test_bad_field_arguments_raise_value_error_at_definition(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_arguments_fail_the_model_class_statement() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):

        class Broken(dorm.Model):
            price = MoneyField(currency="ZZZ")

            class Meta:
                app_label = "t_extra_values_broken"


def test_money_field_takes_minor_units_from_iso_4217() -> None:
    assert MoneyField(currency="EUR").decimal_places == 2
    assert MoneyField(currency="JPY").decimal_places == 0
    assert MoneyField(currency="BHD").decimal_places == 3
    assert MoneyField(currency="XAU", decimal_places=4).decimal_places == 4
    assert MoneyField(currency="EUR", decimal_places=4).decimal_places == 4
