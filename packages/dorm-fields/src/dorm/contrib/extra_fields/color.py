"""``ColorField``: ``#RRGGBB`` / ``#RRGGBBAA`` colours, stored upper case."""

from __future__ import annotations

import re
from typing import Any

from dorm.contrib.extra_fields.base import ExtraField

__all__ = ["ColorField"]

_COLOR = re.compile(r"#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})")


class ColorField(ExtraField):
    """An RGB or RGBA colour in hex notation, normalised to upper case (``#FFAA00``).

    Exactly ``#RRGGBB`` or ``#RRGGBBAA``: no shorthand (``#fa0``), no names (``red``).
    """

    internal_type = "ColorField"
    empty_default = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 9)
        super().__init__(*args, **kwargs)

    def convert(self, value: Any) -> str:
        if not isinstance(value, str) or not _COLOR.fullmatch(value):
            raise self.error(value, "a colour as '#RRGGBB' or '#RRGGBBAA' (hex digits)")
        return value.upper()

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 9:
            del kwargs["max_length"]
        return name, path, args, kwargs
