"""``Money`` (a Decimal amount in one ISO 4217 currency) and ``MoneyField``.

Currency codes and their minor units come from the ``iso4217`` package, which ships the
standard's own published table (list one), so a code withdrawn or added by the
maintenance agency changes with a package upgrade, not with an edit here.
"""

from __future__ import annotations

import decimal
import functools
from typing import Any

from dorm.contrib.extra_fields.base import ExtraField, stored_decimal
from dorm.contrib.extra_fields.exceptions import CurrencyMismatchError

__all__ = ["Money", "MoneyField", "currency_exponent", "is_currency"]


@functools.cache
def _currencies() -> dict[str, int | None]:
    from iso4217 import Currency  # imported on first use: it parses the XML table

    return {c.code: c.exponent for c in Currency}


def is_currency(code: object) -> bool:
    """Return True when ``code`` is an active ISO 4217 alphabetic code (upper case)."""
    return isinstance(code, str) and code in _currencies()


def currency_exponent(code: str) -> int | None:
    """Return the ISO 4217 minor unit of ``code`` (2 for EUR, 0 for JPY, 3 for BHD).

    None for codes without one (gold ``XAU``, special drawing rights ``XDR``).

    :raises ValueError: ``code`` is not an ISO 4217 code.
    """
    _check_code(code, "currency_exponent")
    return _currencies()[code]


def _check_code(code: object, where: str) -> str:
    if not is_currency(code):
        raise ValueError(
            f"{where}: {code!r} is not an ISO 4217 currency code; use an upper-case "
            f"three-letter code such as 'EUR' or 'USD'"
        )
    assert isinstance(code, str)
    return code


def _to_decimal(value: object) -> decimal.Decimal:
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, float):
        value = repr(value)  # 0.1 -> Decimal("0.1"), not 0.1000000000000000055511151231257827
    if not isinstance(value, (decimal.Decimal, int, str)):
        raise TypeError(f"{type(value).__name__} is not an amount")
    result = decimal.Decimal(value.strip() if isinstance(value, str) else value)
    if not result.is_finite():
        raise ValueError("an amount must be finite")
    return result


@functools.total_ordering
class Money:
    """An immutable amount of one currency: ``Money("9.99", "EUR")``.

    ``+`` and ``-`` take Money of the same currency; ``*`` and ``/`` take a number.
    Ordering between different currencies raises CurrencyMismatchError; equality between
    them is False. The amount is kept exactly as given (no rounding).
    """

    __slots__ = ("amount", "currency")

    amount: decimal.Decimal
    currency: str

    def __init__(self, amount: decimal.Decimal | int | str | float, currency: str) -> None:
        try:
            value = _to_decimal(amount)
        except (decimal.InvalidOperation, TypeError, ValueError) as exc:
            raise ValueError(f"Money: {amount!r} is not a decimal amount ({exc})") from None
        object.__setattr__(self, "amount", value)
        object.__setattr__(self, "currency", _check_code(currency, "Money"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Money is immutable; build a new Money instead")

    def __repr__(self) -> str:
        return f"Money({str(self.amount)!r}, {self.currency!r})"

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Money, (str(self.amount), self.currency))

    def deconstruct(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """Return how migrations rebuild this value (a field default)."""
        return "dorm.contrib.extra_fields.Money", (self.amount, self.currency), {}

    def _same(self, other: Money, op: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(
                f"currency mismatch: cannot {op} {self} and {other}; convert one of them first"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount < other.amount

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "add")
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "subtract")
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, other: object) -> Money:
        if isinstance(other, Money) or not isinstance(other, (int, decimal.Decimal, float)):
            return NotImplemented
        return Money(self.amount * _to_decimal(other), self.currency)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Money:
        if isinstance(other, Money) or not isinstance(other, (int, decimal.Decimal, float)):
            return NotImplemented
        return Money(self.amount / _to_decimal(other), self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __bool__(self) -> bool:
        return bool(self.amount)


class MoneyField(ExtraField):
    """An amount in one fixed currency, stored as a numeric column (the currency is not).

    ``decimal_places`` defaults to the currency's ISO 4217 minor unit. Accepts Money of
    the field's currency or a plain number (taken in that currency); Money of another
    currency raises CurrencyMismatchError (a ValidationError). Amounts with more decimal
    places than the field keeps raise instead of being rounded.
    """

    internal_type = "MoneyField"
    passthrough = (None,)

    def __init__(
        self,
        *args: Any,
        currency: str = "EUR",
        max_digits: int = 19,
        decimal_places: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.currency = _check_code(currency, "MoneyField")
        if decimal_places is None:
            decimal_places = _currencies()[self.currency]
            if decimal_places is None:
                raise ValueError(
                    f"MoneyField: {currency} has no minor unit in ISO 4217; pass decimal_places"
                )
        if not isinstance(decimal_places, int) or isinstance(decimal_places, bool):
            raise ValueError(
                f"MoneyField: decimal_places must be an integer, got {decimal_places!r}"
            )
        if not isinstance(max_digits, int) or not 0 < max_digits <= 1000:
            raise ValueError(f"MoneyField: max_digits must be in [1, 1000], got {max_digits!r}")
        if not 0 <= decimal_places <= max_digits:
            raise ValueError(
                f"MoneyField: decimal_places must be in [0, max_digits={max_digits}], "
                f"got {decimal_places!r}"
            )
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self._quantum = decimal.Decimal(1).scaleb(-decimal_places)
        self._context = decimal.Context(prec=max(max_digits, 28))
        super().__init__(*args, **kwargs)

    def convert(self, value: Any) -> Money:
        if isinstance(value, Money):
            if value.currency != self.currency:
                where = f"{self.model.__name__}.{self.name}" if self.model else self.name
                raise CurrencyMismatchError(
                    f"currency mismatch: {where} holds {self.currency}, got {value}; "
                    f"convert the amount to {self.currency} first"
                )
            amount = value.amount
        else:
            try:
                amount = _to_decimal(value)
            except (decimal.InvalidOperation, TypeError, ValueError):
                raise self.error(value, f"an amount in {self.currency}") from None
        try:
            exact = amount.quantize(self._quantum, context=self._context)
        except decimal.InvalidOperation:
            raise self.error(value, f"an amount of at most {self.max_digits} digits") from None
        if exact != amount:
            raise self.error(
                value,
                f"an amount with at most {self.decimal_places} decimal places ({self.currency})",
            )
        if len(exact.as_tuple().digits) > self.max_digits:
            raise self.error(value, f"an amount of at most {self.max_digits} digits")
        if isinstance(value, Money) and value.amount.as_tuple() == exact.as_tuple():
            return value
        return Money(exact, self.currency)

    def to_db(self, value: Money) -> str:
        # Text binds everywhere: sqlite3 has no Decimal adapter, and PostgreSQL reads the
        # untyped parameter as numeric from the column.
        return str(value.amount)

    def from_db_value(self, value: Any) -> Any:
        if value is None:
            return None
        amount = stored_decimal(value, self._quantum, self._context)
        return value if amount is None else Money(amount, self.currency)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs["currency"] = self.currency
        if self.max_digits != 19:
            kwargs["max_digits"] = self.max_digits
        if self.decimal_places != _currencies()[self.currency]:
            kwargs["decimal_places"] = self.decimal_places
        return name, path, args, kwargs
