"""``Country`` (an ISO 3166-1 alpha-2 code with its name) and ``CountryField``.

Codes and names come from ``pycountry``, which packages the ISO 3166 data maintained by
Debian's iso-codes project.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from dorm.contrib.extra_fields.base import ExtraField

if TYPE_CHECKING:
    from dorm.models.base import Model

__all__ = ["Country", "CountryField"]


@functools.cache
def _countries() -> dict[str, tuple[str, str]]:
    import pycountry  # imported on first use

    return {c.alpha_2: (c.name, c.alpha_3) for c in pycountry.countries}


class Country(str):
    """An ISO 3166-1 alpha-2 code (``"ES"``) that also knows ``name`` and ``alpha_3``.

    :raises ValueError: the code is not assigned in ISO 3166-1.
    """

    __slots__ = ()

    def __new__(cls, code: str) -> Country:
        if not isinstance(code, str) or code.upper() not in _countries():
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
        return super().__new__(cls, code.upper())

    @property
    def name(self) -> str:
        return _countries()[str(self)][0]

    @property
    def alpha_3(self) -> str:
        return _countries()[str(self)][1]

    def __repr__(self) -> str:
        return f"Country({str(self)!r})"


class CountryField(ExtraField):
    """An ISO 3166-1 alpha-2 country code, stored upper case; values are ``Country``.

    ``obj.get_<field>_display()`` returns the country's English name.
    """

    internal_type = "CountryField"
    empty_default = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2)
        super().__init__(*args, **kwargs)

    def convert(self, value: Any) -> Country:
        if isinstance(value, Country):
            return value
        try:
            return Country(value.strip() if isinstance(value, str) else value)
        except ValueError:
            raise self.error(value, "an ISO 3166-1 alpha-2 country code such as 'ES'") from None

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        super().contribute_to_class(cls, name)
        field = self

        def get_display(instance: Any) -> str:
            value = getattr(instance, field.attname)
            return value.name if isinstance(value, Country) else str(value or "")

        if self.choices is None:
            setattr(cls, f"get_{name}_display", get_display)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 2:
            del kwargs["max_length"]
        return name, path, args, kwargs
