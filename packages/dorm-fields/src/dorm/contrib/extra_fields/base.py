"""The shared base of the extra fields: validation on assignment and the conversion chain."""

from __future__ import annotations

import decimal
from typing import Any, ClassVar

from dorm.exceptions import ValidationError
from dorm.models.fields import Field, ValidatedAttribute

__all__ = ["ConvertingAttribute", "ExtraField"]

_PACKAGE = "dorm.contrib.extra_fields"


class ConvertingAttribute(ValidatedAttribute):
    """The class attribute of every extra field: converts assigned values, constructor too.

    ``obj.x = v`` and ``Model(x=v)`` alike store ``field.to_python(v)``, so an invalid
    value raises ValidationError right there. Rows loaded from the database never pass
    through it: they hold what ``from_db_value`` returns.
    """

    converts_on_init = True


class ExtraField(Field):
    """A field whose ``to_python`` is its whole validation, run on every assignment.

    Subclasses implement ``convert`` (a non-empty input -> the Python value, raising
    ValidationError) and ``to_db`` (the Python value -> what the driver binds).
    ``to_python``, ``get_db_prep_value`` and ``from_db_value`` are built from those two.
    """

    descriptor_class = ConvertingAttribute
    #: Inputs that mean "no value" and are kept as they are (``validate`` judges them).
    passthrough: ClassVar[tuple[Any, ...]] = (None, "")

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def to_db(self, value: Any) -> Any:
        return str(value)

    def _is_empty(self, value: Any) -> bool:
        """True for None, and for ``""`` where ``passthrough`` keeps it."""
        return value is None or (isinstance(value, str) and value == "" and "" in self.passthrough)

    def to_python(self, value: Any) -> Any:
        if self._is_empty(value):
            return value
        return self.convert(value)

    def get_prep_value(self, value: Any) -> Any:
        value = self.to_python(value)
        if value is None or (isinstance(value, str) and value == ""):
            return value
        return self.to_db(value)

    def get_db_prep_value(self, value: Any) -> Any:
        return self.get_prep_value(value)

    def from_db_value(self, value: Any) -> Any:
        """Return the Python value of a stored value; never raise for an invalid one.

        A stored value that the field refuses (written by raw SQL, or before a rule became
        stricter) is returned as stored, so the row stays readable; ``full_clean()``
        reports it, and ``save()`` refuses to write it back.
        """
        if self._is_empty(value):
            return value
        try:
            return self.convert(value)
        except ValidationError:
            return value

    def get_default(self) -> Any:
        # Instances start with the canonical value (a ZoneInfo, not the string "UTC").
        return self.to_python(super().get_default())

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if type(self).__module__.startswith(_PACKAGE + "."):
            path = f"{_PACKAGE}.{type(self).__qualname__}"  # the public import path
        return name, path, args, kwargs

    def error(self, value: Any, expected: str) -> ValidationError:
        """Return the ValidationError for ``value``, naming the field and what was expected."""
        where = f"{self.model.__name__}.{self.name}" if self.model is not None else self.name
        where = where or type(self).__name__
        return ValidationError(f"{where}: {self._display(value)} is not {expected}", code="invalid")


def stored_decimal(
    value: Any, quantum: decimal.Decimal, context: decimal.Context | None = None
) -> decimal.Decimal | None:
    """A stored numeric value as a Decimal with ``quantum``'s places, or None when it is
    not a finite number (SQLite keeps any text in a numeric column: the caller returns it
    as stored and ``full_clean()`` reports it). SQLite hands back a float for a "decimal"
    column; a number with more digits than the field keeps is returned unrounded."""
    try:
        number = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        return None
    if not number.is_finite():
        return None
    try:
        return number.quantize(quantum, context=context)
    except decimal.InvalidOperation:
        return number
