"""Money arithmetic and currency rules; SemVer precedence; slugify."""

from __future__ import annotations

import decimal
import pickle
from typing import Any

import pytest

from dorm.contrib.extra_fields import CurrencyMismatchError, Money, SemVer, slugify
from dorm.contrib.extra_fields.money import currency_exponent, is_currency
from dorm.exceptions import ValidationError

D = decimal.Decimal


def test_money_arithmetic_within_one_currency() -> None:
    a, b = Money("10.50", "EUR"), Money("0.25", "EUR")
    assert a + b == Money("10.75", "EUR")
    assert a - b == Money("10.25", "EUR")
    assert a * 2 == 2 * a == Money("21.00", "EUR")
    assert a / 2 == Money("5.25", "EUR")
    assert -a == Money("-10.50", "EUR") and abs(-a) == a
    assert b < a and a >= b and max(a, b) is a
    assert str(a) == "10.50 EUR" and repr(a) == "Money('10.50', 'EUR')"
    assert a.amount == D("10.50") and isinstance(a.amount, D)
    assert pickle.loads(pickle.dumps(a)) == a
    assert not Money(0, "EUR")


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
    ],
)
def test_money_refuses_mixed_currencies(operation: Any) -> None:
    with pytest.raises(CurrencyMismatchError, match="currency mismatch"):
        operation(Money(1, "EUR"), Money(1, "USD"))
    assert issubclass(CurrencyMismatchError, ValidationError)


def test_money_equality_across_currencies_is_false_and_money_is_immutable() -> None:
    assert Money(1, "EUR") != Money(1, "USD")
    assert Money(1, "EUR") != 1
    with pytest.raises(TypeError):
        Money(1, "EUR") + 1  # type: ignore[operator]
    with pytest.raises(AttributeError, match="immutable"):
        Money(1, "EUR").amount = D(2)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("amount", "currency"), [("x", "EUR"), (float("inf"), "EUR"), (1, "EURO"), (1, "eur")]
)
def test_money_rejects_bad_amounts_and_codes(amount: Any, currency: str) -> None:
    with pytest.raises(ValueError):
        Money(amount, currency)


def test_currency_data_comes_from_iso_4217() -> None:
    assert is_currency("EUR") and is_currency("CHF") and not is_currency("XYZ")
    assert (currency_exponent("USD"), currency_exponent("JPY"), currency_exponent("KWD")) == (
        2,
        0,
        3,
    )
    assert currency_exponent("XAU") is None


SEMVER_ORDER = [
    # semver.org section 11's own example, then more.
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0-0",
    "2.0.0-1",
    "2.0.0-a",
    "2.0.0",
]


def test_semver_sorts_by_precedence_not_text() -> None:
    shuffled = list(reversed(SEMVER_ORDER))
    assert [str(v) for v in sorted(SemVer(v) for v in shuffled)] == SEMVER_ORDER
    assert SemVer("1.10.0") > SemVer("1.9.0")
    assert SemVer("1.0.0-rc.1") < "1.0.0"


def test_semver_build_metadata_has_no_precedence() -> None:
    a, b = SemVer("1.0.0+a"), SemVer("1.0.0+b")
    assert not a < b and not b < a and a <= b and a >= b
    assert a != b  # different text, equal precedence
    assert SemVer("1.2.3-rc.1+exp.sha").prerelease == ("rc", "1")
    assert SemVer("1.2.3-rc.1+exp.sha").build == ("exp", "sha")
    assert (SemVer("1.2.3").major, SemVer("1.2.3").minor, SemVer("1.2.3").patch) == (1, 2, 3)


def test_slugify() -> None:
    assert slugify("Crème brûlée!") == "creme-brulee"
    assert slugify("  Hello,  World  ") == "hello-world"
    assert slugify("---") == ""
