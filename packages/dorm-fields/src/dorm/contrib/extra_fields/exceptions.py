"""Exceptions of dorm.contrib.extra_fields."""

from __future__ import annotations

from dorm.exceptions import ValidationError

__all__ = ["CurrencyMismatchError"]


class CurrencyMismatchError(ValidationError):
    """Two Money values (or a Money and a MoneyField) have different currencies.

    A ValidationError, so assigning Money of the wrong currency to a field fails like any
    other invalid value; the message starts with ``currency mismatch``.
    """
