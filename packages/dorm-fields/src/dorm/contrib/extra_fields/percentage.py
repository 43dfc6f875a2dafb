"""``PercentageField``: a number in [0, 100], as Decimal."""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

from dorm.contrib.extra_fields.base import ExtraField, stored_decimal

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper

__all__ = ["PercentageField"]

_HUNDRED = decimal.Decimal(100)


class PercentageField(ExtraField):
    """A percentage in [0, 100] with ``decimal_places`` (default 2), returned as Decimal.

    Accepts Decimal, int, float (through its shortest repr, so ``12.5`` is exact) and
    numeric strings; more decimal places than the field keeps raise, never round. The
    column also gets a CHECK constraint for the range.
    """

    internal_type = "PercentageField"
    passthrough = (None,)

    def __init__(self, *args: Any, decimal_places: int = 2, **kwargs: Any) -> None:
        if (
            not isinstance(decimal_places, int)
            or isinstance(decimal_places, bool)
            or not 0 <= decimal_places <= 10
        ):
            raise ValueError(
                f"PercentageField: decimal_places must be an integer in [0, 10], "
                f"got {decimal_places!r}"
            )
        self.decimal_places = decimal_places
        self._quantum = decimal.Decimal(1).scaleb(-decimal_places)
        super().__init__(*args, **kwargs)

    @property
    def max_digits(self) -> int:
        return 3 + self.decimal_places

    def convert(self, value: Any) -> decimal.Decimal:
        if isinstance(value, bool) or not isinstance(value, (decimal.Decimal, int, float, str)):
            raise self.error(value, "a number in [0, 100]")
        try:
            number = decimal.Decimal(repr(value) if isinstance(value, float) else value)
        except decimal.InvalidOperation:
            raise self.error(value, "a number in [0, 100]") from None
        if not number.is_finite() or not 0 <= number <= _HUNDRED:
            raise self.error(value, "a number in [0, 100]")
        exact = number.quantize(self._quantum)
        if exact != number:
            raise self.error(value, f"a percentage with at most {self.decimal_places} decimals")
        return exact

    def from_db_value(self, value: Any) -> Any:
        # No range check: a stored 150 (a column made before its CHECK) still loads.
        if value is None:
            return None
        number = stored_decimal(value, self._quantum)
        return value if number is None else number

    def db_check(self, connection: BaseDatabaseWrapper) -> str | None:
        column = connection.ops.quote_name(self.column)
        return f"{column} >= 0 AND {column} <= 100"

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if self.decimal_places != 2:
            kwargs["decimal_places"] = self.decimal_places
        return name, path, args, kwargs
